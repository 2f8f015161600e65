"""``lucidrec serve RUN [RUN ...]``: the recommender API and the web explorer over trained runs."""

from __future__ import annotations

from typing import List, Optional

import typer

from lucidrec.cli._common import guarded, require_serve_extra


@guarded
def serve(
    runs: List[str] = typer.Argument(..., help="Run folders (trained runs or baselines), or NAME=FOLDER."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="0 picks a free port."),
    max_k: int = typer.Option(100, "--max-k", min=1, help="Largest k a request may ask for."),
    max_pending: int = typer.Option(64, "--max-pending", min=1, help="Scoring requests in flight; more get 503."),
    interpreters: Optional[List[str]] = typer.Option(
        None, "--interpreter", metavar="[NAME=]FOLDER",
        help="A RecInterpreter folder ('lucidrec interpret train --run RUN --out FOLDER') to attach to the served run "
             "it was trained on (found by its weights and data hash; NAME=FOLDER names the run). Repeatable. Its LM "
             "is loaded at start; /explanations?reading=true returns its reading of a user's state."),
    max_readings: int = typer.Option(2, "--max-readings", min=1,
                                     help="RecInterpreter readings being generated or waiting; more get 503."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch threads for scoring."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level (warning: no access log)."),
    warm_search: bool = typer.Option(True, "--warm-search/--no-warm-search",
                                     help="Encode the catalog's titles for search at start, not at the first search."),
):
    """Serve recommendations, explanations and item search over HTTP, with a web explorer at /.

    The OpenAPI schema is at /openapi.json and interactive docs at /docs. With --interpreter, a run's
    explanations can also carry RecInterpreter's reading of the state. Set LUCIDREC_API_KEY to
    require 'Authorization: Bearer KEY' (or 'X-API-Key: KEY') on every API call."""
    require_serve_extra()
    import gc

    import torch
    import uvicorn

    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig
    from lucidrec.serve.readings import attach_interpreters
    from lucidrec.serve.runs import load_served_runs
    from lucidrec.serve.server import uvicorn_config, warn_if_exposed

    torch.set_num_threads(threads)
    config = ServeConfig.from_env(max_k=max_k, max_pending=max_pending, max_readings=max_readings)
    loaded = load_served_runs(runs)
    attach_interpreters(loaded, interpreters or [])
    for name, run in loaded.items():
        reads = "" if run.interpreter is None else f", read by {run.interpreter.folder} ({run.interpreter.reader.task})"
        typer.echo(f"loaded {name}: {run.dataset} {run.model_name} ({run.method}), "
                   f"{run.data.n_users} users, {run.n_items} items{reads}", err=True)
    gc.collect()
    gc.freeze()  # the loaded runs live as long as the process: keep their objects out of every later collection
    app = create_app(loaded, config, warm_search=warm_search)
    warn_if_exposed(host, config)
    typer.echo(f"explorer at http://{host}:{port}/ , API schema at http://{host}:{port}/openapi.json", err=True)
    uvicorn.Server(uvicorn_config(app, host, port, config, log_level=log_level)).run()
