"""The report's PNG plots (matplotlib, the ``plot`` extra): metric by group, validation curves, cost vs quality.

Files carry no software stamp or date, so the same records give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.experiments.aggregate import Row, groups_present, metric_key

PNG_METADATA = {"Software": None}


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'lucidrec[plot]' (or pass --no-plots)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def dataset_plots(out: Path, dataset: str, rows: list[Row], metric: str) -> list[str]:
    """Write the dataset's plots into ``out``; return their file names (in the order the report shows them)."""
    plt = _pyplot()
    names = []
    for name, draw in ((f"{dataset}_groups.png", _groups), (f"{dataset}_curves.png", _curves), (f"{dataset}_cost.png", _cost)):
        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        if draw(axes, rows, metric):
            axes.set_title(f"{dataset}: {axes.get_title()}")
            figure.tight_layout()
            figure.savefig(Path(out) / name, metadata=PNG_METADATA)
            names.append(name)
        plt.close(figure)
    return names


def _groups(axes, rows: list[Row], metric: str) -> bool:
    groups = groups_present(rows, metric)
    if not groups:
        return False
    width = 0.8 / len(rows)
    positions = np.arange(len(groups))
    for i, row in enumerate(rows):
        stats = [row.stats.get(metric_key(g, metric)) for g in groups]
        means = [s["mean"] if s else 0.0 for s in stats]
        stds = [s["std"] if s else 0.0 for s in stats]
        axes.bar(positions + i * width - 0.4 + width / 2, means, width, yerr=stds, label=row.label, capsize=2)
    axes.set_xticks(positions, groups)
    axes.set_ylabel(f"test {metric}")
    axes.set_title(f"{metric} by user group (mean ± std over seeds)")
    axes.legend(fontsize="small")
    return True


def _curves(axes, rows: list[Row], metric: str) -> bool:
    drawn = False
    colors = iter(f"C{i}" for i in range(1000))
    for row in rows:
        color = next(colors)
        for i, record in enumerate(row.records):
            curve = [(e["epoch"], e["valid_ndcg10"]) for e in record.data.get("curve", []) if e.get("valid_ndcg10") is not None]
            if not curve:
                continue
            epochs, values = zip(*curve)
            axes.plot(epochs, values, color=color, linewidth=1, label=row.label if i == 0 else None)
            drawn = True
    if drawn:
        axes.set_xlabel("epoch")
        axes.set_ylabel("validation NDCG@10")
        axes.set_title("validation curves (one line per seed)")
        axes.legend(fontsize="small")
    return drawn


def _cost(axes, rows: list[Row], metric: str) -> bool:
    points = [(row, row.timings.get("cell_seconds"), row.stats.get(metric_key("overall", metric))) for row in rows]
    points = [(row, t, s) for row, t, s in points if t and s]
    if not points:
        return False
    for i, (row, seconds, stat) in enumerate(points):
        axes.errorbar(seconds["mean"], stat["mean"], yerr=stat["std"], fmt="o", color=f"C{i}", label=row.label, capsize=2)
    axes.set_xscale("log")
    axes.set_xlabel("wall seconds per cell (training + evaluation)")
    axes.set_ylabel(f"test {metric}")
    axes.set_title("cost vs quality")
    axes.legend(fontsize="small")
    return True
