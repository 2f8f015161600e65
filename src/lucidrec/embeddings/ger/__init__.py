"""GER (Guided Embedding Refinement, Jia et al. 2025): interpretable attribute scores from an LLM or
a sentence encoder, concatenated with a PCA-reduced base embedding; registered as ``"ger"``.

- ``config.py``: :class:`GERConfig` (the ``[embedding]`` keys); ``attributes.py`` (+ ``attributes/*.toml``):
  the attribute sets.
- ``refined.py``: :class:`GERItemEmbedding`; ``user.py``: its user guided part, the backbone's state hook.
- ``state_files.py``: the state a run keeps in ``<run>/ger/``; ``normalise.py``: per-attribute z-scores.

Scoring, the base run and the optional scorer tuning are the stages of the GER recipe
(:mod:`lucidrec.methods.ger`).
"""

from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.embeddings.ger.refined import GERItemEmbedding

__all__ = ["GERConfig", "GERItemEmbedding"]
