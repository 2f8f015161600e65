"""The LLM item table: (SCFT-tuned or frozen) encoder -> un-augmented prompts -> mean-pooled, L2-normalised rows.

Two cached artifacts (see :mod:`artifacts`):

- ``scft/<key>``: the tuned encoder (``model/``, Hugging Face format), keyed by the base encoder's
  identity, the SCFT settings and the digest of the item prompts;
- ``tables/<key>``: ``item_table.npy`` + sidecar (rows = vocabulary, row 0 = padding = zeros),
  keyed by its source (tuned encoder key, or the frozen encoder's identity) and the prompts.
  A PCA of it (``pca_dim``) is cached next to it.

Each provenance.json records the encoder, the SCFT config, the data hash and the costs (SCFT and
encoding seconds), so a reused table still reports what it cost to make.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.distributed as dist

from lucidrec.config import ConfigError
from lucidrec.methods import artifacts
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.methods.llmemb.encoder import encode_texts, load_encoder
from lucidrec.methods.llmemb.interactions import next_item_pairs, pairs_digest
from lucidrec.methods.llmemb.prompts import ItemPrompts, build_prompts
from lucidrec.methods.llmemb.scft import finish, has_duplicate_texts, run_scft
from lucidrec.embeddings.pca import reduce_table
from lucidrec.files import atomic_numpy_save
from lucidrec.lm.item_vectors import ItemMatrix, ItemMatrixInfo, load_item_matrix, save_item_matrix
from lucidrec.lm.models import locate_encoder

TABLE = "item_table"


@dataclass
class ItemTable:
    matrix: np.ndarray  # (n_items + 1, D'), row 0 zeros; PCA applied when asked
    provenance: dict
    folder: Path


def say(message: str, progress: bool = True) -> None:
    if progress:
        print(f"llmemb: {message}", file=sys.stderr, flush=True)


def single_process_only(what: str) -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise ConfigError(f"llmemb: {what} is not cached yet; build it once without torchrun (same config), "
                          "then launch the distributed run, which reuses it")


def scft_key(config: LLMEmbConfig, encoder_identity: str, prompts: ItemPrompts, pairs: np.ndarray | None = None) -> str:
    payload = {"kind": "scft", "encoder": encoder_identity, "scft": config.scft_fields(), "prompts": prompts.digest()}
    if pairs is not None:  # only then: the keys of encoders tuned by SCFT stay what they were
        payload.update(tuning="interactions", pairs=pairs_digest(pairs))
    if pairs is not None or has_duplicate_texts(prompts):  # where masking in-batch false negatives changed the result
        payload["false_negatives"] = "masked"
    return artifacts.content_key(payload)


def training_pairs(config: LLMEmbConfig, prompts: ItemPrompts, split) -> np.ndarray | None:
    """(item, next item) pairs of the split's training part when the encoder is tuned on interactions."""
    if config.tuning.kind != "interactions" or not config.needs_scft:
        return None
    if split is None:
        raise ConfigError("llmemb: tuning='interactions' needs the run's split (build it through a run config)")
    has_text = np.array([False, *(bool(s) for s in prompts.segments)])
    return next_item_pairs(split.train, has_text)


def get_scft(config: LLMEmbConfig, prompts: ItemPrompts, data, *, progress: bool = True,
             pairs: np.ndarray | None = None) -> tuple[Path, dict]:
    """The tuned encoder's artifact folder (trained, resumed or reused) and its provenance; with ``pairs``,
    tuned on those interaction pairs instead of SCFT's views."""
    location = locate_encoder(config.encoder)
    key = scft_key(config, location.identity, prompts, pairs)
    folder = artifacts.artifact_dir(artifacts.artifacts_root(config.artifacts_dir), "scft", key)
    with artifacts.locked(folder):
        if not artifacts.is_complete(folder):
            single_process_only("the SCFT encoder")
            items = int(len(prompts.with_text()))
            what = f"{items} items" if pairs is None else f"{len(pairs)} training (item, next item) pairs"
            say(f"{'SCFT' if pairs is None else 'interaction tuning'} of {config.encoder} on {what} ({config.tuning.loss}, "
                f"{config.tuning.epochs} epoch(s), batch {config.tuning.batch_size}{', LoRA' if config.tuning.lora else ''}) "
                f"-> {folder}", progress)
            result = run_scft(config, prompts, folder, location=location, key=key, progress=progress, pairs=pairs)
            artifacts.write_provenance(folder, {
                "kind": "scft", "key": key, "encoder": location.identity, "encoder_name": config.encoder,
                "tuning": "scft" if pairs is None else "interactions",
                "pairs": None if pairs is None else int(len(pairs)),
                "scft": config.scft_fields(), "prompts_digest": prompts.digest(), "data_hash": data.data_hash,
                "dataset": data.name, "items_tuned": items, "steps": result.steps, "seconds": result.seconds,
                "last_loss": result.last_loss, "temperature": result.temperature,
            })
            finish(folder)
        else:
            say(f"reusing SCFT encoder {folder}", progress)
    return folder, artifacts.read_provenance(folder)


def table_key(config: LLMEmbConfig, prompts: ItemPrompts, location, pairs: np.ndarray | None = None) -> str:
    """The item table's artifact key: its source (tuned encoder key, or the frozen encoder) and the prompts."""
    if config.needs_scft:
        source = {"kind": "scft", "key": scft_key(config, location.identity, prompts, pairs)}
    else:
        source = {"kind": "encoder", "identity": location.identity}
    return artifacts.content_key({"kind": "table", "source": source, "prompts": prompts.digest(),
                                  "max_seq_length": config.prompts.max_seq_length, "pooling": "mean", "normalized": True})


def scft_folder(config: LLMEmbConfig, prompts: ItemPrompts, location, pairs: np.ndarray | None = None) -> Path:
    return artifacts.artifact_dir(artifacts.artifacts_root(config.artifacts_dir), "scft",
                                  scft_key(config, location.identity, prompts, pairs))


def table_folder(config: LLMEmbConfig, prompts: ItemPrompts, location, pairs: np.ndarray | None = None) -> Path:
    return artifacts.artifact_dir(artifacts.artifacts_root(config.artifacts_dir), "tables",
                                  table_key(config, prompts, location, pairs))


def item_prompts(config: LLMEmbConfig, data) -> ItemPrompts:
    return build_prompts(data.catalog, list(data.item_ids[1:]), config)


def get_item_table(config: LLMEmbConfig, data, *, progress: bool = True, split=None) -> ItemTable:
    """The (cached) LLM item table of ``data``'s vocabulary for this config's variant (``split``: the run's,
    whose training part the encoder is tuned on with ``tuning='interactions'``)."""
    prompts = item_prompts(config, data)
    location = locate_encoder(config.encoder)
    scft_info, weights, pairs = None, None, None
    if config.needs_scft:
        pairs = training_pairs(config, prompts, split)
        scft_path, scft_info = get_scft(config, prompts, data, progress=progress, pairs=pairs)
        weights = scft_path / "model"
        source = {"kind": "scft", "key": scft_info["key"]}
        identity = f"scft:{scft_info['key']}|base={location.identity}"
    else:
        source = {"kind": "encoder", "identity": location.identity}
        identity = location.identity
    key = table_key(config, prompts, location, pairs)
    folder = artifacts.artifact_dir(artifacts.artifacts_root(config.artifacts_dir), "tables", key)
    with artifacts.locked(folder):
        if not artifacts.is_complete(folder):
            single_process_only("the item table")
            say(f"encoding {len(prompts.texts)} item prompts with {'the tuned' if weights else 'the frozen'} "
                f"{config.encoder} -> {folder}", progress)
            started = time.perf_counter()
            model, tokenizer = load_encoder(location, folder=weights)
            vectors = encode_texts(model, tokenizer, prompts.texts, max_length=config.prompts.max_seq_length,
                                   batch_size=config.table.encode_batch_size, progress=progress)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            seconds = time.perf_counter() - started
            matrix = np.zeros((len(prompts.texts) + 1, vectors.shape[1]), dtype=np.float32)
            matrix[1:] = vectors
            fallback = [i for i, s in zip(prompts.item_ids, prompts.segments) if not s]
            info = ItemMatrixInfo(encoder=identity, text_form=f"llmemb-{config.prompts.text_form}",
                                  item_ids=[str(i) for i in data.item_ids], dim=int(matrix.shape[1]),
                                  data_hash=data.data_hash, dataset=data.name, n_fallback=len(fallback),
                                  fallback_ids=fallback, domain=config.prompts.domain)
            save_item_matrix(ItemMatrix(matrix, info), folder / TABLE)
            artifacts.write_provenance(folder, {
                "kind": "table", "key": key, "variant_source": source["kind"], "encoder": location.identity,
                "encoder_name": config.encoder, "table_encoder": identity, "scft_key": scft_info and scft_info["key"],
                "scft": scft_info and scft_info["scft"], "scft_seconds": scft_info["seconds"] if scft_info else 0.0,
                "scft_steps": scft_info["steps"] if scft_info else 0, "encode_seconds": seconds,
                "data_hash": data.data_hash, "dataset": data.name, "prompts_digest": prompts.digest(),
                "n_items": len(prompts.texts), "n_fallback": len(fallback), "dim": int(matrix.shape[1]),
                "text_form": config.prompts.text_form, "domain": config.prompts.domain, "instruction": prompts.head, "max_seq_length": config.prompts.max_seq_length,
            })
        else:
            say(f"reusing item table {folder}", progress)
    stored = load_item_matrix(folder / TABLE, expect_item_ids=[str(i) for i in data.item_ids])
    matrix = stored.vectors
    if config.table.pca_dim:
        matrix = pca_table(matrix, config.table.pca_dim, folder)
    return ItemTable(matrix, artifacts.read_provenance(folder), folder)


def pca_table(matrix: np.ndarray, dim: int, folder: Path | None = None) -> np.ndarray:
    """PCA of the item rows (padding excluded, it stays zero), cached as ``item_table_pca<dim>_svd.npy``."""
    if dim >= matrix.shape[1]:
        raise ConfigError(f"llmemb: pca_dim={dim} must be smaller than the table width {matrix.shape[1]}")
    # "svd": the name of tables made by lucidrec.embeddings.pca (older caches hold scikit-learn's float32 PCA)
    cached = Path(folder) / f"{TABLE}_pca{dim}_svd.npy" if folder is not None else None
    if cached is not None and cached.is_file():
        return np.load(cached)
    out, _ = reduce_table(matrix, dim)
    if cached is not None:
        atomic_numpy_save(out, cached)
    return out
