"""Reading one history's state with a trained adapter: what ``lucidrec interpret ask`` prints, for a
stored user or any other history, over a recommender that is already loaded (``ask`` loads its run;
a server attaches a reader to the run it serves).

A reading is two greedy answers of the frozen LM to the folder's first test prompt: one for the
current state (residual: the states before and after the last item; recovery: the state), one for
the state the backbone expects next (``evaluation.instantiate``), so the LM names the item the
recommender predicts. Reading is split in two steps: :meth:`StateReader.prepare` runs the
recommender (fast, and the only step that touches the recommender's model) and
:meth:`StateReader.answer` runs the LM (seconds on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lucidrec.config import ConfigError
from lucidrec.data.sequences import Ragged
from lucidrec.errors import LucidrecError
from lucidrec.interpret import examples as ex
from lucidrec.interpret import folder as fs
from lucidrec.interpret.adapter import StateAdapter
from lucidrec.interpret.config import InterpretConfig
from lucidrec.interpret.interpreter import Interpreter
from lucidrec.interpret.templates import load_templates
from lucidrec.interpret.titles import CatalogTitles
from lucidrec.interpret.training import ADAPTER
from lucidrec.lm.soft_prompt import SoftPromptLM

#: Interactions a history needs: the current state is read next to the state one item earlier.
MIN_HISTORY = 2
TOP = 10  # backbone items listed next to the reading


class HistoryTooShort(LucidrecError, ValueError):
    pass


@dataclass(frozen=True)
class PreparedReading:
    """The recommender's part of a reading: the states the LM reads and what the backbone ranks first."""

    now: torch.Tensor  # (1, slots, positions, d): the current state(s)
    after: torch.Tensor  # (1, slots, positions, d): the same with the backbone's expected next state
    last_item: int
    recent_items: list[int]
    backbone_top: list[int]


@dataclass(frozen=True)
class StateReading:
    task: str
    lm: str
    prompt: str
    current_state: str  # the LM's answer for the current state
    predicted_next_item: str  # its answer for the state the backbone expects next
    last_item: int  # item indices of the run's data
    recent_items: list[int]
    backbone_top: list[int]


def trained_manifest(folder: Path) -> dict:
    """The folder's manifest, when its adapter has finished training (else an error saying how to finish)."""
    folder = Path(folder)
    manifest = fs.read_manifest(folder)
    if manifest.get("status") not in ("done", "stopped") or not (folder / ADAPTER).is_file():
        raise ConfigError(f"{folder}: the adapter's training has not finished (status {manifest.get('status')}); "
                          "run 'lucidrec interpret train' again to resume it")
    return manifest


def new_interpreter(config: InterpretConfig, d_state: int, lm: SoftPromptLM) -> Interpreter:
    """The LM with a fresh adapter shaped by ``config.adapter`` for ``d_state``-wide recommender states."""
    a = config.adapter
    return Interpreter(lm, StateAdapter(d_state, lm.dim, a.pool, a.window, a.tokens, a.hidden))


def load_adapter_weights(interpreter: Interpreter, folder: Path) -> Interpreter:
    """``folder``'s trained adapter weights into ``interpreter``, switched to evaluation mode."""
    interpreter.adapter.load_state_dict(torch.load(Path(folder) / ADAPTER, weights_only=True))
    interpreter.adapter.eval()
    return interpreter


def load_trained_adapter(folder: Path, config: InterpretConfig, d_state: int, lm: SoftPromptLM) -> Interpreter:
    return load_adapter_weights(new_interpreter(config, d_state, lm), folder)


class StateReader:
    """A trained adapter and its LM over a loaded recommender (``model``) and its catalog (``titles``)."""

    def __init__(self, interpreter: Interpreter, config: InterpretConfig, model, titles: CatalogTitles,
                 heldout_users: frozenset[str] = frozenset()):
        self.interpreter, self.config, self.model, self.titles = interpreter, config, model, titles
        self.heldout_users = heldout_users
        self.prompt = load_templates(config.task, config.templates).test[0]

    @classmethod
    def open(cls, folder: Path, run: Path, model, data, *, lm: SoftPromptLM | None = None) -> "StateReader":
        """The adapter in ``folder`` over the run at ``run``, already loaded as ``model`` and ``data``. A
        folder trained on another run (other weights or data) or for another LM is an error naming both;
        the run is checked before the LM is loaded."""
        folder = Path(folder)
        manifest = trained_manifest(folder)
        fs.check_run(folder, manifest["run"], fs.run_identity(run))
        config: InterpretConfig = manifest["config"]
        lm = lm or SoftPromptLM.load(config.lm)
        fs.check_lm(folder, manifest["lm"], lm.identity)
        interpreter = load_trained_adapter(folder, config, int(model.item_table().shape[1]), lm)
        titles = CatalogTitles.from_data(data, config.examples.title_field)
        return cls(interpreter, config, model, titles, frozenset(manifest.get("users", {}).get("heldout", [])))

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def lm_identity(self) -> str:
        return self.interpreter.lm.identity

    @property
    def max_new_tokens(self) -> int:
        configured = self.config.evaluation.max_new_tokens
        return configured or (32 if self.task == "residual" else 24 * self.config.examples.recovery_items)

    @torch.no_grad()
    def prepare(self, history: list[int] | np.ndarray, user: int | None = None) -> PreparedReading:
        """The states of ``history`` (item indices, oldest first) and the backbone's expected next state;
        ``user`` (a user index) lends that user's per-user parameters to the prediction, None reads a
        history without a user."""
        sequence = np.asarray(history, dtype=np.int64)
        if len(sequence) < MIN_HISTORY:
            raise HistoryTooShort(f"a history of {len(sequence)} item(s): reading a state needs at least {MIN_HISTORY}")
        self.model.eval()
        positions = self.interpreter.adapter.positions
        users = np.asarray([-1 if user is None else user])
        current = ex.sequence_states(self.model, Ragged.from_lists([sequence[:-1], sequence]), positions)
        predicted = ex.predicted_states(self.model, [sequence], users, positions, self.config.evaluation.instantiate)
        if self.task == "residual":
            now, after = torch.stack([current[0], current[1]])[None], torch.stack([current[1], predicted[0]])[None]
        else:
            now, after = current[1][None, None], predicted[0][None, None]
        top = ex.backbone_top(self.model, [sequence], users, TOP)[0][0]
        recent = sequence[-self.config.examples.recovery_items:]
        return PreparedReading(now, after, int(sequence[-1]), [int(i) for i in recent], [int(i) for i in top])

    def answer(self, prepared: PreparedReading, max_new_tokens: int | None = None) -> StateReading:
        """The LM's two answers (one batched generation)."""
        states = torch.cat([prepared.now, prepared.after])
        current, predicted = self.interpreter.generate(self.prompt, states, max_new_tokens or self.max_new_tokens)
        return StateReading(self.task, self.lm_identity, self.prompt, current, predicted, prepared.last_item,
                            prepared.recent_items, prepared.backbone_top)

    def read(self, history: list[int] | np.ndarray, user: int | None = None,
             max_new_tokens: int | None = None) -> StateReading:
        return self.answer(self.prepare(history, user), max_new_tokens)
