"""Item-embedding sources: the one seam through which backbones get item vectors.

A backbone never owns an ``nn.Embedding`` for items; it asks an :class:`ItemEmbedding` for
vectors of ids (inputs) and for the whole table (scoring). That is what lets plain ids, frozen
text tables behind adapters, LLMEmb and GER refined embeddings plug into the same SASRec.
"""

from lucidrec.embeddings.base import EMBEDDINGS, ItemEmbedding, make_item_embedding

__all__ = ["EMBEDDINGS", "ItemEmbedding", "make_item_embedding"]

# Importing the modules registers them.
from lucidrec.embeddings import frozen_table, id_table  # noqa: E402,F401
from lucidrec.embeddings import ger  # noqa: E402,F401
from lucidrec.embeddings import lane, llmemb  # noqa: E402,F401
