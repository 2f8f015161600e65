"""How much of a trained id model's item table can a text table reproduce? (no training): a measurement record.

    python bench/diagnose_text_table.py --run runs/experiments/llmemb/amazon-beauty/sasrec/id/default/seed1 \
        --table scft=ARTIFACTS/tables/<key>/item_table.npy --table frozen=... [--record FILE]

Used to investigate why LLMEmb (a frozen text table behind a linear adapter) trails the id baseline.
For each text table T (rows aligned with the run's item ids, as LLMEmb writes them):

- distinctness: mean cosine of each item to its nearest other item, share of items above 0.95;
- ridge regression T -> E (the run's item table), fitted on a random half of the items, R^2 on the
  other half, overall and for head / tail items (top 20% / bottom 80% by training count);
- the run's own user states scored against the best linear map of T (fitted on all items), on the
  VALIDATION split: what a linear adapter over T could reach if it matched E as well as possible.

Only the validation split is read; nothing here is tuned on test. Writes the measurement record
``results/measurements/diagnose_text_table-<dataset>.json`` (``--record`` for another file) and prints its table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement


def nearest_cosine(table: np.ndarray, chunk: int = 2048) -> np.ndarray:
    unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    best = []
    for start in range(0, len(unit), chunk):
        sims = unit[start:start + chunk] @ unit.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -1.0
        best.append(sims.max(1))
    return np.concatenate(best)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    x = np.hstack([x, np.ones((len(x), 1))])
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def predict(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((len(x), 1))]) @ weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished id-embedding run folder")
    parser.add_argument("--table", action="append", required=True, help="NAME=item_table.npy (repeatable)")
    parser.add_argument("--ridge", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", type=Path, default=None, help="the record to write (default "
                        f"{DEFAULT_FOLDER.as_posix()}/diagnose_text_table-<dataset>.json)")
    args = parser.parse_args()

    import torch

    from lucidrec.data.popularity import head_items
    from lucidrec.eval.evaluator import EvalConfig, evaluate
    from lucidrec.models.scoring import DotProductScorer
    from lucidrec.train.run import load_run
    from lucidrec.train.trainer import scorer_for

    torch.set_num_threads(1)
    model, _, split, _ = load_run(args.run)
    valid_config = EvalConfig(protocols=("full",), topk=0)
    with torch.no_grad():
        target = model.item_table().numpy().astype(np.float64)[1:]
        own = evaluate(scorer_for(model), split, "valid", valid_config).metrics
    n = len(target)
    tail = ~head_items(split.item_counts())[1:n + 1]  # the evaluator's head/tail groups
    order = np.random.default_rng(args.seed).permutation(n)
    fit, held = order[: n // 2], order[n // 2:]
    report = {"valid/ndcg@10 (run's own table)": own["valid/full/ndcg@10"],
              "valid/tail/ndcg@10 (run's own table)": own["valid/full/tail/ndcg@10"]}
    for spec in args.table:
        name, path = spec.split("=", 1)
        table = np.load(path).astype(np.float64)[1:n + 1]
        nearest = nearest_cosine(table)
        residual = ((predict(table[held], ridge(table[fit], target[fit], args.ridge)) - target[held]) ** 2).sum(1)
        spread = ((target[held] - target[fit].mean(0)) ** 2).sum(1)
        r2 = lambda mask: float(1 - residual[mask].sum() / spread[mask].sum())  # noqa: E731
        mapped = predict(table, ridge(table, target, args.ridge))
        mapped = torch.as_tensor(np.vstack([np.zeros((1, mapped.shape[1])), mapped]), dtype=torch.float32)
        with torch.no_grad():
            swapped = evaluate(DotProductScorer(mapped, lambda history, users: model.user_vectors(history, users)),
                               split, "valid", valid_config).metrics
        report[name] = {"nearest_cosine_mean": float(nearest.mean()), "share_nearest_cosine_over_0.95": float((nearest > 0.95).mean()),
                        "ridge_r2_heldout": r2(slice(None)), "ridge_r2_heldout_head": r2(~tail[held]),
                        "ridge_r2_heldout_tail": r2(tail[held]),
                        "valid/ndcg@10 (run's states, linear map of this table)": swapped["valid/full/ndcg@10"],
                        "valid/tail/ndcg@10 (same)": swapped["valid/full/tail/ndcg@10"]}
    keys = ("nearest_cosine_mean", "share_nearest_cosine_over_0.95", "ridge_r2_heldout", "ridge_r2_heldout_head",
            "ridge_r2_heldout_tail", "valid/ndcg@10 (run's states, linear map of this table)", "valid/tail/ndcg@10 (same)")
    names = [spec.split("=", 1)[0] for spec in args.table]
    table = {"title": "Text tables against the run's id item table",
             "columns": [{"name": "table"}, *({"name": key, "digits": 4} for key in keys)],
             "rows": [["(the run's own table)", *([None] * 5), report["valid/ndcg@10 (run's own table)"],
                       report["valid/tail/ndcg@10 (run's own table)"]],
                      *([name, *(report[name][key] for key in keys)] for name in names)],
             "note": f"Ridge regression (lambda {args.ridge}) from each text table to the id table, fitted on a random "
                     "half of the items, R² on the other half (head: the 20% most popular items); the NDCG@10 columns "
                     "score the run's own user states against the best linear map of the table, validation part."}
    dataset = load_run_dataset(args.run)
    name = f"diagnose_text_table-{dataset}"
    record = build_measurement(name, f"Text tables vs an id item table ({dataset})", [table], threads=1, extra=report)
    publish_measurement(record, args.record)


def load_run_dataset(run: Path) -> str:
    """The dataset name a run folder was trained on (its config.json)."""
    from lucidrec.files import read_json

    return read_json(Path(run) / "config.json")["data"]["dataset"]


if __name__ == "__main__":
    main()
