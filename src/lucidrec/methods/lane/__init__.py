"""LANE (Zhao et al., arXiv 2407.02833) as a recipe over the ``lane`` item embedding.

- ``phrases.py``: the answer schema (exactly P distinct preferences), the fallback, recorded-text splitting;
- ``extraction.py``: preferences from a chat model over the training history, or from a recorded file;
- ``item_table.py``: the titles' sentence vectors;
- ``recipe.py``: the stages and their order.
"""

from lucidrec.methods.lane.recipe import LaneRecipe

__all__ = ["LaneRecipe"]
