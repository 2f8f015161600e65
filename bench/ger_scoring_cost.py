"""GER's attribute scoring cost: each scorer over a whole catalog, from the cache and again: a measurement record.

    python bench/ger_scoring_cost.py --cache-dir runs/ger_scoring_cache --threads 1 \
        [--datasets ml-1m amazon-beauty] [--scorers llm encoder] [--llm-config FILE.json] [--record FILE]

Scores every item of each dataset on the dataset's shipped attribute set (8 per item), once (resumable: the
answers go to ``--cache-dir`` as they arrive, so a killed pass continues where it stopped; an empty folder
measures the cold cost) and immediately again (every answer from the cache). ``llm`` is the local
SmolLM2-135M-Instruct single-pass slot scorer (``--llm-config`` for any chat config, e.g. an OpenAI-compatible
endpoint), ``encoder`` the MiniLM anchor scorer. No training: it can run beside a training job. Writes
``results/measurements/ger_scoring_cost.json`` (``--record`` for another file). The GER quality figures are the
grid ``bench/grids/ger.toml``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

SCORERS = ("llm", "encoder")


def scoring_cost(dataset: str, scorer: str, cache_dir: Path, llm: dict | None, batch_size: int,
                 data_dir: str | None) -> dict:
    """Score the whole catalog once (resumable, cached) and again (all cache hits): items/s and time."""
    from lucidrec.data.pipeline import DataConfig, load_split
    from lucidrec.embeddings.ger.attributes import resolve_attributes
    from lucidrec.embeddings.ger.config import GERConfig
    from lucidrec.methods.ger.state import item_texts, score_items

    config = GERConfig(scorer={"kind": scorer, "llm": llm if scorer == "llm" else None, "batch_size": batch_size},
                       cache_dir=str(cache_dir))
    data, _ = load_split(DataConfig(dataset=dataset, data_dir=data_dir))
    texts, missing = item_texts(data, config)
    attributes = resolve_attributes(None, dataset)
    started = time.perf_counter()
    _, first = score_items(config, attributes, texts, missing)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, again = score_items(config, attributes, texts, missing)
    return {"items": int(data.n_items), "without_text": int(missing.sum()), "attributes": len(attributes),
            "first": {**first, "wall_seconds": first_seconds},
            "rerun": {"cache_hits": again.get("cache_hits"), "wall_seconds": time.perf_counter() - started}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "amazon-beauty"])
    parser.add_argument("--scorers", nargs="+", default=list(SCORERS), choices=SCORERS)
    parser.add_argument("--cache-dir", type=Path, required=True,
                        help="response and vector cache (an empty folder measures the cold cost)")
    parser.add_argument("--llm-config", type=Path, default=None, help="JSON chat config for the llm scorer")
    parser.add_argument("--llm-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/ger_scoring_cost.json)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    llm = json.loads(args.llm_config.read_text()) if args.llm_config else None
    rows, costs = [], {}
    for dataset in args.datasets:
        for scorer in args.scorers:
            print(f"scoring {dataset} with the {scorer} scorer ...", flush=True)
            cost = scoring_cost(dataset, scorer, args.cache_dir, llm, args.llm_batch_size, args.data_dir)
            costs[f"{dataset}/{scorer}"] = cost
            first = cost["first"]
            rows.append([dataset, scorer, cost["items"], cost["without_text"], cost["attributes"],
                         first.get("items_per_second"), first["wall_seconds"], first.get("cache_hits"),
                         cost["rerun"]["cache_hits"], cost["rerun"]["wall_seconds"]])
    table = {"title": "Scoring a whole catalog",
             "columns": [{"name": "dataset"}, {"name": "scorer"}, {"name": "items"}, {"name": "without text"},
                         {"name": "attributes"}, {"name": "items/s (first pass)", "digits": 2},
                         {"name": "first pass s", "digits": 1}, {"name": "first pass cache hits"},
                         {"name": "re-run cache hits"}, {"name": "re-run s", "digits": 2}],
             "rows": rows,
             "note": "The first pass starts from the cache folder as it was (empty: the cold cost); the re-run follows "
                     "at once and should take every answer from the cache."}
    record = build_measurement("ger_scoring_cost", "GER attribute scoring cost", [table], threads=args.threads,
                               extra={"scorers": costs})
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
