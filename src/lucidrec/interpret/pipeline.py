"""The three things a user does with RecInterpreter: train an adapter on a run, evaluate it, ask it.

Each loads the recommender run (its data must be unchanged: ``load_run`` checks the data hash),
the frozen LM (or an injected one, e.g. a tiny model in tests) and the adapter folder, and checks
that they belong together before doing anything.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lucidrec.config import ConfigError, apply_overrides, validate_config
from lucidrec.data.sequences import Ragged
from lucidrec.errors import LucidrecError
from lucidrec.files import read_json, write_json_atomic
from lucidrec.interpret import examples as ex
from lucidrec.interpret import folder as fs
from lucidrec.interpret.config import EvaluationConfig, InterpretConfig
from lucidrec.interpret.evaluation import evaluate_interpreter
from lucidrec.interpret.interpreter import Interpreter
from lucidrec.interpret.reader import (HistoryTooShort, StateReader, load_adapter_weights, new_interpreter,
                                       trained_manifest)
from lucidrec.interpret.templates import TemplateSet, load_templates, recovery_answer
from lucidrec.interpret.titles import CatalogTitles
from lucidrec.interpret.training import ADAPTER, CHECKPOINT, train_adapter
from lucidrec.interpret.warmup import fit_to_titles
from lucidrec.lm.soft_prompt import SoftPromptLM
from lucidrec.train.checkpoint import CheckpointError
from lucidrec.train.run import load_run

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    config: InterpretConfig
    model: object  # the frozen backbone
    data: object
    split: object
    titles: CatalogTitles
    users: ex.UserSplit
    templates: TemplateSet
    interpreter: Interpreter
    run: dict


def _load_run(run: Path):
    """``load_run`` (which refuses changed data, naming both hashes), with the recorded hash added when
    the dataset cannot be loaded at all."""
    try:
        return load_run(run)
    except CheckpointError:
        raise
    except (LucidrecError, FileNotFoundError) as exc:
        recorded = read_json(run / "data.json").get("data_hash") if (run / "data.json").is_file() else "unknown"
        name = read_json(run / "config.json").get("data", {}).get("dataset", "?")
        raise ConfigError(f"{run}: the dataset '{name}' this run was trained on (data hash {recorded}) cannot be "
                          f"loaded: {exc}") from exc


def _load(run: Path, config: InterpretConfig, lm: SoftPromptLM | None) -> Loaded:
    model, data, split, _ = _load_run(Path(run))
    model.requires_grad_(False)
    lm = lm or SoftPromptLM.load(config.lm)
    titles = CatalogTitles.from_data(data, config.examples.title_field)
    users = ex.split_users(split, config.examples.heldout_fraction, config.examples.split_seed)
    return Loaded(config, model, data, split, titles, users, load_templates(config.task, config.templates),
                  new_interpreter(config, int(model.item_table().shape[1]), lm), fs.run_identity(run))


def _answer_text(task: str, titles: CatalogTitles, targets: list[int]) -> str:
    return titles[targets[0]] if task == "residual" else recovery_answer([titles[i] for i in targets])


def _finished(stored: dict, config: InterpretConfig) -> bool:
    """Done, or stopped by its time limit and not given more time now."""
    if stored.get("status") == "done":
        return True
    if stored.get("status") != "stopped":
        return False
    before, now = stored["config"].optim.max_minutes, config.optim.max_minutes
    return now is not None and before is not None and now <= before


def train(run: Path, out: Path, config: InterpretConfig, *, lm: SoftPromptLM | None = None, progress: bool = True,
          stop_after_steps: int | None = None) -> dict:
    """Train the adapter into ``out``: continue it when ``out`` holds the same unfinished training,
    reuse it when finished; a folder of another run, LM or config is an error naming both."""
    out = Path(out)
    stored = fs.read_manifest(out) if (out / fs.MANIFEST).is_file() else None
    if stored is not None:
        fs.check_run(out, stored["run"], fs.run_identity(run))
        if fs.training_identity(stored["config"]) != fs.training_identity(config):
            raise ConfigError(f"{out} holds an adapter trained with other settings; choose another --out or delete it")
        if _finished(stored, config) and (out / ADAPTER).is_file():
            return {**stored.get("training", {}), "status": "reused"}
    loaded = _load(run, config, lm)
    lm_identity = loaded.interpreter.lm.identity
    if stored is not None:
        fs.check_lm(out, stored["lm"], lm_identity)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"config": config, "run": loaded.run, "lm": lm_identity, "task": config.task,
                "d_state": loaded.interpreter.adapter.d_state, "d_lm": loaded.interpreter.lm.dim,
                "users": {"train": len(loaded.users.train), "heldout": [str(loaded.data.user_ids[u]) for u in loaded.users.heldout]},
                "titles_missing": loaded.titles.missing, "status": "training"}
    fs.write_manifest(out, manifest)
    cfg = config.examples
    train_examples = ex.training_examples(config.task, loaded.split, loaded.users.train, cfg.per_user, cfg.recovery_items,
                                          config.optim.seed)
    started = time.perf_counter()
    states = ex.example_states(loaded.model, train_examples, loaded.interpreter.adapter.positions)
    state_seconds = time.perf_counter() - started
    lm_ = loaded.interpreter.lm
    warmup = {}
    if config.adapter.init == "titles" and not (out / CHECKPOINT).is_file():  # a resumed run loads its checkpoint
        warmup = _fit_to_titles(loaded, train_examples, states)
    answers = [lm_.encode_answer(_answer_text(config.task, loaded.titles, t)) for t in train_examples.targets]
    result = train_adapter(loaded.interpreter, states, answers, loaded.templates.train, config.optim, out, progress,
                           stop_after_steps)
    if result.status == "interrupted":
        return {"status": "interrupted", "steps": result.steps}
    manifest.update(status=result.status, training={
        "status": result.status, "steps": result.steps, "seconds": result.seconds, "state_seconds": state_seconds,
        "tokens_per_second": result.tokens_per_second, "final_loss": result.final_loss, "examples": len(train_examples),
        **warmup})
    fs.write_manifest(out, manifest)
    return manifest["training"]


def _fit_to_titles(loaded: Loaded, examples: ex.Examples, states: torch.Tensor) -> dict:
    """init=titles: the adapter's closed-form start (every prefix state -> its last item's title tokens)."""
    started = time.perf_counter()
    lm = loaded.interpreter.lm
    rows = states.reshape(-1, *states.shape[2:])
    last_items = [int(examples.prefixes[r][-1]) for r in range(len(examples.prefixes))]
    token_ids = [lm.encode_answer(loaded.titles[i])[:-1] for i in last_items]
    a = loaded.config.adapter
    error = fit_to_titles(loaded.interpreter.adapter, rows, token_ids, lm.model.get_input_embeddings().weight,
                          a.init_penalty, a.init_epochs, a.init_lr, a.init_batch_size, loaded.config.optim.seed)
    return {"init_seconds": time.perf_counter() - started, "init_mse": error}


def _open(folder: Path, run: Path | None, lm: SoftPromptLM | None) -> tuple[Loaded, dict]:
    folder = Path(folder)
    manifest = trained_manifest(folder)
    if run is not None and not Path(run).is_dir():
        raise ConfigError(f"no run folder at {run}")
    run = Path(run) if run is not None else Path(manifest["run"]["path"])
    if not run.is_dir():
        raise ConfigError(f"{folder}: the run {run} it was trained on is missing (pass --run to point at a moved copy)")
    fs.check_run(folder, manifest["run"], fs.run_identity(run))
    loaded = _load(run, manifest["config"], lm)
    fs.check_lm(folder, manifest["lm"], loaded.interpreter.lm.identity)
    load_adapter_weights(loaded.interpreter, folder)
    return loaded, manifest


def evaluation_settings(folder: Path, overrides: list[str]) -> EvaluationConfig:
    """The folder's evaluation settings with ``evaluation.key=value`` overrides (nothing else may change)."""
    stored = fs.read_manifest(folder)["config"].evaluation.model_dump(mode="json")
    for item in overrides:
        if not item.startswith("evaluation."):
            raise ConfigError(f"--set {item}: only evaluation.* settings can change after training")
    values = apply_overrides({"evaluation": stored}, overrides)["evaluation"]
    return validate_config(EvaluationConfig, values, "evaluation settings")


def evaluate(folder: Path, *, run: Path | None = None, lm: SoftPromptLM | None = None, title_vectors=None,
             progress: bool = True, evaluation: EvaluationConfig | None = None) -> dict:
    """Evaluate on the held-out users; writes ``metrics.json``, ``cases.jsonl``, ``instantiation.jsonl``."""
    folder = Path(folder)
    loaded, manifest = _open(folder, run, lm)
    config = loaded.config
    eval_config = evaluation or config.evaluation
    positions = loaded.interpreter.adapter.positions
    heldout = ex.heldout_examples(config.task, loaded.split, loaded.users.heldout, config.examples.recovery_items)
    states = ex.example_states(loaded.model, heldout, positions)
    cfg = config.examples
    train_examples = ex.training_examples(config.task, loaded.split, loaded.users.train, cfg.per_user,
                                          cfg.recovery_items, config.optim.seed)
    train_states = ex.example_states(loaded.model, train_examples, positions) if eval_config.probe else None
    inst_states = top = last = None
    if config.task == "residual" and eval_config.instantiate_users > 0:
        users = loaded.users.heldout[:eval_config.instantiate_users]
        sequences = ex.full_sequences(loaded.split, users)
        current = ex.sequence_states(loaded.model, Ragged.from_lists(sequences), positions)
        predicted = ex.predicted_states(loaded.model, sequences, users, positions, eval_config.instantiate)
        inst_states = torch.stack([current, predicted], dim=1)
        top = ex.backbone_top(loaded.model, sequences, users)[0]
        last = np.asarray([s[-1] for s in sequences])
    started = time.perf_counter()
    result = evaluate_interpreter(loaded.interpreter, config.task, heldout, states, train_examples, train_states,
                                  loaded.titles, loaded.templates.test, eval_config, title_vectors=title_vectors,
                                  instantiation_states=inst_states, backbone_top=top, last_items=last,
                                  item_vectors=loaded.model.item_table().detach().float().numpy(), progress=progress)
    metrics = {**result.metrics, "seconds/evaluation": time.perf_counter() - started, "task": config.task,
               "lm": manifest["lm"], "run": manifest["run"]["path"], "training": manifest.get("training", {})}
    user_ids = [str(loaded.data.user_ids[u]) for u in heldout.users]
    write_json_atomic(folder / fs.METRICS, metrics)
    _write_jsonl(folder / fs.CASES, [{"user": user_ids[c["row"]], **c} for c in result.cases])
    _write_jsonl(folder / fs.INSTANTIATION, [{"user": user_ids[c["row"]], **c} for c in result.instantiation])
    return metrics


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def ask(folder: Path, user: str, *, run: Path | None = None, lm: SoftPromptLM | None = None,
        max_new_tokens: int | None = None) -> dict:
    """The LM's description of one user's current state and of the backbone's predicted next item."""
    loaded, _ = _open(folder, run, lm)
    titles = loaded.titles
    index = int(loaded.data.user_index([user])[0])
    reader = StateReader(loaded.interpreter, loaded.config, loaded.model, titles)
    try:
        reading = reader.read(loaded.data.sequences[index], index, max_new_tokens)
    except HistoryTooShort as exc:
        raise ConfigError(f"user {user}: {exc}") from None
    return {"user": user, "task": reading.task, "heldout": bool(index in set(loaded.users.heldout.tolist())),
            "prompt": reading.prompt, "current_state": reading.current_state,
            "predicted_next_item": reading.predicted_next_item, "last_item": titles[reading.last_item],
            "recent_items": [titles[i] for i in reading.recent_items],
            "backbone_top10": [titles[i] for i in reading.backbone_top]}
