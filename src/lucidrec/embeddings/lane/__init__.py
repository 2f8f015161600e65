"""LANE (Zhao et al., arXiv 2407.02833): a semantic item table plus a preference cross-attention over
the backbone's states; registered as ``"lane"``.

- ``config.py``: :class:`LaneConfig` (the ``[embedding]`` keys);
- ``table.py``: :class:`LaneItemEmbedding`, the trainable title-initialised item table;
- ``alignment.py``: :class:`PreferenceAlignment`, the backbone's state hook;
- ``state_files.py``: what the recipe leaves in ``<run>/lane/``.

Preference extraction and the item-table encoding are the stages of the LANE recipe
(:mod:`lucidrec.methods.lane`).
"""

from lucidrec.embeddings.lane.alignment import PreferenceAlignment
from lucidrec.embeddings.lane.config import LaneConfig
from lucidrec.embeddings.lane.table import LaneItemEmbedding

__all__ = ["LaneConfig", "LaneItemEmbedding", "PreferenceAlignment"]
