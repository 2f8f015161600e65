"""SCFT with the real offline MiniLM: resume equals an uninterrupted run, LoRA, pooling matches the lm layer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from lucidrec.data.dataset import ItemCatalog
from lucidrec.embeddings.llmemb import LLMEmbConfig
from lucidrec.methods.llmemb.encoder import encode_texts, load_encoder, transformer_folder
from lucidrec.methods.llmemb.prompts import build_prompts
from lucidrec.methods.llmemb.scft import LOG, STATE, run_scft
from lucidrec.lm.models import locate_encoder
from lucidrec.train.checkpoint import CheckpointError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def location():
    return locate_encoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def prompts():
    colours = ["red", "blue", "green", "black", "white", "pink", "gold", "grey"]
    kinds = ["lip balm", "night cream", "shampoo", "eye liner", "perfume", "nail polish", "face mask", "soap"]
    catalog = ItemCatalog(pd.DataFrame({
        "item_id": [f"i{i}" for i in range(8)],
        "title": [f"{c.title()} {k}" for c, k in zip(colours, kinds)],
        "brand": [f"Brand{i % 3}" for i in range(8)],
        "color": colours,
        "size": [f"{10 * (i + 1)} ml" for i in range(8)],
    }))
    return build_prompts(catalog, [f"i{i}" for i in range(8)], LLMEmbConfig())


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_resume_equals_uninterrupted(tmp_path, location, prompts):
    config = LLMEmbConfig(tuning={"loss": "soft", "batch_size": 4, "max_steps": 2, "checkpoint_every": 1, "lr": 1e-3},
                          prompts={"max_seq_length": 24})
    straight = run_scft(config, prompts, tmp_path / "a", location=location, key="k", progress=False)
    assert straight.finished and straight.steps == 2

    first = run_scft(config, prompts, tmp_path / "b", location=location, key="k", progress=False, stop_after_steps=1)
    assert not first.finished and first.steps == 1 and (tmp_path / "b" / STATE).is_file()
    with pytest.raises(CheckpointError, match="another SCFT configuration"):
        run_scft(config, prompts, tmp_path / "b", location=location, key="other", progress=False)
    resumed = run_scft(config, prompts, tmp_path / "b", location=location, key="k", progress=False)
    assert resumed.finished and resumed.steps == 2

    a, b = _weights(straight.model_dir), _weights(resumed.model_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.temperature == straight.temperature != 3.0  # the soft loss's τ is learnt and restored
    logs = [[json.loads(line) for line in (tmp_path / d / LOG).read_text().splitlines()] for d in ("a", "b")]
    assert [e["step"] for e in logs[1]] == [1, 2] and logs[0] == logs[1]  # same losses, lr and τ at every step
    base = load_file(str(location.path + "/model.safetensors"))
    name = next(k for k in a if k.endswith("attention.self.query.weight"))
    assert name in base and not torch.equal(a[name], base[name])  # it did train


def test_lora_trains_adapters_and_saves_a_merged_model(tmp_path, location, prompts):
    config = LLMEmbConfig(tuning={"lora": True, "lora_r": 2, "batch_size": 4, "max_steps": 1, "lr": 1e-2}, prompts={"max_seq_length": 24})
    result = run_scft(config, prompts, tmp_path, location=location, key="k", progress=False)
    tuned = _weights(result.model_dir)
    assert not any("lora" in k for k in tuned)  # merged into plain weights
    base = load_file(str(location.path + "/model.safetensors"))
    changed = [k for k in tuned if k in base and not torch.equal(tuned[k], base[k])]
    assert changed and all(("query" in k or "value" in k) for k in changed)  # peft's BERT default targets only
    model, tokenizer = load_encoder(location, folder=result.model_dir)
    assert encode_texts(model, tokenizer, prompts.texts[:2], max_length=24).shape == (2, 384)


def test_mean_pooling_matches_the_sentence_transformers_vectors(location, prompts):
    from lucidrec.lm.models import load_sentence_transformer

    assert transformer_folder(location) == location.path  # MiniLM: transformer at the folder root
    model, tokenizer = load_encoder(location)
    ours = encode_texts(model, tokenizer, prompts.texts[:3], max_length=256, batch_size=2)
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    reference = load_sentence_transformer(location).encode(prompts.texts[:3], normalize_embeddings=True)
    assert np.allclose(ours, reference, atol=1e-5)


def test_tuning_on_interaction_pairs_trains_on_the_pairs_prompts(tmp_path, location, prompts):
    from lucidrec.data.sequences import Ragged
    from lucidrec.methods.llmemb.interactions import next_item_pairs

    # Item indices are 1-based prompt rows + 1; item 8 has no text in this check's mask, and 3 -> 3 is a repeat.
    train = Ragged.from_lists([[1, 2, 3, 3, 4], [5, 6, 8], [2, 3]])
    has_text = np.array([False] + [True] * 7 + [False])
    pairs = next_item_pairs(train, has_text)
    assert pairs.tolist() == [[1, 2], [2, 3], [3, 4], [5, 6]]
    config = LLMEmbConfig(tuning={"kind": "interactions", "batch_size": 4, "max_steps": 1, "lr": 1e-3}, prompts={"max_seq_length": 24})
    result = run_scft(config, prompts, tmp_path, location=location, key="k", progress=False, pairs=pairs)
    assert result.finished and result.steps == 1
    tuned, base = _weights(result.model_dir), load_file(str(location.path + "/model.safetensors"))
    name = next(k for k in tuned if k.endswith("attention.self.query.weight"))
    assert not torch.equal(tuned[name], base[name])


def test_the_tuning_loop_masks_in_batch_copies_of_a_positive(tmp_path, location, prompts, monkeypatch):
    import lucidrec.methods.llmemb.scft as scft

    seen = []
    real = scft.contrastive_loss

    def spy(name, x, y, temperature, **keys):
        seen.append({k: v.tolist() for k, v in keys.items()})
        return real(name, x, y, temperature, **keys)

    monkeypatch.setattr(scft, "contrastive_loss", spy)
    pairs = np.array([[1, 2], [3, 2], [4, 5]])  # item 2 is the next item twice
    config = LLMEmbConfig(tuning={"kind": "interactions", "batch_size": 4, "max_steps": 1, "lr": 1e-3},
                          prompts={"max_seq_length": 24})
    assert run_scft(config, prompts, tmp_path, location=location, key="k", progress=False, pairs=pairs).finished
    keys = scft.text_keys(prompts)
    (batch,) = seen
    assert sorted(batch["y_keys"]) == sorted(int(keys[b - 1]) for b in (2, 2, 5))
    assert sorted(batch["x_keys"]) == sorted(int(keys[a - 1]) for a in (1, 3, 4))
