"""``lucidrec embed``: encode a dataset's item texts into a matrix a frozen item table can load."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import (
    DataDirOption, DedupOption, KCoreOption, MinHistoryOption, MinItemOption, MinRatingOption, MinUserOption,
    SinglePassOption, choice_option, guarded, prepare_options,
)
from lucidrec.lm.text import TEXT_FORMS


@guarded
def embed(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name (folder under the data directory) or path."),
    out: Path = typer.Option(..., "--out", help="Output file; writes OUT.npy and the sidecar OUT.json."),
    data_dir: Optional[Path] = DataDirOption,
    encoder: str = typer.Option("all-MiniLM-L6-v2", "--encoder", help="sentence-transformers id or local folder."),
    text: str = choice_option("title", "--text", kind="text form", choices=TEXT_FORMS, help="Item text form."),
    domain: Optional[str] = typer.Option(None, "--domain", help="Attributes form: instruction line 'The DOMAIN has the following attributes:', e.g. 'beauty item'."),
    exclude: list[str] = typer.Option([], "--exclude", show_default=False, metavar="<field>", help="Catalog fields to leave out (repeatable)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache root (default: the user cache; vectors in <dir>/vectors)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Encode everything again and do not store vectors."),
    min_rating: Optional[float] = MinRatingOption,
    k_core: Optional[int] = KCoreOption,
    min_user: Optional[int] = MinUserOption,
    min_item: Optional[int] = MinItemOption,
    single_pass: bool = SinglePassOption,
    dedup: str = DedupOption,
    min_history: Optional[int] = MinHistoryOption,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Encode a dataset's item texts into an item matrix (for --embedding frozen).

    Rows follow the prepared item vocabulary (row 0 = padding, zeros); use the same filters as training.

    Items without any text are encoded as 'item <id>' and counted in the sidecar (n_fallback).
    """
    from lucidrec.data import load_dataset
    from lucidrec.data.prepare import prepare
    from lucidrec.lm.encoder import TextEncoder
    from lucidrec.lm.item_vectors import encode_catalog, save_item_matrix

    loaded = load_dataset(dataset, data_dir)
    data = prepare(loaded, prepare_options(min_rating, k_core, min_user, min_item, single_pass, dedup, min_history))
    text_encoder = TextEncoder(encoder, cache_dir=cache_dir, no_cache=no_cache, batch_size=batch_size,
                               show_progress=not quiet)
    matrix = encode_catalog(data.catalog, list(data.item_ids), text_encoder, text, domain=domain, exclude=exclude,
                            data_hash=data.data_hash, dataset=data.name)
    npy, sidecar = save_item_matrix(matrix, out)
    stats = text_encoder.stats
    typer.echo(f"{data.name}: {len(matrix.info.item_ids) - 1} items x {matrix.info.dim} ({text}) -> {npy} + {sidecar.name}; "
               f"{matrix.info.n_fallback} without text; {stats['hits']} cached, {stats['encoded_texts']} encoded")
