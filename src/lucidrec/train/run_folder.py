"""May this process go on in a run folder, and what does it record when it does?

Everything is compared before anything is written: a refused ``--resume`` (other data, another
config) leaves the folder exactly as it was, so its ``config.json``, ``data.json`` and metrics keep
describing the model in it. An allowed change (more epochs or patience, the data folder, eval
batch sizes: :data:`~lucidrec.train.checkpoint.MAY_CHANGE_ON_RESUME`) is appended to
``config_history.jsonl``; the outputs of a finished run that is extended are removed, so a kill
during the extension never leaves metrics of the old length marking the new config as finished.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from lucidrec.config import ConfigError
from lucidrec.train import checkpoint

log = logging.getLogger(__name__)
CONFIG_HISTORY = "config_history.jsonl"
#: What a finished run writes after training; their presence (metrics.json) marks it as finished.
FINISHED_OUTPUTS = ("metrics.json", "item_table.npy", "item_ids.json", "ranks_test.npz")


def changes_before_writing(out: Path, identity: dict, resume: bool) -> tuple[list[checkpoint.Change], int]:
    """The settings this process changes in the run of ``out`` and the epochs that run has done (none
    and 0 for a new run); raises when it may not go on there: a run without ``resume``, or a
    checkpoint of other data or another config."""
    out = Path(out)
    if not checkpoint.exists(out):
        return [], 0
    if not resume:
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose a new --out")
    payload = checkpoint.read(out)
    changes = checkpoint.continuation_changes(out, payload, identity)
    return changes, int(payload.get("state", {}).get("epoch", 0))


def record_changes(out: Path, changes: list[checkpoint.Change], epochs_done: int) -> None:
    """Drop the outputs of the finished run that ``changes`` extend, then append them to the run's
    config history (in this order: a kill in between leaves the change to be recorded by the rerun)."""
    if not changes:
        return
    out = Path(out)
    was_finished = (out / "metrics.json").is_file()
    if any(c.key in checkpoint.EXTENDABLE for c in changes):  # a longer run: its old results are no longer its own
        for name in FINISHED_OUTPUTS:
            (out / name).unlink(missing_ok=True)
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "epochs_done": epochs_done,
             "changed": {c.key: {"from": c.old, "to": c.new} for c in changes}, "was_finished": was_finished}
    with open(out / CONFIG_HISTORY, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    log.warning("%s: resumed after %d epochs with %s (recorded in %s)", out, epochs_done,
                ", ".join(map(str, changes)), CONFIG_HISTORY)
