"""From records to rows: mean ± std over seeds, the ratio to a baseline row, paired tests against it.

A row is one (dataset, label) over its seeds. The paired test (``lucidrec.eval.stats.paired_test``)
compares per-user metrics averaged over the seeds both rows have (a training-free baseline, which has
no seed, pairs with every seed), on the same users in the same order; rows evaluated on other users
(another data hash or split) get no test rather than a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lucidrec.eval.metrics import per_user_metrics
from lucidrec.eval.stats import mean_std, paired_test
from lucidrec.experiments.records import Record

#: Per-group columns, in this order, for the groups present in the records.
GROUP_ORDER = ("overall", "tail", "cold", "head", "new")
PROTOCOL = "full"


@dataclass
class Row:
    dataset: str
    label: str
    records: list[Record]  # sorted by seed
    stats: dict[str, dict] = field(default_factory=dict)  # metric key -> {mean, std, n}
    timings: dict[str, dict] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)  # group -> mean / baseline mean (the report's metric)
    test: dict | None = None  # paired test against the baseline row (overall)
    test_note: str = ""

    @property
    def model(self) -> str:
        return self.records[0].cell["model"]

    @property
    def seeds(self) -> list:
        return [r.cell["seed"] for r in self.records]


def metric_key(group: str, metric: str, part: str = "test") -> str:
    return f"{part}/{PROTOCOL}/{metric}" if group == "overall" else f"{part}/{PROTOCOL}/{group}/{metric}"


def groups_present(rows: list[Row], metric: str) -> list[str]:
    return [g for g in GROUP_ORDER if any(metric_key(g, metric) in r.stats for r in rows)]


def build_rows(records: list[Record], warnings: list[str]) -> list[Row]:
    """One row per (dataset, label), rows in a fixed order (dataset, then label); a second record of the same
    cell (the same results given twice, or two folders holding it) is left out with a warning."""
    cells: dict[tuple, Record] = {}
    for record in sorted(records, key=lambda r: str(r.path)):
        cell = record.cell
        key = (cell["dataset"], cell["label"], cell["seed"])
        if key in cells:
            warnings.append(f"{record.path}: a second record of {cell['dataset']} {cell['label']} seed {cell['seed']} "
                            f"(first: {cells[key].path}); left out")
            continue
        cells[key] = record
    rows: dict[tuple, Row] = {}
    for (dataset, label, _seed), record in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], _seed_order(kv[0][2]))):
        rows.setdefault((dataset, label), Row(dataset, label, [])).records.append(record)
    for row in rows.values():
        row.stats = mean_std([r.data["metrics"] for r in row.records])
        row.timings = mean_std([{k: v for k, v in r.data["timings"].items() if isinstance(v, (int, float))}
                                for r in row.records])
    return list(rows.values())


def _seed_order(seed) -> int:
    return -1 if seed is None else int(seed)


def per_user_mean(row: Row, seeds: list | None, metric: str) -> np.ndarray:
    """A row's per-user ``metric`` averaged over ``seeds`` (all its records when None)."""
    chosen = [r for r in row.records if seeds is None or r.cell["seed"] in seeds]
    values = [per_user_metrics(r.ranks(PROTOCOL), _ks(metric))[metric] for r in chosen]
    return np.mean(values, axis=0)


def _ks(metric: str) -> tuple[int, ...]:
    return (int(metric.split("@")[1]),) if "@" in metric else ()


MODEL_PLACEHOLDER = "{model}"


def baseline_label(baseline: str, model: str) -> str:
    """The baseline row of a row of ``model``: ``"{model}/id"`` names each backbone's own id row."""
    return baseline.replace(MODEL_PLACEHOLDER, model)


def check_baseline(baseline: str, labels: list[str], models: list[str]) -> bool:
    return any(baseline_label(baseline, model) in labels for model in models)


def compare_to_baseline(rows: list[Row], baseline: str | None, metric: str) -> None:
    """Fill each row's ratio (per group) and paired test against the baseline row of its dataset (and, with
    ``{model}`` in the baseline's name, of its model)."""
    if baseline is None:
        return
    by_label = {(r.dataset, r.label): r for r in rows}
    for row in rows:
        base = by_label.get((row.dataset, baseline_label(baseline, row.model)))
        if base is None:
            row.test_note = f"no {baseline_label(baseline, row.model)} row"
            continue
        for group in GROUP_ORDER:
            key = metric_key(group, metric)
            if key in row.stats and key in base.stats and base.stats[key]["mean"]:
                row.ratio[group] = row.stats[key]["mean"] / base.stats[key]["mean"]
        if row is base:
            continue
        row.test, row.test_note = paired(base, row, metric)


def paired(base: Row, row: Row, metric: str) -> tuple[dict | None, str]:
    """The paired test of ``row`` against ``base`` on the users both were evaluated on, seeds matched."""
    digests = {r.data["per_user"]["users"] for r in base.records + row.records}
    hashes = {r.data["data_hash"] for r in base.records + row.records}
    if len(digests) > 1 or len(hashes) > 1:
        return None, "other users or data than the baseline: no paired test"
    base_seeds, row_seeds = set(base.seeds), set(row.seeds)
    if base_seeds == {None}:
        seeds_base, seeds_row = None, None  # a deterministic baseline pairs with every seed
    elif row_seeds == {None}:
        seeds_base, seeds_row = None, None
    else:
        common = sorted(base_seeds & row_seeds)
        if not common:
            return None, "no seed in common with the baseline: no paired test"
        seeds_base = seeds_row = common
    result = paired_test(per_user_mean(base, seeds_base, metric), per_user_mean(row, seeds_row, metric))
    seeds = "all seeds" if seeds_row is None else f"seeds {', '.join(map(str, seeds_row))}"
    return result, f"per-user {metric} averaged over {seeds}"
