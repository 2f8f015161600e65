"""GER's user guided part: the backbone's state hook that writes the user's attribute profile into the
first ``m`` coordinates of every sequence state (see :mod:`lucidrec.embeddings.ger.refined` for the
formula), and with ``user.reduced="base"`` the frozen base model's projected state into the rest."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lucidrec.embeddings.base import ItemEmbedding, StateHook
from lucidrec.embeddings.ger.config import GERConfig


class GERUserPart(StateHook):
    def __init__(self, items: ItemEmbedding, config: GERConfig, n_users: int = 0,
                 user_prior: np.ndarray | None = None, user_scale: float = 1.0):
        super().__init__()
        # ``items`` is the GER item embedding (its ``guided`` table, ``m``, ``mode``). A reference, not a submodule: the item table belongs to the item embedding (one copy in state_dict),
        # and an intervention on it (the faithfulness check) is seen here too.
        self.__dict__["items"] = items
        self.m, self.mode, self.n_items = items.m, items.mode, items.n_items
        self.user_window, self.decay = config.user.window, config.user.recency_decay
        self.user_scale, self.user_multiplier = float(user_scale), float(config.user.lr_multiplier)
        self.n_users = int(n_users)
        self.user_delta = nn.Embedding(self.n_users, self.m) if config.user.trainable and self.n_users else None
        if self.user_delta is not None:
            nn.init.zeros_(self.user_delta.weight)
        prior = np.zeros((self.n_users, self.m), np.float32) if user_prior is None else np.asarray(user_prior, np.float32)
        has_prior = ~np.isnan(prior).any(axis=1) if user_prior is not None else np.zeros(self.n_users, bool)
        self.register_buffer("user_prior", torch.from_numpy(np.nan_to_num(prior)))
        self.register_buffer("has_prior", torch.from_numpy(has_prior))
        self.base: nn.Module | None = None

    def history_profile(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L, m): per position, the recency-weighted mean of ``g`` over the last ``user_window``
        real items at or before it (0 = the attribute mean where there is none)."""
        guided = self.items.guided
        length = seqs.shape[1]
        valid = ((seqs > 0) & (seqs <= self.n_items)).to(guided.dtype)
        values = guided[seqs.clamp(max=self.n_items)] * valid[..., None]
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
        """(B, L, m) user guided vectors per position."""
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
        """``user.reduced="base"``: the non-attribute block of every state becomes ``V h_base``, the
        frozen base model's state projected on the item PCA components ``V`` (k, d_base)."""
        for parameter in base_model.parameters():
            parameter.requires_grad_(False)
        self.base = base_model.eval()
        self.register_buffer("base_components", torch.as_tensor(np.asarray(components, np.float32)))
        self.bypasses_backbone = True

    def train(self, mode: bool = True):
        super().train(mode)
        if self.base is not None:
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

    def forward(self, states: torch.Tensor, seqs: torch.Tensor, users=None) -> torch.Tensor:
        """Replace the guided block of the states by the user guided part (and, with
        ``user.reduced="base"``, the rest by the projected base state)."""
        rest = self._base_block(seqs).to(states.dtype) if self.base is not None else states[..., self.m:]
        if self.mode == "reduced":
            return torch.cat([states[..., : self.m], rest], dim=-1)
        return torch.cat([self.user_guided(seqs, users).to(states.dtype), rest], dim=-1)
