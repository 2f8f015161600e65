"""Descriptive statistics of a dataset, as stored or after preparation."""

from __future__ import annotations

import numpy as np

from lucidrec.data.dataset import Dataset


def dataset_stats(dataset: Dataset) -> dict:
    frame = dataset.interactions
    lengths = frame.groupby("user_id", sort=False).size().to_numpy()
    items = frame["item_id"].unique()
    with_text = dataset.items.has_text(items)
    n_users, n_items = len(lengths), len(items)
    return {
        "name": dataset.name,
        "users": int(n_users),
        "items": int(n_items),
        "interactions": int(len(frame)),
        "avg_history_length": float(lengths.mean()) if n_users else 0.0,
        "median_history_length": float(np.median(lengths)) if n_users else 0.0,
        "min_history_length": int(lengths.min()) if n_users else 0,
        "max_history_length": int(lengths.max()) if n_users else 0,
        "density": float(len(frame) / (n_users * n_items)) if n_users and n_items else 0.0,
        "items_with_text": int(with_text.sum()),
        "share_items_with_text": float(with_text.mean()) if n_items else 0.0,
        "catalog_items": int(len(dataset.items)),
        "text_fields": dataset.items.fields,
        "duplicate_pairs": int(frame.duplicated(["user_id", "item_id"]).sum()),
        "share_with_timestamp": float(frame["timestamp"].notna().mean()) if len(frame) else 0.0,
        "share_with_rating": float(frame["rating"].notna().mean()) if len(frame) else 0.0,
        "users_with_one_interaction": int((lengths == 1).sum()),
        "data_hash": dataset.content_hash(),
        "notes": list(dataset.notes),
    }
