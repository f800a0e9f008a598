#!/usr/bin/env bash
# Issue #17's GPU recipe, one device call of <= 10 minutes (after smoke.sh has carried the
# parts of scripts/device/pack.sh): the quick start's recipe at GPU scale. The word-hinted
# SmolLM2 + LoRA inverter trains for TRAIN_MINUTES in bf16 at batch BATCH (schedule decayed by
# that deadline), then 200 held-out Wikipedia sentences are inverted: nearest neighbour,
# bag of words, the inverter alone, its embedder-guided beam decoding, and the fluency-scored
# search with and without the inverter (here with its edit proposals, which a GPU affords;
# eval.search.guided.* widens the beam). Prints the run's metrics
# (token F1, cosine, BLEU, reference-LM perplexity) and copies results.json to $OUT.
#   run: bash scripts/device/sentences_check.sh
source scripts/device/setup.sh || exit 1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
run=$P/runs/sentences
t0=$(date +%s)
timeout ${SECONDS_LIMIT:-540} python3 experiments/train_inverter.py experiment=quickstart logger=none \
  hydra.run.dir=$run budget.total_minutes=null train.max_minutes=${TRAIN_MINUTES:-4} \
  train.batch_size=${BATCH:-64} train.eval_every=100000 eval.search.max_minutes=null \
  eval.search.num_rounds=${ROUNDS:-12} eval.search.inverter_edits=${INVERTER_EDITS:-8} \
  eval.search.deletions_per_round=null ${EXTRA:-} > "$OUT/train_inverter.log" 2>&1
echo "rc=$? in $(( $(date +%s) - t0 )) s"
cp $run/results.json $run/history.json $run/methods.png "$OUT/" 2>/dev/null
grep -A20 "held-out metrics" "$OUT/train_inverter.log" || tail -30 "$OUT/train_inverter.log"
