"""LANE's deletion test: does the preference the attention weighs most move the score most?

For one user and one item: the score with all the user's preferences, then with each preference
hidden in turn (the alignment's own mask, so the model is otherwise unchanged). A faithful weighting
has the highest-weight preference's removal lower the item's score more than a random one's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lucidrec.data.sequences import Ragged


@dataclass
class DeletionResult:
    weights: np.ndarray  # (P,) the last position's attention weights, averaged over heads (0 where no phrase)
    drops: np.ndarray  # (P,) score with all preferences minus score without preference j (NaN where no phrase)
    score: float

    @property
    def top(self) -> int:
        return int(np.argmax(self.weights))

    def top_beats(self, other: int) -> bool:
        return bool(self.drops[self.top] > self.drops[other])


def _score(model, history: Ragged, user: int, item: int) -> float:
    state = model.user_vectors(history, np.array([user]))[0]
    return float(state @ model.item_table()[item])


def preference_deletion(model, history: Ragged, user: int, item: int) -> DeletionResult:
    """The deletion test of ``item`` for ``user`` (index) with ``history`` (one row) on a LANE model."""
    hook = model.state_hook
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            score = _score(model, history, user, item)
            weights = hook.last_weights[0].numpy().copy()
            active = hook.mask[user].numpy().copy()
            drops = np.full(len(active), np.nan)
            for j in np.flatnonzero(active):
                with hook.without_preference(user, int(j)):
                    drops[j] = score - _score(model, history, user, item)
    finally:
        model.train(was_training)
    return DeletionResult(weights, drops, score)


def deletion_summary(model, histories: Ragged, users: np.ndarray, items: np.ndarray, seed: int = 0) -> dict:
    """The deletion test over many (user, recommended item) pairs: the rate at which hiding the
    highest-weight preference lowers the item's score more than hiding one other preference drawn at
    random, and the mean drops of both. Users with fewer than two preferences are counted and skipped."""
    rng = np.random.default_rng(seed)
    wins, top_drops, random_drops, skipped = [], [], [], 0
    for row, (user, item) in enumerate(zip(users, items)):
        result = preference_deletion(model, histories.take(np.array([row])), int(user), int(item))
        others = [j for j in np.flatnonzero(~np.isnan(result.drops)) if j != result.top]
        if not others:
            skipped += 1
            continue
        other = int(rng.choice(others))
        wins.append(result.top_beats(other))
        top_drops.append(result.drops[result.top])
        random_drops.append(result.drops[other])
    n = len(wins)
    return {"pairs": n, "skipped_fewer_than_two_preferences": skipped,
            "rate_top_beats_random": float(np.mean(wins)) if n else None,
            "mean_drop_top": float(np.mean(top_drops)) if n else None,
            "mean_drop_random": float(np.mean(random_drops)) if n else None}
