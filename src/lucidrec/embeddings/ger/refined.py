"""GER's refined item embedding and its user guided part, behind the item-embedding seam.

Item vectors (``dim`` = the backbone's hidden size, ``m`` attributes)::

    refined: e_i = [ alpha * s * g_i ; R_i ]       g_i: z-scored attribute scores (frozen buffer)
    guided:  e_i = [ alpha * s * g_i ; W g_i ]     W: trainable Linear(m -> dim - m); no base
    reduced: e_i = [ 0               ; R_i ]       the ablation without the guided block

``R`` is the PCA reduction of a trained base run's item table to ``dim - m`` dims (trainable
unless ``train_reduced=False``), ``s`` a fixed scale matching the base table, ``alpha`` a
learnable scalar. Special tokens (BERT4Rec's mask) get their own trainable rows.

User side (the per-user hook :meth:`adjust_states`, called by the backbone on every state it
scores with): the first ``m`` coordinates of the sequence state are REPLACED by the user guided
vector ``u_t = prior_t + delta_u``:

- ``prior_t``: the recency-weighted mean of the guided scores ``g`` of the last ``user_window``
  items at or before position t (weights ``decay**k`` for the item k steps back; causal, so a
  training position never sees its own target), times a fixed ``user_scale`` (1 / RMS of the
  training users' profiles, so its coordinates are O(1) like the LayerNorm-ed state), or, with
  ``user_init="llm"``, the chat model's z-scored scores of the user's training history;
- ``delta_u``: a trainable per-user offset (zero at init; stored divided by
  ``user_lr_multiplier``). Unknown / cold users (id < 0, None or beyond the table) get
  ``delta = 0``: their guided part comes from their history alone.

So ``score(u, i) = sum_k u_k * alpha * s * g_ik + <state_u[m:], R_i>``: each term of the first sum
is one attribute's exact contribution (see ``lucidrec.explain.contributions``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lucidrec.embeddings.base import EMBEDDINGS, ItemEmbedding
from lucidrec.embeddings.ger.config import GERConfig


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
        alpha = torch.tensor(float(config.alpha_init))
        self.alpha = nn.Parameter(alpha) if config.learn_alpha else nn.Buffer(alpha)
        rest = dim - self.m
        self.lift = nn.Linear(self.m, rest) if self.mode == "guided" and rest > 0 else None
        if self.mode == "guided":
            self.reduced = None
        else:
            if reduced is None or reduced.shape != (guided.shape[0], rest):
                raise ValueError(f"mode '{self.mode}' needs a reduced base table of shape {(guided.shape[0], rest)}")
            values = torch.from_numpy(np.asarray(reduced, dtype=np.float32)).clone()
            values[0] = 0
            self.reduced = nn.Parameter(values) if config.train_reduced else nn.Buffer(values)
        self.special = nn.Parameter(torch.randn(extra_tokens, dim) * 0.02) if extra_tokens else None
        # -- user side
        self.user_window, self.decay = config.user_window, config.recency_decay
        self.user_scale, self.user_multiplier = float(user_scale), float(config.user_lr_multiplier)
        self.n_users = int(n_users)
        self.user_delta = nn.Embedding(self.n_users, self.m) if config.user_trainable and self.n_users else None
        if self.user_delta is not None:
            nn.init.zeros_(self.user_delta.weight)
        prior = np.zeros((self.n_users, self.m), np.float32) if user_prior is None else np.asarray(user_prior, np.float32)
        has_prior = ~np.isnan(prior).any(axis=1) if user_prior is not None else np.zeros(self.n_users, bool)
        self.register_buffer("user_prior", torch.from_numpy(np.nan_to_num(prior)))
        self.register_buffer("has_prior", torch.from_numpy(has_prior))
        self.base = None

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
        if self.special is not None:
            special = item_ids > self.n_items
            if special.any():
                out = torch.where(special[..., None], self.special[(item_ids - self.n_items - 1).clamp(min=0)], out)
        return out

    def table(self) -> torch.Tensor:
        return self(torch.arange(self.n_items + 1))

    # -- users ------------------------------------------------------------------------------------
    def history_profile(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L, m): per position, the recency-weighted mean of ``g`` over the last ``user_window``
        real items at or before it (0 = the attribute mean where there is none)."""
        length = seqs.shape[1]
        valid = ((seqs > 0) & (seqs <= self.n_items)).to(self.guided.dtype)
        values = self.guided[seqs.clamp(max=self.n_items)] * valid[..., None]
        steps = torch.arange(length)
        age = steps[:, None] - steps[None, :]  # age[t, j] = t - j
        weights = torch.where((age >= 0) & (age < self.user_window), self.decay ** age.clamp(min=0).to(values.dtype),
                              torch.zeros((), dtype=values.dtype))
        numerator = torch.einsum("tj,bjm->btm", weights, values)
        denominator = torch.einsum("tj,bj->bt", weights, valid)
        return self.user_scale * numerator / denominator.clamp(min=1e-12)[..., None]

    def _known(self, users, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if users is None:
            return torch.zeros(batch, dtype=torch.bool), torch.zeros(batch, dtype=torch.long)
        users = torch.as_tensor(np.asarray(users) if not isinstance(users, torch.Tensor) else users).long().reshape(-1)
        known = (users >= 0) & (users < self.n_users)
        return known, torch.where(known, users, torch.zeros_like(users))

    def user_guided(self, seqs: torch.Tensor, users=None) -> torch.Tensor:
        """(B, L, m) user guided vectors per position (see the module docstring)."""
        profile = self.history_profile(seqs)
        known, index = self._known(users, seqs.shape[0])
        if self.n_users:
            use_prior = (known & self.has_prior[index])[:, None, None]
            profile = torch.where(use_prior, self.user_prior[index][:, None, :], profile)
            if self.user_delta is not None:
                delta = self.user_multiplier * self.user_delta(index)
                profile = profile + delta[:, None, :] * known[:, None, None]
        return profile

    # -- optional: the frozen base model supplies the users' reduced block ---------------------------
    def attach_base(self, base_model: nn.Module, components: np.ndarray) -> None:
        """``user_reduced="base"``: the non-attribute block of every state becomes ``V h_base``, the
        frozen base model's state projected on the item PCA components ``V`` (k, d_base)."""
        for parameter in base_model.parameters():
            parameter.requires_grad_(False)
        self.base = base_model.eval()
        self.register_buffer("base_components", torch.as_tensor(np.asarray(components, np.float32)))
        self.bypasses_backbone = True

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "base", None) is not None:
            self.base.eval()  # frozen: never dropout
        return self

    def _base_block(self, seqs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            width = self.base.config.max_len
            inputs = seqs[:, -width:] if seqs.shape[1] >= width else torch.nn.functional.pad(seqs, (width - seqs.shape[1], 0))
            states = self.base(inputs)[:, -seqs.shape[1]:]
            if states.shape[1] < seqs.shape[1]:  # positions the base cannot see get its earliest state
                states = torch.cat([states[:, :1].expand(-1, seqs.shape[1] - states.shape[1], -1), states], dim=1)
        return states @ self.base_components.T

    def adjust_states(self, states: torch.Tensor, seqs: torch.Tensor, users=None) -> torch.Tensor:
        """The backbone's per-user hook: replace the guided block of the states by the user guided part
        (and, with ``user_reduced="base"``, the rest by the projected base state)."""
        rest = self._base_block(seqs).to(states.dtype) if getattr(self, "base", None) is not None else states[..., self.m:]
        if self.mode == "reduced":
            return torch.cat([states[..., : self.m], rest], dim=-1)
        return torch.cat([self.user_guided(seqs, users).to(states.dtype), rest], dim=-1)

    @classmethod
    def build(cls, config: GERConfig, n_items, dim, extra_tokens, context=None):
        from lucidrec.embeddings.ger.build import build_ger

        return build_ger(cls, config, n_items, dim, extra_tokens, context)
