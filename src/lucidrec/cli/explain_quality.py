"""``lucidrec explain-quality``: a LANE run's explanation metrics over a fixed random sample of users, LANE vs LLM-only."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import guarded


@guarded
def explain_quality(
    run: Path = typer.Option(..., "--run", help="Run folder of a LANE run (trained with --embedding lane)."),
    users: int = typer.Option(200, "--users", min=1, help="Users in the fixed random sample (deletion test, grounding)."),
    generate: int = typer.Option(40, "--generate", min=0, help="Of those, how many get the two generated explanations "
                                 "(LANE chain of thought and LLM-only) for weight fidelity; 0: none."),
    seed: int = typer.Option(0, "--seed", help="Seed of the user sample, the random deletion and the calibration."),
    out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
):
    """Weight fidelity, deletion test and grounding of a LANE run's explanations, with the LLM-only explainer
    (same chat model, history and item, no weights) as the comparison row."""
    from lucidrec.config import ConfigError
    from lucidrec.explain.lane_quality import lane_quality
    from lucidrec.files import numpy_default, read_json, write_json_atomic

    config = Path(run) / "config.json"
    if not config.is_file():
        raise ConfigError(f"{run}: not a run folder (no config.json)")
    embedding = read_json(config).get("embedding", {}).get("name", "id")
    if embedding != "lane":
        raise ConfigError(f"{run}: explanation quality is measured on LANE runs; this run uses --embedding {embedding}")
    result = lane_quality(run, users=users, generate=generate, seed=seed,
                          progress=lambda message: print(f"explain-quality: {message}", file=sys.stderr, flush=True))
    if out is not None:
        write_json_atomic(out, result, default=numpy_default)
    typer.echo(json.dumps(result, indent=2, default=numpy_default))
