"""Settings of the ``ger`` item embedding (one flat, strict config: ``[embedding]`` in a run file)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lucidrec.config import StrictConfig

GERMode = Literal["guided", "reduced", "refined"]


class GERConfig(StrictConfig):
    # -- what is built ---------------------------------------------------------------------------
    mode: GERMode = Field("refined", description="refined = [guided ; PCA(base)]; guided = guided block + a trainable "
                                                 "lift of it (no base); reduced = [0 ; PCA(base)] (no guided block)")
    attributes: str | None = Field(None, description="attribute set name (movies, beauty, scientific) or a TOML file; "
                                                     "default: chosen from the dataset name")
    # -- item scoring ----------------------------------------------------------------------------
    scorer: Literal["encoder", "llm"] = Field("encoder", description="encoder = MiniLM anchor scoring; llm = a chat model")
    llm: dict[str, Any] | None = Field(None, description="chat model config (lucidrec.lm.chat_config); default: local "
                                                         "SmolLM2-135M-Instruct through transformers")
    llm_method: Literal["auto", "slots", "logprobs", "json"] = Field(
        "auto", description="slots = one forward pass per item for all attributes (transformers backend); logprobs = one "
                            "prompt per item and attribute, first-token logprobs (any backend that returns them); "
                            "json = a JSON answer, validated and re-asked; auto = slots for transformers, else logprobs")
    llm_batch_size: int = Field(16, ge=1, description="items per forward pass (slots)")
    max_reasks: int = Field(2, ge=0, description="json: re-asks of an invalid answer")
    llm_max_failed: float = Field(0.0, ge=0, le=1, description="share of the items (and of the users, with "
                                  "user_init='llm') the LLM may leave without a score after retries and re-asks; "
                                  "they fall back to z = 0 (the attribute mean) and the history prior. Above it "
                                  "the run stops with an error; 0 = every text must be scored")
    encoder: str = Field("all-MiniLM-L6-v2", description="sentence encoder of the encoder scorer (name or folder)")
    text_form: Literal["title", "attributes", "description"] = "description"
    text_exclude: list[str] = Field(default_factory=lambda: ["release", "year"],
                                    description="catalog fields left out of item texts")
    max_text_chars: int = Field(300, ge=20, description="item texts are cut to this length before scoring")
    scores_path: str | None = Field(None, description="precomputed raw item scores (.npz from a previous run's ger/ "
                                                      "folder); skips scoring")
    cache_dir: str | None = Field(None, description="root of the LLM/encoder caches and auto base runs "
                                                    "(default: the lucidrec user cache)")
    # -- optional: LoRA-tuning the slot scorer on the recommendation loss (the paper's L_rec + lambda L_format) --
    tune_scorer: bool = Field(False, description="before scoring the catalog, LoRA-tune the LLM scorer so that its "
                                                 "attribute scores rank each user's last training item above sampled "
                                                 "negatives under the base model (llm scorer, slots method, refined)")
    tune_steps: int = Field(150, ge=1, description="optimizer steps of the scorer tuning")
    tune_users: int = Field(4, ge=1, description="training users per step (their last training item is the target)")
    tune_negatives: int = Field(12, ge=1, description="negative items per step, shared by its users")
    tune_negatives_from: Literal["uniform", "base_top"] = Field(
        "uniform", description="uniform = random items with text; base_top = each user's best-scored items under the "
                               "base model (not its target or history), ceil(N / users) per user")
    tune_lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the LoRA weights")
    tune_format_weight: float = Field(0.1, ge=0, description="lambda: weight of L_format = -log(probability mass on "
                                                             "the score tokens)")
    tune_lora_r: int = Field(8, ge=1)
    tune_lora_alpha: int = Field(16, ge=1)
    tune_layers: int = Field(6, ge=0, description="LoRA on the attention of the top this-many layers (0 = all); "
                                                  "lower layers need no backward pass")
    tune_seed: int = 0
    tune_checkpoint_every: int = Field(25, ge=1, description="steps between resumable checkpoints")
    # -- base embedding and its reduction --------------------------------------------------------
    base_run: str | None = Field(None, description="run folder of a trained base model (any backbone, any item "
                                                   "embedding); default: train/reuse an id-based base_model run")
    base_model: str = Field("sasrec", description="backbone of the auto-trained base run")
    base_epochs: int | None = Field(None, ge=1, description="epochs of the auto base run (default: the run's own)")
    train_reduced: bool = Field(True, description="fine-tune the PCA block during training (else frozen)")
    user_reduced: Literal["backbone", "base"] = Field(
        "backbone", description="the users' non-attribute block: backbone = this run's own sequence state (trained "
                                "on the refined item vectors); base = the frozen base model's state projected with "
                                "the items' PCA (the paper's [g_u ; reduce(e_u^b)] literally; same objective only)")
    # -- guided block -----------------------------------------------------------------------------
    learn_alpha: bool = Field(True, description="a learnable scale alpha on the item guided block")
    alpha_init: float = 1.0
    guided_scale: float | None = Field(None, gt=0, description="fixed scale of the z-scored item block (default: RMS "
                                                               "of the base table entries, 0.1 without a base)")
    # -- user guided part ------------------------------------------------------------------------
    user_init: Literal["history", "llm"] = Field("history", description="history = recency-weighted mean of the item "
                                                 "scores of the last user_window items; llm = the chat model scores "
                                                 "the history text (cold users fall back to history)")
    user_window: int = Field(20, ge=1, description="L: items of the history aggregated into the user guided part")
    recency_decay: float = Field(0.9, gt=0, le=1, description="weight of an item k steps back = decay**k")
    user_trainable: bool = Field(True, description="a trainable per-user offset on the guided part (init 0)")
    user_lr_multiplier: float = Field(10.0, gt=0, description="the offset is stored as w / multiplier: with Adam its "
                                                               "rows move this many times faster (each row is updated "
                                                               "only when its user is in the batch)")

    @field_validator("llm")
    @classmethod
    def _no_secret_in_run_config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The run folder's config.json stores this dict verbatim; a key written there would leak.
        if value and "api_key" in value:
            raise ValueError("api_key is not stored in run configs: put the key in an environment variable and name "
                             "it with api_key_env (default OPENAI_API_KEY)")
        return value

    @model_validator(mode="after")
    def _tuning_needs_the_slot_scorer(self):
        if self.tune_scorer:
            wrong = [f"{name}={value!r}" for name, value, ok in (
                ("scorer", self.scorer, self.scorer == "llm"), ("llm_method", self.llm_method, self.llm_method in ("auto", "slots")),
                ("mode", self.mode, self.mode == "refined"), ("scores_path", self.scores_path, self.scores_path is None)) if not ok]
            if wrong:
                raise ValueError("tune_scorer needs scorer='llm', llm_method 'slots' or 'auto', mode='refined' and no "
                                 f"scores_path (it tunes the model that scores); got {', '.join(wrong)}")
        return self


#: Fields that only matter when ``tune_scorer`` is on: left out of run fingerprints otherwise, so runs
#: written before the option existed keep theirs.
TUNING_FIELDS = tuple(name for name in GERConfig.model_fields if name.startswith("tune_"))

#: Fields that decide whether a state may be built, not what it holds: never in run fingerprints.
ACCEPTANCE_FIELDS = ("llm_max_failed",)
