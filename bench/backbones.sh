#!/usr/bin/env bash
# Issue 3 figures: the four backbones on ml-1m and amazon-beauty, full ranking, leave-one-out.
# The id variant of bench_llmemb.py, so the settings are bench/protocol.py's and the runs land in its
# layout RUNS_DIR/<dataset>/<model>/id/seed<k>, where bench_llmemb.py / bench_ger.py reuse them.
# Sequential (2 cores), resumable: re-running continues killed runs and skips finished ones.
#   bash bench/backbones.sh [RUNS_DIR]        then: lucidrec aggregate RUNS_DIR/<dataset>/<model>/id/seed*
set -eu
RUNS=${1:-bench/runs/methods}
ids=(python "$(dirname "$0")/bench_llmemb.py" --variants id --out "$RUNS" --threads 1 --quiet)
"${ids[@]}" --datasets ml-1m amazon-beauty --models sasrec --seeds 1 2 3 --md-out "$RUNS/sasrec.md" --json-out "$RUNS/sasrec.json"
"${ids[@]}" --datasets amazon-beauty ml-1m --models gru4rec bert4rec caser --seeds 1 --md-out "$RUNS/others.md" --json-out "$RUNS/others.json"
