import numpy as np
import pytest
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.data.split import EvalSet, Split
from lucidrec.eval.evaluator import EvalConfig, evaluate, rank_full, rank_sampled, sample_negatives
from lucidrec.models.scoring import DotProductScorer


class FixedScores:
    """A scorer with an explicit (users x items) score matrix, for hand-checked ranks."""

    def __init__(self, table):
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.n_items = self.table.shape[1] - 1

    def user_state(self, history, users):
        return torch.as_tensor(users)

    def score(self, state, start, stop):
        return self.table[state, start:stop]

    def score_items(self, state, items):
        return self.table[state[:, None], items]


def _evalset(histories, targets, users=None):
    users = np.arange(len(targets)) if users is None else np.asarray(users)
    return EvalSet(users, Ragged.from_lists(histories), np.asarray(targets))


def test_full_ranking_masks_history_never_the_target_and_breaks_ties_by_index():
    # Items 1..6; column 0 is padding and must never count even with a huge score.
    scores = [
        [99, 6, 5, 4, 3, 2, 1],  # user 0: target 3, history {1}: 2 beats it -> rank 1
        [99, 6, 5, 4, 3, 2, 1],  # user 1: target 3 also in history {3, 1}: stays a candidate -> rank 1
        [99, 1, 1, 1, 1, 1, 1],  # user 2: all tied, target 4, no history -> items 1,2,3 before it
        [99, 1, 2, 3, 4, 5, 6],  # user 3: target 6 best -> rank 0
    ]
    evalset = _evalset([[1], [3, 1], [], [2]], [3, 3, 4, 6])
    ranks, topk = rank_full(FixedScores(scores), evalset, 6, EvalConfig(topk=3))
    assert ranks.tolist() == [1, 1, 3, 0]
    assert topk[0].tolist() == [2, 3, 4]  # 1 is history-masked, 0 is padding
    assert topk[3].tolist() == [6, 5, 4]


def test_unmasked_full_ranking_keeps_history_items_as_candidates(rng):
    scores = [[99, 6, 5, 4, 3, 2, 1], [99, 6, 5, 4, 3, 2, 1]]
    evalset = _evalset([[1], [3, 1]], [3, 3])  # history item 1 outscores the target 3 for both users
    ranks, _ = rank_full(FixedScores(scores), evalset, 6, EvalConfig(), mask_history=False)
    assert ranks.tolist() == [2, 2]  # items 1 and 2, against [1, 1] with the mask
    split = _random_split(rng)
    result = evaluate(_random_dot_model(rng), split, "test", EvalConfig(protocols=("full", "full_unmasked")))
    masked, unmasked = result.ranks["full"], result.ranks["full_unmasked"]
    assert np.all(unmasked >= masked) and np.any(unmasked > masked)  # only history items can be added above
    assert result.metrics["test/full_unmasked/ndcg@10"] <= result.metrics["test/full/ndcg@10"]


def test_sampled_negatives_avoid_history_and_are_batch_independent():
    history = np.array([1, 2, 3, 50])
    first = sample_negatives(7, history, 100, 20, seed=3)
    again = sample_negatives(7, history, 100, 20, seed=3)
    assert first.tolist() == again.tolist()
    assert len(set(first)) == 20 and not set(first) & set(history.tolist()) and first.min() >= 1
    # Fewer allowed items than requested: all of them, once.
    assert sorted(sample_negatives(1, np.array([1, 2]), 5, 100, seed=0).tolist()) == [3, 4, 5]


def test_sampled_rank_hand_checked():
    # 3 items; target 1 with history {2}: the only negative is 3, which scores higher.
    evalset = _evalset([[2]], [1])
    ranks = rank_sampled(FixedScores([[0, 1, 5, 9]]), evalset, 3, EvalConfig(n_negatives=100))
    assert ranks.tolist() == [1]


def _random_dot_model(rng, n_items=57, dim=8):
    table = torch.as_tensor(rng.normal(size=(n_items + 1, dim)), dtype=torch.float32)
    users = torch.as_tensor(rng.normal(size=(40, dim)), dtype=torch.float32)
    return DotProductScorer(table, lambda history, u: users[torch.as_tensor(u)])


def _random_split(rng, n_users=40, n_items=57):
    histories = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(0, 12), replace=False) for _ in range(n_users)]
    targets = rng.integers(1, n_items + 1, size=n_users)
    evalset = _evalset(histories, targets)
    train = Ragged.from_lists(histories)
    return Split("test", train, evalset, evalset, n_items)


def _brute_force_ranks(model, evalset):
    """Independent reference: sort every candidate list with numpy and find the target."""
    ranks = []
    for row in range(len(evalset)):
        state = model.user_state(None, evalset.users[row : row + 1])
        scores = model.score(state, 0, model.n_items + 1)[0].numpy().astype(np.float64)
        target = evalset.targets[row]
        candidates = [i for i in range(1, model.n_items + 1) if i == target or i not in set(evalset.history[row].tolist())]
        order = sorted(candidates, key=lambda i: (-scores[i], i))
        ranks.append(order.index(target))
    return np.array(ranks)


def test_ranks_match_an_independent_brute_force(rng):
    model = _random_dot_model(rng)
    split = _random_split(rng)
    ranks, _ = rank_full(model, split.test, split.n_items, EvalConfig())
    assert ranks.tolist() == _brute_force_ranks(model, split.test).tolist()


@pytest.mark.parametrize("batch_size,item_chunk", [(1, 5), (7, 13), (1000, 100000)])
def test_result_does_not_depend_on_batch_size_or_chunking(rng, batch_size, item_chunk):
    model = _random_dot_model(rng)
    split = _random_split(rng)
    reference = evaluate(model, split, "test", EvalConfig(protocols=("full", "sampled"), topk=10))
    other = evaluate(model, split, "test", EvalConfig(protocols=("full", "sampled"), topk=10,
                                                      batch_size=batch_size, item_chunk=item_chunk))
    assert other.metrics == reference.metrics
    assert np.array_equal(other.topk, reference.topk)


def test_metric_keys_and_groups(rng):
    model = _random_dot_model(rng)
    split = _random_split(rng)
    metrics = evaluate(model, split, "test", EvalConfig(protocols=("full", "sampled"))).metrics
    for key in ("test/full/ndcg@10", "test/full/recall@10", "test/full/mrr", "test/full/tail/ndcg@10",
                "test/full/head/ndcg@10", "test/full/pop_q1/recall@20", "test/full/short/mrr",
                "test/sampled100/ndcg@10"):
        assert key in metrics
    assert metrics["test/full/tail/n_users"] + metrics["test/full/head/n_users"] == metrics["test/full/n_users"]
    weighted = sum(metrics[f"test/full/{g}/ndcg@10"] * metrics[f"test/full/{g}/n_users"] for g in ("tail", "head"))
    assert weighted / metrics["test/full/n_users"] == pytest.approx(metrics["test/full/ndcg@10"])


def test_an_empty_group_reports_no_metric_values(rng):
    # Every history has the same length, so the length quantiles tie and bins 1-3 stay empty.
    histories = [rng.choice(np.arange(1, 58), size=5, replace=False) for _ in range(40)]
    evalset = _evalset(histories, rng.integers(1, 58, size=40))
    split = Split("test", Ragged.from_lists(histories), evalset, evalset, 57)
    metrics = evaluate(_random_dot_model(rng), split, "test").metrics
    assert metrics["test/full/len_q1/n_users"] == 0 and "test/full/len_q1/ndcg@10" not in metrics
    assert metrics["test/full/len_q4/n_users"] == 40
    assert metrics["test/full/len_q4/ndcg@10"] == pytest.approx(metrics["test/full/ndcg@10"])


def test_an_empty_part_is_an_error_not_a_zero(rng):
    histories = [rng.choice(np.arange(1, 58), size=5, replace=False) for _ in range(4)]
    empty = _evalset([], [])
    split = Split("leave_one_out", Ragged.from_lists(histories), empty, empty, 57)
    with pytest.raises(ValueError, match="'valid' part of the leave_one_out split has no users"):
        evaluate(_random_dot_model(rng), split, "valid")


class RecordingScores(FixedScores):
    """FixedScores that remembers the history lengths of every batch it is asked about."""

    def __init__(self, table):
        super().__init__(table)
        self.batches = []

    def user_state(self, history, users):
        self.batches.append((history.lengths().tolist(), list(users)))
        return super().user_state(history, users)


def test_users_are_batched_by_history_length_and_ranked_in_their_own_rows():
    # Shortest histories first (so a sequence model's cut batches carry little padding); ranks stay per user.
    scores = [[99, 6, 5, 4, 3, 2, 1]] * 5
    histories = [[1, 2, 4, 5], [1], [], [2, 5, 6], [2]]
    evalset = _evalset(histories, [3, 3, 4, 6, 1])
    model = RecordingScores(scores)
    ranks, _ = rank_full(model, evalset, 6, EvalConfig(batch_size=2))
    assert [lengths for lengths, _ in model.batches] == [[1, 0], [3, 1], [4]]  # rows kept in user order inside
    assert sorted(u for _, users in model.batches for u in users) == [0, 1, 2, 3, 4]
    assert ranks.tolist() == rank_full(FixedScores(scores), evalset, 6, EvalConfig(batch_size=100))[0].tolist()
