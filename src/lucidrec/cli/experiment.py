"""``lucidrec experiment``: run a grid file (datasets x models x embeddings x variants x seeds), or list its cells."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, choice_option, guarded

app = typer.Typer(help="Grids of runs with resumable cells and committed result records.", no_args_is_help=True)

WorkersOption = typer.Option(None, "--workers", help="Cells at once in local processes (default: the grid's, else 1).")
ThreadsOption = typer.Option(None, "--threads", help="Torch threads per cell (default: the grid's, else 1); workers x threads <= cores.")
ResultsOption = typer.Option(None, "--results", help="Results folder (default: the grid's 'results', else results/<name>).")
RunsOption = typer.Option(None, "--runs", help="Folder of the run folders (default: the grid's 'runs', else runs/experiments/<name>).")


@app.command("run")
@guarded
def run(
    grid_file: Path = typer.Argument(..., help="Grid file (TOML), e.g. bench/grids/quick.toml."),
    workers: Optional[int] = WorkersOption,
    threads: Optional[int] = ThreadsOption,
    results: Optional[Path] = ResultsOption,
    runs: Optional[Path] = RunsOption,
    data_dir: Optional[Path] = DataDirOption,
    plain: bool = typer.Option(False, "--plain", help="One line per cell instead of the live progress display."),
    backend: str = choice_option("local", "--backend", kind="experiment backend", choices=("local", "ray"),
                                 help="local (this machine) or ray (a Ray cluster; pip install ray)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address, e.g. ray://head:10001 "
                                          "(default: a Ray instance on this machine)."),
    datasets: list[str] = typer.Option([], "--dataset", show_default=False, metavar="<name>", help="Only the cells of this dataset (repeatable)."),
    variants: list[str] = typer.Option([], "--variant", show_default=False, metavar="<name>", help="Only the cells of this variant (repeatable); cells they "
                                       "refer to run too."),
):
    """Run every cell of the grid that has no record yet (killed cells continue from their checkpoint)."""
    from lucidrec.experiments.grid import load_grid, select_cells
    from lucidrec.experiments.progress import format_seconds
    from lucidrec.experiments.runner import run_grid

    grid = load_grid(grid_file, data_dir=str(data_dir) if data_dir else None, results=results, runs=runs,
                     workers=workers, threads=threads)
    only = select_cells(grid, datasets, variants) if datasets or variants else None
    count = len(grid.cells) if only is None else len(only)
    typer.echo(f"grid {grid.spec.name}: {count} cells, {grid.spec.workers} worker(s) x {grid.spec.threads} "
               f"thread(s); records in {grid.results_dir}, run folders in {grid.runs_dir}", err=True)
    outcome = run_grid(grid, only=only, live=False if plain else None, backend=backend, address=address)
    typer.echo(f"{len(outcome.done)} cells run, {len(outcome.skipped)} already finished, {len(outcome.failed)} failed, "
               f"{len(outcome.blocked)} not run (a cell they need failed); {format_seconds(outcome.seconds)}", err=True)
    for key, error in outcome.failed.items():
        typer.echo(f"failed: {key.describe()}: {error}", err=True)
    if not outcome.ok:
        raise typer.Exit(1)
    typer.echo(f"next: lucidrec report {grid.results_dir} --out report/{grid.spec.name}", err=True)


@app.command("list")
@guarded
def list_cells(
    grid_file: Path = typer.Argument(..., help="Grid file (TOML)."),
    results: Optional[Path] = ResultsOption,
    runs: Optional[Path] = RunsOption,
    data_dir: Optional[Path] = DataDirOption,
):
    """Check the grid and list its cells with their state (finished: a record exists)."""
    from lucidrec.experiments.grid import load_grid

    grid = load_grid(grid_file, data_dir=str(data_dir) if data_dir else None, results=results, runs=runs)
    for cell in grid.cells:
        state = "finished" if (grid.results_dir / f"{cell.key.slug}.json").is_file() else "to run"
        needs = f" (after {', '.join(k.describe() for k in cell.needs)})" if cell.needs else ""
        typer.echo(f"{state:<9} {cell.key.describe()}{needs}")
