"""Reading models: the Explainer protocol, one explainer per explainable run type, faithfulness checks, plots.

- ``base.py``: :class:`Explainer`, :class:`Explanation`, the registry and :func:`explainer_for`.
- ``lane.py``: LANE's explainer (the preference weights its attention used).
- ``ger.py``: GER's explainer (exact per-attribute contributions); ``contributions.py`` computes them
  and checks them by intervention; ``report.py`` formats them; ``plot.py`` draws them.
"""

from lucidrec.explain.base import (EXPLAINERS, Explainer, Explanation, ItemReasons, NotExplainableError, explainer_for,
                                   explainer_for_embedding)

# Importing the explainers registers them.
from lucidrec.explain import ger, lane  # noqa: E402,F401

__all__ = ["EXPLAINERS", "Explainer", "Explanation", "ItemReasons", "NotExplainableError", "explainer_for",
           "explainer_for_embedding"]
