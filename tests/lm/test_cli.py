import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_lm_ask_with_mock_then_cache_stats_and_clear(tmp_path):
    code, out = invoke("lm", "ask", "hello there", "--backend", "mock", "--cache-dir", str(tmp_path))
    assert code == 0 and "hello there" in out and "model call" in out
    code, out = invoke("lm", "ask", "hello there", "--backend", "mock", "--cache-dir", str(tmp_path))
    assert code == 0 and "cached" in out
    code, out = invoke("lm", "cache-stats", "--cache-dir", str(tmp_path), "--json")
    stats = json.loads(out)
    assert stats["responses"]["entries"] == 1 and stats["responses"]["groups"][0]["backend"] == "mock"
    code, out = invoke("lm", "clear", "--cache-dir", str(tmp_path), "--yes")
    assert code == 0 and "removed 1 cached answers" in out
    code, out = invoke("lm", "cache-stats", "--cache-dir", str(tmp_path))
    assert "responses: 0 entries" in out


def test_lm_info_reports_offline_models(tmp_path):
    code, out = invoke("lm", "info", "--cache-dir", str(tmp_path), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["default_encoder"]["available"] and info["default_chat_model"]["available"]
    assert info["chat_backends"] == ["openai", "transformers", "recorded", "mock"]
    assert info["cache_root"] == str(tmp_path)


def test_lm_ask_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out = invoke("lm", "ask", "hi", "--backend", "openai", "--model", "m", "--base-url",
                       "https://llm.example.com/v1", "--cache-dir", str(tmp_path))
    assert code == 2 and "OPENAI_API_KEY" in out
    code, out = invoke("lm", "ask", "hi", "--backend", "nope", "--cache-dir", str(tmp_path))
    assert code == 2 and "valid chat backends" in out


@pytest.fixture
def tiny_dataset(tmp_path):
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
                  "item_id": ["a", "b", "c", "b", "c", "d"],
                  "timestamp": [1, 2, 3, 1, 2, 1]}).to_parquet(folder / "interactions.parquet")
    pd.DataFrame({"item_id": ["a", "b", "c", "d"], "title": ["Lip balm", "Night cream", None, "Mascara"],
                  "brand": ["Acme", None, None, "Lux"]}).to_parquet(folder / "items.parquet")
    return tmp_path / "data"


@pytest.mark.slow
def test_embed_writes_matrix_aligned_with_the_vocabulary(tiny_dataset, tmp_path, minilm, monkeypatch):
    import lucidrec.lm.encoder as encoder_module
    from lucidrec.data import load_dataset
    from lucidrec.data.prepare import PrepareConfig, prepare

    monkeypatch.setattr(encoder_module, "load_sentence_transformer", lambda location, device="cpu": minilm[0])
    out = tmp_path / "out" / "tiny_attrs"
    code, text = invoke("embed", "--dataset", "tiny", "--data-dir", str(tiny_dataset), "--text", "attributes",
                        "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet", "--min-user", "2")
    assert code == 0, text
    assert "1 without text" in text
    vectors = np.load(out.with_suffix(".npy"))
    sidecar = json.loads(out.with_suffix(".json").read_text())
    data = prepare(load_dataset("tiny", tiny_dataset), PrepareConfig(min_user_interactions=2))
    assert sidecar["item_ids"] == list(data.item_ids) and sidecar["data_hash"] == data.data_hash
    assert vectors.shape == (len(data.item_ids), 384) and vectors.dtype == np.float32
    assert np.all(vectors[0] == 0) and np.allclose(np.linalg.norm(vectors[1:], axis=1), 1, atol=1e-5)
    assert sidecar["text_form"] == "attributes" and sidecar["n_fallback"] == 1 and sidecar["fallback_ids"] == ["c"]
    code, text = invoke("embed", "--dataset", "tiny", "--data-dir", str(tiny_dataset), "--text", "summary",
                        "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert code == 2 and "valid text forms" in text
