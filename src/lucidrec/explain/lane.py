"""The LANE explainer: each recommendation with the user's preferences and the attention weights the
score actually used (last position, averaged over the heads), plus the 4-step chain-of-thought text
of the ``lane_explanation`` prompt filled with those weights, written by the run's chat model.

``check`` runs the deletion test on the first item (:mod:`lucidrec.explain.lane_deletion`): it passes
when hiding the highest-weight preference lowers the item's score more than hiding any other one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.config import validate_config
from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.lane.alignment import PreferenceAlignment
from lucidrec.embeddings.lane.config import LaneConfig
from lucidrec.explain.base import EXPLAINERS, Explanation, ItemReasons, NotExplainableError
from lucidrec.explain.contributions import all_scores, top_items, user_state
from lucidrec.explain.lane_deletion import preference_deletion
from lucidrec.train.run import load_run

HISTORY_SHOWN = 20  # most recent titles in the chain-of-thought prompt
NO_PREFERENCES = "no preferences for this user: the backbone state alone"
VISITOR = "a history without a user (a visitor) has no stored preferences"
NO_STORED = "this user has no stored preferences (no training history)"


def _title(data, index: int) -> str:
    item_id = str(data.item_ids[index])
    return data.catalog.title(item_id) or f"item {item_id}"


def chain_of_thought(chat, history: list[str], phrases: list[str], weights: np.ndarray, target: str, *,
                     max_tokens: int) -> dict:
    """The 4-step prompt filled with the real weights, and the model's answer (or its error) of at most
    ``max_tokens`` new tokens; ``cut_at_cap`` says whether the answer reached that limit."""
    from lucidrec.lm.prompts import load_prompt

    order = np.argsort(-weights[: len(phrases)], kind="stable")
    listed = "\n".join(f"- {phrases[j]} (weight {weights[j]:.3f})" for j in order)
    prompt = load_prompt("lane_explanation").render(history="\n".join(f"- {t}" for t in history),
                                                    preferences=listed, target_item=target)
    response = chat.complete(prompt, max_tokens=max_tokens)
    out = {"endpoint": chat.endpoint, "prompt": prompt.messages[-1]["content"], "max_tokens": max_tokens}
    if not response.ok:
        return {**out, "error": f"{response.error_type}: {response.error}"}
    return {**out, "text": response.text, "cut_at_cap": response.cut_at_max_tokens}


@EXPLAINERS.register("lane")
class LaneExplainer:
    #: preferences named as reasons per item (highest weight first)
    reasons_per_item = 3

    def __init__(self, chat=None):
        self.chat = chat  # injected in tests; else the run's chat model (embedding.llm)

    def _chat(self, config: LaneConfig):
        if self.chat is None:
            from lucidrec.lm.chat import create_chat_model

            values = dict(config.llm or {"backend": "transformers"})
            if config.cache_dir is not None and "cache" not in values:
                values["cache"] = {"dir": str(config.cache_dir)}
            self.chat = create_chat_model(values)
        return self.chat

    def explain(self, run: Path, user: str, k: int = 10, *, holdout: bool = False, check: bool = False,
                loaded=None) -> Explanation:
        loaded = loaded or load_run(Path(run))
        data = loaded[1]
        index = int(data.user_index([user])[0])
        sequence = [int(i) for i in data.sequences[index]]
        history, target = (sequence[:-1], sequence[-1]) if holdout and len(sequence) > 1 else (sequence, None)
        return self._explain(loaded, history, index, k, run=str(run), target=target, check=check)

    def explain_history(self, loaded, history: list[int], k: int = 10, *, user: int | None = None,
                        narrate: bool = True) -> Explanation:
        return self._explain(loaded, [int(i) for i in history], user, k, narrate=narrate)

    def unavailable(self, model) -> str | None:
        if isinstance(model.state_hook, PreferenceAlignment):
            return None
        return "the model has no preference alignment to read"

    def _explain(self, loaded, history: list[int], index: int | None, k: int, *, run: str = "",
                 target: int | None = None, check: bool = False, narrate: bool = True) -> Explanation:
        model, data, _, run_config = loaded
        state = user_state(model, history, index)  # this pass sets the hook's weights
        hook = model.state_hook
        weights = hook.last_weights[0].double().numpy().copy()
        aligned = bool(hook.last_aligned[0])
        phrases = model.items.phrases.get(index, []) if aligned else []
        chosen = top_items(all_scores(model, state, history), k)
        if not len(chosen):
            raise NotExplainableError(f"{'this history' if index is None else f'user {data.user_ids[index]}'}: "
                                      "no item left to recommend")
        scores = (model.item_table() @ state).detach().double().numpy()
        order = np.argsort(-weights[: len(phrases)], kind="stable")[: self.reasons_per_item]
        reasons = [f"{phrases[j]} (weight {weights[j]:.3f})" for j in order] or [NO_PREFERENCES]
        items = [ItemReasons(str(data.item_ids[i]), rank + 1, float(scores[i]), _title(data, i), reasons)
                 for rank, i in enumerate(chosen)]
        user_id = None if index is None else str(data.user_ids[index])
        preferences = [{"phrase": phrases[j], "weight": float(weights[j])} for j in range(len(phrases))]
        titles = [_title(data, i) for i in history[-HISTORY_SHOWN:]]
        payload = {"user": user_id, "history_length": len(history), "recent_history": titles[-10:],
                   "preferences": preferences,
                   "weights": "attention of the last position over the preferences, averaged over the heads "
                              "(the ones that made these scores)",
                   "items": [{"rank": r.rank, "item_id": r.item_id, "title": r.title, "score": r.score}
                             for r in items]}
        if not phrases:
            payload["no_preferences"] = (VISITOR if index is None else NO_STORED) + "; " + NO_PREFERENCES
        if target is not None:
            payload["holdout"] = {"item_id": str(data.item_ids[target]),
                                  "in_top_k": bool(target in set(chosen.tolist()))}
        if phrases and narrate:
            config = validate_config(LaneConfig, {k_: v for k_, v in run_config.embedding.items() if k_ != "name"},
                                     "embedding 'lane'")
            payload["chain_of_thought"] = chain_of_thought(self._chat(config), titles, phrases, weights,
                                                           items[0].title, max_tokens=config.explanation_max_tokens)
        result_check = None
        if check:
            if not phrases:
                result_check = {"ok": False, "reason": "the user has no preferences to delete"}
            else:
                deletion = preference_deletion(model, Ragged.from_lists([history]), index, int(chosen[0]))
                others = [j for j in range(len(phrases)) if j != deletion.top]
                result_check = {"ok": all(deletion.top_beats(j) for j in others), "item_id": items[0].item_id,
                                "top_preference": phrases[deletion.top],
                                "drops": {phrases[j]: float(deletion.drops[j]) for j in range(len(phrases))}}
            payload["check"] = result_check
        return Explanation(run, user_id, items, payload, format_text(payload, items), result_check)

    def plot(self, explanation: Explanation, path: Path) -> Path:
        raise NotExplainableError("LANE explanations have no plot yet: use the text or --json output")


def format_text(payload: dict, items: list[ItemReasons]) -> str:
    who = "a visitor" if payload["user"] is None else f"user {payload['user']}"
    lines = [f"{who}: {payload['history_length']} items in the history"]
    if payload["recent_history"]:
        lines.append("  recent: " + "; ".join(payload["recent_history"][-5:]))
    if payload["preferences"]:
        lines.append("  preferences, with the attention weight the score used:")
        for entry in sorted(payload["preferences"], key=lambda e: -e["weight"]):
            lines.append(f"    {entry['weight']:.3f}  {entry['phrase']}")
    else:
        lines.append("  " + payload.get("no_preferences", NO_PREFERENCES))
    for item in items:
        lines.append(f"{item.rank:3d}. {item.title}  score {item.score:.3f}")
    cot = payload.get("chain_of_thought")
    if cot is not None:
        lines.append(f"why '{items[0].title}' ({cot['endpoint']}):")
        lines.append(cot.get("text") or f"  (no text: {cot.get('error')})")
        if cot.get("cut_at_cap"):
            lines.append(f"  [answer cut at its {cot['max_tokens']}-token limit: raise embedding.explanation_max_tokens "
                         "for the rest]")
    if "holdout" in payload:
        lines.append(f"held-out item {payload['holdout']['item_id']}: "
                     f"{'in' if payload['holdout']['in_top_k'] else 'not in'} the top {len(items)}")
    check = payload.get("check")
    if check is not None:
        detail = check.get("reason") or f"hiding '{check['top_preference']}' lowers the first item's score the most"
        lines.append(f"deletion check: {'PASS' if check['ok'] else 'FAIL'} ({detail})")
    return "\n".join(lines)
