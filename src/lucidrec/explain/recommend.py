"""A run's top-k items for one user, with titles: what any trained run can show, explainable or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.explain.base import ItemReasons
from lucidrec.explain.contributions import all_scores, top_items, user_state
from lucidrec.train.run import load_run


def recommend(run: Path, user_id: str, k: int = 10, loaded=None) -> list[ItemReasons]:
    """The top-k items for ``user_id`` (a dataset user id) from the user's whole history, history
    items masked as in full-ranking evaluation; ``reasons`` stay empty (no explainer involved)."""
    model, data, _, _ = loaded or load_run(Path(run))
    user = int(data.user_index([user_id])[0])
    history = [int(i) for i in data.sequences[user]]
    scores = all_scores(model, user_state(model, history, user), history)
    items = top_items(scores, k)
    return [ItemReasons(str(data.item_ids[i]), rank + 1, float(scores[i]), item_title(data, int(i)), [])
            for rank, i in enumerate(np.asarray(items))]


def item_title(data, index: int) -> str:
    item_id = str(data.item_ids[index])
    return data.catalog.title(item_id) or f"item {item_id}"
