"""Starting the adapter where the LM can already read it: a closed-form fit to title token embeddings.

Before any LM step, the adapter's linear map is set by ridge regression (no LM forward) so that
the soft tokens of a prefix's state approximate the LM's own input embeddings of the title of that
prefix's last item: with one soft token per state the mean of the title's token embeddings, with
``tokens`` > 1 the first ``tokens`` token embeddings (zero after the title's end). The LM loss then
starts from soft tokens of the right scale (a random Linear writes vectors several times longer
than any token embedding) that already spell the item, which a frozen LM largely copies.
"""

from __future__ import annotations

import torch

from lucidrec.interpret.adapter import StateAdapter


def title_token_targets(token_ids: list[list[int]], embeddings: torch.Tensor, tokens: int) -> torch.Tensor:
    """(N, tokens, d_lm): per title, its mean token embedding (tokens=1) or its first token embeddings."""
    out = torch.zeros(len(token_ids), tokens, embeddings.shape[1], dtype=torch.float64)
    for row, ids in enumerate(token_ids):
        if not ids:
            continue
        vectors = embeddings[torch.as_tensor(ids, dtype=torch.long)].double()
        if tokens == 1:
            out[row, 0] = vectors.mean(0)
        else:
            out[row, :min(tokens, len(ids))] = vectors[:tokens]
    return out


def fit_to_titles(adapter: StateAdapter, states: torch.Tensor, token_ids: list[list[int]], embeddings: torch.Tensor,
                  penalty: float = 1.0, epochs: int = 60, lr: float = 1e-3, batch_size: int = 256, seed: int = 0) -> float:
    """Fit ``adapter`` so that ``states`` (M, positions, d_state) give the title token embeddings of
    ``token_ids`` (the title of each state's last item). A Linear adapter gets the ridge solution (bias
    not penalised); one with a hidden layer is fitted by AdamW on the mean squared error. Returns the
    final mean squared error per coordinate on these rows."""
    if len(states) != len(token_ids):
        raise ValueError(f"{len(states)} states for {len(token_ids)} titles")
    dtype = adapter.project.weight.dtype
    y = title_token_targets(token_ids, embeddings.detach(), adapter.tokens).reshape(len(states), -1)
    with torch.no_grad():
        x = adapter.pooled(states.to(dtype))
    if adapter.hidden is None:
        return _ridge(adapter, x.double(), y, penalty)
    y = y.to(dtype)
    optimizer = torch.optim.AdamW(list(adapter.features.parameters()) + list(adapter.project.parameters()), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            rows = order[start:start + batch_size]
            loss = ((adapter.project(adapter.features(x[rows])) - y[rows]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return float(((adapter.project(adapter.features(x)) - y) ** 2).mean())


@torch.no_grad()
def _ridge(adapter: StateAdapter, x: torch.Tensor, y: torch.Tensor, penalty: float) -> float:
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    gram = x.T @ x + penalty * torch.eye(x.shape[1], dtype=x.dtype)
    gram[-1, -1] -= penalty
    weights = torch.linalg.solve(gram, x.T @ y)
    adapter.project.weight.copy_(weights[:-1].T.to(adapter.project.weight.dtype))
    adapter.project.bias.copy_(weights[-1].to(adapter.project.bias.dtype))
    return float(((x @ weights - y) ** 2).mean())
