"""The functions the inversion entry points call: train, evaluate, correct, the domain table."""
