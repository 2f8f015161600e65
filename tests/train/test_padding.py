"""Batches cut to their longest row give what padding to max_len gives; length bucketing keeps every row once."""

import numpy as np
import pytest
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.embeddings import make_item_embedding
from lucidrec.models import BACKBONES, make_backbone
from lucidrec.train.batches import epoch_batches, history_widths, training_batch
from lucidrec.train.trainer import TrainConfig, next_item_step_loss

N_ITEMS = 25
MAX_LEN = 12
# Short rows (the longest training row has 5 inputs) and one user with a single item.
HISTORIES = Ragged.from_lists([[1, 2, 3, 4, 5, 6], [7, 8], [9, 10, 11, 12], [13], [14, 15, 16]])
BACKBONE_NAMES = ["sasrec", "sasrec-ligr", "gru4rec", "bert4rec", "caser"]


def _model(name, **params):
    torch.manual_seed(0)
    if name == "sasrec-ligr":
        name, params = "sasrec", {"block": "ligr", "ffn_multiplier": 4, **params}
    cls = BACKBONES.get(name)
    items = make_item_embedding("id", {}, n_items=N_ITEMS, dim=16, extra_tokens=cls.extra_tokens)
    return make_backbone(name, {"hidden": 16, "max_len": MAX_LEN, **params}, items).eval()


def _batches(model, users, window="latest"):
    padded = training_batch(model, HISTORIES, users, window, np.random.default_rng(5), to_longest=False)
    cut = training_batch(model, HISTORIES, users, window, np.random.default_rng(5), to_longest=True)
    return padded, cut


@pytest.mark.parametrize("loss", ["ce", "sampled_softmax", "bce"])
@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_cut_training_batches_give_the_padded_states_and_loss(name, loss):
    model = _model(name)
    users = np.arange(len(HISTORIES))
    (inputs_pad, targets_pad), (inputs, targets) = _batches(model, users)
    width = inputs.shape[1]
    assert width == (5 if model.objective == "causal" else 6) < MAX_LEN  # the longest row, not max_len
    assert torch.equal(inputs_pad[:, -width:], inputs) and torch.all(inputs_pad[:, :-width] == 0)
    assert torch.equal(targets_pad[:, -width:], targets)
    config = TrainConfig(loss=loss, n_negatives=8, progress=False)
    with torch.no_grad():
        states_pad, states = model(inputs_pad), model(inputs)
        assert torch.allclose(states_pad[:, -width:], states, atol=1e-5)
        loss_pad = next_item_step_loss(model, model, inputs_pad, targets_pad, users, config, torch.Generator().manual_seed(1))[0]
        loss_cut = next_item_step_loss(model, model, inputs, targets, users, config, torch.Generator().manual_seed(1))[0]
    assert loss_cut.item() == pytest.approx(loss_pad.item(), rel=1e-5)


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_evaluation_batches_are_cut_and_score_as_padded_ones(name):
    model = _model(name)
    history = Ragged.from_lists([[3, 4], [5], [6, 7, 8]])
    cut = model.inference_input(history)
    assert cut.shape[1] == 3 + model.extra_tokens  # BERT4Rec appends its mask token
    with torch.no_grad():
        padded_vectors = model.encode(model.inference_input(history, to_longest=False))[:, -1]
        assert torch.allclose(model.user_vectors(history), padded_vectors, atol=1e-5)
    assert model.hidden_states(history).shape[1] == MAX_LEN  # interpretation methods keep max_len positions


def test_caser_window_longer_than_the_cut_batch():
    # Caser pads its own window: a batch narrower than the window is still exact.
    model = _model("caser", window=5)
    history = Ragged.from_lists([[3], [5]])
    with torch.no_grad():
        assert torch.allclose(model.user_vectors(history),
                              model.encode(model.inference_input(history, to_longest=False))[:, -1], atol=1e-6)


def test_rows_longer_than_max_len_keep_max_len_columns():
    model = _model("sasrec", max_len=4)
    inputs, targets = training_batch(model, HISTORIES, np.array([0, 1]), "latest", np.random.default_rng(0))
    assert inputs.tolist() == [[2, 3, 4, 5], [0, 0, 0, 7]] and targets.tolist() == [[3, 4, 5, 6], [0, 0, 0, 8]]


def test_an_empty_batch_row_set_keeps_one_column():
    model = _model("sasrec")
    assert model.inference_input(Ragged.from_lists([[], []])).shape == (2, 1)


def _lengths_and_order(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    widths_by_user = rng.integers(1, 200, size=n)
    return widths_by_user, rng.permutation(n)


def test_length_bucketing_keeps_every_row_once_and_batches_similar_lengths():
    widths_by_user, order = _lengths_and_order()
    plain = epoch_batches(order, 64)
    bucketed = epoch_batches(order, 64, bucketing=4, widths=widths_by_user[order], generator=np.random.default_rng(1))
    for batches in (plain, bucketed):
        users = np.concatenate(batches)
        assert len(users) == len(order) and set(users.tolist()) == set(order.tolist())
    assert len(bucketed) == len(plain) and sorted(map(len, bucketed)) == sorted(map(len, plain))

    def padded_cells(batches):
        return sum(len(b) * widths_by_user[b].max() - widths_by_user[b].sum() for b in batches)

    assert padded_cells(bucketed) < 0.5 * padded_cells(plain)


def test_length_bucketing_regroups_every_epoch_and_plain_batches_draw_nothing():
    widths_by_user, order = _lengths_and_order()
    first = epoch_batches(order, 64, 4, widths_by_user[order], np.random.default_rng([7, 0]))
    second_order = np.random.default_rng(3).permutation(order)
    second = epoch_batches(second_order, 64, 4, widths_by_user[second_order], np.random.default_rng([7, 1]))
    assert [b.tolist() for b in first] != [b.tolist() for b in second]
    generator = np.random.default_rng(0)
    epoch_batches(order, 64, 0, None, generator)  # off: the epoch's random stream is untouched
    assert generator.random() == np.random.default_rng(0).random()


def test_history_widths_are_the_columns_a_row_fills():
    causal, cloze = _model("sasrec", max_len=4), _model("bert4rec", max_len=4)
    users = np.arange(len(HISTORIES))
    assert history_widths(HISTORIES, users, causal).tolist() == [4, 1, 3, 0, 2]
    assert history_widths(HISTORIES, users, cloze).tolist() == [4, 2, 4, 1, 3]
