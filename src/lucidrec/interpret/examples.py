"""Which users train the adapter, which are held out, and the examples (state sequences + answers).

Held-out users are a fixed random share of the run's evaluated users; their sequences never reach
the adapter's training. Training users' examples come from the training part of their sequences
(what the recommender itself was trained on), with the step ``t`` drawn uniformly (seeded):

- residual: the prefixes S[:t-1] and S[:t] (t in [2, T]) -> the item S[t-1];
- recovery: the prefix S[:t] (t in [min(k, T), T]) -> its last k items in order.

A held-out user has one example on the full sequence (the test history plus the test item), so the
residual item is the run's test item, which the recommender never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.data.split import Split
from lucidrec.errors import LucidrecError
from lucidrec.train.run import hidden_states


@dataclass
class UserSplit:
    train: np.ndarray  # user indices whose training sequences train the adapter
    heldout: np.ndarray  # user indices kept out of the adapter's training


@dataclass
class Examples:
    """``prefixes`` holds ``slots`` consecutive rows per example (residual: before, after)."""

    users: np.ndarray
    prefixes: Ragged
    targets: list[list[int]]
    slots: int

    def __len__(self) -> int:
        return len(self.users)


def split_users(split: Split, fraction: float, seed: int, min_train_length: int = 2) -> UserSplit:
    evaluated = np.asarray(split.test.users)
    if len(evaluated) < 2:
        raise LucidrecError(f"the run evaluates {len(evaluated)} user(s): at least 2 are needed to hold some out")
    order = np.random.default_rng(seed).permutation(evaluated)
    n_held = min(len(evaluated) - 1, max(1, int(round(fraction * len(evaluated)))))
    heldout = np.sort(order[:n_held])
    lengths = split.train.lengths()
    candidates = np.flatnonzero(lengths >= min_train_length)
    train = np.setdiff1d(candidates, heldout)
    if len(train) == 0:
        raise LucidrecError("no training user has a sequence long enough to train the adapter")
    return UserSplit(train, heldout)


def training_examples(task: str, split: Split, users: np.ndarray, per_user: int, recovery_items: int,
                      seed: int) -> Examples:
    rng = np.random.default_rng(seed)
    rows, owners, targets = [], [], []
    for user in users:
        sequence = split.train[int(user)]
        T = len(sequence)
        for _ in range(per_user):
            if task == "residual":
                t = int(rng.integers(2, T + 1))
                rows += [sequence[:t - 1], sequence[:t]]
                targets.append([int(sequence[t - 1])])
            else:
                t = int(rng.integers(min(recovery_items, T), T + 1))
                rows.append(sequence[:t])
                targets.append([int(i) for i in sequence[max(0, t - recovery_items):t]])
            owners.append(int(user))
    return Examples(np.asarray(owners, dtype=np.int64), Ragged.from_lists(rows), targets, 2 if task == "residual" else 1)


def full_sequences(split: Split, users: np.ndarray) -> list[np.ndarray]:
    """Each user's test history followed by the test item."""
    row_of = {int(u): r for r, u in enumerate(split.test.users)}
    missing = [int(u) for u in users if int(u) not in row_of]
    if missing:
        raise LucidrecError(f"user indices {missing[:5]} are not evaluated users of the run")
    return [np.append(split.test.history[row_of[int(u)]], split.test.targets[row_of[int(u)]]) for u in users]


def heldout_examples(task: str, split: Split, users: np.ndarray, recovery_items: int) -> Examples:
    rows, targets = [], []
    for sequence in full_sequences(split, users):
        if task == "residual":
            rows += [sequence[:-1], sequence]
            targets.append([int(sequence[-1])])
        else:
            rows.append(sequence)
            targets.append([int(i) for i in sequence[-recovery_items:]])
    return Examples(np.asarray(users, dtype=np.int64), Ragged.from_lists(rows), targets, 2 if task == "residual" else 1)


def sequence_states(model, prefixes: Ragged, positions: int, batch_size: int = 256) -> torch.Tensor:
    """(M, positions, d) states of the last ``positions`` positions of every prefix (recommender frozen)."""
    chunks = []
    for start in range(0, len(prefixes), batch_size):
        rows = np.arange(start, min(start + batch_size, len(prefixes)))
        chunks.append(hidden_states(model, prefixes.take(rows))[:, -positions:].float())
    return torch.cat(chunks) if chunks else torch.zeros(0, positions, 0)


def example_states(model, examples: Examples, positions: int) -> torch.Tensor:
    """(N, slots, positions, d): the states each example feeds, slot by slot."""
    states = sequence_states(model, examples.prefixes, positions)
    return states.reshape(len(examples), examples.slots, positions, states.shape[-1])


def backbone_top(model, sequences: list[np.ndarray], users: np.ndarray, k: int = 10) -> tuple[np.ndarray, torch.Tensor]:
    """The backbone's top-k item indices per sequence (history items and padding excluded) and their scores."""
    with torch.no_grad():
        vectors = model.user_vectors(Ragged.from_lists(sequences), torch.as_tensor(users))
        scores = vectors @ model.item_table().T
    scores[:, 0] = -torch.inf
    for row, sequence in enumerate(sequences):
        scores[row, torch.as_tensor(sequence, dtype=torch.long)] = -torch.inf
    top = scores.topk(min(k, int(torch.isfinite(scores).sum(1).min())), dim=1)
    return top.indices.numpy(), top.values


@torch.no_grad()
def predicted_states(model, sequences: list[np.ndarray], users: np.ndarray, positions: int,
                     mode: str = "expected_next_state", k: int = 10) -> torch.Tensor:
    """(B, positions, d): a state that stands for the backbone's prediction, to read as the "after" state.

    ``scoring_vector``: the sequence's states with the last one replaced by the vector the backbone
    scores the catalog with (for backbones without a per-user hook this is the current state itself);
    ``expected_next_state``: the states after appending each of the backbone's top-k items, weighted by
    the softmax of their scores (the state the backbone expects next, without choosing one item)."""
    history = Ragged.from_lists(sequences)
    if mode == "scoring_vector":
        states = hidden_states(model, history)[:, -positions:].float().clone()
        states[:, -1] = model.user_vectors(history, torch.as_tensor(users)).float()
        return states
    if mode != "expected_next_state":
        raise ValueError(f"mode must be 'expected_next_state' or 'scoring_vector', not {mode!r}")
    top, scores = backbone_top(model, sequences, users, k)
    weights = torch.softmax(scores.float(), dim=1)
    extended = Ragged.from_lists([np.append(seq, item) for seq, row in zip(sequences, top) for item in row])
    states = sequence_states(model, extended, positions).reshape(len(sequences), top.shape[1], positions, -1)
    return torch.einsum("bk,bkpd->bpd", weights, states)
