"""Item text matrices: encode a catalog in vocabulary order and store it for a frozen item table.

File format: ``<out>.npy`` (float32, one row per vocabulary index; the padding row ``<pad>`` is all
zeros) plus ``<out>.json`` next to it holding the encoder identity, text form, item ids in row
order, dimension, the data hash of the prepared dataset and how many items fell back to
``item <id>`` text. :func:`load_item_matrix` checks that the two files agree.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from lucidrec.data.dataset import ItemCatalog
from lucidrec.errors import DataFormatError
from lucidrec.files import atomic_numpy_save, read_json, write_json_atomic
from lucidrec.lm.text import MAX_VALUE_CHARS, build_item_texts

PAD_TOKEN = "<pad>"


@dataclass
class ItemMatrixInfo:
    encoder: str
    text_form: str
    item_ids: list[str]
    dim: int
    data_hash: str = ""
    dataset: str = ""
    n_fallback: int = 0
    fallback_ids: list[str] = field(default_factory=list)
    domain: str | None = None
    created: str = ""
    lucidrec_version: str = ""


@dataclass
class ItemMatrix:
    vectors: np.ndarray
    info: ItemMatrixInfo


def encode_catalog(catalog: ItemCatalog, item_ids: Sequence[str], encoder, text_form: str = "title", *,
                   domain: str | None = None, exclude: Sequence[str] = (), max_value_chars: int | None = MAX_VALUE_CHARS,
                   data_hash: str = "", dataset: str = "", show_progress: bool | None = None) -> ItemMatrix:
    """Rows aligned with ``item_ids``; ``"<pad>"`` entries get zero rows and are not encoded."""
    from lucidrec import __version__

    ids = [str(i) for i in item_ids]
    real = [i for i, item_id in enumerate(ids) if item_id != PAD_TOKEN]
    texts = build_item_texts(catalog, [ids[i] for i in real], text_form, domain=domain, exclude=exclude,
                             max_value_chars=max_value_chars)
    encoded = encoder.encode(texts.texts, show_progress=show_progress)
    vectors = np.zeros((len(ids), encoded.shape[1] if encoded.ndim == 2 and encoded.size else encoder.dim),
                       dtype=np.float32)
    vectors[real] = encoded
    info = ItemMatrixInfo(
        encoder=encoder.identity, text_form=text_form, item_ids=ids, dim=int(vectors.shape[1]), data_hash=data_hash,
        dataset=dataset, n_fallback=texts.n_fallback, fallback_ids=texts.fallback_ids, domain=domain,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), lucidrec_version=__version__,
    )
    return ItemMatrix(vectors, info)


def _paths(out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".npy", ".json") else out
    return base.with_suffix(".npy"), base.with_suffix(".json")


def save_item_matrix(matrix: ItemMatrix, out: str | Path) -> tuple[Path, Path]:
    npy, sidecar = _paths(out)
    atomic_numpy_save(matrix.vectors.astype(np.float32, copy=False), npy)
    write_json_atomic(sidecar, asdict(matrix.info))
    return npy, sidecar


def load_item_matrix(path: str | Path, *, expect_item_ids: Sequence[str] | None = None,
                     expect_data_hash: str | None = None) -> ItemMatrix:
    """Read a saved matrix; optionally check it matches the vocabulary / data it will be used with."""
    npy, sidecar = _paths(path)
    for required in (npy, sidecar):
        if not required.is_file():
            raise DataFormatError(required, "missing (an item matrix is a .npy file plus a .json sidecar)")
    vectors = np.load(npy)
    try:
        info = ItemMatrixInfo(**read_json(sidecar))
    except TypeError as exc:  # a missing or unexpected key: the dataclass names it
        raise DataFormatError(sidecar, f"not an item-matrix sidecar ({exc})") from None
    if vectors.shape != (len(info.item_ids), info.dim):
        raise DataFormatError(npy, f"shape {vectors.shape} does not match the sidecar ({len(info.item_ids)}, {info.dim})")
    if expect_data_hash and info.data_hash and info.data_hash != expect_data_hash:
        raise DataFormatError(sidecar, f"made for data {info.data_hash}, not {expect_data_hash}", field="data_hash")
    if expect_item_ids is not None:
        expected = [str(i) for i in expect_item_ids]
        if expected != info.item_ids:
            diff = next((i for i, (a, b) in enumerate(zip(expected, info.item_ids)) if a != b), min(len(expected), len(info.item_ids)))
            raise DataFormatError(sidecar, f"item ids differ from the vocabulary at row {diff} "
                                  f"({len(info.item_ids)} rows stored, {len(expected)} expected)", field="item_ids")
    return ItemMatrix(vectors.astype(np.float32, copy=False), info)
