"""Checkpoints: written atomically every epoch, verified on resume.

``last.pt`` holds everything needed to continue (weights, optimizer, counters) plus the run's
identity (config and data hash); ``best.pt`` holds the weights of the best validation epoch.
A corrupted or mismatched checkpoint is an error, never a silent restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lucidrec.errors import LucidrecError
from lucidrec.files import atomic_torch_save
from lucidrec.train.migrate import migrate_run_config, migrate_weights

LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(LucidrecError):
    pass


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best_metric: float = float("-inf")
    best_epoch: int = -1
    bad_epochs: int = 0


def exists(run_dir: Path) -> bool:
    return (Path(run_dir) / LAST).is_file()


def save(run_dir: Path, model, optimizer, state: TrainState, identity: dict) -> None:
    atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": asdict(state),
                  "identity": identity}, Path(run_dir) / LAST)


def save_weights(path: Path, model) -> None:
    atomic_torch_save({"model": model.state_dict()}, Path(path))


def _load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc}); "
                              "it may be corrupted: delete it to retrain from scratch") from None


def load_weights(path: Path, model) -> None:
    payload = _load(Path(path))
    try:
        model.load_state_dict(migrate_weights(payload["model"]))
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: does not match this model ({str(exc).splitlines()[0]})") from None


#: Settings a resumed run may change: they say how long training goes on, not what an epoch computes, so
#: the continued run is the run the new values would have made from the start. ``epochs`` may not go below
#: the epochs already run; ``patience`` may only be raised (a lower one might have stopped an earlier epoch).
EXTENDABLE = ("train.epochs", "train.patience")
#: Where the data is read from: a resumed run may read it elsewhere, since the data hash is checked.
DATA_LOCATION = ("data.data_dir",)
#: How many users/items the evaluator scores at once: its ranks do not depend on them.
EVAL_SPEED = ("eval.batch_size", "eval.item_chunk")
#: Everything a resumed run may change.
MAY_CHANGE_ON_RESUME = EXTENDABLE + DATA_LOCATION + EVAL_SPEED


@dataclass(frozen=True)
class Change:
    """One setting that differs between two configs (``key`` dotted, e.g. ``train.epochs``)."""

    key: str
    old: object
    new: object
    before_option: bool = False  # ``old`` is the default of an option the saved run did not have yet

    def __str__(self) -> str:
        old = f"{self.old!r} (saved before the option existed)" if self.before_option else repr(self.old)
        return f"{self.key}: {old} -> {self.new!r}"


def read(run_dir: Path) -> dict:
    """The whole ``last.pt`` payload (weights, optimizer, state, identity)."""
    return _load(Path(run_dir) / LAST)


def continuation_changes(run_dir: Path, payload: dict, identity: dict) -> list[Change]:
    """The settings that change when the checkpoint ``payload`` continues under ``identity``: only
    :data:`MAY_CHANGE_ON_RESUME` ones, within their rules; anything else (another config, other data) raises."""
    path = Path(run_dir) / LAST
    stored = payload.get("identity", {})
    if stored.get("data_hash") != identity.get("data_hash"):
        raise CheckpointError(
            f"{path}: the data changed since the run started (hash {stored.get('data_hash')} -> {identity.get('data_hash')}); "
            "use a new --out folder, or restore the original data"
        )
    changes = config_changes(migrate_run_config(stored.get("config", {})), identity.get("config", {}), identity.get("defaults"))
    done = TrainState(**payload["state"]).epoch if "state" in payload else 0
    refused = [str(c) for c in changes if c.key not in MAY_CHANGE_ON_RESUME]
    for change in changes:
        if change.key == "train.epochs" and change.new < done:
            refused.append(f"{change} (cannot go below the {done} epochs already run)")
        elif change.key == "train.patience" and change.new < change.old:
            refused.append(f"{change} (can only be raised)")
    if refused:
        raise CheckpointError(f"{path}: the run's config differs from the checkpoint's ({', '.join(refused)}); "
                              f"resume with the same config (only {', '.join(MAY_CHANGE_ON_RESUME)} may "
                              "change) or use a new --out folder")
    return changes


def restore(run_dir: Path, model, optimizer, identity: dict) -> TrainState:
    payload = read(run_dir)
    continuation_changes(run_dir, payload, identity)
    path = Path(run_dir) / LAST
    try:
        model.load_state_dict(migrate_weights(payload["model"]))
        optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: does not match this model ({str(exc).splitlines()[0]})") from None
    return TrainState(**payload["state"])


def save_trainable(path: Path, key: str, step: int, seconds: float, trainable: dict, optimizer, **extra) -> None:
    """A checkpoint of a fine-tuning stage (SCFT, GER scorer tuning): its trainable tensors by name, the
    optimizer, the steps done, the wall seconds so far and ``key``, the configuration it belongs to."""
    atomic_torch_save({"key": key, "step": step, "seconds": seconds, "optimizer": optimizer.state_dict(),
                       "trainable": {name: p.detach().clone() for name, p in trainable.items()}, **extra}, Path(path))


def load_trainable(path: Path, key: str, trainable: dict, what: str) -> dict:
    """Read a :func:`save_trainable` checkpoint into ``trainable`` and return its payload (optimizer
    state, step, extras); another configuration's checkpoint is refused, never silently restarted."""
    payload = _load(Path(path))
    if payload.get("key") != key or set(payload.get("trainable", {})) != set(trainable):
        raise CheckpointError(f"{path}: belongs to another {what} configuration; delete it to restart")
    with torch.no_grad():
        for name, value in payload["trainable"].items():
            trainable[name].copy_(value)
    return payload


def config_diff(a: dict, b: dict, defaults: dict | None = None) -> list[str]:
    """``key: old -> new`` for every leaf where two nested configs differ (see :func:`config_changes`)."""
    return [str(change) for change in config_changes(a, b, defaults)]


def config_changes(a: dict, b: dict, defaults: dict | None = None) -> list[Change]:
    """Every leaf where two nested configs differ. A key missing from ``a`` (a run saved before that
    option existed) matches when ``b`` holds the option's default, which by design reproduces the
    behaviour from before the option."""
    return _diff(a, b, defaults or {}, "")


def _diff(a: dict, b: dict, defaults: dict, prefix: str) -> list[Change]:
    out = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        default = defaults.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            out += _diff(left, right, default if isinstance(default, dict) else {}, f"{prefix}{key}.")
        elif key not in a and key in defaults:
            if right != default:  # the saved run ran with the option's default
                out.append(Change(f"{prefix}{key}", default, right, before_option=True))
        elif left != right:
            out.append(Change(f"{prefix}{key}", left, right))
    return out
