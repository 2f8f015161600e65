"""The adapter's title warm-up: targets, the closed-form Linear fit, the fitted MLP, and the pipeline option."""

from __future__ import annotations

import torch

from lucidrec.interpret.adapter import StateAdapter
from lucidrec.interpret.warmup import fit_to_titles, title_token_targets


def test_title_token_targets_mean_or_first_tokens_zero_padded():
    table = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    one = title_token_targets([[1, 3], [5]], table, 1)
    assert one[:, 0].tolist() == [[4.0, 5.0], [10.0, 11.0]]
    three = title_token_targets([[1, 3], [0, 1, 2, 4]], table, 3)
    assert three[0].tolist() == [[2.0, 3.0], [6.0, 7.0], [0.0, 0.0]]
    assert three[1].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_linear_fit_is_exact_when_the_titles_are_a_linear_function_of_the_states():
    torch.manual_seed(0)
    table = torch.randn(7, 6)
    codes = torch.randn(7, 4)  # item -> state, invertible on these 7 items up to the fit
    items = torch.randint(0, 7, (200,))
    states = codes[items][:, None, :]  # (M, positions=1, d_state)
    token_ids = [[int(i)] for i in items]
    adapter = StateAdapter(4, 6, tokens=1)
    # targets table[i] are linear in codes[i] only if table = codes @ A + b: make them so
    a, b = torch.randn(4, 6), torch.randn(6)
    table = codes @ a + b
    error = fit_to_titles(adapter, states, token_ids, table, penalty=1e-6)
    assert error < 1e-6
    assert torch.allclose(adapter(states)[:, 0], table[items], atol=1e-3)


def test_mlp_fit_lowers_the_error_of_a_nonlinear_lookup():
    torch.manual_seed(0)
    table = torch.randn(9, 5)
    codes = torch.randn(9, 3)
    items = torch.randint(1, 9, (300,))
    states = codes[items][:, None, :]
    token_ids = [[int(i), int(i) - 1] for i in items]
    adapter = StateAdapter(3, 5, tokens=2, hidden=64)
    target = title_token_targets(token_ids, table, 2)
    with torch.no_grad():
        before = float(((adapter(states).double() - target) ** 2).mean())
    after = fit_to_titles(adapter, states, token_ids, table, epochs=200, lr=1e-2, batch_size=64)
    assert after < 0.2 * before


def test_pipeline_title_init_with_several_soft_tokens_trains_evaluates_and_resumes(run_dir, tmp_path):
    from lucidrec.interpret import pipeline
    from tests.interpret.test_interpret_cli import settings
    from tests.tiny_lm import tiny_soft_lm

    lm = tiny_soft_lm()
    adapter = {"tokens": 3, "hidden": 16, "init": "titles", "init_epochs": 2}
    out = tmp_path / "adapter"
    assert pipeline.train(run_dir, out, settings(adapter=adapter), lm=lm, progress=False,
                          stop_after_steps=1)["status"] == "interrupted"
    trained = pipeline.train(run_dir, out, settings(adapter=adapter), lm=lm, progress=False)
    assert trained["status"] == "done" and trained["steps"] == 3
    assert "init_seconds" not in trained  # the resumed run started from its checkpoint, not from a new fit
    fresh = pipeline.train(run_dir, tmp_path / "fresh", settings(adapter=adapter), lm=lm, progress=False)
    assert fresh["init_mse"] >= 0 and fresh["init_seconds"] >= 0
    metrics = pipeline.evaluate(tmp_path / "fresh", lm=lm, progress=False,
                                evaluation=settings().evaluation.model_copy(update={"probe": False}))
    assert metrics["residual/likelihood/n_users"] == 2 and metrics["likelihood_rank_cap"] == 10
