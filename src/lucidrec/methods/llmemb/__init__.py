"""LLMEmb (Liu et al., AAAI 2025) as a recipe over the ``llmemb`` item embedding.

SCFT tunes a text encoder contrastively on attribute-dropout views of item prompts (:mod:`.scft`,
:mod:`.prompts`, :mod:`.encoder`); the tuned encoder turns every item's prompt into a frozen table
(:mod:`.table`); an id-based SASRec gives the collaborative table E_cf (:mod:`.collaborative`); RAT
trains the adapter over the table inside any backbone (:mod:`lucidrec.embeddings.llmemb.rat`). The
order and caching of these steps is the recipe (:mod:`.recipe`).
"""

from lucidrec.methods.llmemb.recipe import LLMEmbRecipe

__all__ = ["LLMEmbRecipe"]
