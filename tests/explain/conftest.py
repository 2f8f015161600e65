"""Shared fixture for the GER explanation tests: a tiny GER model on SASRec."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def ger_model():
    """SASRec over a GER refined embedding: 30 items, 8 attributes, hidden 16, 5 users (random but seeded)."""
    from lucidrec.embeddings.ger import GERConfig, GERItemEmbedding
    from lucidrec.models import make_backbone

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, m, dim = 30, 8, 16
    guided = np.vstack([np.zeros((1, m)), rng.normal(size=(n, m))]).astype(np.float32)
    reduced = np.vstack([np.zeros((1, dim - m)), rng.normal(scale=0.3, size=(n, dim - m))]).astype(np.float32)
    items = GERItemEmbedding(guided, dim, reduced=reduced, n_users=5, config=GERConfig(), guided_scale=0.3,
                             attribute_names=[f"attr{k}" for k in range(m)])
    with torch.no_grad():
        items.user_part.user_delta.weight.normal_(0, 0.05)  # as if trained: known users differ from cold ones
    model = make_backbone("sasrec", {"hidden": dim, "max_len": 12, "layers": 1, "dropout": 0.0}, items)
    return model.eval()
