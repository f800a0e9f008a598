#!/usr/bin/env bash
# Device call 3 (after smoke.sh and the GGUF's first half): issue #3's pipeline on one GPU,
# sized by wall time. S1: the one_hour experiment (SmolLM2 + LoRA inverter, then 500 held-out
# sentences with NN / bag-of-words / inverter / guided search), training cut to
# TRAIN_MINUTES with the cosine schedule decayed by that deadline. S2: the results table on
# that inverter, N_TABLE held-out texts per corpus, in- and out-of-domain (no corrector).
# Results land in $OUT/s1 and $OUT/s2.
source scripts/device/setup.sh || exit 1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/s1" "$OUT/s2"
run=$P/runs/one_hour
t0=$(date +%s)
timeout ${S1_SECONDS:-330} python3 experiments/train_inverter.py experiment=one_hour logger=none \
  hydra.run.dir=$run train.max_minutes=${TRAIN_MINUTES:-2.5} train.schedule_clock=time \
  train.max_steps=100000 train.batch_size=${BATCH:-32} train.eval_every=1000 \
  ${EXTRA_S1:-} > "$OUT/s1/train_inverter.log" 2>&1
echo "S1 rc=$? in $(( $(date +%s) - t0 )) s"
cp $run/results.json $run/history.json $run/methods.png "$OUT/s1/" 2>/dev/null
tail -25 "$OUT/s1/train_inverter.log"
t1=$(date +%s)
timeout ${S2_SECONDS:-170} python3 experiments/inversion_table.py logger=none \
  hydra.run.dir=$P/runs/table inverters.lora=$run/inverter n=${N_TABLE:-50} \
  ${EXTRA_S2:-} > "$OUT/s2/inversion_table.log" 2>&1
echo "S2 rc=$? in $(( $(date +%s) - t1 )) s"
cp $P/runs/table/table.md $P/runs/table/results.json \
  "$OUT/s2/" 2>/dev/null
cat $P/runs/table/table.md 2>/dev/null || tail -25 "$OUT/s2/inversion_table.log"
