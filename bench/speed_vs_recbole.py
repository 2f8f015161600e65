"""lucidrec SASRec vs RecBole SASRec, side by side on the same data and comparable settings.

Run by hand (RecBole lives in its own virtual environment; it needs old pins and is never a
dependency of lucidrec):

    python -m venv RECBOLE_VENV
    RECBOLE_VENV/bin/pip install "torch==2.13.0" "numpy<2" "pandas<3" "setuptools<81" recbole
    python bench/speed_vs_recbole.py --recbole-python RECBOLE_VENV/bin/python --threads 1 --patience 10 \
        [--dataset amazon-scientific] [--epochs 200] [--recbole-epochs 200]

Both see the same interactions in the same per-user order (the canonical ``seq_pos`` is written
as RecBole's timestamp), leave-one-out split, full-ranking evaluation under the same protocol, and
the same SASRec shape: 2 layers, hidden 64, 1 head, max length 50, dropout 0.2, Adam lr 1e-3, full
softmax cross-entropy, early stopping on validation NDCG@10. The remaining difference is how each
feeds training data: RecBole makes every prefix of every history a training example (batch 2048 by
default, ``--recbole-batch-size``); lucidrec trains all positions of each user's history in one row
(batch 128).
The two runs are sequential, so they do not compete for the 2 cores. Writes the measurement record
``results/measurements/speed_vs_recbole-<dataset>.json`` (``--record`` for another file; the RecBole
interpreter's path is shortened in the recorded command) and prints its table.

The protocol is RecBole's: its full-sort evaluation of sequential models leaves the user's history
items among the candidates (its loader builds the history to remove only for non-sequential models),
so lucidrec selects and reports on its ``full_unmasked`` protocol here (``train.select_on``). Its
usual history-masked metrics are printed too, for reference only; they are not comparable.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

#: RecBole's protocol for sequential models: full ranking with the history items left in.
PROTOCOL = "full_unmasked"

RECBOLE_SIDE = r"""
import json, sys, time
from recbole.quick_start import run_recbole
data_path, epochs, patience, threads, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import torch
torch.set_num_threads(threads)
# RecBole 1.2.1 reloads its own best checkpoint with torch.load's old default (weights_only=False),
# which torch >= 2.6 refuses (RecBole issue #2215); the file is RecBole's own, so restore the old default.
_torch_load = torch.load
torch.load = lambda *args, **kwargs: _torch_load(*args, **{"weights_only": False, **kwargs})
from recbole.trainer import Trainer
# Time RecBole's own epoch functions (its logger is configured inside run_recbole, so log parsing is fragile).
timeline = []
started = time.perf_counter()
original_train, original_valid = Trainer._train_epoch, Trainer._valid_epoch
def timed_train(self, *args, **kwargs):
    t0 = time.perf_counter()
    out = original_train(self, *args, **kwargs)
    timeline.append(("train", time.perf_counter() - t0, time.perf_counter() - started))
    return out
def timed_valid(self, *args, **kwargs):
    out = original_valid(self, *args, **kwargs)
    timeline.append(("valid", float(out[0]), time.perf_counter() - started))
    return out
Trainer._train_epoch, Trainer._valid_epoch = timed_train, timed_valid
config = {
    "data_path": data_path, "dataset": "lucid", "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp", "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "MAX_ITEM_LIST_LENGTH": 50, "n_layers": 2, "n_heads": 1, "hidden_size": 64, "inner_size": 64,
    "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2, "loss_type": "CE", "train_neg_sample_args": None,
    "learning_rate": 0.001, "train_batch_size": batch_size, "epochs": epochs, "stopping_step": patience,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
    "metrics": ["Recall", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10", "eval_batch_size": 4096,
    "show_progress": False, "seed": 42, "reproducibility": True, "device": "cpu", "use_gpu": False,
    "checkpoint_dir": data_path + "/saved", "worker": 0,
}
result = run_recbole(model="SASRec", config_dict=config)
total = time.perf_counter() - started
train_times = [seconds for kind, seconds, _ in timeline if kind == "train"]
valid = [(at, score) for kind, score, at in timeline if kind == "valid"]
best_time, curve = None, []
if valid:
    fit_started = timeline[0][2] - timeline[0][1]  # like lucidrec's log: from the first training epoch on
    curve = [(at - fit_started, score) for at, score in valid]
    best = max(score for _, score in curve)
    best_time = next(at for at, score in curve if score == best)
print(json.dumps({"valid_curve": curve, "seconds_per_epoch": sum(train_times) / max(len(train_times), 1), "epochs": len(train_times),
                  "seconds_to_best_valid": best_time, "total_seconds": total,
                  "best_valid": result["best_valid_result"], "test": result["test_result"]}, default=float))
"""


def export_atomic(dataset: str, folder: Path) -> None:
    from lucidrec.data import load_dataset

    frame = load_dataset(dataset).interactions
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lucid.inter", "w") as handle:
        handle.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for user, item, pos in zip(frame["user_id"], frame["item_id"], frame["seq_pos"]):
            handle.write(f"{user}\t{item}\t{pos}\n")


def run_lucidrec(dataset: str, out: Path, epochs: int, patience: int, threads: int) -> dict:
    command = [sys.executable, "-m", "lucidrec", "train", "--dataset", dataset, "--model", "sasrec", "--out", str(out),
               "--set", "model.max_len=50", "--set", "model.hidden=64", "--set", "model.layers=2", "--set", "model.heads=1",
               "--set", "model.dropout=0.2", "--set", "train.loss=ce", "--set", "train.lr=0.001",
               "--set", f"train.epochs={epochs}", "--set", f"train.patience={patience}", "--set", "train.progress=false",
               "--set", f"train.threads={threads}", "--set", "train.select_on=full_unmasked",
               "--set", 'eval.protocols=["full", "full_unmasked"]']
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    total = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return {"valid_curve": [(e["elapsed"], e["valid_ndcg10"]) for e in log if e["valid_ndcg10"] is not None],
            "seconds_per_epoch": sum(e["seconds"] for e in log) / len(log), "epochs": len(log),
            "seconds_to_best_valid": log[metrics["best_epoch"]]["elapsed"], "total_seconds": total,
            "valid_ndcg10": metrics[f"valid/{PROTOCOL}/ndcg@10"], "test_ndcg10": metrics[f"test/{PROTOCOL}/ndcg@10"],
            "test_recall10": metrics[f"test/{PROTOCOL}/recall@10"], "test_mrr10": mrr_at(out, 10),
            "masked_test_ndcg10": metrics["test/full/ndcg@10"], "masked_test_recall10": metrics["test/full/recall@10"]}


def mrr_at(run: Path, k: int) -> float:
    """MRR@k (RecBole's MRR) from the run's saved per-user test ranks of the comparison protocol."""
    import numpy as np

    from lucidrec.eval.report import read_per_user

    ranks = read_per_user(run)[1][PROTOCOL]
    return float(np.where(ranks < k, 1.0 / (ranks + 1), 0.0).mean())


def seconds_to_reach(curve: list, level: float) -> float | None:
    """Wall seconds (from the first training epoch) until a validation NDCG@10 curve first reaches ``level``."""
    return next((at for at, score in curve if score >= level - 1e-12), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recbole-python", required=True)
    parser.add_argument("--dataset", default="amazon-scientific")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--recbole-epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--recbole-batch-size", type=int, default=2048,
                        help="RecBole's train_batch_size (its default 2048 means few updates per epoch; each prefix is one example)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/speed_vs_recbole-<dataset>.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_lucidrec(args.dataset, Path(tmp) / "lucidrec", args.epochs, args.patience, args.threads)
        export_atomic(args.dataset, Path(tmp) / "atomic" / "lucid")
        done = subprocess.run(cwd=tmp, args=[args.recbole_python, "-c", RECBOLE_SIDE, str(Path(tmp) / "atomic"), str(args.recbole_epochs),
                               str(args.patience), str(args.threads), str(args.recbole_batch_size)], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-4000:])
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    t = theirs["test"]
    # "Time to the same NDCG": the level both reached (the lower of the two best validation NDCG@10s).
    common = min(max(score for _, score in ours["valid_curve"]), max(score for _, score in theirs["valid_curve"]))
    rows = [
        ("seconds per training epoch", ours["seconds_per_epoch"], theirs["seconds_per_epoch"]),
        ("epochs run (early stopping)", ours["epochs"], theirs["epochs"]),
        ("seconds to best validation NDCG@10", ours["seconds_to_best_valid"], theirs["seconds_to_best_valid"]),
        (f"seconds to first reach validation NDCG@10 {common:.4f} (the lower best)",
         seconds_to_reach(ours["valid_curve"], common), seconds_to_reach(theirs["valid_curve"], common)),
        ("best validation NDCG@10", max(s for _, s in ours["valid_curve"]), max(s for _, s in theirs["valid_curve"])),
        ("total wall seconds", ours["total_seconds"], theirs["total_seconds"]),
        ("test NDCG@10", ours["test_ndcg10"], t.get("ndcg@10")),
        ("test Recall@10", ours["test_recall10"], t.get("recall@10")),
        ("test MRR@10", ours["test_mrr10"], t.get("mrr@10")),
        ("(lucidrec's own protocol, history masked: test NDCG@10 / Recall@10)",
         f"{ours['masked_test_ndcg10']:.4f} / {ours['masked_test_recall10']:.4f}", None),
    ]
    table = {"title": f"SASRec on {args.dataset}: lucidrec and RecBole 1.2.1",
             "columns": [{"name": ""}, {"name": "lucidrec"}, {"name": "RecBole 1.2.1"},
                         {"name": "RecBole / lucidrec", "digits": 1, "suffix": "×"}],
             "rows": [[name, a, b, b / a if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else None]
                      for name, a, b in rows],
             "note": f"Full ranking with history items left in (RecBole's protocol); {args.threads} torch thread(s) "
                     f"each; RecBole capped at {args.recbole_epochs} epochs, batch {args.recbole_batch_size} prefixes; "
                     "lucidrec batch 128 users. One seed each: RecBole exports no per-user ranks, so no paired test."}
    name = f"speed_vs_recbole-{args.dataset}"
    record = build_measurement(name, f"Speed vs RecBole ({args.dataset})", [table], threads=args.threads,
                               extra={"lucidrec": ours, "recbole": theirs})
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
