"""RecInterpreter on a served run: attaching an adapter folder (``lucidrec interpret train --out``) to the
run it was trained on, and the language model's reading of a state on the request path.

A reading takes seconds on a CPU (two greedy generations), so:

- answers are kept per run by (history, user) in a bounded least-recently-used cache: greedy decoding
  gives the same answer to the same question, and the explorer asks again on every click;
- each run's LM generates one reading at a time (it and its prompt cache are shared), and at most
  ``max_readings`` readings are in flight across runs: the next is answered 503 + Retry-After at once;
- the recommender's part (its states) runs under the run's model lock, the LM's part outside it, so
  scoring never waits for the LM.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable

from fastapi.concurrency import run_in_threadpool

from lucidrec.config import ConfigError
from lucidrec.errors import LucidrecError
from lucidrec.interpret import folder as fs
from lucidrec.interpret.reader import StateReader
from lucidrec.serve.runs import ServedRun, parse_run_argument
from lucidrec.serve.schemas import InterpreterInfo, Item, StateReading
from lucidrec.serve.security import ScoringGate

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5  # a reading takes seconds: ask clients to come back later than after a scoring 503


class NoInterpreter(LucidrecError, LookupError):
    def __init__(self, run: str):
        super().__init__(f"no interpreter for run {run!r}: serve it with --interpreter FOLDER, a folder written by "
                         "'lucidrec interpret train --run RUN --out FOLDER'")

    def __str__(self) -> str:
        return self.args[0]


@dataclass
class AttachedInterpreter:
    reader: StateReader
    folder: Path
    #: one generation at a time per LM: its prompt cache is shared, and two at once only share the cores
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self) -> InterpreterInfo:
        return InterpreterInfo(task=self.reader.task, lm=self.reader.lm_identity, folder=self.folder.name)


def attach_interpreter(run: ServedRun, folder: Path, *, lm=None) -> None:
    """Read ``run``'s states with the adapter in ``folder``: it must have been trained on this run (same
    weights and data) and its LM (loaded here, or ``lm``) must be the one it was trained for."""
    if run.model is None or run.path is None:
        raise ConfigError(f"run {run.name!r} is a baseline: RecInterpreter reads a trained model's states")
    reader = StateReader.open(Path(folder), run.path, run.model, run.data, lm=lm)
    run.interpreter = AttachedInterpreter(reader, Path(folder))
    log.info("run %s: RecInterpreter %s (%s, %s)", run.name, folder, reader.task, reader.lm_identity)


def attach_interpreters(runs: dict[str, ServedRun], arguments: list[str], *, lm=None) -> None:
    """``FOLDER`` attaches to the served run the folder was trained on (found by its weights and data
    hash); ``NAME=FOLDER`` to the run named NAME (checked the same way). A folder of no served run is an
    error naming the run it was trained on and the runs served."""
    for argument in arguments:
        name, folder = parse_run_argument(argument)
        if name is not None:
            if name not in runs:
                raise ConfigError(f"--interpreter {argument}: no served run is named {name!r} (served: {', '.join(runs)})")
            run = runs[name]
        else:
            run = _run_trained_on(folder, runs)
        if run.interpreter is not None:
            raise ConfigError(f"run {run.name!r} has two interpreters ({run.interpreter.folder} and {folder}); "
                              "serve the run twice under two names (NAME=RUN) to compare them")
        attach_interpreter(run, folder, lm=lm)


def _run_trained_on(folder: Path, runs: dict[str, ServedRun]) -> ServedRun:
    stored = fs.read_manifest(folder)["run"]
    trained = [run for run in runs.values() if run.model is not None and run.path is not None]
    if len(trained) == 1:
        return trained[0]  # attach_interpreter checks it, naming both runs when it is not the one
    matches = [run for run in trained if fs.same_run(stored, fs.run_identity(run.path))]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        served = ", ".join(f"{run.name} ({run.path})" for run in trained) or "none"
        raise ConfigError(f"{folder} holds an adapter trained on the run {stored['path']} (weights "
                          f"{stored['weights_sha1']}, data {stored['data_hash']}), which is none of the trained runs "
                          f"served: {served}")
    raise ConfigError(f"{folder} was trained on a run served as {', '.join(r.name for r in matches)}: "
                      "say which with --interpreter NAME=FOLDER")


def require_interpreter(run: ServedRun) -> AttachedInterpreter:
    if run.interpreter is None:
        raise NoInterpreter(run.name)
    return run.interpreter


class LRUCache:
    """A bounded mapping that drops the least recently used entry (kept by hand: an OrderedDict and a lock
    are all it takes, and the caching libraries need the lock around them anyway)."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Readings:
    """The readings of every served run: cache, bound on readings in flight, generation off the event loop."""

    def __init__(self, max_in_flight: int, cache_size: int):
        self.gate = ScoringGate(max_in_flight, "state readings", RETRY_AFTER_SECONDS)
        self.cache_size = cache_size
        self._caches: dict[str, LRUCache] = {}
        self._caches_lock = threading.Lock()

    def cache(self, run: ServedRun) -> LRUCache:
        with self._caches_lock:
            return self._caches.setdefault(run.name, LRUCache(self.cache_size))

    async def read(self, run: ServedRun, history: list[int], user: int | None) -> StateReading:
        """The reading of ``history`` (item indices; ``user`` a user index lending its per-user parameters,
        or None): from the cache, else generated (503 when ``max_in_flight`` readings already are)."""
        require_interpreter(run)
        key = (tuple(history), user)
        cached = self.cache(run).get(key)
        if cached is not None:
            return cached
        with self.gate.slot():
            return await run_in_threadpool(self._generate, run, history, user, key)

    def _generate(self, run: ServedRun, history: list[int], user: int | None, key) -> StateReading:
        attached = require_interpreter(run)
        cache = self.cache(run)
        with attached.lock:
            cached = cache.get(key)  # the same question may have been answered while this one waited
            if cached is not None:
                return cached
            with run.model_lock:
                prepared = attached.reader.prepare(history, user)
            answer = attached.reader.answer(prepared)
            reading = _to_schema(run, answer, user)
            cache.put(key, reading)
            return reading


def _to_schema(run: ServedRun, answer, user: int | None) -> StateReading:
    def item(index: int) -> Item:
        return Item(item_id=run.item_id(index), title=run.title(index))

    heldout = None if user is None else str(run.data.user_ids[user]) in run.interpreter.reader.heldout_users
    return StateReading(task=answer.task, lm=answer.lm, prompt=answer.prompt, current_state=answer.current_state,
                        predicted_next_item=answer.predicted_next_item, last_item=item(answer.last_item),
                        recent_items=[item(i) for i in answer.recent_items],
                        recommender_top=[item(i) for i in answer.backbone_top], heldout=heldout)
