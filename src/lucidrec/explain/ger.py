"""The GER explainer: each recommended item's exact per-attribute contributions to its score."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.explain.base import EXPLAINERS, Explanation, ItemReasons
from lucidrec.explain.plot import plot_explanation
from lucidrec.explain.report import explain_run, format_text, to_dict


@EXPLAINERS.register("ger")
class GERExplainer:
    #: attributes named as reasons per item (largest |contribution| first)
    reasons_per_item = 3

    def explain(self, run: Path, user: str, k: int = 10, *, holdout: bool = False, check: bool = False,
                loaded=None) -> Explanation:
        result = explain_run(run, user, k=k, holdout=holdout, check=check, loaded=loaded)
        breakdown = result.explanation
        items = []
        for rank in range(len(breakdown.items)):
            contributions = breakdown.contributions[rank]
            strongest = np.argsort(-np.abs(contributions))[: self.reasons_per_item]
            reasons = [f"{breakdown.attributes[j]} {contributions[j]:+.3f}" for j in strongest]
            items.append(ItemReasons(result.item_ids[rank], rank + 1, float(breakdown.scores[rank]),
                                     result.titles[rank], reasons))
        return Explanation(str(run), str(user), items, to_dict(result), format_text(result), result.check, result)

    def plot(self, explanation: Explanation, path: Path) -> Path:
        return plot_explanation(explanation.detail.explanation, path, explanation.detail.titles,
                                title=f"user {explanation.user_id}")
