"""The GER explainer: each recommended item's exact per-attribute contributions to its score."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.explain.base import EXPLAINERS, Explanation, ItemReasons, NotExplainableError
from lucidrec.explain.contributions import explain_user, ger_items
from lucidrec.explain.plot import plot_explanation
from lucidrec.explain.recommend import item_title
from lucidrec.explain.report import RunExplanation, explain_run, format_text, to_dict

#: What stands in for a user's own part when a history has no user (a served visitor).
VISITOR_USER_PART = "no user part of its own: the recency-weighted attribute profile of the history"


@EXPLAINERS.register("ger")
class GERExplainer:
    #: attributes named as reasons per item (largest |contribution| first)
    reasons_per_item = 3

    def explain(self, run: Path, user: str, k: int = 10, *, holdout: bool = False, check: bool = False,
                loaded=None) -> Explanation:
        result = explain_run(run, user, k=k, holdout=holdout, check=check, loaded=loaded)
        return self._explanation(str(run), result, to_dict(result))

    def explain_history(self, loaded, history: list[int], k: int = 10, *, user: int | None = None,
                        narrate: bool = True) -> Explanation:
        model, data = loaded[0], loaded[1]
        breakdown = explain_user(model, history, user, k)
        user_id = None if user is None else str(data.user_ids[user])
        result = RunExplanation(breakdown, user_id, [str(data.item_ids[i]) for i in breakdown.items],
                                [item_title(data, i) for i in breakdown.items],
                                [item_title(data, i) for i in history[-10:]], None, {})
        payload = to_dict(result)
        payload["user_part"] = "the user's own (prior and learned offset)" if user is not None else VISITOR_USER_PART
        return self._explanation("", result, payload)

    def unavailable(self, model) -> str | None:
        try:
            ger_items(model)
        except NotExplainableError as exc:
            return str(exc)
        return None

    def _explanation(self, run: str, result: RunExplanation, payload: dict) -> Explanation:
        breakdown = result.explanation
        items = []
        for rank in range(len(breakdown.items)):
            contributions = breakdown.contributions[rank]
            strongest = np.argsort(-np.abs(contributions))[: self.reasons_per_item]
            reasons = [f"{breakdown.attributes[j]} {contributions[j]:+.3f}" for j in strongest]
            items.append(ItemReasons(result.item_ids[rank], rank + 1, float(breakdown.scores[rank]),
                                     result.titles[rank], reasons))
        return Explanation(run, result.user_id, items, payload, format_text(result), result.check, result)

    def plot(self, explanation: Explanation, path: Path) -> Path:
        return plot_explanation(explanation.detail.explanation, path, explanation.detail.titles,
                                title=f"user {explanation.user_id}")
