"""Explanations of a trained GER run for one user: as a dict (JSON), as text, and as a plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lucidrec.explain.contributions import AttributeBreakdown, explain_user, faithfulness_check
from lucidrec.explain.recommend import item_title
from lucidrec.files import read_json
from lucidrec.train.run import load_run


@dataclass
class RunExplanation:
    explanation: AttributeBreakdown
    user_id: str
    item_ids: list[str]
    titles: list[str]
    history_titles: list[str]
    holdout: str | None  # the held-out test item (original id) when explaining the test history
    meta: dict
    check: dict | None = None


def explain_run(run: str | Path, user_id: str, k: int = 10, holdout: bool = False, check: bool = False,
                loaded=None) -> RunExplanation:
    """Top-k items for a user of a GER run, with exact attribute contributions.

    The history is the user's whole sequence, or with ``holdout`` the test-time history (all but the
    last item, which is then reported so you can see whether it was recommended). ``loaded`` takes
    a ``load_run`` result to avoid re-loading the run for several users.
    """
    model, data, _, _ = loaded or load_run(Path(run))
    user = int(data.user_index([user_id])[0])
    sequence = [int(i) for i in data.sequences[user]]
    history, target = (sequence[:-1], sequence[-1]) if holdout and len(sequence) > 1 else (sequence, None)
    explanation = explain_user(model, history, user, k)
    meta_path = Path(run) / "ger" / "meta.json"
    meta = read_json(meta_path) if meta_path.is_file() else {}
    result = RunExplanation(explanation, str(user_id), [str(data.item_ids[i]) for i in explanation.items],
                            [item_title(data, i) for i in explanation.items], [item_title(data, i) for i in history[-10:]],
                            str(data.item_ids[target]) if target is not None else None, meta)
    if target is not None:
        explanation.extra["holdout_index"] = target
        explanation.extra["holdout_in_top_k"] = bool(target in set(explanation.items.tolist()))
    if check:
        result.check = _with_dataset_ids(faithfulness_check(model, history, user, explanation.items), data)
    return result


def _with_dataset_ids(check: dict, data) -> dict:
    """The check as the rest of the output speaks: dataset item ids and 1-based ranks (not row indices)."""
    items = []
    for entry in check["items"]:
        entry = dict(entry)
        entry = {"item_id": str(data.item_ids[entry.pop("item")]), **entry}
        for key in ("rank_before", "rank_after", "rank_predicted"):
            entry[key] += 1
        items.append(entry)
    return {**check, "items": items}


def to_dict(result: RunExplanation) -> dict:
    e = result.explanation
    names = e.attributes
    payload = {
        "user": result.user_id, "history_length": len(e.history),
        "recent_history": result.history_titles, "attributes": names,
        "user_profile": dict(zip(names, map(float, e.user_profile))),
        "items": [{
            "rank": rank + 1, "item_id": result.item_ids[rank], "title": result.titles[rank],
            "score": float(e.scores[rank]), "guided": float(e.guided[rank]), "rest": float(e.rest[rank]),
            "guided_share": float(e.guided_share[rank]),
            "contributions": dict(zip(names, map(float, e.contributions[rank]))),
            "profile": dict(zip(names, map(float, e.item_profiles[rank]))),
        } for rank in range(len(e.items))],
        "definitions": {"score": "guided + rest (exact)", "guided": "sum of the attribute contributions",
                        "guided_share": "|guided| / (|guided| + |rest|)",
                        "profile": "the item's own attribute values (z-scores over the catalogue)",
                        "rank": "1 = the best-scored item; check ranks count the same way"},
    }
    if result.holdout is not None:
        payload["holdout"] = {"item_id": result.holdout, "in_top_k": e.extra.get("holdout_in_top_k")}
    if result.check is not None:
        payload["check"] = result.check
    return payload


def format_text(result: RunExplanation, top_attributes: int | None = None) -> str:
    e = result.explanation
    names = e.attributes
    shown = top_attributes or len(names)
    order = np.argsort(-np.abs(e.user_profile))
    lines = [f"user {result.user_id}: {len(e.history)} items in the history"]
    if result.history_titles:
        lines.append("  recent: " + "; ".join(result.history_titles[-5:]))
    lines.append("  profile: " + ", ".join(f"{names[k]} {e.user_profile[k]:+.2f}" for k in order))
    lines.append("  per item: attribute contribution to the score [the item's own value, z-score]")
    for rank in range(len(e.items)):
        c, own = e.contributions[rank], e.item_profiles[rank]
        parts = ", ".join(f"{names[k]} {c[k]:+.3f} [{own[k]:+.2f}]" for k in np.argsort(-np.abs(c))[:shown])
        lines.append(f"{rank + 1:3d}. {result.titles[rank]}  score {e.scores[rank]:.3f} = guided {e.guided[rank]:+.3f}"
                     f" + rest {e.rest[rank]:+.3f}  (guided share {100 * e.guided_share[rank]:.0f}%)")
        lines.append(f"     {parts}")
    if result.holdout is not None:
        lines.append(f"held-out item {result.holdout}: {'in' if e.extra.get('holdout_in_top_k') else 'not in'} the top {len(e.items)}")
    if result.check is not None:
        lines.append(f"faithfulness check: {'PASS' if result.check['ok'] else 'FAIL'} "
                     f"(max |drop - contribution| = {max(r['drop_error'] for r in result.check['items']):.2e})")
    return "\n".join(lines)
