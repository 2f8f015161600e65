"""Every backbone and item embedding on every dataset of the data directory, through the real CLI.

One short training per cell (``lucidrec train`` in a subprocess, exactly as a user types it), then
the test metrics of its ``metrics.json``: this shows that each combination loads, trains, evaluates
with full ranking and writes its run folder, not how good a converged model is (see the tuned rows
of docs/benchmarks.md for that). ``--embeddings llmemb ger`` runs the method chains with their default
settings (LLMEmb: SCFT, table, E_cf and RAT; GER: base run, attribute scoring, refinement), and each GER
cell then runs ``lucidrec explain --check`` for one user. The method
embeddings need item text, so they skip datasets without a catalog. Cells run one after another; a
failing cell is reported with the end of its error output and does not stop the others. Re-running the
same call skips the cells that finished (their ``cell.json``); delete a failed cell's folder to try it again.
Writes the measurement record ``results/measurements/cli_matrix-<embeddings>.json`` (``--record`` for another
file) and prints its table; exits 1 when a cell failed.

    python bench/cli_matrix.py --out DIR [--epochs 1] [--datasets ...] [--models ...]
        [--embeddings id llmemb ger] [--record FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from lucidrec.data import available_datasets, load_dataset
from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

MODELS = ("sasrec", "gru4rec", "bert4rec", "caser")
EMBEDDINGS = ("id", "llmemb", "ger")
# Datasets whose public copy has known damaged lines (README: ml-latest-small line 522).
EXTRA_SETTINGS = {"ml-latest-small": ["data.on_bad_lines=skip"]}


def cell_dir(out: Path, dataset: str, model: str, embedding: str) -> Path:
    return out / dataset / (model if embedding == "id" else f"{model}-{embedding}")  # id cells keep their old folders


def train_cell(dataset: str, model: str, embedding: str, out: Path, args, user: str) -> dict:
    if (out / "cell.json").is_file():  # finished in an earlier call of this script
        return json.loads((out / "cell.json").read_text())
    # A cell killed mid-training (a checkpoint but no cell.json) continues where it stopped.
    resume = ["--resume"] if (out / "last.pt").is_file() else []
    command = [sys.executable, "-m", "lucidrec", "train", *resume, "--dataset", dataset, "--model", model,
               "--embedding", embedding, "--out", str(out),
               "--set", f"train.epochs={args.epochs}", "--set", f"train.threads={args.threads}",
               "--set", "train.progress=false", "--set", f"model.max_len={args.max_len}"]
    for setting in EXTRA_SETTINGS.get(dataset, []):
        command += ["--set", setting]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cell = {"dataset": dataset, "model": model, "embedding": embedding, "exit": done.returncode, "seconds": seconds}
    if done.returncode == 0:
        metrics = json.loads((out / "metrics.json").read_text())
        cell.update({key: metrics.get(f"test/full/{key}") for key in ("n_users", "ndcg@10", "recall@10", "tail/ndcg@10")})
        cell["seconds_per_epoch"] = metrics.get("seconds_per_epoch")
        if embedding == "ger":
            cell["explain"] = explain_cell(out, user)
            if cell["explain"]["exit"] != 0:
                cell["exit"], cell["error"] = cell["explain"]["exit"], cell["explain"]["error"]
                return cell  # no cell.json: a re-run trains nothing (the run is finished) and explains again
        (out / "cell.json").write_text(json.dumps(cell) + "\n")
    else:
        cell["error"] = _tail(done)
    return cell


def _tail(done: subprocess.CompletedProcess) -> list[str]:
    return (done.stderr or done.stdout).strip().splitlines()[-3:]


def explain_cell(run: Path, user: str) -> dict:
    """``lucidrec explain --check`` for one user of a finished GER run: exit code, the check, the guided share."""
    command = [sys.executable, "-m", "lucidrec", "explain", "--run", str(run), "--user", user, "--k", "5", "--json", "--check"]
    done = subprocess.run(command, capture_output=True, text=True)
    try:  # a failed check exits 1 and still prints its JSON: that is a result, not a crash
        payload = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"user": user, "exit": done.returncode or 1, "error": _tail(done)}
    return {"user": user, "exit": 0, "check_ok": payload["check"]["ok"],
            "max_drop_error": max(item["drop_error"] for item in payload["check"]["items"]),
            "guided_share_top1": payload["items"][0]["guided_share"]}


def record_table(cells: list[dict], args) -> dict:
    rows = []
    for c in cells:
        check = c.get("explain")
        check = (f"{check['user']}: {'pass' if check['check_ok'] else 'FAIL'}, {check['max_drop_error']:.1e}, "
                 f"{check['guided_share_top1']:.0%}") if check and "check_ok" in check else None
        rows.append([c["dataset"], c["model"], c.get("embedding", "id"), c["exit"], c.get("n_users"), c.get("ndcg@10"),
                     c.get("recall@10"), c.get("tail/ndcg@10"), c.get("seconds_per_epoch"), c["seconds"], check,
                     " / ".join(c["error"]) if c.get("error") else None])
    columns = [{"name": "dataset"}, {"name": "model"}, {"name": "embedding"}, {"name": "exit"}, {"name": "test users"},
               {"name": "NDCG@10", "digits": 4}, {"name": "Recall@10", "digits": 4}, {"name": "tail NDCG@10", "digits": 4},
               {"name": "s/epoch", "digits": 1}, {"name": "wall s", "digits": 0},
               {"name": "explain --check (user: pass, max error, guided share of the top item)"}, {"name": "error"}]
    return {"title": "Every backbone and embedding through the CLI", "columns": columns, "rows": rows,
            "note": f"{args.epochs} epoch(s) per cell, max_len {args.max_len}: a check that every combination loads, "
                    "trains, evaluates every test user and writes its run folder, not a converged result."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", nargs="*", help="default: every dataset of the data directory")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--embeddings", nargs="*", default=["id"], choices=EMBEDDINGS)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/cli_matrix-<embeddings>.json)")
    args = parser.parse_args()
    datasets = args.datasets or available_datasets(args.data_dir)
    cells = []
    for dataset in datasets:
        # The method cells need to know up front: is there item text, and a user to explain (the first id in sorted
        # order, as the vocabulary orders them). Read once per dataset, and only then; damaged lines are the training's business.
        texted, user = True, ""
        if set(args.embeddings) != {"id"}:
            data = load_dataset(dataset, args.data_dir, on_bad_lines="skip")
            texted, user = len(data.items) > 0, str(data.interactions["user_id"].min())
        for embedding in args.embeddings:
            if embedding != "id" and not texted:
                print(f"{dataset}: no item text, no {embedding} cells", flush=True)
                continue
            for model in args.models:
                cell = train_cell(dataset, model, embedding, cell_dir(args.out, dataset, model, embedding), args, user)
                print(json.dumps(cell), flush=True)
                cells.append(cell)
    name = "cli_matrix-" + "-".join(args.embeddings)
    record = build_measurement(name, f"The CLI on every dataset, backbone and embedding ({', '.join(args.embeddings)})",
                               [record_table(cells, args)], threads=args.threads)
    publish_measurement(record, args.record)
    sys.exit(0 if all(c["exit"] == 0 and c.get("explain", {}).get("check_ok", True) for c in cells) else 1)


if __name__ == "__main__":
    main()
