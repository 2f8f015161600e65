"""The text encoder LLMEmb tunes: a Hugging Face ``AutoModel`` + tokenizer, mean-pooled last states.

Models are found offline through :func:`lucidrec.lm.models.locate_encoder` (the MiniLM package by
default, or any local folder / cached hub id). A sentence-transformers folder is read through its
``modules.json`` to find the transformer weights. Padding tokens never enter the mean (unlike the
reference code, which runs LLaMA without an attention mask).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lucidrec.lm.models import ModelLocation, locate_encoder


def transformer_folder(location: ModelLocation) -> str:
    """The folder (or hub id) holding the transformer weights of a located encoder."""
    path = Path(location.path)
    modules = path / "modules.json"
    if location.local and modules.is_file():
        for module in json.loads(modules.read_text()):
            if module.get("type", "").endswith("models.Transformer"):
                return str(path / module.get("path", ""))
    return location.path


def load_encoder(name_or_location: str | ModelLocation, folder: str | Path | None = None):
    """``(model, tokenizer)`` in eval mode; ``folder`` overrides the weights (a tuned copy)."""
    from transformers import AutoModel, AutoTokenizer

    location = name_or_location if isinstance(name_or_location, ModelLocation) else locate_encoder(name_or_location)
    source = str(folder) if folder is not None else transformer_folder(location)
    local = True if folder is not None else location.local
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    if tokenizer.pad_token is None:  # decoder LLMs (LLaMA, ...) ship without one
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = AutoModel.from_pretrained(source, local_files_only=local)
    model.eval()
    return model, tokenizer


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, L, D) states over the positions where ``mask`` (B, L) is 1."""
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def embed(model, tokenizer, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """(len(texts), D) mean-pooled last-layer states (differentiable)."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    if "token_type_ids" in batch and "token_type_ids" not in _forward_args(model):
        del batch["token_type_ids"]
    states = model(**batch).last_hidden_state
    return mean_pool(states, batch["attention_mask"])


def _forward_args(model) -> set[str]:
    import inspect

    base = getattr(model, "get_base_model", lambda: model)()
    return set(inspect.signature(base.forward).parameters)


@torch.no_grad()
def encode_texts(model, tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int = 64,
                 progress: bool = False, desc: str = "encoding items") -> np.ndarray:
    """(len(texts), D) float32 mean-pooled states, batched longest-first (less padding)."""
    model.eval()
    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out: np.ndarray | None = None
    bar = tqdm(total=len(texts), desc=desc, unit="item", disable=not progress, file=sys.stderr)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        vectors = embed(model, tokenizer, [texts[i] for i in rows], max_length).float().numpy()
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
        bar.update(len(rows))
    bar.close()
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
