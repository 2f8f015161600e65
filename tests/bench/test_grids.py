"""Every grid file of bench/grids is a valid grid: it expands into cells (checked names, configs and run references)
without running any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lucidrec.experiments.grid import load_grid

GRIDS = sorted((Path(__file__).resolve().parents[2] / "bench" / "grids").glob("*.toml"))


def test_there_are_grids():
    assert len(GRIDS) >= 5


@pytest.mark.parametrize("path", GRIDS, ids=[p.stem for p in GRIDS])
def test_grid_expands(path, data_dir, tmp_path):
    grid = load_grid(path, data_dir=str(data_dir), results=str(tmp_path / "results"), runs=str(tmp_path / "runs"))
    assert grid.spec.name == path.stem  # results/<name>: the file and its results folder share the name
    assert grid.cells
    assert len({cell.key.slug for cell in grid.cells}) == len(grid.cells)
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()  # checked, nothing run


def test_backbone_grid_states_the_protocol_of_the_measurement_scripts(import_bench_script, data_dir, tmp_path):
    """bench/protocol.py (the models the speed measurements time) and bench/grids/backbones.toml (the quality
    figures) must describe the same models."""
    protocol = import_bench_script("protocol")
    grid = load_grid(GRIDS[0].with_name("backbones.toml"), data_dir=str(data_dir), results=str(tmp_path / "r"),
                     runs=str(tmp_path / "runs"))
    for cell in grid.cells:
        if cell.key.variant != "default":
            continue
        values = protocol.run_values(cell.key.dataset, cell.key.model, cell.key.seed, {"name": "id"})
        config = cell.values
        for section in ("model", "train"):
            for key in ("hidden", "max_len", "dropout", "epochs", "patience", "batch_size", "loss"):
                if key in values[section]:
                    assert config[section][key] == values[section][key], (cell.key.describe(), section, key)
