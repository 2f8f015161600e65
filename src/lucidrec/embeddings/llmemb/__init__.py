"""LLMEmb (Liu et al., AAAI 2025) as an item-embedding source any backbone can use.

SCFT tunes a text encoder contrastively on attribute-dropout views of item prompts
(:mod:`.scft`); the tuned encoder turns every item's prompt into a frozen table (:mod:`.table`);
RAT trains a two-layer adapter over that table inside any backbone, aligned with a collaborative
SASRec table (:mod:`.rat`, :mod:`.collaborative`). Steps are cached as content-addressed
artifacts (:mod:`.artifacts`). Use ``--embedding llmemb`` (registered as ``"llmemb"``).
"""

from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.embeddings.llmemb.rat import LLMEmbEmbedding

__all__ = ["LLMEmbConfig", "LLMEmbEmbedding"]
