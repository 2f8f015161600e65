"""``/explanations`` and ``/explain``: a served run's explanation through its ``Explainer`` (the protocol
of :mod:`lucidrec.explain`), in the API's response shape.

Every explainer answers ``explain_history(loaded, history, k, user=...)``: GER with exact per-attribute
contributions, LANE with the preference weights its attention used. Runs whose item embedding has no
registered explainer (and explainers that refuse a model, e.g. GER's ``reduced`` ablation) answer 404,
unless a RecInterpreter is attached: then the answer lists the scored items, and the interpreter's
reading of the state (:mod:`lucidrec.serve.readings`) is added when asked for. LANE's chain-of-thought
text is not written on the request path: it takes tens of seconds on a CPU; ``lucidrec explain``
writes it.
"""

from __future__ import annotations

import numpy as np

from lucidrec.errors import LucidrecError
from lucidrec.explain import Explanation as ExplainerAnswer
from lucidrec.explain import NotExplainableError
from lucidrec.serve.runs import ServedRun
from lucidrec.serve.schemas import Explanation, ItemExplanation, ScoredItem, Weight

GER_METHOD = "ger-attribute-contributions"
LANE_METHOD = "lane-preference-attention"
INTERPRETER_METHOD = "recinterpreter-state-reading"
TEXT_ATTRIBUTES = 3  # how many attributes (or preferences) each sentence names


class NoExplainer(LucidrecError, LookupError):
    def __init__(self, run: str, reason: str):
        super().__init__(f"no explainer for run {run!r}: {reason}")

    def __str__(self) -> str:
        return self.args[0]


def unavailable(run: ServedRun) -> str | None:
    """Why ``run`` cannot be explained, or None when it can."""
    if run.explainer is None:
        return f"method {run.method!r} has no explainer (explainable: runs trained with --embedding ger or lane)"
    return run.explainer.unavailable(run.model)


def explainable(run: ServedRun) -> bool:
    """Whether ``/explanations`` answers: the run has an explainer of its scores, or an interpreter of its state."""
    return unavailable(run) is None or run.interpreter is not None


def require_explainer(run: ServedRun) -> None:
    reason = unavailable(run)
    if reason is not None:
        raise NoExplainer(run.name, reason)


def explain(run: ServedRun, history: list[int], user: int | None, k: int) -> Explanation:
    """The top-k items after ``history`` (item indices) and why; ``user`` is the user's index (their
    per-user parameters are used) or None for a visitor."""
    require_explainer(run)
    try:
        with run.model_lock:  # the explainers read state the forward pass leaves on the model (LANE's weights)
            answer = run.explainer.explain_history(run.loaded, history, k, user=user, narrate=False)
    except NotExplainableError as exc:
        raise NoExplainer(run.name, str(exc)) from None
    return CONVERTERS.get(run.method, _from_reasons)(run, answer)


def scores_only(run: ServedRun, user_id: str | None, items: list[ScoredItem]) -> Explanation:
    """A run without an explainer of its scores but with an interpreter: the items, and the state to read."""
    return Explanation(run=run.name, user_id=user_id, method=INTERPRETER_METHOD, profile=[],
                       text=f"This run ({run.method}) has no explainer of its scores; the language model of its "
                            "RecInterpreter reads the state they came from (reading=true).",
                       items=[ItemExplanation(**item.model_dump(), contributions=[], rest=None, text="")
                              for item in items], notes=[])


def _from_ger(run: ServedRun, answer: ExplainerAnswer) -> Explanation:
    result = answer.detail.explanation  # the AttributeBreakdown the contributions were read from
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
    notes = [f"user part: {answer.payload['user_part']}"]
    return Explanation(run=run.name, user_id=answer.user_id, method=GER_METHOD, profile=profile, text=text,
                       items=items, notes=notes)


def _from_preferences(run: ServedRun, answer: ExplainerAnswer) -> Explanation:
    payload = answer.payload
    profile = sorted((Weight(name=p["phrase"], value=p["weight"]) for p in payload["preferences"]),
                     key=lambda w: -w.value)
    used = ", ".join(f"{w.name} ({w.value:.2f})" for w in profile[:TEXT_ATTRIBUTES])
    # LANE's weights belong to the user's state, not to an item: every item's score used the same ones.
    items = [ItemExplanation(item_id=item.item_id, title=item.title, rank=item.rank, score=item.score,
                             contributions=[], rest=None,
                             text=f"score {item.score:.3f} from a state that attended most to {used}" if profile
                             else f"score {item.score:.3f} from the backbone state alone (no preferences)")
             for item in answer.items]
    notes = [payload["no_preferences"]] if "no_preferences" in payload else []
    if profile:
        text = (f"From {payload['history_length']} items and this user's {len(profile)} preferences, the state "
                f"that scored every item attended most to {profile[0].name}. The bars are the attention weights of "
                f"the last position over the preferences, averaged over the heads: the weights that made these scores.")
    else:
        text = f"From {payload['history_length']} items, without preferences: {notes[0]}."
    return Explanation(run=run.name, user_id=answer.user_id, method=LANE_METHOD, profile=profile, text=text,
                       items=items, notes=notes)


def _from_reasons(run: ServedRun, answer: ExplainerAnswer) -> Explanation:
    """Any other explainer: its reasons in words (no bars)."""
    items = [ItemExplanation(item_id=item.item_id, title=item.title, rank=item.rank, score=item.score,
                             contributions=[], rest=None, text="; ".join(item.reasons))
             for item in answer.items]
    return Explanation(run=run.name, user_id=answer.user_id, method=run.method, profile=[], text=answer.text,
                       items=items, notes=[])


#: The API's shape of each explainer's answer, by the item embedding the explainer is registered for.
CONVERTERS = {"ger": _from_ger, "lane": _from_preferences}
