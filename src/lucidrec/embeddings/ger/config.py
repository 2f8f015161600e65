"""Settings of the ``ger`` item embedding: ``[embedding]`` in a run file, one section per stage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lucidrec.config import StrictConfig

GERMode = Literal["guided", "reduced", "refined"]


class ScorerSettings(StrictConfig):
    """Scoring the items' (and users') texts on the attribute set."""

    kind: Literal["encoder", "llm"] = Field("encoder", description="encoder = MiniLM anchor scoring; llm = a chat model")
    llm: dict[str, Any] | None = Field(None, description="chat model config (lucidrec.lm.chat_config); default: local "
                                                         "SmolLM2-135M-Instruct through transformers")
    method: Literal["auto", "slots", "logprobs", "json"] = Field(
        "auto", description="slots = one forward pass per item for all attributes (transformers backend); logprobs = one "
                            "prompt per item and attribute, first-token logprobs (any backend that returns them); "
                            "json = a JSON answer, validated and re-asked; auto = slots for transformers, else logprobs")
    batch_size: int = Field(16, ge=1, description="items per forward pass (slots)")
    max_reasks: int = Field(2, ge=0, description="json: re-asks of an invalid answer")
    max_failed: float = Field(0.0, ge=0, le=1, description="share of the items (and of the users, with "
                              "user.init='llm') the LLM may leave without a score after retries and re-asks; "
                              "they fall back to z = 0 (the attribute mean) and the history prior. Above it "
                              "the run stops with an error; 0 = every text must be scored")
    encoder: str = Field("all-MiniLM-L6-v2", description="sentence encoder of the encoder scorer (name or folder)")
    text_form: Literal["title", "attributes", "description"] = "description"
    text_exclude: list[str] = Field(default_factory=lambda: ["release", "year"],
                                    description="catalog fields left out of item texts")
    max_text_chars: int = Field(300, ge=20, description="item texts are cut to this length before scoring")
    scores_path: str | None = Field(None, description="precomputed raw item scores (.npz from a previous run's ger/ "
                                                      "folder); skips scoring")

    @field_validator("llm")
    @classmethod
    def _no_secret_in_run_config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The run folder's config.json stores this dict verbatim; a key written there would leak.
        if value and "api_key" in value:
            raise ValueError("api_key is not stored in run configs: put the key in an environment variable and name "
                             "it with api_key_env (default OPENAI_API_KEY)")
        return value


class ScorerTuningSettings(StrictConfig):
    """Optional: LoRA-tuning the slot scorer on the recommendation loss (the paper's L_rec + lambda L_format)."""

    enabled: bool = Field(False, description="before scoring the catalog, LoRA-tune the LLM scorer so that its "
                                             "attribute scores rank each user's last training item above sampled "
                                             "negatives under the base model (llm scorer, slots method, refined)")
    steps: int = Field(150, ge=1, description="optimizer steps of the scorer tuning")
    users: int = Field(4, ge=1, description="training users per step (their last training item is the target)")
    negatives: int = Field(12, ge=1, description="negative items per step, shared by its users")
    negatives_from: Literal["uniform", "base_top"] = Field(
        "uniform", description="uniform = random items with text; base_top = each user's best-scored items under the "
                               "base model (not its target or history), ceil(N / users) per user")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the LoRA weights")
    format_weight: float = Field(0.1, ge=0, description="lambda: weight of L_format = -log(probability mass on "
                                                        "the score tokens)")
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    layers: int = Field(6, ge=0, description="LoRA on the attention of the top this-many layers (0 = all); "
                                             "lower layers need no backward pass")
    seed: int = 0
    checkpoint_every: int = Field(25, ge=1, description="steps between resumable checkpoints")


class BaseSettings(StrictConfig):
    """The base embedding and its reduction."""

    run: str | None = Field(None, description="run folder of a trained base model (any backbone, any item "
                                              "embedding); default: train/reuse an id-based base.model run")
    model: str = Field("sasrec", description="backbone of the auto-trained base run")
    epochs: int | None = Field(None, ge=1, description="epochs of the auto base run (default: the run's own)")
    train_reduced: bool = Field(True, description="fine-tune the PCA block during training (else frozen)")


class GuidedSettings(StrictConfig):
    """The items' guided block."""

    learn_alpha: bool = Field(True, description="a learnable scale alpha on the item guided block")
    alpha_init: float = 1.0
    scale: float | None = Field(None, gt=0, description="fixed scale of the z-scored item block (default: RMS "
                                                        "of the base table entries, 0.1 without a base)")


class UserSettings(StrictConfig):
    """The users' guided part and their non-attribute block."""

    init: Literal["history", "llm"] = Field("history", description="history = recency-weighted mean of the item "
                                            "scores of the last user.window items; llm = the chat model scores "
                                            "the history text (cold users fall back to history)")
    window: int = Field(20, ge=1, description="L: items of the history aggregated into the user guided part")
    recency_decay: float = Field(0.9, gt=0, le=1, description="weight of an item k steps back = decay**k")
    trainable: bool = Field(True, description="a trainable per-user offset on the guided part (init 0)")
    lr_multiplier: float = Field(10.0, gt=0, description="the offset is stored as w / multiplier: with Adam its "
                                                         "rows move this many times faster (each row is updated "
                                                         "only when its user is in the batch)")
    reduced: Literal["backbone", "base"] = Field(
        "backbone", description="the users' non-attribute block: backbone = this run's own sequence state (trained "
                                "on the refined item vectors); base = the frozen base model's state projected with "
                                "the items' PCA (the paper's [g_u ; reduce(e_u^b)] literally; same objective only)")


class GERConfig(StrictConfig):
    """One section per stage: scorer (attribute scores) -> tuning (optional scorer tuning) -> base (the base
    run and its PCA) -> guided (item block) -> user (user part)."""

    mode: GERMode = Field("refined", description="refined = [guided ; PCA(base)]; guided = guided block + a trainable "
                                                 "lift of it (no base); reduced = [0 ; PCA(base)] (no guided block)")
    attributes: str | None = Field(None, description="attribute set name (movies, beauty, scientific) or a TOML file; "
                                                     "default: chosen from the dataset name")
    cache_dir: str | None = Field(None, description="root of the LLM/encoder caches and auto base runs "
                                                    "(default: the lucidrec user cache)")
    scorer: ScorerSettings = Field(default_factory=ScorerSettings)
    tuning: ScorerTuningSettings = Field(default_factory=ScorerTuningSettings)
    base: BaseSettings = Field(default_factory=BaseSettings)
    guided: GuidedSettings = Field(default_factory=GuidedSettings)
    user: UserSettings = Field(default_factory=UserSettings)

    @model_validator(mode="after")
    def _tuning_needs_the_slot_scorer(self):
        if self.tuning.enabled:
            wrong = [f"{name}={value!r}" for name, value, ok in (
                ("scorer.kind", self.scorer.kind, self.scorer.kind == "llm"),
                ("scorer.method", self.scorer.method, self.scorer.method in ("auto", "slots")),
                ("mode", self.mode, self.mode == "refined"),
                ("scorer.scores_path", self.scorer.scores_path, self.scorer.scores_path is None)) if not ok]
            if wrong:
                raise ValueError("tuning.enabled needs scorer.kind='llm', scorer.method 'slots' or 'auto', "
                                 f"mode='refined' and no scorer.scores_path (it tunes the model that scores); "
                                 f"got {', '.join(wrong)}")
        return self


#: Where each key of the flat config (before the stage sections) lives now: flat name -> (section, field).
#: Fingerprints are computed over the flat names, so GER states made before stay valid.
FLAT_KEYS: dict[str, tuple[str, str]] = {
    "scorer": ("scorer", "kind"), "llm": ("scorer", "llm"), "llm_method": ("scorer", "method"),
    "llm_batch_size": ("scorer", "batch_size"), "max_reasks": ("scorer", "max_reasks"),
    "llm_max_failed": ("scorer", "max_failed"), "encoder": ("scorer", "encoder"), "text_form": ("scorer", "text_form"),
    "text_exclude": ("scorer", "text_exclude"), "max_text_chars": ("scorer", "max_text_chars"),
    "scores_path": ("scorer", "scores_path"),
    "tune_scorer": ("tuning", "enabled"),
    **{f"tune_{name}": ("tuning", name) for name in ScorerTuningSettings.model_fields if name != "enabled"},
    "base_run": ("base", "run"), "base_model": ("base", "model"), "base_epochs": ("base", "epochs"),
    "train_reduced": ("base", "train_reduced"), "user_reduced": ("user", "reduced"),
    "learn_alpha": ("guided", "learn_alpha"), "alpha_init": ("guided", "alpha_init"), "guided_scale": ("guided", "scale"),
    "user_init": ("user", "init"), "user_window": ("user", "window"), "recency_decay": ("user", "recency_decay"),
    "user_trainable": ("user", "trainable"), "user_lr_multiplier": ("user", "lr_multiplier"),
}

#: Fields that only matter when tuning is on: left out of run fingerprints otherwise (flat names).
TUNING_FIELDS = tuple(name for name, (section, _) in FLAT_KEYS.items() if section == "tuning")

#: Fields that decide whether a state may be built, not what it holds: never in run fingerprints (flat names).
ACCEPTANCE_FIELDS = ("llm_max_failed",)


def flat_settings(config: GERConfig) -> dict:
    """The settings under their flat names (what the state fingerprint hashes)."""
    values = config.model_dump(mode="json")
    flat = {name: values[name] for name in ("mode", "attributes", "cache_dir")}
    flat.update({name: values[section][field] for name, (section, field) in FLAT_KEYS.items()})
    return flat
