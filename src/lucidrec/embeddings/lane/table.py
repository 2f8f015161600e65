"""LANE's semantic item table: the item titles' sentence vectors initialise a trainable table.

Items keep their ids (titles are text only; identical titles are not merged). The width is the
encoder's (384 for all-MiniLM-L6-v2), so the backbone's hidden size must equal it. Row 0 is padding;
special tokens (BERT4Rec's mask) get their own trainable rows. The embedding brings LANE's
preference alignment (:class:`~lucidrec.embeddings.lane.alignment.PreferenceAlignment`) as the
backbone's state hook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lucidrec.config import ConfigError
from lucidrec.embeddings.base import EMBEDDINGS, EmbeddingContext, ItemEmbedding, prepared_folder, with_special_rows
from lucidrec.embeddings.lane.alignment import PreferenceAlignment
from lucidrec.embeddings.pca import reduce_table
from lucidrec.embeddings.lane.config import TITLES, LaneConfig
from lucidrec.embeddings.lane.state_files import (ITEMS, PREFERENCES, STATE_DIR, items_fingerprint,
                                                 preferences_fingerprint, read_stage, split_identity)


@EMBEDDINGS.register("lane")
class LaneItemEmbedding(ItemEmbedding):
    config_class = LaneConfig

    def __init__(self, vectors: np.ndarray, extra_tokens: int = 0, *, preferences: np.ndarray | None = None,
                 mask: np.ndarray | None = None, config: LaneConfig | None = None,
                 phrases: dict[int, list[str]] | None = None):
        config = config or LaneConfig()
        vectors = np.asarray(vectors, np.float32)
        super().__init__(vectors.shape[0] - 1, vectors.shape[1], extra_tokens)
        weight = torch.from_numpy(vectors).clone()
        weight[0] = 0
        self.weight = nn.Parameter(weight)
        self.special = nn.Parameter(torch.randn(extra_tokens, self.dim) * 0.02) if extra_tokens else None
        if preferences is None:
            preferences, mask = np.zeros((0, 1, self.dim), np.float32), np.zeros((0, 1), bool)
        #: user index -> the phrases behind the rows of ``preferences`` (for explanations)
        self.phrases = dict(phrases or {})
        # Not a submodule: the backbone registers the hook (one copy in state_dict).
        self.__dict__["alignment"] = PreferenceAlignment(self.dim, preferences, mask, config.heads, config.dropout)

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        out = self.weight[item_ids.clamp(max=self.n_items)]
        return with_special_rows(item_ids, out, self.special, self.n_items)

    def table(self) -> torch.Tensor:
        return self.weight

    def state_hook(self) -> PreferenceAlignment:
        return self.alignment

    @classmethod
    def build(cls, config: LaneConfig, n_items, dim, extra_tokens, context: EmbeddingContext | None = None):
        """The embedding of a run whose ``lane/`` folder the LANE recipe prepared."""
        folder = prepared_folder(context, "lane", STATE_DIR, needs_split=True)
        items = read_stage(folder, ITEMS, items_fingerprint(config, context.data.data_hash))
        prefs = read_stage(folder, PREFERENCES, preferences_fingerprint(config, context.data.data_hash,
                                                                          split_identity(context.split)))
        if items is None or prefs is None:
            missing = "item table" if items is None else "preferences"
            raise ConfigError(f"{folder}: no LANE {missing} for this config (run the LANE recipe: lucidrec train "
                              "--embedding lane with these settings, or lucidrec method status RUN)")
        vectors = items[0]["vectors"] if config.item_table == TITLES else run_item_table(config.item_table, context.data)
        if config.pca_dim is not None and (config.item_table == TITLES or config.pca_dim < vectors.shape[1]):
            vectors = reduced_table(vectors, config.pca_dim)
        if vectors.shape != (n_items + 1, dim):
            width = ("pca_dim" if config.pca_dim is not None else
                     "the encoder's width" if config.item_table == TITLES else f"the table of {config.item_table}")
            raise ConfigError(f"LANE's item table is {vectors.shape[1]}-d ({width}) but model.hidden is {dim}: set "
                              f"model.hidden = {vectors.shape[1]} (or embedding.pca_dim = {dim})")
        phrases = read_phrases(folder, context.data)
        return cls(vectors, extra_tokens, preferences=prefs[0]["vectors"], mask=prefs[0]["mask"], config=config,
                   phrases=phrases)


def run_item_table(source: str, data) -> np.ndarray:
    """The item table another run saved (``source``: its folder, or an ``.npy`` file), checked against ``data``:
    one row per item plus the padding row, and, for a run folder, the same item ids in the same order."""
    from lucidrec.files import read_json

    path = Path(source).expanduser()
    folder = path if path.is_dir() else None
    if folder is not None:
        path = folder / "item_table.npy"
    if not path.is_file():
        raise ConfigError(f"embedding.item_table: {path} not found (give 'titles', a finished run folder or a .npy file)")
    table = np.load(path)
    if table.ndim != 2 or table.shape[0] != data.n_items + 1:
        raise ConfigError(f"embedding.item_table: {path} has shape {table.shape}, expected ({data.n_items + 1}, d) "
                          f"for the {data.n_items} items of '{data.name}' plus padding")
    ids_path = (folder or path.parent) / "item_ids.json"
    if ids_path.is_file():
        ids = [str(i) for i in read_json(ids_path)]
        if ids != [str(i) for i in data.item_ids]:
            raise ConfigError(f"embedding.item_table: {ids_path} lists other items (or another order) than "
                              f"'{data.name}': the table must come from a run on the same data")
    table = table.astype(np.float32)
    table[0] = 0
    return table


def reduced_table(vectors: np.ndarray, width: int) -> np.ndarray:
    """The title table reduced to ``width`` by PCA (row 0 stays padding), rescaled to the input rows' mean norm
    so the trainable table starts at the scale of the encoder's rows."""
    if width > vectors.shape[1]:
        raise ConfigError(f"embedding.pca_dim = {width} exceeds the encoder's width {vectors.shape[1]}")
    reduced, _ = reduce_table(vectors, width)
    scale = np.linalg.norm(vectors[1:], axis=1).mean() / max(np.linalg.norm(reduced[1:], axis=1).mean(), 1e-12)
    return (reduced * scale).astype(np.float32)


def read_phrases(folder: Path, data) -> dict[int, list[str]]:
    """user index -> phrases, from ``preferences.jsonl`` (written by the recipe, one user a line)."""
    import json

    path = Path(folder) / f"{PREFERENCES}.jsonl"
    out: dict[int, list[str]] = {}
    if not path.is_file():
        return out
    index = {str(u): i for i, u in enumerate(data.user_ids)}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if str(record["user_id"]) in index:
                out[index[str(record["user_id"])]] = list(record["phrases"])
    return out
