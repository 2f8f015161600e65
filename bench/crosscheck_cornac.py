"""Cross-check lucidrec's ranking metrics against Cornac's implementation, on the same ranked lists.

Run by hand (Cornac lives in its own virtual environment; it is never a dependency):

    python -m venv CORNAC_VENV && CORNAC_VENV/bin/pip install cornac
    python bench/crosscheck_cornac.py --cornac-python CORNAC_VENV/bin/python [--dataset ml-100k] [--record FILE]

Step 1 (this interpreter): full-ranking evaluation of the popularity and co-occurrence baselines,
saving each user's complete ranked candidate list (history masked, lucidrec's tie rule) and target.
Step 2 (Cornac's interpreter): Cornac's NDCG@K, Recall@K and MRR on exactly those lists.
Step 3: the largest per-user absolute difference, which must be ~0. Writes the measurement record
``results/measurements/crosscheck_cornac-<dataset>.json`` (``--record`` for another file) and prints its table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

CORNAC_SIDE = r"""
import json, sys
import numpy as np
from cornac.metrics import MRR, NDCG, Recall
data = np.load(sys.argv[1], allow_pickle=True)
lists, targets = data["lists"], data["targets"]
out = {}
for k in (5, 10, 20):
    ndcg, recall = NDCG(k=k), Recall(k=k)
    out[f"ndcg@{k}"] = [ndcg.compute(gt_pos=np.array([t]), pd_rank=l) for l, t in zip(lists, targets)]
    out[f"recall@{k}"] = [recall.compute(gt_pos=np.array([t]), pd_rank=l) for l, t in zip(lists, targets)]
mrr = MRR()
out["mrr"] = [mrr.compute(gt_pos=np.array([t]), pd_rank=l) for l, t in zip(lists, targets)]
print(json.dumps(out))
"""


def ranked_lists(model, split, n_items):
    """Every evaluated user's full candidate list, best first, with lucidrec's masking and tie rule."""
    lists = []
    for row in range(len(split.test)):
        batch = split.test.subset(np.array([row]))
        state = model.user_state(batch.history, batch.users)
        scores = model.score(state, 0, n_items + 1)[0].double().numpy()
        target = batch.targets[0]
        masked = set(batch.history[0].tolist()) - {target}
        candidates = [i for i in range(1, n_items + 1) if i not in masked]
        lists.append(np.array(sorted(candidates, key=lambda i: (-scores[i], i))))
    return lists


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cornac-python", required=True)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/crosscheck_cornac-<dataset>.json)")
    args = parser.parse_args()
    from lucidrec.data import load_dataset
    from lucidrec.data.prepare import prepare
    from lucidrec.data.split import leave_one_out
    from lucidrec.eval.evaluator import EvalConfig, evaluate
    from lucidrec.models.baselines import make_baseline

    split = leave_one_out(prepare(load_dataset(args.dataset)))
    rows = []
    for name in ("pop", "cooc"):
        model = make_baseline(name).fit(split)
        ours = evaluate(model, split, "test", EvalConfig())
        lists = ranked_lists(model, split, split.n_items)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lists.npz"
            holder = np.empty(len(lists), dtype=object)
            holder[:] = lists
            np.savez(path, lists=holder, targets=split.test.targets)
            done = subprocess.run([args.cornac_python, "-c", CORNAC_SIDE, str(path)], capture_output=True, text=True, check=True)
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
        for metric, values in theirs.items():
            mine = ours.per_user[f"full/{metric}"]
            diff = np.abs(np.asarray(values) - mine).max()
            rows.append([name, len(mine), metric, float(mine.mean()), float(np.mean(values)), float(diff)])
    table = {"title": f"lucidrec's metrics against Cornac's on the same ranked lists ({args.dataset})",
             "columns": [{"name": "model"}, {"name": "users"}, {"name": "metric"}, {"name": "lucidrec mean", "digits": 6},
                         {"name": "Cornac mean", "digits": 6}, {"name": "max per-user abs. difference"}],
             "rows": rows,
             "note": "Full ranking of the test part, history masked, lucidrec's tie rule; Cornac's NDCG, Recall and MRR "
                     "on exactly those lists."}
    name = f"crosscheck_cornac-{args.dataset}"
    record = build_measurement(name, f"Metrics cross-checked with Cornac ({args.dataset})", [table], threads=1)
    publish_measurement(record, args.record)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
