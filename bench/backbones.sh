#!/usr/bin/env bash
# Issue 3 figures: the four backbones on ml-1m and amazon-beauty, full ranking, leave-one-out.
# Sequential (2 cores), resumable: re-running continues killed runs and skips finished ones.
#   bash bench/backbones.sh [RUNS_DIR]        then: python bench/report_backbones.py RUNS_DIR
set -u
RUNS=${1:-bench/runs/backbones}
mkdir -p "$RUNS"
common=(--set train.progress=false --set train.threads=1 --set train.loss=ce --set train.patience=15)
ml1m=(--dataset ml-1m --set model.max_len=200 --set model.dropout=0.2)
beauty=(--dataset amazon-beauty --set model.max_len=50 --set model.dropout=0.5)
run() {  # name, args...
  local out="$RUNS/$1"; shift
  [ -f "$out/metrics.json" ] && return 0
  local resume=(); [ -f "$out/last.pt" ] && resume=(--resume)
  echo "$(date -u +%FT%TZ) start $out"
  lucidrec train "$@" "${common[@]}" --out "$out" "${resume[@]}" > "$out.log" 2>&1 || echo "FAILED $out (see $out.log)"
}
run ml1m-sasrec-s1 "${ml1m[@]}" --model sasrec --set train.seed=1
run beauty-sasrec-s1 "${beauty[@]}" --model sasrec --set train.seed=1
run beauty-sasrec-s2 "${beauty[@]}" --model sasrec --set train.seed=2
run beauty-sasrec-s3 "${beauty[@]}" --model sasrec --set train.seed=3
run ml1m-sasrec-s2 "${ml1m[@]}" --model sasrec --set train.seed=2
run ml1m-sasrec-s3 "${ml1m[@]}" --model sasrec --set train.seed=3
for model in gru4rec bert4rec caser; do
  run "beauty-$model-s1" "${beauty[@]}" --model "$model" --set train.seed=1
  run "ml1m-$model-s1" "${ml1m[@]}" --model "$model" --set train.seed=1
done
echo "$(date -u +%FT%TZ) all done"
