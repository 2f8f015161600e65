"""Settings of the ``lane`` item embedding and its recipe (``[embedding]`` in a run file)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lucidrec.config import StrictConfig


#: ``item_table`` value: the table starts from the titles' sentence vectors
TITLES = "titles"


class LaneConfig(StrictConfig):
    # -- semantic item table -------------------------------------------------------------------
    encoder: str = Field("all-MiniLM-L6-v2", description="sentence encoder of item titles and preference phrases; "
                                                         "the backbone's hidden size must equal its dimension "
                                                         "(or pca_dim)")
    pca_dim: int | None = Field(None, ge=1, description="reduce the title vectors to this width by one PCA fitted on "
                                "the catalog (rows rescaled to the encoder rows' mean norm) so a narrow backbone can "
                                "use them; None: the encoder's width (the paper). Preference phrases keep the "
                                "encoder's width (the attention's key/value maps read them)")
    item_table: str = Field("titles", description="what the trainable item table starts from: 'titles' = the titles' "
                            "sentence vectors (the paper); or the item table of another run on the same data (its "
                            "folder, whose item_table.npy is read, or a .npy file of (n_items+1, d) rows in the "
                            "dataset's item order), e.g. an LLMEmb or GER run's, reduced by pca_dim when wider")
    # -- preference extraction -----------------------------------------------------------------
    source: Literal["llm", "recorded", "history"] = Field(
        "llm", description="llm = a chat model over the training history; recorded = one preference text per user "
                           "from recorded_path; history = no model: every user's most frequent genres / title words "
                           "of the training history (the fallback for all; fast, not the paper's)")
    llm: dict[str, Any] | None = Field(None, description="chat model config (lucidrec.lm.chat_config); default: local "
                                                         "SmolLM2-135M-Instruct through transformers")
    recorded_path: str | None = Field(None, description="JSONL of {user_id, preference} (source = recorded)")
    n_preferences: int = Field(5, ge=1, description="P: preferences asked per user")
    max_history: int = Field(200, ge=1, description="most recent training titles shown to the chat model")
    max_reasks: int = Field(5, ge=0, description="re-asks of an answer that is not P distinct preferences")
    max_tokens: int = Field(256, ge=16, description="answer length limit of the preference prompt")
    explanation_max_tokens: int = Field(256, ge=16, description="answer length limit (new tokens) of the chain-of-"
                                        "thought explanation (`lucidrec explain`, `lucidrec explain-quality`, and "
                                        "the LLM-only answer it is compared with); an answer cut there says so")
    users_per_call: int = Field(32, ge=1, description="users per structured call: a killed extraction keeps every "
                                                      "finished group (and each answer the chat cache already has)")
    llm_max_failed: float = Field(0.0, ge=0, le=1, description="share of users the chat model may leave without any "
                                  "answer (transport errors) before the stage stops; they get the fallback preferences")
    cache_dir: str | None = Field(None, description="root of the chat and vector caches (default: the user cache)")
    # -- alignment -----------------------------------------------------------------------------
    heads: int = Field(4, ge=1, description="heads of the preference cross-attention")
    dropout: float = Field(0.5, ge=0, lt=1, description="dropout on the attention weights and the FFN")

    @field_validator("llm")
    @classmethod
    def _no_secret_in_run_config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value and "api_key" in value:
            raise ValueError("api_key is not stored in run configs: name an environment variable with api_key_env")
        return value

    @model_validator(mode="after")
    def _recorded_needs_a_file(self):
        if self.source == "recorded" and not self.recorded_path:
            raise ValueError("source='recorded' needs recorded_path (a JSONL of {user_id, preference})")
        return self


#: Fields that decide whether a stage may finish, not what it holds: never in fingerprints.
ACCEPTANCE_FIELDS = ("llm_max_failed", "users_per_call", "cache_dir")
#: Fields of the alignment module only: the stages' artifacts do not depend on them.
MODEL_FIELDS = ("heads", "dropout", "pca_dim", "item_table")
