"""The new-item protocol (items held out of training) and the cold / new evaluation groups."""

import numpy as np
import pytest
import torch

from lucidrec.data.prepare import prepare
from lucidrec.data.sequences import Ragged
from lucidrec.data.split import EvalSet, Split, draw_new_items, hold_out_new_items, leave_one_out
from lucidrec.errors import LucidrecError
from lucidrec.eval.evaluator import EvalConfig, evaluate, group_labels
from tests.synthetic import write_cyclic


def _rows(ragged):
    return [list(ragged[i]) for i in range(len(ragged))]


def test_held_out_items_leave_training_and_keep_their_targets(tiny_dataset):
    # tiny: a = i1 i2 i3 i4, b = i2 i3 i5, c = i1 i3 i2 i5 i4, d = i1 i2 (training only); i<k> is index k.
    split = leave_one_out(prepare(tiny_dataset))
    assert _rows(split.train) == [[1, 2], [2], [1, 3, 2], [1, 2]]
    held = hold_out_new_items(split, np.array([2]))
    assert _rows(held.train) == [[1], [], [1, 3], [1]]
    assert held.info["users_without_training_history"] == 1  # b's only training item was i2
    assert held.info["training_interactions_removed"] == 4
    # Evaluation is untouched: same users, targets and histories.
    for part in ("valid", "test"):
        before, after = getattr(split, part), getattr(held, part)
        assert list(after.targets) == list(before.targets) and _rows(after.history) == _rows(before.history)
    five = hold_out_new_items(split, np.array([5]))
    assert five.info["valid_new_targets"] == 1 and five.info["test_new_targets"] == 1  # c's valid, b's test


def test_the_draw_is_fixed_by_its_seed_and_rejects_empty_shares():
    a, b = draw_new_items(100, 0.1, seed=3), draw_new_items(100, 0.1, seed=3)
    assert list(a) == list(b) and len(a) == 10 and a.min() >= 1 and a.max() <= 100
    assert list(draw_new_items(100, 0.1, seed=4)) != list(a)
    with pytest.raises(LucidrecError, match="holds out no item"):
        draw_new_items(5, 0.05)
    with pytest.raises(LucidrecError, match=r"in \(0, 1\)"):
        draw_new_items(5, 1.0)


def _hand_split():
    # Training counts: item 1 x4, item 2 x3, item 3 x1, item 4 x0 (items 5, 6 x1 each).
    train = Ragged.from_lists([[1, 2, 5], [1, 2, 3], [1, 2, 6], [1]])
    users = np.arange(5)
    history = Ragged.from_lists([[5], [6], [1], [2], [3]])
    test = EvalSet(users, history, np.array([1, 2, 3, 4, 2]))
    return Split("leave_one_out", train, test, test, 6)


def test_cold_and_new_groups_against_a_hand_count():
    split = _hand_split()
    groups = group_labels(split, split.test, EvalConfig())
    # cold: targets with <= 3 training interactions: items 2, 3, 4 (not item 1, which has 4).
    assert list(groups["cold"]) == [False, True, True, True, True]
    assert "new" not in groups  # an ordinary split has no new group
    assert list(group_labels(split, split.test, EvalConfig(cold_max_count=1))["cold"]) == [False, False, True, True, False]
    held = Split(split.protocol, split.train, split.valid, split.test, split.n_items, new_items=np.array([3, 4]))
    assert list(group_labels(held, held.test, EvalConfig())["new"]) == [False, False, True, True, False]


class _FixedScores:
    """Every user ranks items by a fixed score vector (item k scores -k): rank of target t = t - 1 minus masked items."""

    def user_state(self, history, users):
        return torch.zeros(len(users), 1)

    def score(self, state, start, stop):
        return -torch.arange(start, stop, dtype=torch.float32).repeat(len(state), 1)

    def score_items(self, state, items):
        return -items.float()


def test_group_metrics_are_means_over_their_users():
    split = _hand_split()
    held = Split(split.protocol, split.train, split.valid, split.test, split.n_items, new_items=np.array([3, 4]))
    metrics = evaluate(_FixedScores(), held, "test", EvalConfig(ks=(10,))).metrics
    # Ranks (history items masked): target 1 -> 0; 2 -> 1; 3 -> 1 (item 1 masked); 4 -> 2 (2 masked); 2 -> 1.
    mrr = [1, 1 / 2, 1 / 2, 1 / 3, 1 / 2]
    assert metrics["test/full/new/n_users"] == 2
    assert metrics["test/full/new/mrr"] == pytest.approx((mrr[2] + mrr[3]) / 2)
    assert metrics["test/full/cold/n_users"] == 4
    assert metrics["test/full/cold/mrr"] == pytest.approx(sum(mrr[1:]) / 4)


@pytest.mark.parametrize("model", ["sasrec", "bert4rec"])
def test_no_held_out_item_ever_enters_a_training_batch(tmp_path, monkeypatch, model):
    from lucidrec.data.pipeline import load_split
    from lucidrec.train import trainer as trainer_module
    from lucidrec.train.run import build_config, train_run

    write_cyclic(tmp_path / "data")
    config = build_config({
        "data": {"dataset": "cyclic", "data_dir": str(tmp_path / "data"), "split": {"new_items": 0.2}},
        "model": {"name": model, "hidden": 8, "max_len": 6},
        "train": {"epochs": 2, "batch_size": 16, "progress": False, "history_window": "random"},
    })
    seen = []
    original = trainer_module.training_batch

    def spy(*args, **kwargs):
        inputs, targets = original(*args, **kwargs)
        seen.append(torch.cat([inputs.flatten(), targets.flatten()]))
        return inputs, targets

    monkeypatch.setattr(trainer_module, "training_batch", spy)
    result = train_run(config, tmp_path / "run")
    _, split = load_split(config.data)
    assert len(split.new_items) == 6  # 20% of 30 items
    in_batches = torch.unique(torch.cat(seen)).numpy()
    assert len(seen) > 0 and not np.isin(in_batches, split.new_items).any()
    assert np.isin(split.test.targets, split.new_items).any()  # the held-out items are still test targets
    assert result["test/full/new/n_users"] == int(np.isin(split.test.targets, split.new_items).sum())
    assert "test/full/new/ndcg@10" in result and "test/full/cold/n_users" in result
