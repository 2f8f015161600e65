"""Exact per-attribute contributions to GER scores, and a check that they are faithful.

With a GER model, ``score(u, i) = <state_u, e_i>`` and the first ``m`` coordinates of both vectors
are the attribute block (``state_u[:m]`` = the user guided part, ``e_i[:m]`` = alpha * s * g_i), so

    score(u, i) = sum_k state_uk * e_ik  (attribute k's contribution c_ik)  +  <state_u[m:], e_i[m:]>

The contributions are read off the same tensors the evaluator scores with; nothing is
approximated. :func:`faithfulness_check` verifies it by intervention: it zeroes the item's top
attribute in the model's own item table, re-runs the model, and checks that the item's score
fell by exactly its contribution, that no other score moved, and that the new ranking equals the
one predicted from the contributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.ger import GERItemEmbedding
from lucidrec.explain.base import NotExplainableError


def ger_items(model) -> GERItemEmbedding:
    items = model.items
    if not isinstance(items, GERItemEmbedding):
        raise NotExplainableError(f"the model's item embedding ({type(items).__name__}) has no attribute block: "
                                  "explanations need a run trained with --embedding ger")
    if not items.explainable:
        raise NotExplainableError("this GER run is the 'reduced' ablation: it has no guided block to explain")
    return items


@dataclass
class AttributeBreakdown:
    user: int
    history: list[int]
    attributes: list[str]
    user_profile: np.ndarray  # (m,) the user guided part as it enters the score
    items: np.ndarray  # (k,) item indices, best first
    scores: np.ndarray  # (k,)
    contributions: np.ndarray  # (k, m)
    rest: np.ndarray  # (k,) the score carried by the non-attribute block
    item_profiles: np.ndarray  # (k, m) the items' z-scored attribute scores
    extra: dict = field(default_factory=dict)

    @property
    def guided(self) -> np.ndarray:
        return self.contributions.sum(axis=1)

    @property
    def guided_share(self) -> np.ndarray:
        """|guided| / (|guided| + |rest|): how much of the score's magnitude the attribute block carries."""
        total = np.abs(self.guided) + np.abs(self.rest)
        return np.divide(np.abs(self.guided), total, out=np.zeros_like(total), where=total > 0)


@torch.no_grad()
def user_state(model, history, user: int | None) -> torch.Tensor:
    """(d,) the state that scores items for one user (after the per-user hook), as the evaluator computes it."""
    model.eval()
    users = None if user is None else np.array([user])
    return model.user_vectors(Ragged.from_lists([list(history)]), users)[0]


@torch.no_grad()
def all_scores(model, state: torch.Tensor, history, mask: bool = True) -> torch.Tensor:
    """Scores of every item (with ``mask``: index 0 and history items at -inf, as in full-ranking evaluation)."""
    scores = model.item_table() @ state
    if not mask:
        return scores
    scores[0] = -torch.inf
    if len(history):
        scores[torch.as_tensor(np.asarray(history, dtype=np.int64))] = -torch.inf
    return scores


def top_items(scores: torch.Tensor, k: int) -> np.ndarray:
    # Sort by score, then by index (the evaluator's tie rule), without torch.topk's unspecified tie order.
    values = scores.double().numpy()
    order = np.lexsort((np.arange(len(values)), -values))
    return order[: min(k, int(np.isfinite(values).sum()))]


@torch.no_grad()
def contributions(model, state: torch.Tensor, items) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores (k,), per-attribute contributions (k, m), rest (k,)) for the given item indices."""
    emb = ger_items(model)
    items = torch.as_tensor(np.asarray(items, dtype=np.int64))
    table = model.item_table()[items]
    m = emb.m
    contrib = table[:, :m] * state[None, :m]
    rest = table[:, m:] @ state[m:]
    scores = table @ state
    return scores.double().numpy(), contrib.double().numpy(), rest.double().numpy()


def explain_user(model, history, user: int | None, k: int = 10) -> AttributeBreakdown:
    emb = ger_items(model)
    state = user_state(model, history, user)
    chosen = top_items(all_scores(model, state, history), k)
    scores, contrib, rest = contributions(model, state, chosen)
    return AttributeBreakdown(user if user is not None else -1, list(map(int, history)), list(emb.attribute_names),
                              state[: emb.m].double().numpy(), chosen, scores, contrib, rest,
                              emb.attribute_profiles(chosen).double().numpy())


def _rank_of(scores: np.ndarray, item: int) -> int:
    """Items scoring strictly higher, plus ties with a smaller index (the evaluator's rule)."""
    target = scores[item]
    return int((scores > target).sum() + ((scores == target) & (np.arange(len(scores)) < item)).sum())


@torch.no_grad()
def faithfulness_check(model, history, user: int | None, items, atol: float = 1e-4) -> dict:
    """Zero each item's top attribute (largest |contribution|) in the item table and re-run the model.

    Passes when, for every item: its score drops by exactly its contribution (``atol``), every other
    item's score and the user state are unchanged, and its new rank equals the rank predicted by
    subtracting the contribution from the original scores.
    """
    emb = ger_items(model)
    state = user_state(model, history, user)
    before = all_scores(model, state, history).double().numpy()
    raw_before = all_scores(model, state, history, mask=False).double().numpy()
    results = []
    for item in np.asarray(items, dtype=np.int64):
        _, contrib, _ = contributions(model, state, [item])
        top = int(np.argmax(np.abs(contrib[0])))
        expected = float(contrib[0, top])
        with emb.attribute_set_to(int(item), top, 0.0):  # the intervention, in the model's own table
            new_state = user_state(model, history, user)
            after = all_scores(model, new_state, history).double().numpy()
            raw_after = all_scores(model, new_state, history, mask=False).double().numpy()
        predicted = before.copy()
        predicted[item] -= expected
        others = np.ones(len(before), bool)
        others[item] = False
        finite = np.isfinite(before)
        drop = float(raw_before[item] - raw_after[item])
        entry = {
            "item": int(item), "attribute": emb.attribute_names[top], "contribution": expected, "score_drop": drop,
            "drop_error": abs(drop - expected),
            "state_unchanged": bool(torch.allclose(new_state, state, atol=atol)),
            "others_unchanged": bool(np.allclose(after[others & finite], before[others & finite], atol=atol)),
            "rank_before": _rank_of(before, item), "rank_after": _rank_of(after, item),
            "rank_predicted": _rank_of(predicted, item),
        }
        entry["ok"] = bool(entry["drop_error"] <= atol and entry["state_unchanged"] and entry["others_unchanged"]
                           and entry["rank_after"] == entry["rank_predicted"])
        results.append(entry)
    return {"ok": all(r["ok"] for r in results), "atol": atol, "items": results}
