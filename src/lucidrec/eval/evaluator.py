"""Full-ranking (default) and sampled evaluation of a :class:`~lucidrec.eval.scoring.Scorer`.

Full ranking: every catalog item is a candidate; the user's history items are removed from the
candidates, the target never is (even when the user had it before). The target's rank counts the
items scoring strictly higher, plus tied items with a smaller index: a fixed tie rule, so ranks do
not depend on batch size or chunking. Users stream in batches (users of similar history length together,
so sequence models, which cut a batch to its longest history, compute little padding) and the catalog in
chunks, with a running top-k merge, so memory is ``batch_size x item_chunk`` whatever the catalog size.

Full ranking without the history mask (an extra, labelled ``full_unmasked``): history items stay
candidates. RecBole's full-sort evaluation of sequential models works this way (its loader builds the
history to remove only for non-sequential models), so its numbers compare with this label, not "full".

Sampled (an extra, always labelled ``sampled<N>``): the target against N items drawn uniformly from
those the user never interacted with, with a per-user seed so the draw is independent of batching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from lucidrec.config import ConfigError
from lucidrec.data.popularity import head_items, length_bins, popularity_bins
from lucidrec.data.split import EvalSet, Split
from lucidrec.eval.metrics import per_user_metrics
from lucidrec.eval.scoring import Scorer


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ks: tuple[int, ...] = (5, 10, 20)
    protocols: tuple[Literal["full", "sampled", "full_unmasked"], ...] = ("full",)
    n_negatives: int = Field(100, ge=1, description="candidates drawn per user for the sampled protocol")
    seed: int = 0
    batch_size: int = Field(1024, ge=1, description="users scored at once")
    item_chunk: int = Field(65536, ge=1, description="catalog items scored at once")
    head_share: float = Field(0.2, gt=0, lt=1, description="share of items (by training count) called head")
    cold_max_count: int = Field(3, ge=0, description="the cold group: targets with at most this many training "
                                "interactions (LLMEmb's long tail: fewer than 4)")
    popularity_bins: int = Field(5, ge=1)
    length_bins: int = Field(4, ge=1)
    topk: int = Field(0, ge=0, description="also return each user's top-k list (full protocol)")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]  # "<protocol>/<metric>" -> values aligned with ``users``
    users: np.ndarray
    ranks: dict[str, np.ndarray] = field(default_factory=dict)
    topk: np.ndarray | None = None
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # group name -> boolean mask aligned with ``users``


def _batches(evalset: EvalSet, size: int):
    """Users in batches of ``size``, shortest histories first: a sequence model cuts each batch to its longest
    history, so similar lengths together leave it little padding. Results are per user, so order is free."""
    order = np.argsort(evalset.history.lengths(), kind="stable")
    for start in range(0, len(order), size):
        yield np.sort(order[start:start + size])


@torch.no_grad()
def rank_full(model: Scorer, evalset: EvalSet, n_items: int, config: EvalConfig,
              mask_history: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    ranks = np.empty(len(evalset), dtype=np.int64)
    topk = np.zeros((len(evalset), config.topk), dtype=np.int64) if config.topk else None
    for rows in _batches(evalset, config.batch_size):
        batch = evalset.subset(rows)
        state = model.user_state(batch.history, batch.users)
        targets = torch.as_tensor(batch.targets)
        target_scores = model.score_items(state, targets[:, None])[:, 0]
        hist_rows = torch.as_tensor(batch.history.row_ids())
        hist_items = torch.as_tensor(batch.history.values)
        # The target stays a candidate even when the user had it before; unmasked, every history item does.
        masked = (hist_items != targets[hist_rows]) & mask_history
        hist_rows, hist_items = hist_rows[masked], hist_items[masked]
        rank = torch.zeros(len(rows), dtype=torch.int32)
        best_scores = best_items = None
        for start in range(0, n_items + 1, config.item_chunk):
            stop = min(start + config.item_chunk, n_items + 1)
            scores = model.score(state, start, stop).float()  # a fresh tensor: the contract lets us edit it
            in_chunk = (hist_items >= start) & (hist_items < stop)
            scores[hist_rows[in_chunk], hist_items[in_chunk] - start] = -torch.inf
            if start == 0:
                scores[:, 0] = -torch.inf  # padding is never a candidate
            t = target_scores[:, None]
            rank += (scores > t).sum(dim=1, dtype=torch.int32)
            # The target must not count against itself (its chunk score may differ from
            # score_items' in the last bit); equal scores never count, index == target.
            own_rows = torch.nonzero((targets >= start) & (targets < stop)).squeeze(1)
            own_scores = scores[own_rows, targets[own_rows] - start]
            rank[own_rows] -= (own_scores > target_scores[own_rows]).int()
            # Ties are rare for learned models: only rows that have one pay for the index comparison.
            tied_rows = torch.nonzero(torch.any(scores == t, dim=1)).squeeze(1)
            if len(tied_rows):
                index = torch.arange(start, stop)[None, :]
                tied = (scores[tied_rows] == t[tied_rows]) & (index < targets[tied_rows, None])
                rank[tied_rows] += tied.sum(dim=1, dtype=torch.int32)
            if topk is not None:
                k = min(config.topk, stop - start)
                values, items = torch.topk(scores, k, dim=1)
                items = items + start
                if best_scores is not None:
                    values = torch.cat([best_scores, values], dim=1)
                    items = torch.cat([best_items, items], dim=1)
                    values, picked = torch.topk(values, min(config.topk, values.shape[1]), dim=1)
                    items = torch.gather(items, 1, picked)
                best_scores, best_items = values, items
        ranks[rows] = rank.numpy().astype(np.int64)
        if topk is not None:
            topk[rows, : best_items.shape[1]] = best_items.numpy()
    return ranks, topk


def sample_negatives(user: int, excluded: np.ndarray, n_items: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct items in 1..n_items not in ``excluded``; the same for a user whatever the batch."""
    rng = np.random.default_rng([seed, int(user)])
    allowed = n_items - len(np.unique(excluded[excluded > 0]))
    n = min(n, allowed)
    chosen = np.zeros(0, dtype=np.int64)
    while len(chosen) < n:
        draw = rng.integers(1, n_items + 1, size=2 * n + 8)
        draw = draw[~np.isin(draw, excluded)]
        chosen = np.concatenate([chosen, draw])
        _, first = np.unique(chosen, return_index=True)
        chosen = chosen[np.sort(first)]
    return chosen[:n]


@torch.no_grad()
def rank_sampled(model: Scorer, evalset: EvalSet, n_items: int, config: EvalConfig) -> np.ndarray:
    ranks = np.empty(len(evalset), dtype=np.int64)
    for rows in _batches(evalset, config.batch_size):
        batch = evalset.subset(rows)
        negatives = [
            sample_negatives(u, np.append(batch.history[i], batch.targets[i]), n_items, config.n_negatives, config.seed)
            for i, u in enumerate(batch.users)
        ]
        width = max(len(n) for n in negatives)
        # Short rows (tiny catalogs) are padded with the target itself, which never counts against it.
        candidates = np.array([np.pad(n, (0, width - len(n)), constant_values=t) for n, t in zip(negatives, batch.targets)])
        items = torch.as_tensor(np.concatenate([batch.targets[:, None], candidates], axis=1))
        state = model.user_state(batch.history, batch.users)
        scores = model.score_items(state, items).float()
        t = scores[:, :1]
        targets = items[:, :1]
        beats = ((scores > t) | ((scores == t) & (items < targets))) & (items != targets)
        ranks[rows] = beats.sum(dim=1).numpy()
    return ranks


def group_labels(split: Split, evalset: EvalSet, config: EvalConfig) -> dict[str, np.ndarray]:
    """Boolean masks over the evaluated users: by target popularity (training counts) and history length;
    ``cold``: targets with at most ``cold_max_count`` training interactions; ``new`` (new-item splits only):
    targets held out of training."""
    counts = split.item_counts()
    head = head_items(counts, config.head_share)[evalset.targets]
    bins = popularity_bins(counts, config.popularity_bins)[evalset.targets]
    lengths = evalset.history.lengths()
    median = np.median(lengths) if len(lengths) else 0
    groups = {"head": head, "tail": ~head, "cold": counts[evalset.targets] <= config.cold_max_count,
              "short": lengths <= median, "long": lengths > median}
    if split.new_items is not None:
        groups["new"] = np.isin(evalset.targets, split.new_items)
    for b in range(1, config.popularity_bins + 1):
        groups[f"pop_q{b}"] = bins == b
    user_bins = length_bins(lengths, config.length_bins)
    for b in range(1, config.length_bins + 1):
        groups[f"len_q{b}"] = user_bins == b
    return groups


def evaluate(model: Scorer, split: Split, part: str = "test", config: EvalConfig | None = None) -> EvalResult:
    """Rank every evaluated user's target; flat metrics keyed ``<part>/<protocol>[/<group>]/<metric>``."""
    config = config or EvalConfig()
    evalset: EvalSet = getattr(split, part)
    if len(evalset) == 0:
        # A mean over no users would be written as 0.0 and read as "the model fails everyone".
        raise ConfigError(
            f"the {part!r} part of the {split.protocol} split has no users to evaluate; "
            f"check the split settings (e.g. data.split.min_length, or the time cut-offs of a temporal split)"
        )
    groups = group_labels(split, evalset, config)
    metrics: dict[str, float] = {}
    per_user: dict[str, np.ndarray] = {}
    ranks_out: dict[str, np.ndarray] = {}
    topk = None
    for protocol in config.protocols:
        if protocol == "full":
            ranks, topk = rank_full(model, evalset, split.n_items, config)
            label = "full"
        elif protocol == "full_unmasked":
            ranks, _ = rank_full(model, evalset, split.n_items, config.model_copy(update={"topk": 0}), mask_history=False)
            label = "full_unmasked"
        else:
            ranks = rank_sampled(model, evalset, split.n_items, config)
            label = f"sampled{config.n_negatives}"
        ranks_out[label] = ranks
        values = per_user_metrics(ranks, config.ks)
        prefix = f"{part}/{label}"
        metrics[f"{prefix}/n_users"] = int(len(ranks))
        for name, per in values.items():
            metrics[f"{prefix}/{name}"] = float(per.mean())
            per_user[f"{label}/{name}"] = per
        for group, mask in groups.items():
            metrics[f"{prefix}/{group}/n_users"] = int(mask.sum())
            if not mask.any():  # e.g. a length quantile bin that ties emptied: no value, rather than a false 0.0
                continue
            for name, per in values.items():
                metrics[f"{prefix}/{group}/{name}"] = float(per[mask].mean())
    return EvalResult(metrics, per_user, evalset.users, ranks_out, topk, groups)
