"""GER scorer tuning (LoRA on L_rec + lambda L_format): the differentiable slot path equals the inference
path, tuning lowers the loss and moves only LoRA weights, a killed tuning resumes to the same weights,
default configs keep their fingerprints, and a real SmolLM2 run end to end (slow)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.methods.ger.slots import SlotScorer
from lucidrec.methods.ger.tuning import ScorerTuning, TuningData, history_profiles

PREFIX, BRANCHES, CHOICES = [1, 5, 7, 9], [[20, 21], [22], [23, 24]], list(range(30, 39))


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(config).eval()


def toy_problem(seed: int = 0) -> tuple[TuningData, dict]:
    rng = np.random.default_rng(seed)
    n, d, users = 8, 4, 6
    data = TuningData(states=torch.tensor(rng.normal(size=(users, d)), dtype=torch.float32),
                      profiles=torch.tensor(rng.normal(size=(users, len(BRANCHES))), dtype=torch.float32),
                      targets=rng.integers(1, n + 1, size=users), base_table=torch.tensor(rng.normal(size=(n + 1, d)) * 0.1,
                                                                                           dtype=torch.float32),
                      candidates=np.arange(1, n + 1))
    segments = {i: [40 + i, 50 + (i % 3)] for i in range(1, n + 1)}
    return data, segments


def config(**overrides) -> GERConfig:
    tuning = dict(enabled=True, layers=1, steps=12, users=3, negatives=4, lr=0.05, checkpoint_every=2)
    return GERConfig(scorer={"kind": "llm"}, tuning={**tuning, **overrides})


def tuner(cfg: GERConfig, key: str = "k") -> ScorerTuning:
    data, segments = toy_problem()
    slots = SlotScorer(tiny_llama(), PREFIX, BRANCHES, CHOICES)
    return ScorerTuning(slots, segments, data, np.full(3, 5.0), np.ones(3), 1.0, cfg, key)


def test_the_differentiable_path_equals_the_inference_path():
    slots = SlotScorer(tiny_llama(), PREFIX, BRANCHES, CHOICES)
    segments = [[41, 50], [42], [43, 44, 45]]
    logprobs = slots.choice_logprobs(segments, grad=True)
    assert logprobs.requires_grad  # the graph is kept (every weight of a plain model is trainable)
    np.testing.assert_allclose(torch.softmax(logprobs, -1).detach().numpy(), slots.score(segments).probs, atol=1e-6)


def test_tuning_lowers_the_loss_and_moves_only_lora_weights(tmp_path):
    cfg = config(steps=30)
    tuning = tuner(cfg)
    frozen = {n: p.detach().clone() for n, p in tuning.peft_model.named_parameters() if not p.requires_grad}
    assert tuning.trainable and all("lora_" in n for n in tuning.trainable)
    assert all(".layers.1." in n for n in tuning.trainable)  # tuning.layers=1: the top layer only
    users, negatives = np.arange(6), np.arange(1, 9)  # the whole toy problem
    before = float(tuning.losses(users, negatives)[0])
    result = tuning.run(tmp_path)
    after = float(tuning.losses(users, negatives)[0])
    assert result["finished"] and result["steps"] == 30 and after < before - 0.05
    for name, p in tuning.peft_model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(30))
    assert all(0 < r["coverage"] <= 1 for r in lines)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_a_killed_tuning_resumes_to_the_same_weights(tmp_path):
    whole = tuner(config())
    reference = whole.run(tmp_path / "whole")
    first = tuner(config())
    assert first.run(tmp_path / "cut", stop_after_steps=5) == {"finished": False, "steps": 5}
    resumed = tuner(config())  # a new process: fresh model, state from the checkpoint at step 4
    result = resumed.run(tmp_path / "cut")
    assert result["weights_digest"] == reference["weights_digest"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(12))  # the step logged after the last checkpoint is not logged twice
    again = tuner(config())  # a finished tuning is read back, not redone
    assert again.run(tmp_path / "cut")["weights_digest"] == reference["weights_digest"]
    assert again.weights_digest() == reference["weights_digest"]


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    from lucidrec.train.checkpoint import CheckpointError

    tuner(config(), key="one").run(tmp_path, stop_after_steps=2)
    with pytest.raises(CheckpointError, match="another GER scorer-tuning configuration"):
        tuner(config(), key="two").run(tmp_path)


def test_base_top_negatives_are_each_users_best_rivals_outside_its_history():
    from lucidrec.data.sequences import Ragged

    table = torch.zeros(7, 2)
    table[1:, 0] = torch.tensor([6.0, 5, 4, 3, 2, 1])  # item 1 scores highest on dimension 0
    table[1:, 1] = torch.tensor([1.0, 2, 3, 4, 5, 6])  # item 6 highest on dimension 1
    data = TuningData(states=torch.tensor([[1.0, 0], [0, 1]]), profiles=torch.zeros(2, 3), targets=np.array([2, 6]),
                      base_table=table, candidates=np.arange(1, 7), history=Ragged.from_lists([[1], [3, 5]]))
    cfg = config(negatives_from="base_top", users=2, negatives=4)
    tuning = ScorerTuning(SlotScorer(tiny_llama(), PREFIX, BRANCHES, CHOICES), {}, data, np.zeros(3), np.ones(3), 1.0,
                          cfg, "k")
    # user 0: best 1 (history), 2 (target), then 3, 4; user 1: best 6 (target), 5 and 3 (history), then 4, 2
    np.testing.assert_array_equal(tuning.base_top_negatives(np.array([0, 1])), [2, 3, 4])
    users, negatives = tuning.step_batch(0)
    np.testing.assert_array_equal(negatives, [2, 3, 4])


def test_history_profiles_are_recency_weighted_means():
    guided = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    out = history_profiles(guided, [[1, 2], [3], []], window=2, decay=0.5)
    np.testing.assert_allclose(out, [[0.5 / 1.5, 1 / 1.5], [1, 1], [0, 0]])


def test_defaults_keep_the_fingerprints_of_runs_written_before_the_option():
    from lucidrec.embeddings.ger.state_files import fingerprint

    assert fingerprint(GERConfig(), "abc", 64) == "3bb8f7d32c8e6bbe"
    assert fingerprint(GERConfig(scorer={"kind": "llm"}, user={"init": "llm"}), "abc", 64) == "9f64bdcf4aa97ee8"
    assert fingerprint(config(), "abc", 64) != fingerprint(config(steps=13), "abc", 64)


def test_tuning_needs_the_llm_slot_scorer_on_a_refined_embedding():
    with pytest.raises(ValueError, match="scorer.kind='encoder'"):
        GERConfig(tuning={"enabled": True})
    with pytest.raises(ValueError, match="mode='reduced'"):
        GERConfig(tuning={"enabled": True}, scorer={"kind": "llm"}, mode="reduced")
    with pytest.raises(ValueError, match="scorer.method='json'"):
        GERConfig(tuning={"enabled": True}, scorer={"kind": "llm", "method": "json"})


@pytest.mark.slow
def test_a_ger_run_with_a_tuned_smollm2_scorer(tmp_path, tiny_movies):
    from lucidrec.methods import train as train_run
    from lucidrec.train.run import build_config, load_run

    cache = tmp_path / "cache"
    values = {"data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
              "model": {"name": "sasrec", "hidden": 16, "max_len": 6},
              "embedding": {"name": "ger", "attributes": "movies", "base": {"epochs": 1}, "cache_dir": str(cache),
                            "scorer": {"kind": "llm", "llm": {"backend": "transformers", "show_progress": False}},
                            "tuning": {"enabled": True, "steps": 2, "users": 2, "negatives": 2}},
              "train": {"epochs": 1, "threads": 1, "progress": False}}
    run = tmp_path / "run"
    assert train_run(build_config(values), run)["status"] == "done"
    meta = json.loads((run / "ger" / "meta.json").read_text())
    assert meta["scorer_tuning"]["finished"] and meta["scorer_tuning"]["steps"] == 2
    assert meta["scoring"]["scorer"] == "llm:slots+lora" and meta["scoring"]["model_calls"] == 14  # 15 films, one without text
    assert meta["scoring_zero_shot"]["scorer"] == "llm:slots"
    with np.load(run / "ger" / "state.npz") as state:
        assert state["raw"].shape == state["raw_zero_shot"].shape == (15, 8)
        scored = ~state["missing"]
        assert not np.allclose(state["raw"][scored], state["raw_zero_shot"][scored])  # the tuned weights score differently
    assert (run / "ger" / "scorer_tuning" / "adapter" / "adapter_config.json").is_file()
    written = (run / "ger" / "meta.json").stat().st_mtime_ns
    model = load_run(run)[0]  # reloading reads the state: no tuning, no scoring
    assert (run / "ger" / "meta.json").stat().st_mtime_ns == written and model.items.m == 8
