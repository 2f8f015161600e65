"""GER's refined item embedding and its user guided part, behind the item-embedding seam.

Item vectors (``dim`` = the backbone's hidden size, ``m`` attributes)::

    refined: e_i = [ alpha * s * g_i ; R_i ]       g_i: z-scored attribute scores (frozen buffer)
    guided:  e_i = [ alpha * s * g_i ; W g_i ]     W: trainable Linear(m -> dim - m); no base
    reduced: e_i = [ 0               ; R_i ]       the ablation without the guided block

``R`` is the PCA reduction of a trained base run's item table to ``dim - m`` dims (trainable
unless ``base.train_reduced=false``), ``s`` a fixed scale matching the base table, ``alpha`` a
learnable scalar. Special tokens (BERT4Rec's mask) get their own trainable rows.

User side (:class:`~lucidrec.embeddings.ger.user.GERUserPart`, the backbone's state hook, applied to
every state it scores with): the first ``m`` coordinates of the sequence state are REPLACED by the user guided
vector ``u_t = prior_t + delta_u``:

- ``prior_t``: the recency-weighted mean of the guided scores ``g`` of the last ``user_window``
  items at or before position t (weights ``decay**k`` for the item k steps back; causal, so a
  training position never sees its own target), times a fixed ``user_scale`` (1 / RMS of the
  training users' profiles, so its coordinates are O(1) like the LayerNorm-ed state), or, with
  ``user.init="llm"``, the chat model's z-scored scores of the user's training history;
- ``delta_u``: a trainable per-user offset (zero at init; stored divided by
  ``user_lr_multiplier``). Unknown / cold users (id < 0, None or beyond the table) get
  ``delta = 0``: their guided part comes from their history alone.

So ``score(u, i) = sum_k u_k * alpha * s * g_ik + <state_u[m:], R_i>``: each term of the first sum
is one attribute's exact contribution (see ``lucidrec.explain.contributions``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lucidrec.config import ConfigError
from lucidrec.embeddings.base import EMBEDDINGS, EmbeddingContext, ItemEmbedding, prepared_folder, with_special_rows
from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.embeddings.ger.state_files import STATE_DIR, attribute_set_of, fingerprint, read_state
from lucidrec.embeddings.ger.user import GERUserPart


@EMBEDDINGS.register("ger")
class GERItemEmbedding(ItemEmbedding):
    config_class = GERConfig

    def __init__(self, guided: np.ndarray, dim: int, extra_tokens: int = 0, *, reduced: np.ndarray | None = None,
                 n_users: int = 0, config: GERConfig | None = None, guided_scale: float = 0.1,
                 user_prior: np.ndarray | None = None, attribute_names: list[str] | None = None,
                 user_scale: float = 1.0):
        config = config or GERConfig()
        guided = np.asarray(guided, dtype=np.float32)
        super().__init__(guided.shape[0] - 1, dim, extra_tokens)
        self.mode, self.m = config.mode, guided.shape[1]
        self.attribute_names = list(attribute_names or [f"attribute {k}" for k in range(self.m)])
        if self.m > dim or (self.mode != "guided" and self.m >= dim):
            raise ValueError(f"{self.m} attributes do not fit a hidden size of {dim} in mode '{self.mode}'")
        table = torch.zeros(guided.shape[0] + extra_tokens, self.m)
        table[: guided.shape[0]] = torch.from_numpy(guided)
        table[0] = 0
        self.register_buffer("guided", table)  # frozen: never a parameter
        self.guided_scale = float(guided_scale)
        alpha = torch.tensor(float(config.guided.alpha_init))
        self.alpha = nn.Parameter(alpha) if config.guided.learn_alpha else nn.Buffer(alpha)
        rest = dim - self.m
        self.lift = nn.Linear(self.m, rest) if self.mode == "guided" and rest > 0 else None
        if self.mode == "guided":
            self.reduced = None
        else:
            if reduced is None or reduced.shape != (guided.shape[0], rest):
                raise ValueError(f"mode '{self.mode}' needs a reduced base table of shape {(guided.shape[0], rest)}")
            values = torch.from_numpy(np.asarray(reduced, dtype=np.float32)).clone()
            values[0] = 0
            self.reduced = nn.Parameter(values) if config.base.train_reduced else nn.Buffer(values)
        self.special = nn.Parameter(torch.randn(extra_tokens, dim) * 0.02) if extra_tokens else None
        # -- user side: the backbone registers this hook (not a submodule here: one copy in state_dict); made
        # here so its parameters are initialised right after the items', as before the hook existed
        self.__dict__["user_part"] = GERUserPart(self, config, n_users, user_prior, user_scale)

    # -- items ------------------------------------------------------------------------------------
    def guided_scale_total(self) -> torch.Tensor:
        """The factor alpha * s on the z-scored item scores."""
        return self.alpha * self.guided_scale

    def item_guided(self, item_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The item guided block as it enters the score (alpha * s * g), rows ``item_ids`` or 0..n_items."""
        g = self.guided[: self.n_items + 1] if item_ids is None else self.guided[item_ids]
        return torch.zeros_like(g) if self.mode == "reduced" else self.guided_scale_total() * g

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        g = self.guided[item_ids]
        first = torch.zeros_like(g) if self.mode == "reduced" else self.guided_scale_total() * g
        if self.lift is not None:
            rest = self.lift(g)
        elif self.reduced is not None:
            rest = self.reduced[item_ids.clamp(max=self.n_items)]
        else:
            rest = g.new_zeros(*g.shape[:-1], 0)
        out = torch.cat([first, rest], dim=-1)
        return with_special_rows(item_ids, out, self.special, self.n_items)

    def table(self) -> torch.Tensor:
        return self(torch.arange(self.n_items + 1))

    # -- what explanations read and intervene on ---------------------------------------------------
    @property
    def explainable(self) -> bool:
        """The attribute block carries the score (not the 'reduced' ablation)."""
        return self.mode != "reduced"

    def attribute_profiles(self, item_ids) -> torch.Tensor:
        """(k, m) the items' z-scored attribute scores ``g`` (before alpha * s)."""
        return self.guided[torch.as_tensor(np.asarray(item_ids, dtype=np.int64))].clone()

    @contextlib.contextmanager
    def attribute_set_to(self, item: int, attribute: int, value: float = 0.0):
        """Within the block, item ``item``'s score on ``attribute`` is ``value`` (an intervention on the
        model's own table: item vectors and the user part both see it); restored afterwards."""
        saved = self.guided[item, attribute].clone()
        with torch.no_grad():
            self.guided[item, attribute] = value
        try:
            yield
        finally:
            with torch.no_grad():
                self.guided[item, attribute] = saved

    def state_hook(self) -> "GERUserPart":
        return self.user_part

    @classmethod
    def build(cls, config: GERConfig, n_items, dim, extra_tokens, context: EmbeddingContext | None = None):
        """The embedding of a run whose ``ger/`` folder the GER recipe prepared (scores, reduced base, priors)."""
        folder = prepared_folder(context, "ger", STATE_DIR)
        stored = read_state(folder, fingerprint(config, context.data.data_hash, dim))
        if stored is None:
            raise ConfigError(f"{folder}: no GER state for this config (run the GER recipe: lucidrec train "
                              "--embedding ger with these settings, or lucidrec method status RUN)")
        arrays, meta = stored
        attributes = attribute_set_of(meta)
        embedding = cls(arrays["guided"], dim, extra_tokens, reduced=arrays.get("reduced"), n_users=context.data.n_users,
                        config=config, guided_scale=float(meta["guided_scale"]), user_prior=arrays.get("user_prior"),
                        attribute_names=attributes.names, user_scale=float(meta.get("user_scale", 1.0)))
        if config.user.reduced == "base":
            if context.load_model is None:
                raise ConfigError("user.reduced='base' needs the base run's model: build the run through lucidrec.train.run")
            base_model = context.load_model(Path(meta["base"]["run"]))
            if base_model.objective != context.backbone_objective:
                raise ConfigError(f"user.reduced='base' needs a base model with the run's objective "
                                  f"({context.backbone_objective}), got {type(base_model).__name__} ({base_model.objective})")
            embedding.user_part.attach_base(base_model, arrays["pca_components"])
        return embedding
