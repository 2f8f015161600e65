"""A run loaded for serving: its model (loaded once), its data (ids, titles, histories) and scoring.

Every run kind the project writes can be served: trained runs (``lucidrec train`` / ``run``, any
backbone and item embedding) and training-free baselines (``lucidrec evaluate --model pop|cooc --out``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lucidrec.config import ConfigError
from lucidrec.data.sequences import Ragged, SequenceData
from lucidrec.errors import LucidrecError
from lucidrec.files import read_json

log = logging.getLogger(__name__)
#: The split part whose metrics the explorer shows by group (the held-out test part, full ranking).
REPORTED_PROTOCOL = "test/full"


class NotFound(LucidrecError, LookupError):
    """An unknown run, user or item: answered 404 with the name."""

    def __init__(self, kind: str, name: str, where: str = ""):
        self.kind, self.name = kind, name
        super().__init__(f"unknown {kind} '{name}'{f' in run {where!r}' if where else ''}")

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ScoreRequest:
    history: tuple[int, ...]  # item indices, oldest first
    user: int  # user index, or -1 for an ad-hoc history (no per-user parameters)
    k: int
    mask_history: bool = True
    stored: bool = False  # the history is the user's stored one: their state may come from the state cache


@dataclass
class ServedRun:
    name: str
    dataset: str
    model_name: str
    method: str  # the item embedding ("id", "ger", "llmemb", ...) or "baseline"
    metrics: dict[str, float]
    data: SequenceData
    scorer: Any  # lucidrec.models.scoring.Scorer
    model: Any = None  # the trained backbone (None for baselines)
    config: Any = None  # the run's RunConfig (None for baselines)
    explainer: Any = None  # lucidrec.explain.Explainer of the run's item embedding, None when it has none
    path: Path | None = None  # the run folder (None for runs built in memory)
    interpreter: Any = None  # lucidrec.serve.readings.AttachedInterpreter (RecInterpreter), None when none is attached
    #: held by every forward pass: explainers read what the pass leaves on the model (LANE's attention weights)
    model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _titles: list[str] | None = field(default=None, repr=False)
    _title_index: dict[str, int] | None = field(default=None, repr=False)
    _counts: np.ndarray | None = field(default=None, repr=False)
    _search: Any = field(default=None, repr=False)
    _search_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _states: "UserStateCache | None" = field(default=None, repr=False)

    @property
    def loaded(self) -> tuple:
        """The run as ``load_run`` returns it (the split is not kept: serving never needs it)."""
        return self.model, self.data, None, self.config

    # -- ids and titles -------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.data.n_items

    def user_index(self, user_id: str) -> int:
        try:
            return int(self.data.user_index([user_id])[0])
        except KeyError:
            raise NotFound("user", user_id, self.name) from None

    def item_index(self, item_id: str) -> int:
        try:
            return int(self.data.item_index([item_id])[0])
        except KeyError:
            raise NotFound("item", item_id, self.name) from None

    def item_by_title(self, title: str) -> int:
        """The item with exactly this title (ignoring case when no title matches exactly); the first
        of several items sharing a title."""
        if self._title_index is None:
            index: dict[str, int] = {}
            for i in range(1, self.n_items + 1):
                index.setdefault(self.title(i), i)
            for i in range(1, self.n_items + 1):
                index.setdefault(self.title(i).casefold(), i)
            self._title_index = index
        found = self._title_index.get(title, self._title_index.get(title.casefold()))
        if found is None:
            raise NotFound("item title", title, self.name)
        return found

    def item_id(self, index: int) -> str:
        return str(self.data.item_ids[index])

    def title(self, index: int) -> str:
        if self._titles is None:  # one catalog look-up per item, once: a pandas look-up per answer is slow
            self._titles = [""] + [self.data.catalog.title(str(i)) or f"item {i}" for i in self.data.item_ids[1:]]
        return self._titles[index]

    def history(self, user: int) -> list[int]:
        """Everything the user did: what the next recommendation follows on (the test item included)."""
        return [int(i) for i in self.data.sequences[user]]

    def interactions(self, index: int) -> int:
        if self._counts is None:
            self._counts = np.bincount(self.data.sequences.values, minlength=self.n_items + 1)
        return int(self._counts[index])

    # -- scoring --------------------------------------------------------------------------------
    @property
    def state_cache(self) -> "UserStateCache | None":
        """The stored users' states, kept once computed (trained runs; baselines have no state)."""
        if self._states is None and self.model is not None:
            self._states = UserStateCache(self.data.n_users)
        return self._states

    @torch.inference_mode()
    def user_states(self, requests: list[ScoreRequest]) -> torch.Tensor:
        """(B, d) states: stored users' from the cache where it has them, the rest in one forward pass
        (stored users' then kept). The model is deterministic in eval mode, so a kept state is the
        state."""
        cache = self.state_cache
        rows = (list(range(len(requests))) if cache is None else
                [row for row, r in enumerate(requests) if not (r.stored and cache.has(r.user))])
        computed = None
        if rows:
            histories = Ragged.from_lists([list(requests[row].history) for row in rows])
            users = np.array([requests[row].user for row in rows], dtype=np.int64)
            with self.model_lock:
                computed = self.scorer.user_state(histories, users)
            if cache is not None:
                cache.put([(requests[row].user, computed[n]) for n, row in enumerate(rows) if requests[row].stored])
        if len(rows) == len(requests):
            return computed
        states = cache.get([r.user for r in requests])
        if computed is not None:
            states[torch.as_tensor(rows)] = computed
        return states

    def warm_states(self, batch: int = 64) -> None:
        """Fill the state cache for every stored user not in it yet, a batch at a time (served requests
        interleave between batches)."""
        cache = self.state_cache
        missing = [u for u in range(self.data.n_users) if not cache.has(u)]
        for start in range(0, len(missing), batch):
            self.user_states([ScoreRequest(tuple(self.history(u)), u, 1, stored=True) for u in missing[start:start + batch]])

    @torch.inference_mode()
    def score_batch(self, requests: list[ScoreRequest]) -> list[list[tuple[int, float]]]:
        """Top-k (item index, score) per request, from one forward pass over the whole batch. Ties are
        broken by the smaller index, as the evaluator does."""
        if self.model is None:  # a baseline: scored from the histories alone
            histories = Ragged.from_lists([list(r.history) for r in requests])
            state = self.scorer.user_state(histories, np.array([r.user for r in requests], dtype=np.int64))
        else:
            state = self.user_states(requests)
        scores = self.scorer.score(state, 0, self.n_items + 1).float()
        scores[:, 0] = -torch.inf
        masked = [(row, item) for row, r in enumerate(requests) if r.mask_history for item in r.history]
        if masked:
            rows, items = zip(*masked)
            scores[torch.as_tensor(rows), torch.as_tensor(items)] = -torch.inf
        return top_k_batch(scores, [r.k for r in requests])

    # -- search -----------------------------------------------------------------------------------
    def search_index(self):
        with self._search_lock:
            if self._search is None:
                from lucidrec.serve.search import TitleSearch

                self._search = TitleSearch([self.title(i) for i in range(1, self.n_items + 1)])
            return self._search

    # -- metrics ----------------------------------------------------------------------------------
    def metric_groups(self) -> dict[str, dict[str, float]]:
        """``{"all": {...}, "tail": {...}, ...}`` from the flat ``test/full/...`` keys."""
        groups: dict[str, dict[str, float]] = {}
        prefix = REPORTED_PROTOCOL + "/"
        for key, value in self.metrics.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):].split("/")
            group, metric = ("all", rest[0]) if len(rest) == 1 else (rest[0], rest[1])
            groups.setdefault(group, {})[metric] = value
        return groups


class UserStateCache:
    """One state row per stored user, filled as users are scored (or all at once by
    :meth:`ServedRun.warm_states`): n_users x d floats, allocated with the first state."""

    def __init__(self, n_users: int):
        self.n_users = n_users
        self._table: torch.Tensor | None = None
        self._filled = np.zeros(n_users, dtype=bool)
        self._lock = threading.Lock()

    def has(self, user: int) -> bool:
        return 0 <= user < self.n_users and bool(self._filled[user])

    def get(self, users: list[int]) -> torch.Tensor:
        """(B, d) a copy; rows of users not cached are zeros (the caller fills them)."""
        index = torch.as_tensor([u if self.has(u) else 0 for u in users])
        with self._lock:
            states = self._table[index].clone()
        states[torch.as_tensor([not self.has(u) for u in users])] = 0
        return states

    def put(self, rows: list[tuple[int, torch.Tensor]]) -> None:
        if not rows:
            return
        with self._lock:
            if self._table is None:
                self._table = torch.zeros(self.n_users, rows[0][1].shape[-1], dtype=rows[0][1].dtype)
            for user, state in rows:
                if 0 <= user < self.n_users:
                    self._table[user] = state
                    self._filled[user] = True


def top_k_batch(scores: torch.Tensor, ks: list[int]) -> list[list[tuple[int, float]]]:
    """Per row, the ``k`` best finite scores as (index, score), ties broken by the smaller index (the
    evaluator's rule). One batched ``topk``; only a row whose k-th score is tied beyond the top k takes
    the exact per-row path."""
    depth = min(max(ks), scores.shape[1])
    values, indices = torch.topk(scores, depth, dim=1)
    threshold = values[torch.arange(len(ks)), torch.as_tensor([min(k, depth) - 1 for k in ks])]
    at_least = (scores >= threshold[:, None]).sum(dim=1)
    values, indices = values.double().numpy(), indices.numpy()
    answers = []
    for row, k in enumerate(ks):
        k = min(k, depth)
        if int(at_least[row]) != k:  # ties straddle the cut (or fewer than k finite scores)
            answers.append(top_k(scores[row], k))
            continue
        order = np.lexsort((indices[row, :k], -values[row, :k]))
        answers.append([(int(indices[row, i]), float(values[row, i])) for i in order if np.isfinite(values[row, i])])
    return answers


def top_k(row: torch.Tensor, k: int) -> list[tuple[int, float]]:
    finite = int(torch.isfinite(row).sum())
    k = min(k, finite)
    if k == 0:
        return []
    threshold = torch.topk(row, k).values[-1]
    candidates = torch.nonzero(row >= threshold).flatten().numpy()
    values = row[candidates].double().numpy()
    order = np.lexsort((candidates, -values))[:k]
    return [(int(candidates[i]), float(values[i])) for i in order]


def _flat_metrics(stored: dict) -> dict[str, float]:
    return {k: float(v) for k, v in stored.items()
            if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}


def load_served_run(path: Path, name: str | None = None) -> ServedRun:
    """A trained run folder (``config.json`` + weights) or a baseline folder (``metrics.json`` naming pop/cooc)."""
    path = Path(path)
    name = name or path.resolve().name
    if (path / "config.json").is_file():
        from lucidrec.explain import explainer_for_embedding
        from lucidrec.train.run import load_run
        from lucidrec.train.trainer import scorer_for

        model, data, _, config = load_run(path)
        metrics = read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
        method = config.embedding["name"]
        return ServedRun(name, config.data.dataset, config.model["name"], method, _flat_metrics(metrics), data,
                         scorer_for(model), model, config, explainer_for_embedding(method), path=path)
    if (path / "metrics.json").is_file():
        from lucidrec.data.pipeline import DataConfig, load_split
        from lucidrec.models.baselines import BASELINES, make_baseline

        stored = read_json(path / "metrics.json")
        baseline = stored.get("model")
        if baseline not in BASELINES or "data" not in stored.get("config", {}):
            raise ConfigError(f"{path}: metrics.json names no trained model or baseline ({baseline!r})")
        data_config = DataConfig.model_validate(stored["config"]["data"])
        data, split = load_split(data_config)
        if stored.get("data_hash") not in (None, data.data_hash):
            raise ConfigError(f"{path}: the data changed since this baseline was evaluated")
        return ServedRun(name, data_config.dataset, baseline, "baseline", _flat_metrics(stored), data,
                         make_baseline(baseline).fit(split), path=path)
    raise ConfigError(f"{path}: not a run folder (no config.json or metrics.json)")


def parse_run_argument(argument: str) -> tuple[str | None, Path]:
    """``NAME=PATH`` or ``PATH``."""
    if "=" in argument and not Path(argument).exists():
        name, _, path = argument.partition("=")
        return name, Path(path)
    return None, Path(argument)


def load_served_runs(arguments: list[str]) -> dict[str, ServedRun]:
    runs: dict[str, ServedRun] = {}
    for argument in arguments:
        name, path = parse_run_argument(argument)
        name = name or path.resolve().name
        if name in runs:
            raise ConfigError(f"two runs are named {name!r}; name them NAME=PATH")
        log.info("loading run %s from %s", name, path)
        runs[name] = load_served_run(path, name)
        runs[name].title(0)  # the title list, built before the first request rather than during it
    return runs
