"""Every backbone on every dataset of the data directory, through the real CLI (issue 3's "done when").

One short training per cell (``lucidrec train`` in a subprocess, exactly as a user types it), then
the test metrics of its ``metrics.json``: this shows that each combination loads, trains, evaluates
with full ranking and writes its run folder, not how good a converged model is (see the tuned rows
of docs/benchmarks.md for that). Cells run one after another; a failing cell is reported with the
end of its error output and does not stop the others. Re-running the same call skips the cells that
finished (their ``cell.json``); delete a failed cell's folder to try it again.

    python bench/cli_matrix.py --out DIR [--epochs 1] [--datasets ...] [--models ...] [--md-out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from lucidrec.data import available_datasets

MODELS = ("sasrec", "gru4rec", "bert4rec", "caser")
# Datasets whose public copy has known damaged lines (README: ml-latest-small line 522).
EXTRA_SETTINGS = {"ml-latest-small": ["data.on_bad_lines=skip"]}


def train_cell(dataset: str, model: str, out: Path, args) -> dict:
    if (out / "cell.json").is_file():  # finished in an earlier call of this script
        return json.loads((out / "cell.json").read_text())
    # A cell killed mid-training (a checkpoint but no cell.json) continues where it stopped.
    resume = ["--resume"] if (out / "last.pt").is_file() else []
    command = [sys.executable, "-m", "lucidrec", "train", *resume, "--dataset", dataset, "--model", model, "--out", str(out),
               "--set", f"train.epochs={args.epochs}", "--set", f"train.threads={args.threads}",
               "--set", "train.progress=false", "--set", f"model.max_len={args.max_len}"]
    for setting in EXTRA_SETTINGS.get(dataset, []):
        command += ["--set", setting]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cell = {"dataset": dataset, "model": model, "exit": done.returncode, "seconds": seconds}
    if done.returncode == 0:
        metrics = json.loads((out / "metrics.json").read_text())
        cell.update({key: metrics.get(f"test/full/{key}") for key in ("n_users", "ndcg@10", "recall@10", "tail/ndcg@10")})
        cell["seconds_per_epoch"] = metrics.get("seconds_per_epoch")
        (out / "cell.json").write_text(json.dumps(cell) + "\n")
    else:
        cell["error"] = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return cell


def _num(value, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"  # a group with no users has no metric


def markdown(cells: list[dict], args) -> str:
    lines = [f"`python bench/cli_matrix.py --out DIR --epochs {args.epochs} --max-len {args.max_len} --threads {args.threads}` "
             f"({time.strftime('%Y-%m-%d')}; {platform.node()}, {platform.processor() or platform.machine()}). "
             f"{args.epochs} epoch(s) per cell: a check that every combination runs, not a converged result.", "",
             "| dataset | model | exit | test users | NDCG@10 | Recall@10 | tail NDCG@10 | s/epoch | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        if c["exit"] == 0:
            lines.append(f"| {c['dataset']} | {c['model']} | 0 | {c['n_users']} | {_num(c['ndcg@10'])} | {_num(c['recall@10'])} | "
                         f"{_num(c['tail/ndcg@10'])} | {_num(c['seconds_per_epoch'], 1)} | {c['seconds']:.0f} |")
        else:
            lines.append(f"| {c['dataset']} | {c['model']} | {c['exit']} | {' / '.join(c['error'])} | | | | | {c['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", nargs="*", help="default: every dataset of the data directory")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--md-out", type=Path)
    args = parser.parse_args()
    datasets = args.datasets or available_datasets(args.data_dir)
    cells = []
    for dataset in datasets:
        for model in args.models:
            cell = train_cell(dataset, model, args.out / dataset / model, args)
            print(json.dumps(cell), flush=True)
            cells.append(cell)
    table = markdown(cells, args)
    print(table)
    if args.md_out:
        args.md_out.write_text(table)
    sys.exit(0 if all(c["exit"] == 0 for c in cells) else 1)


if __name__ == "__main__":
    main()
