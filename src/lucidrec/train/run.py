"""A run: one config -> one folder with everything needed to trace, resume and reuse it.

Folder layout (``save_pretrained`` style)::

    config.json      the complete, validated config (defaults filled in)
    data.json        data hash, split info, preparation report
    log.jsonl        one line per epoch (loss, validation NDCG@10, time, throughput)
    last.pt          checkpoint to resume from; best.pt: weights of the best validation epoch
    metrics.json     valid/test metrics of the best weights (same keys as ``lucidrec evaluate``)
    item_table.npy   the final (best) item table, rows = item indices (row 0 = padding)
    item_ids.json    original item id per row
    ranks_test.npz   per-user test ranks, for paired significance tests
    config_history.jsonl  settings changed on resume (more epochs or patience), one line per change
    .lock            held by the process writing the folder (its pid inside); see lucidrec.locks
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import torch
import torch.distributed as dist
from pydantic import Field, ValidationError, create_model, model_validator
from pydantic_core import to_jsonable_python

from lucidrec.config import ConfigError, StrictConfig, apply_overrides, load_toml, validate_config
from lucidrec.data.pipeline import DataConfig, load_split
from lucidrec.data.sequences import Ragged
from lucidrec.embeddings import EMBEDDINGS, make_item_embedding
from lucidrec.embeddings.base import EmbeddingContext, StateHook
from lucidrec.errors import LucidrecError
from lucidrec.eval.evaluator import EvalConfig, evaluate
from lucidrec.eval.report import write_metrics, write_per_user
from lucidrec.files import atomic_numpy_save, numpy_default, read_json, write_json_atomic
from lucidrec.locks import hold
from lucidrec.models import BACKBONES, make_backbone
from lucidrec.models.backbone import Backbone, BackboneConfig, backbone_config
from lucidrec.train import checkpoint, run_folder
from lucidrec.train.migrate import BEFORE_THE_OPTION, NESTED_SINCE_FLAT, migrate_run_config, saved_run_config
from lucidrec.train.presets import load_preset
from lucidrec.train.trainer import Trainer, TrainConfig, scorer_for

log = logging.getLogger(__name__)


class RunConfig(StrictConfig):
    """Everything a training run depends on. ``model``/``embedding`` are ``{"name": ..., **params}``: a union
    of the registered config classes, discriminated by ``name`` (:func:`run_config_schema` draws it).

    The registries are open (a plugin registers a backbone or embedding after this class exists), so each
    section is validated by its registered class when the config is, rather than by a union fixed at import;
    its errors name the section, the wrong key and that class's valid keys. The sections are kept as the
    validated class's dump (what ``config.json`` stores); :meth:`model_settings` and
    :meth:`embedding_settings` give the typed objects."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "sasrec"})
    embedding: dict[str, Any] = Field(default_factory=lambda: {"name": "id"})
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _validate_sections(self):
        self.__dict__["model"] = {"name": self.model.get("name", "sasrec"), **_section_settings(self.model, "model").model_dump()}
        self.__dict__["embedding"] = {"name": self.embedding.get("name", "id"),
                                      **_section_settings(self.embedding, "embedding").model_dump()}
        return self

    def model_settings(self) -> BackboneConfig:
        """The ``model`` section as its backbone's typed config."""
        return _section_settings(self.model, "model")

    def embedding_settings(self) -> StrictConfig:
        """The ``embedding`` section as its item embedding's typed config."""
        return _section_settings(self.embedding, "embedding")


#: The registry of each component section and the name it defaults to.
SECTIONS = {"model": (BACKBONES, "sasrec"), "embedding": (EMBEDDINGS, "id")}


def _section_settings(section: dict, kind: str) -> StrictConfig:
    registry, default = SECTIONS[kind]
    name = section.get("name", default)
    params = {k: v for k, v in section.items() if k != "name"}
    moved = NESTED_SINCE_FLAT.get(name, {}) if kind == "embedding" else {}
    for key, value in params.items():  # a flat key of the settings before their stage sections
        if key in moved and not (moved[key][0] == key and isinstance(value, dict)):
            raise ConfigError(f"{kind} '{name}': '{key}' is now '{'.'.join(moved[key])}' (the settings have a "
                              f"section per stage: {', '.join(sorted(registry.get(name).config_class.model_fields))})")
    return validate_config(registry.get(name).config_class, params, f"{kind} '{name}'")


def run_config_schema() -> dict:
    """The JSON schema of a run config, ``model`` and ``embedding`` as ``oneOf`` the registered config classes
    (each with its ``name`` constant), built from the registries as they are now (plugins included)."""
    sections = {}
    for kind, (registry, default) in SECTIONS.items():
        members = tuple(create_model(f"{kind}_{name}", __base__=registry.get(name).config_class,
                                     __module__=registry.get(name).config_class.__module__,  # its annotations' names
                                     name=(Literal[name], Field(default if name == default else ...)))
                        for name in registry.names())
        sections[kind] = (Annotated[Union[members], Field(discriminator="name")], ...)  # noqa: UP007
    return create_model("RunConfig", __base__=RunConfig, **sections).model_json_schema()


def _merge(into: dict, values: dict) -> None:
    """Nested update: sections merge key by key, so a later source changes only the keys it names."""
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def build_config(base: dict | None = None, config_file: Path | None = None, overrides: list[str] | None = None,
                 preset: str | None = None) -> RunConfig:
    """Defaults < named preset < config file (TOML) < ``base`` (CLI flags) < ``--set key=value`` overrides."""
    values: dict = load_preset(preset) if preset else {}
    if config_file is not None:
        _merge(values, load_toml(config_file))
    for section, entries in (base or {}).items():
        if isinstance(entries, dict):
            values.setdefault(section, {}).update(entries)
        else:
            values[section] = entries
    values = apply_overrides(values, overrides or [])
    return validate_config(RunConfig, values, "run config")


def build_model(config: RunConfig, data, split, run_dir: Path | None = None, state_hook: StateHook | None = None) -> Backbone:
    """The run's backbone over its item embedding; a method's embedding reads what its recipe left in ``run_dir``."""
    name = config.model["name"]
    cls = BACKBONES.get(name)
    params = {k: v for k, v in config.model.items() if k != "name"}
    embedding_params = {k: v for k, v in config.embedding.items() if k != "name"}
    context = EmbeddingContext(data, split, Path(run_dir) if run_dir is not None else None,
                               backbone_objective=cls.objective, load_model=_load_model,
                               progress=bool(config.train.progress))
    items = make_item_embedding(config.embedding["name"], embedding_params, n_items=data.n_items,
                                dim=params["hidden"], extra_tokens=cls.extra_tokens, context=context)
    return make_backbone(name, params, items, state_hook)


def _load_model(run: Path) -> Backbone:
    return load_run(run)[0]


#: Train keys that do not change what a run computes (how it prints); for a *finished* run the thread
#: count and the loss implementation do not matter either (they change float rounding only), while a
#: resumed run keeps them so it continues the same trajectory.
NOT_IDENTITY = ("progress",)
NOT_IDENTITY_WHEN_FINISHED = ("progress", "threads", "ce_implementation")

def _comparable(values: dict, ignore: tuple[str, ...]) -> dict:
    train = values.get("train", {})
    if train.get("loss", "ce") != "ce":  # it only computes the ce loss: other losses run the same without it
        ignore = (*ignore, "ce_implementation")
    if train.get("loss", "ce") != "sampled_softmax":  # likewise, only the sampled softmax reads its options
        ignore = (*ignore, "sampled_softmax")
    return {**values, "train": {k: v for k, v in train.items() if k not in ignore}}


def finished_identity(values: dict) -> dict:
    """What a finished run's config is compared on (a config dump minus the keys that cannot change it)."""
    return _comparable(values, NOT_IDENTITY_WHEN_FINISHED)


def _identity(config: RunConfig, data_hash: str) -> dict:
    return {"config": _comparable(config.model_dump(mode="json"), NOT_IDENTITY), "data_hash": data_hash,
            "defaults": config_defaults(config)}


def config_defaults(config: RunConfig) -> dict:
    """Every option's default for this run's components: what a key missing from an older run's saved
    config stands for: its default, which keeps the old behaviour, or its entry in BEFORE_THE_OPTION
    where a later default changed the computation."""
    defaults = {"train": TrainConfig().model_dump(mode="json"), "eval": EvalConfig().model_dump(mode="json"),
                "data": DataConfig().model_dump(mode="json"),
                "model": {"name": config.model["name"], **backbone_config(config.model["name"], {}).model_dump(mode="json")}}
    embedding = EMBEDDINGS.get(config.embedding["name"]).config_class
    try:
        values = embedding().model_dump(mode="json")
    except ValidationError:  # required settings (a matrix path): the defaults of the optional fields alone
        values = {name: to_jsonable_python(field.get_default(call_default_factory=True))
                  for name, field in embedding.model_fields.items() if not field.is_required()}
    defaults["embedding"] = {"name": config.embedding["name"], **values}
    for component, options in BEFORE_THE_OPTION.items():
        defaults[component].update(options)
    return defaults


def init_distributed() -> bool:
    """Join a torchrun process group (gloo on CPU) when launched by torchrun; no-op otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
        return True
    return False


def check_folder(config: RunConfig, out: Path, data_hash: str, resume: bool) -> None:
    """Raise when this config may not go on in ``out`` (a run there without ``resume``, or a checkpoint
    of other data or another config): what :func:`train_run` checks first, for callers that write into
    the folder before it (a method's recipe)."""
    run_folder.changes_before_writing(out, _identity(config, data_hash), resume)


def train_run(config: RunConfig, out: Path, resume: bool = False, stop_after_epochs: int | None = None) -> dict:
    """Train, keep the best validation weights, evaluate them on valid and test, write the folder."""
    out = Path(out)
    init_distributed()
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(config.train.seed)
    np.random.seed(config.train.seed % 2**32)
    data, split = load_split(config.data)
    identity = _identity(config, data.data_hash)
    created = not out.exists()
    # Rank 0 writes the folder, so it alone holds it; the other ranks of a torchrun job only read it.
    with hold(out) if rank == 0 else contextlib.nullcontext():
        return _train_in_folder(config, out, data, split, identity, rank, resume, stop_after_epochs, created)


def _train_in_folder(config: RunConfig, out: Path, data, split, identity: dict, rank: int, resume: bool,
                     stop_after_epochs: int | None, created: bool = False) -> dict:
    changes, epochs_done = run_folder.changes_before_writing(out, identity, resume)  # raises before any write
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        run_folder.record_changes(out, changes, epochs_done)
        write_json_atomic(out / "config.json", config.model_dump(mode="json"))
        write_json_atomic(out / "data.json", {"data_hash": data.data_hash, "split": split.info, "prepare": data.report})
    try:
        model = build_model(config, data, split, out)
    except LucidrecError:
        # A setting or input the user must fix (e.g. no attribute set): leave no half-made run folder
        # behind. Other failures keep it: it may hold resumable work (GER scorer tuning checkpoints).
        if created and rank == 0:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if rank == 0 and getattr(model.items, "info", None):  # e.g. how many items had no text and what they got instead
        write_json_atomic(out / "embedding.json", model.items.info, default=numpy_default)
    started = time.perf_counter()
    trainer = Trainer(config.train, config.eval)
    history = trainer.fit(model, split, out, identity, resume=resume, stop_after_epochs=stop_after_epochs)
    training_seconds = time.perf_counter() - started
    finished = trainer.state.epoch >= config.train.epochs or trainer.state.bad_epochs >= config.train.patience
    if not finished:
        return {"status": "interrupted", "epochs": trainer.state.epoch}
    if rank != 0:
        return {"status": "done"}
    if (out / checkpoint.BEST).is_file():
        checkpoint.load_weights(out / checkpoint.BEST, model)
    metrics = _final_evaluation(model, split, config.eval, out)
    write_json_atomic(out / "item_ids.json", [str(i) for i in data.item_ids])
    metrics_context = {
        "model": config.model["name"], "embedding": config.embedding["name"], "config": config.model_dump(mode="json"),
        "data_hash": data.data_hash, "best_epoch": trainer.state.best_epoch, "epochs_run": trainer.state.epoch,
        "training_seconds_this_call": training_seconds,
        "seconds_per_epoch": float(np.mean([h.seconds for h in history])) if history else None,
        "sequences_per_second": float(np.mean([h.sequences_per_second for h in history])) if history else None,
    }
    write_metrics(out, metrics, **metrics_context)
    return {"status": "done", **metrics}


def train_or_reuse(config: RunConfig, out: Path) -> dict:
    """Finish the run in ``out``: reuse it when it finished with this very config, resume it when it was
    killed, extend it when only :data:`checkpoint.EXTENDABLE` settings grew, start it when there is none.
    A finished run of another config is an error, never reused; :data:`checkpoint.EVAL_SPEED` do not count."""
    out = Path(out)
    if (out / "metrics.json").is_file():
        stored = _comparable(migrate_run_config(_read_json(out / "config.json")), NOT_IDENTITY_WHEN_FINISHED)
        current = _comparable(config.model_dump(mode="json"), NOT_IDENTITY_WHEN_FINISHED)
        changes = [c for c in checkpoint.config_changes(stored, current, config_defaults(config))
                   if c.key not in checkpoint.EVAL_SPEED]
        if not changes:
            return {"status": "done", **_read_json(out / "metrics.json")}
        # Longer training, or the data read elsewhere: the resume checks the data hash and goes on.
        if any(c.key not in checkpoint.EXTENDABLE + checkpoint.DATA_LOCATION for c in changes):
            raise ConfigError(f"{out} holds a finished run of another config ({', '.join(map(str, changes))}); "
                              "choose another --out folder or delete that one")
    result = train_run(config, out, resume=checkpoint.exists(out))
    # Same answer as a reuse: metrics.json holds the metrics plus the run's context (best epoch, timings).
    finished = result["status"] == "done" and (out / "metrics.json").is_file()  # rank 0 writes it
    return {"status": "done", **_read_json(out / "metrics.json")} if finished else result


def _read_json(path: Path) -> dict:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise ConfigError(f"{path.parent}: not a complete run folder (no {path.name})") from None


def _final_evaluation(model: Backbone, split, eval_config: EvalConfig, out: Path) -> dict:
    model.eval()
    metrics: dict = {}
    scorer = scorer_for(model)
    started = time.perf_counter()
    for part in ("valid", "test"):
        result = evaluate(scorer, split, part, eval_config)
        metrics.update(result.metrics)
        if part == "test":
            write_per_user(out, "test", result)
    metrics["eval_seconds"] = time.perf_counter() - started
    atomic_numpy_save(scorer.item_table.numpy(), out / "item_table.npy")
    return metrics


def load_run(run: Path):
    """Rebuild a trained run: ``(model with best weights, SequenceData, Split, RunConfig)``."""
    run = Path(run)
    config = validate_config(RunConfig, saved_run_config(run), f"{run}/config.json")
    data, split = load_split(config.data)
    recorded = _read_json(run / "data.json").get("data_hash")
    if recorded != data.data_hash:
        raise checkpoint.CheckpointError(f"{run}: the data changed since this run was trained "
                                         f"(hash {recorded} -> {data.data_hash})")
    model = build_model(config, data, split, run)
    weights = run / checkpoint.BEST if (run / checkpoint.BEST).is_file() else run / checkpoint.LAST
    checkpoint.load_weights(weights, model)
    model.eval()
    return model, data, split, config


def evaluate_run(run: Path, eval_config: EvalConfig | None = None, out: Path | None = None,
                 add_protocols: tuple[str, ...] = (), **changes) -> dict:
    """Evaluate a run's best weights again: with ``eval_config``, else the run's own eval settings with
    ``changes`` (e.g. ``protocols``, ``ks``) on top and ``add_protocols`` added to its protocols. Written
    to ``out``, else into the run folder, where the training context of ``metrics.json`` (best epoch,
    timings) is kept."""
    model, data, split, config = load_run(run)
    if eval_config is None:
        values = {**config.eval.model_dump(), **changes}
        # Full ranking always: every summary and comparison reads it, whatever the run was trained with.
        values["protocols"] = tuple(dict.fromkeys(["full", *values["protocols"], *add_protocols]))
        eval_config = validate_config(EvalConfig, values, "evaluation settings")
    target = Path(out or run)
    unfinished = not (Path(run) / "metrics.json").is_file()
    if unfinished:  # a killed or still running training: say so, here and in what is written
        log.warning("%s has not finished training: these are the metrics of its best checkpoint so far", run)
    with hold(target):  # not while a training process writes the same folder
        context = {}
        if (target / "metrics.json").is_file():
            context = {k: v for k, v in _read_json(target / "metrics.json").items() if "/" not in k and k != "eval_seconds"}
        metrics = _final_evaluation(model, split, eval_config, target)
        context.update(model=config.model["name"], embedding=config.embedding["name"],
                       config=config.model_dump(mode="json"), data_hash=data.data_hash, reevaluated=True,
                       **({"unfinished_training": True} if unfinished else {}))
        write_metrics(target, metrics, **context)
    return metrics


@torch.no_grad()
def hidden_states(model: Backbone, histories: list[list[int]] | Ragged) -> torch.Tensor:
    """Per-position states (B, max_len, hidden) for any histories of item indices (left-padded)."""
    if not isinstance(histories, Ragged):
        histories = Ragged.from_lists(histories)
    model.eval()
    return model.hidden_states(histories)
