"""Older run folders in today's shape: the one place for what only exists so they keep loading.

A run folder records its config (``config.json``, the identity inside ``last.pt``, the config in
``metrics.json`` and in experiment records) in the shape of the version that wrote it. Every reader of
a saved config passes it through :func:`migrate_run_config` first, and every reader of saved weights
through :func:`migrate_weights`, so the rest of the code knows one shape only. Options added later need
no entry here unless their default changed the computation: a missing key stands for its default
(:func:`lucidrec.train.run.config_defaults`), or for its entry in :data:`BEFORE_THE_OPTION`.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lucidrec.config import ConfigError
from lucidrec.embeddings.ger.config import FLAT_KEYS as GER_FLAT_KEYS
from lucidrec.embeddings.llmemb.config import FLAT_KEYS as LLMEMB_FLAT_KEYS
from lucidrec.files import read_json

#: Embeddings whose settings were one flat section and now have a section per stage:
#: embedding name -> {flat key: (section, field)}.
NESTED_SINCE_FLAT = {"llmemb": LLMEMB_FLAT_KEYS, "ger": GER_FLAT_KEYS}

#: Options whose default changed after runs were saved without them: what the missing key stood for.
#: Sampled softmax before its options: uniform negatives drawn with replacement, no logQ correction.
BEFORE_THE_OPTION = {"train": {"ce_implementation": "dense",
                               "sampled_softmax": {"negatives": "uniform", "alpha": 1.0, "replacement": True,
                                                   "logq_correction": False}}}

#: Weights of run folders written before the backbone declared its state hook: GER's user part lived
#: inside the item embedding (``items.user_delta.weight`` is now ``state_hook.user_delta.weight``).
_MOVED_TO_STATE_HOOK = ("items.user_delta.", "items.user_prior", "items.has_prior", "items.base_components", "items.base.")


def migrate_run_config(values: dict) -> dict:
    """A saved run config (as read from JSON) in today's shape; a config already in it comes back equal.

    The flat LLMEmb and GER keys (``embedding.scft_lr``, ``embedding.tune_steps``, ...) move into their
    stage sections (``embedding.tuning.lr``, ``embedding.tuning.steps``, ...). ``values`` is not changed."""
    out = copy.deepcopy(values)
    embedding = out.get("embedding")
    if isinstance(embedding, dict):
        out["embedding"] = nest_flat_keys(embedding, NESTED_SINCE_FLAT.get(embedding.get("name", "id"), {}))
    return out


def nest_flat_keys(section: dict, moved: dict[str, tuple[str, str]]) -> dict:
    """``section`` with each flat key of ``moved`` under its (section, field); a key that is already a
    section (a dict under a section's name) is today's shape and stays."""
    out: dict = {}
    for key, value in section.items():
        if key in moved and not (moved[key][0] == key and isinstance(value, dict)):
            target, field = moved[key]
            if isinstance(section.get(target), dict) and target != key and field in section[target]:
                raise ConfigError(f"embedding: '{key}' and '{target}.{field}' are the same setting; give it once")
            out.setdefault(target, {})[field] = value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**value, **out[key]}
        else:
            out[key] = value
    return out


def saved_run_config(run: Path) -> dict:
    """The config a run folder was written with (``config.json``), in today's shape."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run}: not a run folder (no config.json)")
    return migrate_run_config(read_json(path))


def migrate_weights(weights: dict) -> dict:
    """Saved weights (a state dict) under today's parameter names."""
    return {("state_hook." + key[len("items."):] if key.startswith(_MOVED_TO_STATE_HOOK) else key): value
            for key, value in weights.items()}
