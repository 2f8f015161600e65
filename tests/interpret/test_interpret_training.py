"""The adapter and its training: only the adapter moves; resume equals an uninterrupted run."""

import json

import numpy as np
import pytest
import torch

from lucidrec.interpret import examples as ex
from lucidrec.interpret.adapter import StateAdapter
from lucidrec.interpret.config import OptimConfig
from lucidrec.interpret.interpreter import Interpreter
from lucidrec.interpret.training import ADAPTER, train_adapter
from lucidrec.train.run import load_run
from tests.tiny_lm import tiny_soft_lm

RESIDUAL = ("Before <SeqHere> after <SeqHere>: which item?", "From <SeqHere> to <SeqHere>, name it.")


def test_adapter_shapes_and_conv_starts_as_last():
    torch.manual_seed(0)
    states = torch.randn(3, 2, 10, 16)
    last = StateAdapter(16, 32)
    conv = StateAdapter(16, 32, pool="conv", window=10)
    conv.project.load_state_dict(last.project.state_dict())
    assert last(states[:, :, -1:]).shape == (3, 2, 1, 32)
    assert StateAdapter(16, 32, tokens=4, hidden=8)(states[:, :, -1:]).shape == (3, 2, 4, 32)
    assert torch.allclose(conv(states), last(states[:, :, -1:]))
    with pytest.raises(ValueError, match="must end with shape"):
        last(states)
    with pytest.raises(ValueError, match="pool"):
        StateAdapter(16, 32, pool="mean")


def residual_batch(run_dir, lm, n_users=6):
    model, data, split, _ = load_run(run_dir)
    users = ex.split_users(split, 0.2, 0)
    examples = ex.training_examples("residual", split, users.train[:n_users], 2, 10, seed=0)
    states = ex.example_states(model, examples, 1)
    answers = [lm.encode_answer(data.catalog.title(str(data.item_ids[t[0]]))) for t in examples.targets]
    return model, examples, states, answers


def test_examples_residual_pairs_are_consecutive_prefixes(run_dir):
    _, _, split, _ = load_run(run_dir)
    users = ex.split_users(split, 0.25, 0)
    assert len(np.intersect1d(users.train, users.heldout)) == 0 and len(users.heldout) == 10
    examples = ex.training_examples("residual", split, users.train, 3, 10, seed=1)
    assert len(examples) == 3 * len(users.train) and examples.slots == 2
    for i in range(len(examples)):
        before, after = examples.prefixes[2 * i], examples.prefixes[2 * i + 1]
        full = split.train[int(examples.users[i])]
        assert len(after) == len(before) + 1 and list(after[:-1]) == list(before)
        assert list(after) == list(full[:len(after)]) and examples.targets[i] == [int(after[-1])]
    recovery = ex.heldout_examples("recovery", split, users.heldout, 4)
    assert all(len(t) == 4 for t in recovery.targets)
    row = int(np.flatnonzero(split.test.users == users.heldout[0])[0])
    assert recovery.targets[0][-1] == int(split.test.targets[row])  # held-out examples end with the test item


def test_one_step_moves_only_the_adapter(run_dir, tmp_path):
    lm = tiny_soft_lm()
    model, _, states, answers = residual_batch(run_dir, lm)
    lm_before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    rec_before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = StateAdapter(states.shape[-1], lm.dim)
    adapter_before = {k: v.clone() for k, v in adapter.state_dict().items()}
    train_adapter(Interpreter(lm, adapter), states, answers, RESIDUAL, OptimConfig(max_steps=1, batch_size=4), tmp_path,
                  progress=False)
    assert all(torch.equal(lm_before[k], v) for k, v in lm.model.state_dict().items())
    assert all(torch.equal(rec_before[k], v) for k, v in model.state_dict().items())
    assert not torch.equal(adapter_before["project.weight"], adapter.state_dict()["project.weight"])
    assert all(not p.requires_grad for p in lm.model.parameters())


def test_resume_equals_uninterrupted_and_training_lowers_the_loss(run_dir, tmp_path):
    lm = tiny_soft_lm()
    _, _, states, answers = residual_batch(run_dir, lm)
    config = OptimConfig(max_steps=8, epochs=5, batch_size=4, lr=0.01, checkpoint_every=2, warmup_steps=2)

    def fresh():
        torch.manual_seed(5)
        return Interpreter(lm, StateAdapter(states.shape[-1], lm.dim))

    straight = fresh()
    with torch.no_grad():
        first = float(straight.loss(RESIDUAL[0], states, answers))
    result = train_adapter(straight, states, answers, RESIDUAL, config, tmp_path / "a", progress=False)
    assert result.status == "done" and result.steps == 8 and result.tokens_per_second > 0
    with torch.no_grad():
        assert float(straight.loss(RESIDUAL[0], states, answers)) < first
    killed = fresh()
    assert train_adapter(killed, states, answers, RESIDUAL, config, tmp_path / "b", progress=False,
                         stop_after_steps=3).status == "interrupted"
    assert not (tmp_path / "b" / ADAPTER).exists()
    resumed = fresh()
    train_adapter(resumed, states, answers, RESIDUAL, config, tmp_path / "b", progress=False)
    a = torch.load(tmp_path / "a" / ADAPTER, weights_only=True)
    b = torch.load(tmp_path / "b" / ADAPTER, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]


def test_predicted_states(run_dir):
    from lucidrec.data.sequences import Ragged

    model, _, split, _ = load_run(run_dir)
    sequences = [split.test.history[0], split.test.history[1]]
    users = split.test.users[:2]
    top, _ = ex.backbone_top(model, sequences, users, k=3)
    assert not any(item in seq for seq, row in zip(sequences, top) for item in row)
    one = ex.predicted_states(model, sequences, users, 1, k=1)
    appended = ex.sequence_states(model, Ragged.from_lists([np.append(s, t[0]) for s, t in zip(sequences, top)]), 1)
    assert torch.allclose(one, appended)
    mixed = ex.predicted_states(model, sequences, users, 1, k=3)
    assert not torch.allclose(mixed, one)
    literal = ex.predicted_states(model, sequences, users, 2, mode="scoring_vector")
    assert torch.allclose(literal[:, -1], model.user_vectors(Ragged.from_lists(sequences)))
