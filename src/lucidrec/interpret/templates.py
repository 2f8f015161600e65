"""Paraphrased prompt templates per task, in ``templates/<task>.toml`` (separate train and test sets).

Each template holds one ``<SeqHere>`` slot per state the task feeds (residual: before, after;
recovery: one). Answers are plain text: the title (residual) or the titles one per line (recovery).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lucidrec.config import ConfigError
from lucidrec.lm.soft_prompt import SLOT

#: States (hence slots) each task feeds to the LM.
SLOTS_PER_TASK = {"residual": 2, "recovery": 1}


@dataclass(frozen=True)
class TemplateSet:
    task: str
    train: tuple[str, ...]
    test: tuple[str, ...]


def load_templates(task: str, path: Path | None = None) -> TemplateSet:
    """The built-in set of ``task``, or the TOML file ``path`` (keys ``train`` and ``test``)."""
    if task not in SLOTS_PER_TASK:
        raise ConfigError(f"unknown interpretation task '{task}'; valid tasks: {', '.join(SLOTS_PER_TASK)}")
    if path is None:
        text = resources.files("lucidrec.interpret").joinpath("templates", f"{task}.toml").read_text()
        where = f"built-in {task} templates"
    else:
        text, where = Path(path).read_text(), str(path)
    values = tomllib.loads(text)
    sets = {}
    for part in ("train", "test"):
        prompts = values.get(part)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ConfigError(f"{where}: '{part}' must be a non-empty list of prompts")
        for prompt in prompts:
            if prompt.count(SLOT) != SLOTS_PER_TASK[task]:
                raise ConfigError(f"{where}: the {part} prompt {prompt!r} needs exactly {SLOTS_PER_TASK[task]} "
                                  f"{SLOT} slot(s) for the {task} task")
        sets[part] = tuple(prompts)
    if set(sets["train"]) & set(sets["test"]):
        raise ConfigError(f"{where}: train and test prompts must differ")
    return TemplateSet(task, sets["train"], sets["test"])


def recovery_answer(titles: list[str]) -> str:
    return "\n".join(titles)
