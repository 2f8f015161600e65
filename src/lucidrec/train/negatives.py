"""The negatives of the sampled softmax: which items, and the log of each one's sampling rate (logQ).

- ``uniform``: ``n_negatives`` items drawn uniformly from the catalog, with replacement (default) or
  without (then each item is in the draw with probability N / catalog size).
- ``popularity``: ``n_negatives`` items drawn with replacement with probability proportional to
  (training count)^``alpha``. Items with no training count get the smallest probability of a counted
  item (a warning says how many, once per training run).
- ``in_batch``: the batch's own target items, each once; an item with training frequency ``p`` is in
  a batch of ``M`` targets with probability ``1 - (1 - p)^M``. ``n_negatives`` plays no part.

Every batch shares one draw. ``log_q`` is the log of each drawn item's expected count in the draw
(its inclusion probability when drawn without replacement): subtracting it from the item's logit
makes ``sum_j exp(s_j - log_q_j)`` over the draw an unbiased estimate of the sum over the whole
catalog, which is what the full softmax's normaliser needs (Bengio & Senecal 2008). The positive is
always in the softmax, not sampled, so its logit is never corrected; see ``losses.sampled_softmax_loss``.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from lucidrec.config import ConfigError, StrictConfig

log = logging.getLogger(__name__)

NegativeSource = Literal["uniform", "popularity", "in_batch"]


class SampledSoftmaxConfig(StrictConfig):
    """Options of ``train.loss = "sampled_softmax"`` (the count is ``train.n_negatives``)."""

    negatives: NegativeSource = Field(
        "uniform", description="uniform (catalog items, equal chances), popularity (chances proportional to "
        "training count^alpha) or in_batch (the batch's own targets; n_negatives is not used)")
    alpha: float = Field(1.0, ge=0, description="exponent of the training count for negatives=popularity "
                         "(0 = uniform, 1 = proportional to the count)")
    replacement: bool = Field(True, description="draw with replacement (false: N distinct items; uniform only)")
    logq_correction: bool = Field(True, description="subtract the log of each negative's sampling rate from its "
                                  "logit, so the softmax's normaliser estimates the full catalog's")

    @model_validator(mode="after")
    def _without_replacement_is_uniform(self):
        if not self.replacement and self.negatives != "uniform":
            raise ValueError(f"replacement=false needs negatives='uniform' (got {self.negatives!r}): the "
                             "inclusion probabilities of a weighted draw without replacement have no closed form")
        return self


class NegativeSampler:
    """Draws one batch's shared negatives and their ``log_q`` under a :class:`SampledSoftmaxConfig`."""

    def __init__(self, config: SampledSoftmaxConfig, n_items: int, n_negatives: int,
                 item_counts: np.ndarray | None = None):
        self.config, self.n_items, self.n_negatives = config, n_items, n_negatives
        if config.negatives != "in_batch" and n_negatives > n_items:
            raise ConfigError(f"train.n_negatives={n_negatives} is larger than the catalog ({n_items} items); "
                              f"use at most {n_items}, or train.loss=ce for the exact softmax over every item")
        self.probabilities = None
        if config.negatives in ("popularity", "in_batch"):
            if item_counts is None:
                raise ConfigError(f"train.sampled_softmax.negatives={config.negatives!r} needs the training "
                                  "counts of the items (trainer.negative_sampler builds the sampler from the split)")
            counts = np.asarray(item_counts, dtype=np.float64)[1 : n_items + 1]  # index 0 is padding
            self.probabilities = torch.as_tensor(self._probabilities(counts), dtype=torch.float64)

    def _probabilities(self, counts: np.ndarray) -> np.ndarray:
        if self.config.negatives == "in_batch" or not (counts > 0).any():
            return counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1 / len(counts))
        weights = np.power(counts, self.config.alpha, where=counts > 0, out=np.zeros_like(counts))
        unseen = counts == 0
        if unseen.any():
            floor = weights[~unseen].min()
            weights[unseen] = floor
            log.warning("sampled softmax: %d of %d items have no training count; they are drawn as negatives with "
                        "the smallest probability of a counted item (weight %.3g)", int(unseen.sum()), len(counts), floor)
        return weights / weights.sum()

    def draw(self, targets: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(item ids (K,), log_q (K,) float32) of this batch's negatives; zeros for log_q when not corrected."""
        n, source = self.n_negatives, self.config.negatives
        if source == "in_batch":
            items = torch.unique(targets)
            p = self.probabilities[items - 1]
            log_q = torch.log(-torch.expm1(len(targets) * torch.log1p(-p)))  # log(1 - (1 - p)^M), stable
        elif source == "popularity":
            items = torch.multinomial(self.probabilities, n, replacement=True, generator=generator) + 1
            log_q = torch.log(n * self.probabilities[items - 1])
        elif self.config.replacement:
            # The same call as before the options existed, so earlier sampled-softmax runs resume exactly.
            items = torch.randint(1, self.n_items + 1, (n,), generator=generator)
            log_q = torch.full((n,), np.log(n / self.n_items), dtype=torch.float64)
        else:
            items = torch.randperm(self.n_items, generator=generator)[:n] + 1
            log_q = torch.full((n,), np.log(n / self.n_items), dtype=torch.float64)
        if not self.config.logq_correction:
            log_q = torch.zeros_like(log_q)
        return items, log_q.float()
