"""The functions the memorization entry points call: the capacity grid, the fine-tuning audit."""
