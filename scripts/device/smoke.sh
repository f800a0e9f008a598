#!/usr/bin/env bash
# Device call 1: the CUDA paths the tests reach (embedders, trainer, search, gradient edits,
# correction, zero-shot, table) on the GPU, where every embedder and trainer picks CUDA.
source scripts/device/setup.sh || exit 1
nvidia-smi -L; python3 -c "import torch, transformers, sentence_transformers as st, peft, accelerate
print('torch', torch.__version__, torch.cuda.get_device_name(0), 'transformers', transformers.__version__,
      'st', st.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
mkdir -p "${OUT:-/tmp/out}"
timeout ${SMOKE_SECONDS:-200} python3 -m pytest -q -rf -n 8 -p no:cacheprovider \
  tests/test_embedders.py tests/test_embedder_edits.py tests/test_edit_search.py \
  tests/test_trainer.py tests/test_inverters.py tests/test_inversion_run.py \
  tests/test_bag_of_words.py tests/test_zero_shot.py tests/test_correction.py \
  tests/test_inversion_table.py > "${OUT:-/tmp/out}/smoke.log" 2>&1
grep -E "^(FAILED|ERROR)|passed|failed" "${OUT:-/tmp/out}/smoke.log" | tail -30
