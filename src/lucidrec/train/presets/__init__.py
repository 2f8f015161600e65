"""Named run configurations shipped with the package: ``lucidrec train --preset NAME`` (a TOML file here).

A preset fills the model and train sections of a recipe; the dataset, a ``--config`` file, the flags and
``--set`` overrides all come after it, so any of its settings can be changed. ``config.json`` of a run
records the resolved settings, not the preset's name.

A preset named ``BACKBONE-DATASET`` (e.g. ``sasrec-ml-100k``) holds the settings ``lucidrec run`` trains
that backbone with on that dataset; its header says how they were chosen (on validation NDCG@10, never
on the test split).
"""

from __future__ import annotations

from importlib import resources

from lucidrec.config import load_toml
from lucidrec.errors import UnknownNameError


def preset_names() -> list[str]:
    return sorted(entry.name.removesuffix(".toml") for entry in resources.files(__name__).iterdir()
                  if entry.name.endswith(".toml"))


def load_preset(name: str) -> dict:
    if name not in preset_names():
        raise UnknownNameError("preset", name, preset_names())
    with resources.as_file(resources.files(__name__) / f"{name}.toml") as path:
        return load_toml(path)


def dataset_preset(backbone: str, dataset: str) -> str | None:
    """The preset tuned for ``backbone`` on ``dataset`` (named ``BACKBONE-DATASET``, e.g. ``sasrec-ml-100k``;
    ``lucidrec run`` starts from it), or ``None`` when none is shipped."""
    name = f"{backbone}-{dataset}"
    return name if name in preset_names() else None
