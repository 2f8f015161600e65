"""A user's attribute profile next to the recommended items' profiles and contributions (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.explain.contributions import AttributeBreakdown


#: One convention in every panel: blue = positive, red = negative (the bars and the diverging maps).
POSITIVE_COLOUR, NEGATIVE_COLOUR = "#2166ac", "#b2182b"
DIVERGING_MAP = "RdBu"  # low end red, high end blue


def _short(text: str, n: int = 38) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_explanation(explanation: AttributeBreakdown, path: str | Path, titles: list[str] | None = None,
                     title: str | None = None) -> Path:
    """Write :func:`explanation_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = explanation_figure(explanation, titles, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def explanation_figure(explanation: Explanation, titles: list[str] | None = None, title: str | None = None):
    """Three panels: the user guided part (bars), the items' z-scored attribute scores, and each
    attribute's contribution to each item's score (heatmaps, diverging colours)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = explanation.attributes
    m, k = len(names), len(explanation.items)
    labels = [_short(t) for t in (titles or [f"item {i}" for i in explanation.items])]
    fig, axes = plt.subplots(1, 3, figsize=(6 + 1.1 * m, 1.6 + 0.38 * max(k, m)),
                             gridspec_kw={"width_ratios": [1.0, 1.4, 1.4]})
    profile = explanation.user_profile
    axes[0].barh(np.arange(m), profile, color=[POSITIVE_COLOUR if v >= 0 else NEGATIVE_COLOUR for v in profile])
    axes[0].set_yticks(np.arange(m), names)
    axes[0].invert_yaxis()
    axes[0].axvline(0, color="black", linewidth=0.6)
    axes[0].set_title("user profile (guided part)\nblue = positive, red = negative")
    for ax, values, label in ((axes[1], explanation.item_profiles, "item profiles (z-scores)"),
                              (axes[2], explanation.contributions, "contribution to the score")):
        bound = float(np.max(np.abs(values))) or 1.0
        image = ax.imshow(values, cmap=DIVERGING_MAP, vmin=-bound, vmax=bound, aspect="auto")
        ax.set_xticks(np.arange(m), names, rotation=45, ha="right")
        shares = [f"guided {100 * share:.0f}%" for share in explanation.guided_share]
        ax.set_yticks(np.arange(k), labels if ax is axes[1] else shares)
        ax.set_title(label)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
