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
