"""The adapter and the frozen LM together: states in, answers, likelihoods and losses out."""

from __future__ import annotations

import torch

from lucidrec.interpret.adapter import StateAdapter
from lucidrec.lm.soft_prompt import PromptLayout, SoftPromptLM


class Interpreter:
    def __init__(self, lm: SoftPromptLM, adapter: StateAdapter):
        if adapter.d_lm != lm.dim:
            raise ValueError(f"the adapter writes {adapter.d_lm}-d soft tokens but {lm.identity} embeds tokens in {lm.dim}-d")
        self.lm, self.adapter = lm, adapter
        self._layouts: dict[str, PromptLayout] = {}

    def layout(self, template: str) -> PromptLayout:
        if template not in self._layouts:
            self._layouts[template] = self.lm.layout(template, slot_width=self.adapter.tokens)
        return self._layouts[template]

    def soft_tokens(self, states: torch.Tensor) -> torch.Tensor:
        """(B, slots, positions, d_state) -> (B, slots x tokens, d_lm)."""
        soft = self.adapter(states.to(self.adapter.project.weight.dtype))
        return soft.flatten(1, 2)

    def loss(self, template: str, states: torch.Tensor, answers: list[list[int]]) -> torch.Tensor:
        return self.lm.loss(self.layout(template), self.soft_tokens(states), answers)

    @torch.no_grad()
    def generate(self, template: str, states: torch.Tensor, max_new_tokens: int) -> list[str]:
        ids = self.lm.generate(self.layout(template), self.soft_tokens(states), max_new_tokens)
        return [self.lm.decode(row) for row in ids]

    @torch.no_grad()
    def rank(self, template: str, states: torch.Tensor, candidates: list[list[int]], chunk: int, progress=None) -> torch.Tensor:
        return self.lm.rank_candidates(self.layout(template), self.soft_tokens(states), candidates, chunk, progress)

    @torch.no_grad()
    def target_ranks(self, template: str, states: torch.Tensor, candidates: list[list[int]], targets: list[int],
                     chunk: int, cap: int | None = None, progress=None) -> torch.Tensor:
        return self.lm.candidate_ranks(self.layout(template), self.soft_tokens(states), candidates, targets, chunk, cap,
                                       progress)
