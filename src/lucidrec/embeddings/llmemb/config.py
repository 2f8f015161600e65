"""LLMEmb settings: the ``[embedding]`` section of a run with ``name = "llmemb"``.

Defaults are CPU-sane (MiniLM, one SCFT epoch, batch 64, 64 word pieces); the paper's values are
given in the descriptions. Keys that only change *how* a step runs (progress, checkpoint interval,
encoding batch size, artifacts folder) are left out of the artifact keys, so changing them reuses
the cache.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lucidrec.config import StrictConfig
from lucidrec.embeddings.frozen_table import AdapterActivation, TableScaling
from lucidrec.embeddings.id_part import IdInit

Variant = Literal["full", "no_align", "frozen"]


class PromptSettings(StrictConfig):
    """How an item becomes a prompt (the text SCFT tunes on and the table encodes)."""

    text_form: Literal["attributes", "title"] = Field("attributes", description="attributes: 'key is value; ...' "
                                                      "over every catalog field (the paper); title: the title only")
    domain: str | None = Field(None, description="instruction line 'The <domain> has the following attributes:', "
                               "e.g. 'beauty item'; none by default")
    instruction: str | None = Field(None, description="a custom first prompt line (overrides domain)")
    exclude_fields: list[str] = Field(default_factory=list, description="catalog fields left out of the prompts")
    max_value_chars: int = Field(100, ge=1, description="attribute values are cut to this many characters (paper: 100)")
    max_seq_length: int = Field(64, ge=8, description="word pieces per prompt (longer prompts are truncated)")


class TuningSettings(StrictConfig):
    """Tuning the encoder: SCFT (the paper) or on interaction pairs; every setting applies to both."""

    kind: Literal["scft", "interactions"] = Field(
        "scft", description="what the encoder is tuned on: scft (two attribute-dropout views of each item, the "
        "paper) or interactions ((item, next item) pairs of the split's training part, in-batch negatives, "
        "outside the paper)")
    dropout_ratio: float = Field(0.4, ge=0, le=1, description="each view drops the last floor(ratio*n) of its shuffled attributes")
    word_dropout_fallback: bool = Field(True, description="items whose attribute dropout would drop nothing "
                                        "(floor(ratio*n) = 0, e.g. title-only catalogs) drop floor(ratio*words) "
                                        "words of each value instead; false = the paper's augmentation only")
    loss: Literal["infonce", "soft"] = Field("infonce", description="infonce: one-hot targets on cosine logits "
                                             "(the paper's text); soft: the official code's soft targets")
    temperature: float | None = Field(None, gt=0, description="infonce: fixed τ (default 0.05); soft: initial "
                                      "value of the learnable τ (default 3, as in the code)")
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=2, description="items per batch (each gives two views)")
    lr: float = Field(5e-5, gt=0, description="AdamW learning rate (paper, LoRA on LLaMA: 2e-4)")
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="linear warm-up share, then linear decay")
    max_steps: int | None = Field(None, ge=1, description="stop tuning after this many steps (paper: 4000)")
    seed: int = Field(0, description="tuning seed, independent of train.seed so all seeds share one tuned encoder")
    checkpoint_every: int = Field(200, ge=1, description="steps between resumable checkpoints")
    lora: bool = Field(False, description="tune LoRA adapters instead of all weights (paper: LoRA r=8 on LLaMA-7B)")
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_targets: list[str] | None = Field(None, description="module names; None: peft's default for the architecture "
                                           "(paper: q,k,v,o,gate,up,down projections)")

    @model_validator(mode="after")
    def _check(self):
        if self.lora_targets is not None and not self.lora_targets:
            raise ValueError("lora_targets must name at least one module (or be null for peft's default)")
        return self

    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.05 if self.loss == "infonce" else 3.0


class TableSettings(StrictConfig):
    """The item table (encoded prompts) and how its rows enter the adapter."""

    encode_batch_size: int = Field(64, ge=1)
    pca_dim: int | None = Field(None, ge=1, description="PCA of the table to this width (paper: 4096 -> 1536); "
                                "not needed at 384-d")
    scaling: TableScaling = Field(
        "raw", description="how the table rows enter the adapter: raw (unit-norm encoder rows); centered (minus the "
        "mean row, as the code's PCA does); standardized (centered, unit mean coordinate variance, the scale of "
        "LLaMA states); docs/fidelity.md")
    whitening_shrinkage: float = Field(0.0, ge=0, le=1, description="scaling pca_whitened / zca_whitened: "
                                       "shrink the covariance towards a multiple of the identity")


class AdapterSettings(StrictConfig):
    hidden: int | None = Field(None, ge=1, description="adapter width; default D/2 (paper 1536->768->d)")
    dropout: float = Field(0.0, ge=0, lt=1)
    activation: AdapterActivation = Field("none", description="none: linear adapter (the paper); gelu: one "
                                          "non-linearity between its layers (outside the paper)")


class IdPartSettings(StrictConfig):
    """A trainable id vector per item added to the adapter's output (text + id hybrid, outside the paper)."""

    enabled: bool = Field(False, description="add the id part (docs/fidelity.md)")
    init: IdInit = Field("random", description="its start: random (std 0.02), zero, or text (the adapter's "
                         "initial output)")
    dropout: float = Field(0.0, ge=0, lt=1, description="training only: drop each item's whole id vector with "
                           "this probability")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty weight_decay/2·||id||² on the id part")

    @model_validator(mode="after")
    def _only_when_enabled(self):
        if not self.enabled:
            given = [name for name, default in (("init", "random"), ("dropout", 0.0), ("weight_decay", 0.0))
                     if getattr(self, name) != default]
            if given:
                raise ValueError(f"{', '.join(given)} only apply with enabled=true")
        return self


class AlignmentSettings(StrictConfig):
    weight: float = Field(0.01, ge=0, description="α: weight of the alignment loss (paper 0.01); "
                          "train.aux_weight multiplies it again")
    temperature: float = Field(2.0, gt=0, description="τ of the alignment loss (paper 2)")
    loss: Literal["soft", "infonce"] = Field("soft", description="paper/code: soft-target contrastive")
    max_items: int | None = Field(1024, ge=2, description="at most this many target items per step enter "
                                  "the alignment loss (a random subset; None: all, as in the code)")


class ReferenceSettings(StrictConfig):
    """E_cf: the item table of the id-based SASRec the alignment pulls towards."""

    run: str | None = Field(None, description="run folder of a trained id-based SASRec (its item_table.npy "
                            "is E_cf); default: the id SASRec of this run's own data, model width, "
                            "dropout, training settings and seed (a recorded one, else trained and cached)")
    epochs: int | None = Field(None, ge=1, description="epochs of the reference SASRec (default train.epochs)")
    seed: int | None = Field(None, description="seed of the reference SASRec (default train.seed: the run's own "
                             "id baseline)")


class LLMEmbConfig(StrictConfig):
    """One section per stage: prompts -> tuning (SCFT) -> table -> adapter / id_part -> alignment with the
    reference (E_cf) run."""

    variant: Variant = Field("full", description="full: SCFT + alignment; no_align: SCFT only; "
                             "frozen: the untuned encoder's table behind the adapter (the paper's LLM2X)")
    encoder: str = Field("all-MiniLM-L6-v2", description="sentence encoder (offline alias, local folder or cached "
                         "Hugging Face id); any AutoModel works (paper: LLaMA-7B)")
    artifacts_dir: str | None = Field(None, description="cache of tuned encoders, tables and CF runs "
                                      "(default <user cache>/artifacts)")
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    tuning: TuningSettings = Field(default_factory=TuningSettings)
    table: TableSettings = Field(default_factory=TableSettings)
    adapter: AdapterSettings = Field(default_factory=AdapterSettings)
    id_part: IdPartSettings = Field(default_factory=IdPartSettings)
    alignment: AlignmentSettings = Field(default_factory=AlignmentSettings)
    reference: ReferenceSettings = Field(default_factory=ReferenceSettings)

    @model_validator(mode="after")
    def _check(self):
        if self.tuning.kind != "scft" and self.variant == "frozen":
            raise ValueError(f"tuning.kind={self.tuning.kind!r} tunes the encoder, which variant 'frozen' does not")
        return self

    @property
    def needs_scft(self) -> bool:
        return self.variant != "frozen"

    @property
    def needs_alignment(self) -> bool:
        return self.variant == "full" and self.alignment.weight > 0

    def scft_fields(self) -> dict:
        """What SCFT computes from, under the flat names its cache keys have always used."""
        return {name: value for name, value in flat_settings(self).items() if name in SCFT_FIELDS}


#: Where each key of the flat config (before the stage sections) lives now: flat name -> (section, field).
#: Cache keys are computed over the flat names, so tuned encoders and tables made before stay valid.
FLAT_KEYS: dict[str, tuple[str, str]] = {
    **{name: ("prompts", name) for name in PromptSettings.model_fields},
    "tuning": ("tuning", "kind"),
    **{name: ("tuning", name) for name in ("dropout_ratio", "word_dropout_fallback", "loss", "temperature", "lora",
                                          "lora_r", "lora_alpha", "lora_dropout", "lora_targets")},
    **{f"scft_{name}": ("tuning", name) for name in ("epochs", "batch_size", "lr", "weight_decay", "warmup_ratio",
                                                     "max_steps", "seed", "checkpoint_every")},
    "encode_batch_size": ("table", "encode_batch_size"), "pca_dim": ("table", "pca_dim"),
    "table_scaling": ("table", "scaling"), "whitening_shrinkage": ("table", "whitening_shrinkage"),
    **{f"adapter_{name}": ("adapter", name) for name in AdapterSettings.model_fields},
    "residual_id": ("id_part", "enabled"),
    **{f"id_{name}": ("id_part", name) for name in ("init", "dropout", "weight_decay")},
    **{f"align_{name}": ("alignment", name) for name in AlignmentSettings.model_fields},
    "collaborative_run": ("reference", "run"), "cf_epochs": ("reference", "epochs"), "cf_seed": ("reference", "seed"),
}

#: Fields that decide what SCFT computes (they form its cache key, with the encoder and texts); flat names.
SCFT_FIELDS = ("text_form", "domain", "instruction", "exclude_fields", "max_value_chars", "dropout_ratio", "word_dropout_fallback",
               "loss", "temperature", "scft_epochs", "scft_batch_size", "scft_lr", "scft_weight_decay",
               "scft_warmup_ratio", "scft_max_steps", "scft_seed", "max_seq_length", "lora", "lora_r", "lora_alpha",
               "lora_dropout", "lora_targets")


def flat_settings(config: LLMEmbConfig) -> dict:
    """The settings under their flat names, in the flat config's order (what artifact keys hash)."""
    values = config.model_dump(mode="json")
    flat = {"variant": values["variant"], "encoder": values["encoder"]}
    flat.update({name: values[section][field] for name, (section, field) in FLAT_KEYS.items()})
    flat["artifacts_dir"] = values["artifacts_dir"]
    return flat
