#!/usr/bin/env bash
# Issue 3 figures: the four backbones on ml-1m and amazon-beauty, full ranking, leave-one-out.
# Sequential (2 cores), resumable: re-running continues killed runs and skips finished ones.
#   bash bench/backbones.sh [RUNS_DIR]        then: lucidrec aggregate RUNS_DIR/<dataset>/<model>/id/seed*
# The settings are those of bench/protocol.py (keep the two in step), and runs land in its layout
# RUNS_DIR/<dataset>/<model>/id/seed<k>, so bench_llmemb.py / bench_ger.py with --out RUNS_DIR reuse them.
set -u
RUNS=${1:-bench/runs/methods}
mkdir -p "$RUNS"
common=(--set train.progress=false --set train.threads=1 --set train.loss=ce --set train.patience=15)
ml1m=(--dataset ml-1m --set model.max_len=200 --set model.dropout=0.2)
beauty=(--dataset amazon-beauty --set model.max_len=50 --set model.dropout=0.5)
run() {  # dataset/model/id/seed<k>, args...
  local out="$RUNS/$1"; shift
  mkdir -p "$(dirname "$out")"
  [ -f "$out/metrics.json" ] && return 0
  local resume=(); [ -f "$out/last.pt" ] && resume=(--resume)
  echo "$(date -u +%FT%TZ) start $out"
  lucidrec train "$@" "${common[@]}" --out "$out" "${resume[@]}" > "$out.log" 2>&1 || echo "FAILED $out (see $out.log)"
}
run ml-1m/sasrec/id/seed1 "${ml1m[@]}" --model sasrec --set train.seed=1
run amazon-beauty/sasrec/id/seed1 "${beauty[@]}" --model sasrec --set train.seed=1
run amazon-beauty/sasrec/id/seed2 "${beauty[@]}" --model sasrec --set train.seed=2
run amazon-beauty/sasrec/id/seed3 "${beauty[@]}" --model sasrec --set train.seed=3
run ml-1m/sasrec/id/seed2 "${ml1m[@]}" --model sasrec --set train.seed=2
run ml-1m/sasrec/id/seed3 "${ml1m[@]}" --model sasrec --set train.seed=3
for model in gru4rec bert4rec caser; do
  run "amazon-beauty/$model/id/seed1" "${beauty[@]}" --model "$model" --set train.seed=1
  run "ml-1m/$model/id/seed1" "${ml1m[@]}" --model "$model" --set train.seed=1
done
echo "$(date -u +%FT%TZ) all done"
