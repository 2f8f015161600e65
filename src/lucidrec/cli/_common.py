"""Options and helpers shared by several commands (one definition, so flags mean the same everywhere)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import typer

from lucidrec.errors import LucidrecError, UnknownNameError

DataDirOption = typer.Option(None, "--data-dir", help="Folder holding datasets (default: $LUCIDREC_DATA_DIR, ../shared/data, or the user cache).")
SkipBadLinesOption = typer.Option(False, "--skip-bad-lines", help="Skip malformed lines of text files (they are counted and listed) instead of stopping.")


# The preparation filters, defined once so every command that prepares data spells them the same way.
MinRatingOption = typer.Option(None, "--min-rating", help="Drop rated interactions below this.")
KCoreOption = typer.Option(None, "--k-core", help="Iterative k-core on users and items.")
MinUserOption = typer.Option(None, "--min-user", help="Minimum interactions per user.")
MinItemOption = typer.Option(None, "--min-item", help="Minimum interactions per item.")
SinglePassOption = typer.Option(False, "--single-pass", help="Apply the count filters once instead of iterating.")


def choice_option(default: Any, *decls: str, kind: str, choices: Sequence[str], **options):
    """An option whose value must be one of ``choices``: listed in help (``<a|b|c>``), checked before
    the command runs, and refused with the registries' own message (``unknown KIND 'x'; valid KINDs: ...``)
    rather than the parser's."""
    names = list(choices)

    def check(value):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and item not in names:
                raise typer.BadParameter(str(UnknownNameError(kind, item, names)))
        return value

    return typer.Option(default, *decls, metavar="<" + "|".join(names) + ">", callback=check, **options)


#: the values of PrepareConfig.duplicates (a test keeps the two equal; importing data.prepare here would load pandas)
DEDUP_CHOICES = ("keep", "first", "last")
DedupOption = choice_option("keep", "--dedup", kind="--dedup value", choices=DEDUP_CHOICES,
                            help="Repeated (user, item) pairs: keep all, or only the first or last.")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")
MinHistoryOption = typer.Option(None, "--min-history", help="Drop users with fewer interactions after filtering.")


def prepare_options(
    min_rating: Optional[float], k_core: Optional[int], min_user: Optional[int], min_item: Optional[int],
    single_pass: bool, dedup: str, min_history: Optional[int],
):
    from lucidrec.data.prepare import PrepareConfig

    return PrepareConfig(
        min_rating=min_rating,
        duplicates=dedup,
        min_user_interactions=min_user if min_user is not None else (k_core or 0),
        min_item_interactions=min_item if min_item is not None else (k_core or 0),
        filter_mode="single_pass" if single_pass else "iterative",
        min_history=min_history or 0,
    )


def fail(error: Exception) -> None:
    """Print a one-line error (no traceback) for errors the user can act on, and exit 2."""
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def require_serve_extra() -> None:
    """The HTTP commands need FastAPI and uvicorn: say which extra brings them instead of a traceback."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        fail(LucidrecError(f"{' and '.join(missing)} not installed: pip install 'lucidrec[serve]'"))


def guarded(fn):
    """Turn lucidrec's own errors into clean CLI failures; let real bugs show their traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (LucidrecError, FileNotFoundError) as exc:
            fail(exc)

    return wrapper
