"""Training rows: which part of a long history a row holds, and that targets follow their inputs."""

import numpy as np
import pytest

from lucidrec.data.sequences import Ragged
from lucidrec.train.batches import causal_batch, cloze_batch, crop_to_window

HISTORIES = Ragged.from_lists([list(range(1, 13)), [20, 21, 22], [30, 31]])  # 12, 3 and 2 items


def test_latest_window_keeps_every_row_whole():
    cropped = crop_to_window(HISTORIES, 4, "latest", None)
    assert [list(cropped[i]) for i in range(3)] == [list(HISTORIES[i]) for i in range(3)]


def test_random_windows_end_anywhere_a_full_window_fits_and_spare_short_rows():
    generator = np.random.default_rng(0)
    ends = set()
    for _ in range(400):
        cropped = crop_to_window(HISTORIES, 4, "random", generator)
        row = list(cropped[0])
        assert row == list(range(1, len(row) + 1))  # a prefix of the history: the window ends where it ends
        ends.add(len(row))
        assert list(cropped[1]) == [20, 21, 22] and list(cropped[2]) == [30, 31]
    assert ends == set(range(4, 13))  # every end from the first full window to the newest item


def test_causal_rows_from_a_random_window_predict_the_next_item_of_the_history():
    inputs, targets = causal_batch(HISTORIES, np.array([0, 1]), max_len=4, window="random",
                                   generator=np.random.default_rng(3))
    row_in, row_target = inputs[0].tolist(), targets[0].tolist()
    assert 0 not in row_in  # 12 items: the window is always full
    assert row_target == [item + 1 for item in row_in]  # history 1..12: the next item is item + 1
    assert inputs[1].tolist() == [0, 0, 20, 21] and targets[1].tolist() == [0, 0, 21, 22]


def test_cloze_rows_take_a_random_window_of_max_len_items():
    inputs, targets = cloze_batch(HISTORIES, np.array([0]), max_len=5, mask_prob=0.0, mask_token=99,
                                  generator=np.random.default_rng(1), window="random")
    originals = [t if t else i for i, t in zip(inputs[0].tolist(), targets[0].tolist())]
    assert originals == list(range(originals[0], originals[0] + 5)) and originals[-1] >= 5
    assert inputs[0, -1] == 99  # the newest item of the window is masked, as at inference


def test_unknown_window_names_the_valid_ones():
    with pytest.raises(ValueError, match="latest, random"):
        crop_to_window(HISTORIES, 4, "oldest", np.random.default_rng(0))
