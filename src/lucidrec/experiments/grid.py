"""A grid file: which cells to run and with which settings, checked completely before any cell runs.

A grid is a TOML file::

    name = "quick"                      # results/<name> and runs/experiments/<name> by default
    datasets = ["ml-100k"]
    models = ["pop", "sasrec"]          # backbones, or the training-free baselines pop / cooc
    embeddings = ["id"]                 # item embedding sources of the backbones
    seeds = [1, 2]
    baseline = "sasrec/id"              # the row ratios and paired tests refer to (a row label;
                                        # "{model}/id": each model's own id row)

    [config]                            # every cell: the sections of `lucidrec train --config`
    train = { epochs = 5, patience = 3 }

    [dataset_settings.ml-1m]            # dotted keys for one dataset's cells
    "model.max_len" = 200

    [model_settings.caser]              # ... and for one model's cells
    "model.layers" = 1

    [variants.default]                  # named override sets; without any, one variant "default"
    [variants.gelu]
    embeddings = ["llmemb"]             # only these embeddings (default: all of the grid)
    seeds = [1]                         # only these seeds (default: the grid's)
    set = { "embedding.adapter.activation" = "gelu" }

A ``set`` value ``"{run:embedding=id,variant=default}"`` is the run folder of another cell of the same
dataset (keys left out: the cell's own model, embedding, variant, seed), so a method cell can use the id
run of its own seed as its base; the referenced cell runs first.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from lucidrec.config import ConfigError, StrictConfig, apply_overrides, load_toml, validate_config
from lucidrec.errors import UnknownNameError

DEFAULT_VARIANT = "default"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REFERENCE = re.compile(r"^\{run:([^}]*)\}$")
REFERENCE_KEYS = ("model", "embedding", "variant", "seed")


class VariantSpec(StrictConfig):
    set: dict[str, Any] = Field(default_factory=dict, description="dotted config keys -> values")
    embeddings: list[str] | None = Field(None, description="the embeddings this variant applies to (default: all)")
    models: list[str] | None = Field(None, description="the models this variant applies to (default: all)")
    seeds: list[int] | None = Field(None, min_length=1, description="this variant's seeds (default: the grid's), "
                                    "e.g. three seeds for a headline row and one for the others")


class GridSpec(StrictConfig):
    name: str
    datasets: list[str] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    embeddings: list[str] = Field(default_factory=lambda: ["id"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [1], min_length=1)
    variants: dict[str, VariantSpec] = Field(default_factory=lambda: {DEFAULT_VARIANT: VariantSpec()})
    config: dict[str, Any] = Field(default_factory=dict, description="base run config (sections data, model, ...)")
    dataset_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    baseline: str | None = Field(None, description="row label the report compares every row of a dataset with; "
                                 "'{model}/id' means each model's own id row")
    results: str | None = Field(None, description="results folder (default results/<name>)")
    runs: str | None = Field(None, description="run folders (default runs/experiments/<name>)")
    workers: int = Field(1, ge=1, description="cells at once (local process pool)")
    threads: int = Field(1, ge=1, description="torch threads per cell")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"'{value}' is not a plain name (letters, digits, '_', '-', '.')")
        return value

    @field_validator("variants")
    @classmethod
    def _plain_variants(cls, value: dict) -> dict:
        bad = [name for name in value if not NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"variant names must be plain names: {', '.join(bad)}")
        if not value:
            raise ValueError("give at least one variant (or leave [variants] out for the single 'default')")
        return value


@dataclass(frozen=True)
class CellKey:
    dataset: str
    model: str
    embedding: str | None  # None for the training-free baselines
    variant: str
    seed: int | None  # None for the training-free baselines (deterministic)

    @property
    def label(self) -> str:
        """The row this cell belongs to (seeds are aggregated): ``model/embedding[/variant]``."""
        parts = [self.model] if self.embedding is None else [self.model, self.embedding]
        if self.variant != DEFAULT_VARIANT:
            parts.append(self.variant)
        return "/".join(parts)

    @property
    def slug(self) -> str:
        """A file name for the cell's record."""
        seed = "" if self.seed is None else f"__seed{self.seed}"
        embedding = "" if self.embedding is None else f"__{self.embedding}"
        return f"{self.dataset}__{self.model}{embedding}__{self.variant}{seed}"

    def describe(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.dataset} {self.label}{seed}"


@dataclass
class Cell:
    key: CellKey
    values: dict  # the run config as plain values (validated by build_config / the baseline checks)
    run_dir: Path
    needs: list[CellKey] = field(default_factory=list)

    @property
    def is_baseline(self) -> bool:
        return self.key.embedding is None


@dataclass
class Grid:
    spec: GridSpec
    path: Path
    cells: list[Cell]
    results_dir: Path
    runs_dir: Path

    def cell(self, key: CellKey) -> Cell:
        return next(c for c in self.cells if c.key == key)


def unknown(where: str, kind: str, name: str, valid) -> ConfigError:
    """A ConfigError naming the place in the grid, the unknown name and every valid choice."""
    return ConfigError(f"{where}: unknown {kind} '{name}'; valid: {', '.join(sorted(valid)) or '(none)'}")


def baseline_names() -> list[str]:
    from lucidrec.models.baselines import BASELINES

    return sorted(BASELINES)


def load_grid(path: str | Path, data_dir: str | None = None, results: str | None = None, runs: str | None = None,
              workers: int | None = None, threads: int | None = None) -> Grid:
    """Read, check and expand a grid file; every problem is a ConfigError naming the file and the valid choices.
    ``workers`` and ``threads`` (command-line flags) replace the file's values."""
    path = Path(path)
    values = load_toml(path)
    values.update({k: v for k, v in (("workers", workers), ("threads", threads)) if v is not None})
    spec = validate_config(GridSpec, values, f"grid {path}")
    where = f"grid {path}"
    _check_names(spec, where, data_dir)
    results_dir = Path(results or spec.results or Path("results") / spec.name)
    runs_dir = Path(runs or spec.runs or Path("runs") / "experiments" / spec.name)
    cells = expand(spec, runs_dir, data_dir, where)
    _check_configs(cells, where)
    if spec.baseline is not None:
        from lucidrec.experiments.aggregate import check_baseline

        labels = sorted({c.key.label for c in cells})
        if not check_baseline(spec.baseline, labels, spec.models):
            raise unknown(where, "baseline row", spec.baseline, labels)
    return Grid(spec, path, cells, results_dir, runs_dir)


def _check_names(spec: GridSpec, where: str, data_dir: str | None) -> None:
    from lucidrec.data import available_datasets
    from lucidrec.embeddings import EMBEDDINGS
    from lucidrec.models import BACKBONES

    datasets = available_datasets(data_dir)
    for name in spec.datasets:
        if not datasets:
            from lucidrec.settings import resolve_data_dir

            raise ConfigError(f"{where}: no dataset found under {resolve_data_dir(data_dir)} "
                              "(give --data-dir DIR or set $LUCIDREC_DATA_DIR)")
        if name not in datasets:
            raise unknown(where, "dataset", name, datasets)
    models = BACKBONES.names() + baseline_names()
    embeddings = EMBEDDINGS.names()
    for name in spec.models:
        if name not in models:
            raise unknown(where, "model", name, models)
    for name in spec.embeddings:
        if name not in embeddings:
            raise unknown(where, "embedding", name, embeddings)
    for variant_name, variant in spec.variants.items():
        for name in variant.embeddings or []:
            if name not in spec.embeddings:
                raise unknown(f"{where}, variant '{variant_name}'", "embedding (the grid's)", name, spec.embeddings)
        for name in variant.models or []:
            if name not in spec.models:
                raise unknown(f"{where}, variant '{variant_name}'", "model (the grid's)", name, spec.models)
    for name in spec.dataset_settings:
        if name not in spec.datasets:
            raise unknown(f"{where}, [dataset_settings]", "dataset (the grid's)", name, spec.datasets)
    for name in spec.model_settings:
        if name not in spec.models:
            raise unknown(f"{where}, [model_settings]", "model (the grid's)", name, spec.models)
    for owner, seeds in [("", spec.seeds), *((f", variant '{n}'", v.seeds or []) for n, v in spec.variants.items())]:
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}{owner}: 'seeds' lists a seed twice ({seeds})")


def _dotted(settings: dict[str, Any]) -> list[str]:
    """Dotted-key settings as ``--set`` strings are applied: one helper for every settings table."""
    return [f"{key}={_literal(value)}" for key, value in settings.items()]


def _literal(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def expand(spec: GridSpec, runs_dir: Path, data_dir: str | None, where: str) -> list[Cell]:
    """Every cell of the grid, in file order (dataset, model, embedding, variant, seed)."""
    cells: list[Cell] = []
    baselines = set(baseline_names())
    for dataset in spec.datasets:
        for model in spec.models:
            embeddings: list[str | None] = [None] if model in baselines else list(spec.embeddings)
            for embedding in embeddings:
                for variant_name, variant in spec.variants.items():
                    if variant.models is not None and model not in variant.models:
                        continue
                    if variant.embeddings is not None and embedding not in variant.embeddings:
                        continue  # a baseline (no embedding) is in no variant that names embeddings
                    seeds: list[int | None] = [None] if embedding is None else list(variant.seeds or spec.seeds)
                    for seed in seeds:
                        key = CellKey(dataset, model, embedding, variant_name, seed)
                        cells.append(Cell(key, {}, _run_dir(runs_dir, key)))
    if not cells:
        raise ConfigError(f"{where}: the grid has no cells (check the variants' 'models' and 'embeddings')")
    by_key = {c.key: c for c in cells}
    for cell in cells:
        cell.values, cell.needs = _cell_values(spec, cell.key, by_key, data_dir, where)
    _check_acyclic(cells, where)
    return cells


def run_subfolder(key: CellKey) -> Path:
    """Where a cell's run folder lies under the grid's runs folder (records keep this, not a machine path)."""
    return _run_dir(Path(), key)


def _run_dir(runs_dir: Path, key: CellKey) -> Path:
    folder = Path(runs_dir) / key.dataset / key.model
    if key.embedding is not None:
        folder = folder / key.embedding
    folder = folder / key.variant
    return folder if key.seed is None else folder / f"seed{key.seed}"


def _cell_values(spec: GridSpec, key: CellKey, by_key: dict, data_dir: str | None, where: str) -> tuple[dict, list[CellKey]]:
    values = copy.deepcopy(spec.config)
    data = values.setdefault("data", {})
    data["dataset"] = key.dataset
    if data_dir:
        data["data_dir"] = str(data_dir)
    values["model"] = {**values.get("model", {}), "name": key.model}
    if key.embedding is not None:
        values["embedding"] = {**values.get("embedding", {}), "name": key.embedding}
        values.setdefault("train", {}).update(seed=key.seed, threads=spec.threads, progress=False)
    settings = {**spec.dataset_settings.get(key.dataset, {}), **spec.model_settings.get(key.model, {}),
                **spec.variants[key.variant].set}
    needs = []
    for setting, value in list(settings.items()):
        if isinstance(value, str) and REFERENCE.match(value):
            target = _resolve_reference(value, key, by_key, f"{where}, variant '{key.variant}', '{setting}'")
            settings[setting] = str(by_key[target].run_dir)
            needs.append(target)
    try:
        values = apply_overrides(values, _dotted(settings))
    except ConfigError as exc:
        raise ConfigError(f"{where}, cell {key.describe()}: {exc}") from None
    if key.embedding is None:  # the baselines have no training: their settings end at the model name
        values["model"] = {"name": key.model}
        for section in ("embedding", "train"):
            values.pop(section, None)
    return values, needs


def _resolve_reference(text: str, key: CellKey, by_key: dict, where: str) -> CellKey:
    body = REFERENCE.match(text).group(1)
    wanted: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        name, _, value = part.partition("=")
        if name not in REFERENCE_KEYS or not value:
            raise ConfigError(f"{where}: '{text}' is not a run reference; write {{run:key=value,...}} with keys "
                              f"{', '.join(REFERENCE_KEYS)}")
        wanted[name] = int(value) if name == "seed" else value
    target = CellKey(key.dataset, wanted.get("model", key.model), wanted.get("embedding", key.embedding),
                     wanted.get("variant", key.variant), wanted.get("seed", key.seed))
    if target == key:
        raise ConfigError(f"{where}: '{text}' refers to the cell itself")
    if target not in by_key:
        valid = sorted({f"model={k.model},embedding={k.embedding},variant={k.variant},seed={k.seed}"
                        for k in by_key if k.dataset == key.dataset and k.embedding is not None})
        raise unknown(where, "run reference", body, valid)
    return target


def _check_acyclic(cells: list[Cell], where: str) -> None:
    needs = {c.key: c.needs for c in cells}
    state: dict[CellKey, int] = {}

    def visit(key: CellKey, path: list[CellKey]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise ConfigError(f"{where}: run references form a cycle: " + " -> ".join(k.describe() for k in [*path, key]))
        state[key] = 1
        for other in needs[key]:
            visit(other, [*path, key])
        state[key] = 2

    for cell in cells:
        visit(cell.key, [])


def _check_configs(cells: list[Cell], where: str) -> None:
    """Validate every cell's config now, so a bad key fails before the first cell trains."""
    from lucidrec.data.pipeline import DataConfig
    from lucidrec.eval.evaluator import EvalConfig
    from lucidrec.train.run import build_config

    for cell in cells:
        context = f"{where}, cell {cell.key.describe()}"
        try:
            if cell.is_baseline:
                unknown = sorted(set(cell.values) - {"data", "model", "eval"})
                if unknown:
                    raise ConfigError(f"sections {', '.join(unknown)} do not apply to a training-free baseline")
                validate_config(DataConfig, cell.values.get("data"), "data")
                validate_config(EvalConfig, cell.values.get("eval"), "eval")
            else:
                build_config(cell.values)
        except (ConfigError, UnknownNameError) as exc:
            raise ConfigError(f"{context}: {exc}") from None


def select_cells(grid: Grid, datasets: list[str], variants: list[str]) -> list[CellKey]:
    """The cells of the named datasets and variants (all of one kind when its list is empty)."""
    where = f"grid {grid.path}"
    for name in datasets:
        if name not in grid.spec.datasets:
            raise unknown(where, "dataset (the grid's)", name, grid.spec.datasets)
    for name in variants:
        if name not in grid.spec.variants:
            raise unknown(where, "variant", name, list(grid.spec.variants))
    return [c.key for c in grid.cells
            if (not datasets or c.key.dataset in datasets) and (not variants or c.key.variant in variants)]


def run_config(cell: Cell):
    """The validated config a trained cell runs with (a RunConfig), or the baseline's (data, eval) configs."""
    from lucidrec.data.pipeline import DataConfig
    from lucidrec.eval.evaluator import EvalConfig
    from lucidrec.train.run import build_config

    if cell.is_baseline:
        return (validate_config(DataConfig, cell.values.get("data"), "data"),
                validate_config(EvalConfig, cell.values.get("eval"), "eval"))
    return build_config(cell.values)
