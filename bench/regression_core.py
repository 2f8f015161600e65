"""The core regression set: short, seeded runs whose every metric must stay identical across refactors.

Two datasets (ml-100k, amazon-scientific) x four commands, each through the CLI in a fresh cache:
an id SASRec, ``--embedding llmemb`` (the whole chain: SCFT, item table, collaborative SASRec, RAT),
``--embedding ger`` (encoder scorer, auto-trained base run) and ``lucidrec explain --check`` on the
GER run. A few epochs each, one torch thread: the set runs in a few minutes on one core.

    python bench/regression_core.py                 # run and compare with bench/regression_core.json
    python bench/regression_core.py --write         # run and (re)write the record
    python bench/regression_core.py --keep DIR      # keep the run folders in DIR
    (--data-dir DIR or $LUCIDREC_DATA_DIR: where the two datasets are)

Exit status 1 and a list of every differing value when a metric moved. Values are compared exactly
(floats included): a refactor that changes no computation changes no bit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lucidrec.settings import default_data_dir

RECORD = Path(__file__).with_name("regression_core.json")
DATASETS = {"ml-100k": "1", "amazon-scientific": "A1AXCV2WYDA4PD"}  # dataset -> user explained
COMMON = ["--set", "train.epochs=2", "--set", "train.seed=1", "--set", "train.threads=1", "--set", "train.progress=false",
          "--set", "train.batch_size=256", "--set", "model.hidden=32", "--set", "model.max_len=20",
          "--set", "model.dropout=0.5"]
EMBEDDINGS = {
    "id": [],
    "llmemb": ["--set", "embedding.tuning.max_steps=3", "--set", "embedding.prompts.max_seq_length=32"],
    "ger": [],
}


def _lucidrec(args: list[str], env: dict) -> str:
    done = subprocess.run([sys.executable, "-m", "lucidrec", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lucidrec {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _metrics(run: Path) -> dict:
    stored = json.loads((run / "metrics.json").read_text())
    values = {k: v for k, v in stored.items() if "/" in k}
    values["best_epoch"] = stored["best_epoch"]
    return values


def _explanation(payload: dict) -> dict:
    """What an explanation computes (not how it is worded): items, scores, contributions, the check."""
    return {
        "items": [{"item_id": item["item_id"], "score": item["score"], "rest": item["rest"],
                   "contributions": item["contributions"]} for item in payload["items"]],
        "user_profile": payload["user_profile"],
        "check_ok": payload["check"]["ok"],
        "check": [{"attribute": entry["attribute"], "contribution": entry["contribution"]}
                  for entry in payload["check"]["items"]],
    }


def run_set(work: Path, data_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LUCIDREC_CACHE_DIR": str(work / "cache"), "LUCIDREC_DATA_DIR": str(data_dir),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    record: dict = {}
    for dataset, user in DATASETS.items():
        for embedding, extra in EMBEDDINGS.items():
            out = work / "runs" / dataset / embedding
            started = time.perf_counter()
            _lucidrec(["train", "--dataset", dataset, "--model", "sasrec", "--embedding", embedding, "--out", str(out),
                       *COMMON, *extra], env)
            record[f"{dataset}/{embedding}"] = _metrics(out)
            print(f"{dataset} {embedding}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        payload = json.loads(_lucidrec(["explain", "--run", str(work / "runs" / dataset / "ger"), "--user", user,
                                        "--k", "5", "--json", "--check"], env))
        record[f"{dataset}/explain"] = _explanation(payload)
    return record


def differences(expected, actual, where: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{where}/{key}: missing (recorded {expected[key]!r})")
            elif key not in expected:
                out.append(f"{where}/{key}: not in the record (now {actual[key]!r})")
            else:
                out.extend(differences(expected[key], actual[key], f"{where}/{key}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (a, b) in enumerate(zip(expected, actual)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: recorded {expected!r}, now {actual!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the record instead of comparing with it")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--data-dir", type=Path, help="where ml-100k and amazon-scientific are (default: "
                        "$LUCIDREC_DATA_DIR, else lucidrec's default data directory)")
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    started = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        record = run_set(args.keep, data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="lucidrec-regression-") as folder:
            record = run_set(Path(folder), data_dir)
    print(f"regression set: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.write:
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RECORD}")
        return 0
    found = differences(json.loads(RECORD.read_text()), record)
    for line in found:
        print(line)
    print("regression set: " + ("MATCH" if not found else f"{len(found)} value(s) differ"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
