import numpy as np
import pandas as pd
import pytest

from lucidrec.data.dataset import Dataset
from lucidrec.data.popularity import head_items, length_bins, popularity_bins
from lucidrec.data.prepare import PrepareConfig, prepare
from lucidrec.data.sequences import Ragged
from lucidrec.data.split import global_temporal, leave_one_out
from lucidrec.errors import UnknownNameError


def test_ids_are_contiguous_and_map_back(tiny_dataset):
    data = prepare(tiny_dataset)
    assert data.n_users == 4 and data.n_items == 5
    assert list(data.item_ids) == ["<pad>", "i1", "i2", "i3", "i4", "i5"]
    a = data.user_index(["a"])[0]
    assert list(data.item_ids[data.sequences[a]]) == ["i1", "i2", "i3", "i4"]
    assert list(data.item_index(["i5", "i1"])) == [5, 1]
    with pytest.raises(UnknownNameError, match="i9"):
        data.item_index(["i9"])


def test_iterative_kcore_differs_from_single_pass():
    # Item z is rated by 2 users; removing user q (1 interaction after x is dropped) cascades.
    rows = [("p", "x"), ("p", "z"), ("q", "z"), ("q", "w"), ("r", "x"), ("r", "z"), ("r", "w"), ("s", "w")]
    dataset = Dataset("k", pd.DataFrame(rows, columns=["user_id", "item_id"]))
    single = prepare(dataset, PrepareConfig(min_user_interactions=2, min_item_interactions=2, filter_mode="single_pass"))
    iterative = prepare(dataset, PrepareConfig(min_user_interactions=2, min_item_interactions=2))
    # Single pass: drop user s (1 interaction); items all have >= 2 -> 7 rows.
    assert single.report["interactions_out"] == 7
    # Iterative: after s goes, w has 2 (q, r) -> stable at 7 as well; then require 3 to see a cascade.
    strict = prepare(dataset, PrepareConfig(min_user_interactions=3, min_item_interactions=2))
    # Only r has 3 interactions; then every item has 1 user -> everything goes.
    assert strict.report["interactions_out"] == 0
    once = prepare(dataset, PrepareConfig(min_user_interactions=3, min_item_interactions=2, filter_mode="single_pass"))
    assert once.report["interactions_out"] == 3
    assert iterative.report["dropped_by_count_filter"] == 1


def test_rating_threshold_duplicates_and_min_history_are_counted():
    frame = pd.DataFrame({
        "user_id": ["a", "a", "a", "b", "b", "c"],
        "item_id": ["x", "y", "x", "x", "y", "z"],
        "rating": [5.0, 1.0, 4.0, None, 5.0, 5.0],
        "timestamp": [1, 2, 3, 1, 2, 1],
    })
    data = prepare(Dataset("r", frame), PrepareConfig(min_rating=3, duplicates="first", min_history=2))
    report = data.report
    assert report["dropped_by_rating"] == 1 and report["unrated_kept"] == 1
    assert report["duplicate_pairs"] == 1 and report["dropped_duplicates"] == 1
    assert report["dropped_short_users"] == 2  # a keeps only x; c has one item
    assert data.n_users == 1 and list(data.item_ids[data.sequences[0]]) == ["x", "y"]


def test_leave_one_out_targets_and_no_future_in_training(tiny_dataset):
    data = prepare(tiny_dataset)
    split = leave_one_out(data)
    assert split.info["users_train_only"] == 1  # d has only 2 interactions
    for row, user in enumerate(split.test.users):
        seq = data.sequences[user]
        assert split.test.targets[row] == seq[-1]
        assert split.valid.targets[row] == seq[-2]
        assert list(split.test.history[row]) == list(seq[:-1])
        assert list(split.valid.history[row]) == list(seq[:-2])
        # Training holds exactly the prefix before the validation item: nothing later.
        assert list(split.train[user]) == list(seq[:-2])
    d = data.user_index(["d"])[0]
    assert list(split.train[d]) == list(data.sequences[d])


def test_leave_one_out_position_invariant_on_real_data(data_dir):
    from lucidrec.data import load_dataset

    data = prepare(load_dataset("ml-100k", data_dir))
    split = leave_one_out(data)
    lengths = data.sequences.lengths()
    assert np.array_equal(split.train.lengths()[split.test.users], lengths[split.test.users] - 2)
    assert np.array_equal(split.test.history.lengths(), lengths[split.test.users] - 1)


def test_global_temporal_never_trains_on_the_future(data_dir):
    from lucidrec.data import load_dataset

    data = prepare(load_dataset("ml-100k", data_dir))
    split = global_temporal(data, valid_quantile=0.8, test_quantile=0.9)
    valid_time, test_time = split.info["valid_time"], split.info["test_time"]
    times, items, rows = data.timestamps.values, data.sequences.values, data.sequences.row_ids()
    # Every training interaction happened strictly before the validation cut-off.
    train_mask = times < valid_time
    assert split.train.lengths().sum() == train_mask.sum()
    for user in split.test.users[:200]:
        user_times = times[rows == user]
        user_items = items[rows == user]
        row = int(np.flatnonzero(split.test.users == user)[0])
        assert len(split.test.history[row]) == int((user_times < test_time).sum())
        target_time = user_times[user_times >= test_time].min()
        assert split.test.targets[row] in set(user_items[user_times == target_time])
    for row, user in enumerate(split.valid.users[:200]):
        user_times = times[rows == user]
        assert len(split.valid.history[row]) == int((user_times < valid_time).sum())
    assert len(split.valid) > 0 and len(split.test) > 0


def test_global_temporal_counts_interactions_without_timestamps():
    frame = pd.DataFrame({"user_id": list("aaabbb"), "item_id": list("xyzxyz"),
                          "timestamp": pd.array([1, 2, 3, None, None, None], dtype="Int64")})
    split = global_temporal(prepare(Dataset("t", frame)), valid_time=2, test_time=3)
    assert split.info["interactions_without_timestamp"] == 3
    assert list(split.test.users) == [0] and split.test.targets[0] == 3


def test_ragged_take_and_truncate():
    ragged = Ragged.from_lists([[1, 2, 3], [], [4, 5]])
    assert [list(r) for r in (ragged.take(np.array([2, 0]))[i] for i in range(2))] == [[4, 5], [1, 2, 3]]
    assert [list(ragged.truncate(np.array([1, 5, 0]))[i]) for i in range(3)] == [[1], [], []]


def test_popularity_groups():
    counts = np.array([0, 10, 0, 5, 7, 1])  # padding, then items 1..5
    head = head_items(counts, head_share=0.4)  # 2 of 5 items
    assert list(np.flatnonzero(head)) == [1, 4]
    bins = popularity_bins(counts, n_bins=5)
    assert bins[0] == 0 and bins[2] == 1 and bins[1] == 5
    assert list(length_bins(np.array([1, 2, 3, 4]), 2)) == [1, 1, 2, 2]
