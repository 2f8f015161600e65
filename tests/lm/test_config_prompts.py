import subprocess
import sys

import pytest
from pydantic import ValidationError

from lucidrec.errors import DataFormatError, UnknownNameError
from lucidrec.lm.chat import CHAT_BACKENDS, create_chat_model
from lucidrec.lm.config import CHAT_CONFIGS, EncoderConfig, OpenAIChatConfig, chat_config
from lucidrec.lm.prompts import available_prompts, load_prompt, read_template


def test_registry_lists_valid_backends_on_unknown_name():
    assert set(CHAT_BACKENDS) == set(CHAT_CONFIGS) == {"openai", "transformers", "recorded", "mock"}
    with pytest.raises(UnknownNameError) as info:
        create_chat_model("llamacpp")
    assert "valid chat backends: mock, openai, recorded, transformers" in str(info.value)


def test_configs_forbid_unknown_keys():
    with pytest.raises(ValidationError):
        EncoderConfig(modle="x")
    with pytest.raises(ValidationError):
        chat_config({"backend": "openai", "base_ur": "http://x"})
    config = chat_config("mock", mode="fixed", answer="hi")
    assert config.answer == "hi" and chat_config(config) is config


def test_api_key_is_never_serialised():
    config = OpenAIChatConfig(model="m", api_key="sk-secret")
    assert "sk-secret" not in config.model_dump_json() and "sk-secret" not in repr(config)


def test_shipped_prompts_load_and_render():
    names = available_prompts()
    assert {"json_reask", "ger_item_scores", "lane_preferences", "rating_scale"} <= set(names)
    for name in names:
        template = load_prompt(name)
        assert template.name == name and template.version
    ger = load_prompt("ger_item_scores").render(domain="movie", attributes="- pacing", item_text="Heat (1995)")
    assert ger.ref.name == "ger_item_scores" and "Heat (1995)" in ger.messages[-1]["content"]
    assert '{"attribute name": 7}' in ger.messages[-1]["content"]  # braces survive rendering
    with pytest.raises(KeyError, match="item_text"):
        load_prompt("ger_item_scores").render(domain="movie", attributes="x")
    with pytest.raises(UnknownNameError):
        load_prompt("no_such_prompt")


def test_bad_template_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\n[[messages]]\nrole = "user"\ncontent = "hi"\n')
    with pytest.raises(DataFormatError, match="broken.toml.*version"):
        read_template(bad)


def test_importing_lm_is_cheap():
    code = ("import sys, lucidrec.lm, lucidrec.lm.chat, lucidrec.lm.encoder, lucidrec.serve.lm_app, lucidrec.cli.lm; "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'openai') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
