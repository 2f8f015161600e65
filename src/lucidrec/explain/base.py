"""The Explainer protocol: ``explain(run, user, k) -> Explanation`` for a run folder's user,
``explain_history(loaded, history, k) -> Explanation`` for any history (a served visitor's), and the
registry that picks one per run.

An explanation lists the user's top-k items, best first, each with human-readable reasons, plus a
machine-readable ``payload`` (the explainer's own JSON: for GER the exact per-attribute contributions)
and, when asked, the result of the explainer's faithfulness check. ``lucidrec explain`` dispatches on
the run's item embedding through :data:`EXPLAINERS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lucidrec.config import ConfigError
from lucidrec.errors import LucidrecError
from lucidrec.files import read_json
from lucidrec.registry import Registry


class NotExplainableError(LucidrecError, ValueError):
    pass


@dataclass
class ItemReasons:
    item_id: str  # the dataset's item id
    rank: int  # 1-based
    score: float
    title: str
    reasons: list[str]  # why, in words, most important first


@dataclass
class Explanation:
    run: str
    user_id: str | None  # None: a history without a user (a served visitor)
    items: list[ItemReasons]
    payload: dict  # machine-readable, JSON-serialisable
    text: str  # the readable report
    check: dict | None = None  # the faithfulness check, when asked: {"ok": bool, ...}
    detail: Any = field(default=None, repr=False)  # the explainer's own result object (plots read it)


class Explainer(Protocol):
    def explain(self, run: Path, user: str, k: int = 10, *, holdout: bool = False, check: bool = False,
                loaded=None) -> Explanation:
        """The top-k items of ``user`` (a dataset user id) in ``run``, each with its reasons. ``holdout``
        explains from the test-time history; ``check`` runs the explainer's faithfulness check;
        ``loaded`` is a ``load_run`` result to reuse."""

    def explain_history(self, loaded, history: list[int], k: int = 10, *, user: int | None = None,
                        narrate: bool = True) -> Explanation:
        """The top-k items after ``history`` (item indices of the run's data, oldest first) in a
        ``load_run`` result. ``user`` (a user index) lends that user's per-user parameters (GER's user
        part, LANE's preferences); None explains a visitor who has none, and the payload says what
        stood in for them. ``narrate=False`` leaves out any text a language model would write (slow on
        CPU), keeping only what is read off the model."""

    def unavailable(self, model) -> str | None:
        """Why this loaded model cannot be explained (e.g. an ablation without the explained part), or None."""

    def plot(self, explanation: Explanation, path: Path) -> Path:
        """A figure of the explanation (PNG)."""


EXPLAINERS: Registry[type[Explainer]] = Registry("explainer (by the run's item embedding)")


def explainer_for_embedding(embedding: str) -> Explainer | None:
    """The explainer registered for an item embedding, or None when it has none."""
    return EXPLAINERS.get(embedding)() if embedding in EXPLAINERS else None


def explainer_for(run: Path) -> Explainer:
    """The explainer of a run, chosen by the item embedding its config.json names."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run}: not a run folder (no config.json)")
    embedding = read_json(path).get("embedding", {}).get("name", "id")
    if embedding not in EXPLAINERS:
        raise NotExplainableError(f"{run}: runs with --embedding {embedding} have no explainer "
                                  f"(explainable: {', '.join(EXPLAINERS.names())})")
    return EXPLAINERS.get(embedding)()
