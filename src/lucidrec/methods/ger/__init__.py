"""GER (Guided Embedding Refinement, Jia et al. 2025) as a recipe over the ``ger`` item embedding.

- ``scorers.py``: encoder and LLM attribute scorers (cached, resumable); ``slots.py``: the
  one-forward-pass multi-attribute scoring helper for local transformers models;
- ``tuning.py``: the optional LoRA tuning of the LLM scorer (L_rec + λ·L_format);
- ``state.py``: scores, z-scores, the reduced base table and user priors of a run; the auto base run;
- ``recipe.py``: the stages and their order.
"""

from lucidrec.methods.ger.recipe import GERRecipe

__all__ = ["GERRecipe"]
