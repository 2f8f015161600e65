"""Evaluation pieces: likelihood ranks against a brute-force loop, the controls, the probe, counts."""

import numpy as np
import pytest
import torch

from lucidrec.interpret.adapter import StateAdapter
from lucidrec.interpret.evaluation import derangement, likelihood_ranks, named_title, recovery_counts, recovery_metrics
from lucidrec.interpret.interpreter import Interpreter
from lucidrec.interpret.probe import LinearProbe, probe_features
from lucidrec.interpret.titles import CatalogTitles
from tests.tiny_lm import tiny_soft_lm

TEMPLATES = ("Before <SeqHere> after <SeqHere>: which item?", "From <SeqHere> to <SeqHere>, name it.")
CATALOG = ["Toy Story (1995)", "Heat (1995)", "Usual Suspects, The (1995)", "Star Wars (1977)", "Babe (1995)", "x"]


def test_likelihood_ranks_equal_a_brute_force_loop_over_the_catalog():
    lm = tiny_soft_lm()
    torch.manual_seed(3)
    interpreter = Interpreter(lm, StateAdapter(8, lm.dim))
    states = torch.randn(4, 2, 1, 8) * 3
    candidates = [lm.encode_answer(t) for t in CATALOG]
    rows, targets = np.array([0, 1, 3]), np.array([2, 0, 5])
    ranks = likelihood_ranks(interpreter, states, rows, targets, candidates, TEMPLATES, chunk=4, desc="", progress=False)
    for i, row in enumerate(rows):
        template = TEMPLATES[row % 2]  # held-out rows cycle through the test prompts
        soft = interpreter.soft_tokens(states[row:row + 1]).detach()
        scores = []
        for candidate in candidates:
            picked, _ = lm.answer_logprobs(interpreter.layout(template), soft, [candidate])
            scores.append(float(picked.sum()))
        order = sorted(range(len(CATALOG)), key=lambda k: -scores[k])
        assert ranks[i] == order.index(targets[i])
    capped = likelihood_ranks(interpreter, states, rows, targets, candidates, TEMPLATES, chunk=4, desc="", progress=False,
                              cap=2)
    assert capped.tolist() == np.minimum(ranks, 2).tolist()


def test_derangement_moves_every_row():
    for n in (2, 3, 10, 57):
        perm = derangement(n, seed=n)
        assert sorted(perm) == list(range(n)) and not np.any(perm == np.arange(n))
    with pytest.raises(ValueError):
        derangement(1, 0)


def test_probe_recovers_a_linear_map_and_ranks_the_right_title_first():
    rng = np.random.default_rng(0)
    titles = rng.normal(size=(20, 6))
    mapping = rng.normal(size=(2 * 5, 6))
    states = rng.normal(size=(200, 2, 1, 5))
    targets = probe_features(states) @ mapping
    probe = LinearProbe(1e-6).fit(probe_features(states[:150]), targets[:150])
    np.testing.assert_allclose(probe.predict(probe_features(states[150:])), targets[150:], atol=1e-4)
    held = rng.integers(0, 20, size=10)
    x = np.linalg.lstsq(mapping.T, titles[held].T, rcond=None)[0].T  # states whose image is exactly the title
    similarities = probe.similarities(x, titles)
    assert list(similarities.argmax(axis=1)) == list(held)


def test_recovery_counts_and_named_titles():
    titles = CatalogTitles(["", *CATALOG], missing=0)
    answers = {0: "Toy Story\nHeat\nStar Wars", 1: "nothing I know"}
    counts = recovery_counts(answers, [[1, 2, 3], [1, 2]], titles)
    assert list(counts) == [2, 0]
    metrics = recovery_metrics("recovery", counts, 3)
    assert metrics["recovery/mean"] == 1.0 and metrics["recovery/distribution"] == [1, 0, 1, 0]
    assert named_title("It is The Usual Suspects", titles) == 3
    assert named_title("Star Wars: A New Hope", titles) == 4
    assert named_title("zzz", titles) is None


def test_item_probe_finds_the_item_a_state_holds_linearly():
    from lucidrec.interpret.config import EvaluationConfig
    from lucidrec.interpret.evaluation import _item_probe
    from lucidrec.interpret.examples import Examples

    rng = np.random.default_rng(1)
    table = rng.normal(size=(31, 8))  # row 0 is padding
    def examples(n):
        items = rng.integers(1, 31, size=n)
        states = np.stack([rng.normal(size=(n, 8)), table[items] @ np.diag(np.arange(1, 9))], axis=1)[:, :, None, :]
        return Examples(np.arange(n), None, [[int(i)] for i in items], 2), torch.as_tensor(states)
    train, train_states = examples(300)
    held, held_states = examples(40)
    metrics = _item_probe(held, held_states, train, train_states, table, EvaluationConfig(probe_ridge=1e-6))
    assert metrics["probe_items/top1"] == 1.0 and metrics["probe_items/n_users"] == 40
    shuffled = _item_probe(held, held_states[torch.randperm(40)], train, train_states, table, EvaluationConfig(probe_ridge=1e-6))
    assert shuffled["probe_items/top1"] < 0.5
