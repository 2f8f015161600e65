"""Typed settings of an interpretation run (one adapter trained on one recommender run and one LM)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from lucidrec.config import StrictConfig
from lucidrec.lm.soft_prompt import SoftPromptLMConfig


class AdapterConfig(StrictConfig):
    pool: Literal["last", "conv"] = Field(
        "last", description="last: the final position's state; conv: a learned weighting of the last `window` positions")
    window: int = Field(10, ge=1, description="positions pooled by pool=conv")
    tokens: int = Field(8, ge=1, description="soft tokens per state (the paper: 1)")
    hidden: int | None = Field(1024, ge=1, description="width of one GELU layer before the output map (None: the paper's Linear)")
    init: Literal["random", "titles"] = Field(
        "titles", description="random: torch's default Linear init; titles: a ridge fit of the soft tokens to the LM's "
                              "embeddings of the title of each state's last item before the LM loss (warmup.py)")
    init_penalty: float = Field(1.0, gt=0, description="ridge penalty of init=titles (Linear adapter: closed form)")
    init_epochs: int = Field(60, ge=1, description="init=titles with hidden: epochs of mean-squared-error fitting (AdamW)")
    init_lr: float = Field(1e-3, gt=0)
    init_batch_size: int = Field(256, ge=1)


class ExamplesConfig(StrictConfig):
    heldout_fraction: float = Field(0.25, gt=0, lt=1, description="share of evaluated users kept out of adapter training")
    split_seed: int = 0
    per_user: int = Field(4, ge=1, description="training examples drawn per training user (t uniform, fixed by the seed)")
    recovery_items: int = Field(10, ge=1, description="titles a recovery answer lists (the last ones, in order)")
    title_field: str = "title"


class OptimConfig(StrictConfig):
    lr: float = Field(3e-4, gt=0, description="the paper: 1e-3 (from a random adapter; here the adapter starts warm)")
    weight_decay: float = Field(1e-6, ge=0)
    batch_size: int = Field(16, ge=1)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps (None: all epochs)")
    max_minutes: float | None = Field(None, gt=0, description="stop training after this wall time (recorded as the reason)")
    warmup_steps: int = Field(50, ge=0, description="linear warm-up from 0.2 x lr")
    checkpoint_every: int = Field(25, ge=1, description="steps between checkpoints")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch threads (None: leave as is)")


class EvaluationConfig(StrictConfig):
    rank_users: int | None = Field(200, ge=1, description="held-out users ranked by likelihood (fixed random sample; None: all)")
    generate_users: int | None = Field(None, ge=1, description="held-out users answered by generation (None: all)")
    rank_chunk: int = Field(64, ge=1, description="candidate titles per forward pass behind the cached prompt")
    rank_cap: int | None = Field(
        10, ge=1, description="stop scoring a user's titles once this many beat the answer (exact top-k for k <= cap; "
                              "None: exact ranks and the mean rank, at up to the whole catalog per user)")
    generate_batch: int = Field(16, ge=1)
    max_new_tokens: int | None = Field(None, ge=1, description="None: 32 for residual, 24 per recovered title")
    f1_threshold: float = Field(0.8, gt=0, le=1)
    probe: bool = Field(True, description="fit the decoder-free linear probe baseline")
    probe_encoder: str = Field("all-MiniLM-L6-v2", description="sentence encoder giving the probe's title vectors")
    probe_ridge: float = Field(1.0, gt=0, description="ridge penalty of the probe (fixed, not tuned on held-out users)")
    instantiate_users: int = Field(50, ge=0, description="held-out users whose predicted next item the LM names (0: skip)")
    instantiate: Literal["expected_next_state", "scoring_vector"] = Field(
        "expected_next_state", description="the 'after' state that stands for the backbone's prediction (examples.predicted_states)")
    seed: int = 0


class InterpretConfig(StrictConfig):
    task: Literal["residual", "recovery"] = "residual"
    lm: SoftPromptLMConfig = Field(default_factory=SoftPromptLMConfig)
    adapter: AdapterConfig = Field(default_factory=AdapterConfig)
    examples: ExamplesConfig = Field(default_factory=ExamplesConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    templates: Path | None = Field(None, description="TOML file of train/test prompts (None: the built-in set)")
