"""``lucidrec attributes``: draft a GER attribute set for a dataset that ships none."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, choice_option, guarded
from lucidrec.lm.chat import CHAT_BACKENDS

app = typer.Typer(help="GER attribute sets: draft one for a new dataset.", no_args_is_help=True)

@app.command("draft")
@guarded
def draft(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name (folder under the data directory) or path."),
    out: Optional[Path] = typer.Option(None, "--out", help="TOML file to write [default: attributes-DATASET.toml]."),
    data_dir: Optional[Path] = DataDirOption,
    method: str = choice_option("auto", "--method", kind="draft method", choices=("auto", "llm", "encoder"),
                               help="llm = a chat model proposes the set; encoder = clusters of the item texts' sentence "
                                    "vectors, named by their TF-IDF words (offline); auto = llm when --backend is given, "
                                    "else encoder (and encoder when the LLM's answers never validate)."),
    n_attributes: int = typer.Option(8, "--n", min=6, max=10, help="Attributes to draft (encoder: exactly this many)."),
    backend: Optional[str] = choice_option(None, "--backend", kind="chat backend", choices=CHAT_BACKENDS,
                                          help="Chat model backend of the llm method [default: transformers, the local model]."),
    model: Optional[str] = typer.Option(None, "--model", help="Chat model name (openai/transformers backends)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai backend: server URL (default $LUCIDREC_LLM_BASE_URL)."),
    answers: Optional[Path] = typer.Option(None, "--answers", help="recorded backend: JSONL with {\"dataset\": NAME, \"answer\": JSON}."),
    preview: int = typer.Option(10, "--preview", min=0, help="Items to print with their top and bottom attributes (0 = none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the text samples and the clustering."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache root [default: $LUCIDREC_CACHE_DIR or ~/.cache/lucidrec]."),
):
    """Draft 6-10 named, scorable attributes with low/high anchors from a dataset's item texts.

    The TOML is in the format of the shipped sets; edit it, then train with
    --embedding ger --set embedding.attributes=FILE.
    """
    from lucidrec.data import load_dataset
    from lucidrec.methods.ger.attribute_draft import DraftConfig, draft_attributes, draft_header, spot_check, write_attributes
    from lucidrec.lm.text import build_item_texts

    out = out or Path(f"attributes-{Path(dataset).name}.toml")
    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists (an edited set would be lost); pass --force or another --out")
    llm = None
    if backend is None and (model or base_url or answers):
        raise typer.BadParameter("--model, --base-url and --answers choose a chat model: give --backend too")
    if backend is not None:
        llm = {"backend": backend, **({"model": model} if model else {}), **({"base_url": base_url} if base_url else {})}
        if backend == "recorded":
            if answers is None:
                raise typer.BadParameter("--backend recorded needs --answers FILE")
            llm["path"] = str(answers)
    config = DraftConfig(method=method, n_attributes=n_attributes, llm=llm, seed=seed,
                         cache_dir=str(cache_dir) if cache_dir else None)
    data = load_dataset(dataset, data_dir)
    ids = [str(i) for i in data.items.frame.index]
    built = build_item_texts(data.items, ids, "description")
    missing = set(built.fallback_ids)
    texts = [t for i, t in zip(ids, built.texts) if i not in missing]
    result = draft_attributes(texts, data.name, config)
    attributes = write_attributes(result.attributes, out, draft_header(result, data.name))
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"drafted {len(attributes)} attributes for '{data.name}' ({result.method}, from {result.n_texts} "
               f"item texts): {', '.join(attributes.names)}")
    if preview:
        typer.echo(f"\nspot check: {preview} items, highest and lowest attributes (z-scores of the encoder scorer)")
        for row in spot_check(attributes, texts, preview, seed=seed, cache_dir=config.cache_dir):
            top = ", ".join(f"{name} {z:+.1f}" for name, z in row.top)
            bottom = ", ".join(f"{name} {z:+.1f}" for name, z in row.bottom)
            typer.echo(f"- {row.text[:70]}\n    top: {top} | bottom: {bottom}")
    typer.echo(f"\nwrote {out}; use it with --embedding ger --set embedding.attributes={out}")
