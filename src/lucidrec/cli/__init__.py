"""The ``lucidrec`` command line: one sub-command module per concern.

Each module exposes either a ``typer.Typer`` (a command group) or plain command functions; they are
wired together here and nowhere else, so ``lucidrec --help`` is the complete list.
"""

from __future__ import annotations

import importlib

import typer

# (module, attribute, name, is_group). Command modules import heavy libraries inside their functions,
# except the registries whose names are the choices of an option (backbones, item embeddings), so help
# lists every registered name. That loads torch (~1.5 s), so the app is built on first use: importing
# one command module (``lucidrec.cli.lm``) stays cheap.
_COMMANDS = [
    ("lucidrec.cli.data", "app", "data", True),
    ("lucidrec.cli.evaluate", "evaluate", "evaluate", False),
    ("lucidrec.cli.train", "train", "train", False),
    ("lucidrec.cli.run", "run", "run", False),
    ("lucidrec.cli.compare", "compare", "compare", False),
    ("lucidrec.cli.compare", "aggregate", "aggregate", False),
    ("lucidrec.cli.embed", "embed", "embed", False),
    ("lucidrec.cli.lm", "app", "lm", True),
    ("lucidrec.cli.explain", "explain", "explain", False),
    ("lucidrec.cli.explain_quality", "explain_quality", "explain-quality", False),
    ("lucidrec.cli.experiment", "app", "experiment", True),
    ("lucidrec.cli.report", "report", "report", False),
    ("lucidrec.cli.attributes", "app", "attributes", True),
    ("lucidrec.cli.serve", "serve", "serve", False),
    ("lucidrec.cli.method", "app", "method", True),
    ("lucidrec.cli.interpret", "app", "interpret", True),
]
_app: typer.Typer | None = None


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="lucidrec",
        help="LLM knowledge inside sequential recommenders: data, training, evaluation, explanation.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        # Plain help: choices and defaults as text, flags without a "<bool>" placeholder (typer's rich
        # layout prints one for every flag) and "[required]" on required options.
        rich_markup_mode=None,
        context_settings={"show_default": True},
    )
    for module_name, attribute, name, is_group in _COMMANDS:
        target = getattr(importlib.import_module(module_name), attribute)
        if is_group:
            app.add_typer(target, name=name)
        else:
            app.command(name=name)(target)
    return app


def __getattr__(name: str):
    if name == "app":  # ``from lucidrec.cli import app`` builds it once
        global _app
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module 'lucidrec.cli' has no attribute {name!r}")


def main() -> None:
    __getattr__("app")()
