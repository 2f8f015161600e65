"""The explainer behind ``/explanations``: the one function that maps a served run to its explanation.

Today the GER runs are explainable (exact per-attribute contributions, ``lucidrec.explain``); other
runs answer "no explainer". When explainers are registered per method, only :func:`explain` changes.
"""

from __future__ import annotations

import numpy as np

from lucidrec.errors import LucidrecError
from lucidrec.serve.runs import ServedRun
from lucidrec.serve.schemas import Explanation, ItemExplanation, Weight

GER_METHOD = "ger-attribute-contributions"
TEXT_ATTRIBUTES = 3  # how many attributes each sentence names


class NoExplainer(LucidrecError, LookupError):
    def __init__(self, run: str, reason: str):
        super().__init__(f"no explainer for run {run!r}: {reason}")

    def __str__(self) -> str:
        return self.args[0]


def explainable(run: ServedRun) -> bool:
    return run.method == "ger" and run.model is not None and getattr(run.model.items, "mode", None) != "reduced"


def explain(run: ServedRun, history: list[int], user: int | None, k: int) -> Explanation:
    """The top-k items after ``history`` (item indices) and why; ``user`` is the user's index (its
    per-user parameters are used) or None for an ad-hoc history."""
    from lucidrec.explain.contributions import NotExplainableError, explain_user

    if not explainable(run):
        raise NoExplainer(run.name, f"method {run.method!r} has no explainer "
                                    "(explainable: runs trained with --embedding ger)")
    try:
        result = explain_user(run.model, history, user, k)
    except NotExplainableError as exc:
        raise NoExplainer(run.name, str(exc)) from None
    names = list(result.attributes)
    items = []
    for rank, index in enumerate(result.items):
        contributions = [Weight(name=n, value=float(v)) for n, v in zip(names, result.contributions[rank])]
        strongest = sorted(contributions, key=lambda w: -abs(w.value))[:TEXT_ATTRIBUTES]
        text = (f"score {result.scores[rank]:.3f} = attributes {result.guided[rank]:+.3f} "
                f"({', '.join(f'{w.name} {w.value:+.3f}' for w in strongest)}) + rest {result.rest[rank]:+.3f}; "
                f"the attributes carry {100 * result.guided_share[rank]:.0f}% of it")
        items.append(ItemExplanation(item_id=run.item_id(int(index)), title=run.title(int(index)), rank=rank + 1,
                                     score=float(result.scores[rank]), contributions=contributions,
                                     rest=float(result.rest[rank]), text=text))
    order = np.argsort(-np.abs(result.user_profile))
    profile = [Weight(name=names[i], value=float(result.user_profile[i])) for i in order]
    liked = [w.name for w in profile if w.value > 0][:TEXT_ATTRIBUTES]
    disliked = [w.name for w in profile if w.value < 0][:TEXT_ATTRIBUTES]
    away = f" and away from {', '.join(disliked)}" if disliked else ""
    text = (f"From {len(result.history)} items, this user's profile leans towards {', '.join(liked) or 'no attribute'}"
            f"{away}. Each score is the sum of the attribute contributions shown plus the rest, exactly.")
    user_id = None if user is None else str(run.data.user_ids[user])
    return Explanation(run=run.name, user_id=user_id, method=GER_METHOD, profile=profile, text=text, items=items)
