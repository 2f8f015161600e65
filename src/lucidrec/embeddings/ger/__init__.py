"""GER (Guided Embedding Refinement, Jia et al. 2025): interpretable attribute scores from an LLM or
a sentence encoder, concatenated with a PCA-reduced base embedding; registered as ``"ger"``.

- ``config.py``: :class:`GERConfig` (the ``[embedding]`` keys).
- ``scorers.py``: encoder and LLM attribute scorers (cached, resumable); ``slots.py``: the
  one-forward-pass multi-attribute scoring helper for local transformers models.
- ``normalise.py``: per-attribute z-scores and PCA; ``build.py``: run artifacts and the base run.
- ``refined.py``: :class:`GERItemEmbedding` with the user guided part (``adjust_states``).
"""

from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.embeddings.ger.refined import GERItemEmbedding

__all__ = ["GERConfig", "GERItemEmbedding"]
