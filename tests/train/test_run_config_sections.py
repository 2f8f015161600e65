"""The run config's model and embedding sections: validated by their registered class (typos name that class's
valid keys, before any data is read), the method configs' stage sections, the registry-built schema, and the
migration of configs saved in the flat shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.config import ConfigError, validate_config
from lucidrec.embeddings import EMBEDDINGS
from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.embeddings.ger.config import flat_settings as ger_flat
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.embeddings.llmemb.config import flat_settings as llmemb_flat
from lucidrec.embeddings.id_table import IdEmbedding
from lucidrec.models import BACKBONES
from lucidrec.train.migrate import migrate_run_config
from lucidrec.train.run import RunConfig, build_config, run_config_schema

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", BACKBONES.names())
def test_a_typo_in_the_model_section_names_that_backbones_valid_keys(name):
    valid = ", ".join(sorted(BACKBONES.get(name).config_class.model_fields))
    with pytest.raises(ConfigError) as raised:
        build_config({"model": {"name": name, "max_lenn": 3}})
    assert f"model '{name}': unknown key 'max_lenn' (valid keys: {valid})" in str(raised.value)


@pytest.mark.parametrize("name", EMBEDDINGS.names())
def test_a_typo_in_the_embedding_section_names_that_embeddings_valid_keys(name):
    valid = ", ".join(sorted(EMBEDDINGS.get(name).config_class.model_fields))
    with pytest.raises(ConfigError) as raised:
        build_config({"embedding": {"name": name, "dimm": 3}})
    message = str(raised.value)  # a required setting left out (the frozen table's path) is named too
    assert message.startswith(f"run config: embedding '{name}': ")
    assert f"unknown key 'dimm' (valid keys: {valid})" in message


@pytest.mark.parametrize("name, section, typo", [("llmemb", "tuning", "max_step"), ("llmemb", "id_part", "enable"),
                                                 ("ger", "scorer", "methods"), ("ger", "user", "windows")])
def test_a_typo_inside_a_stage_section_names_that_sections_keys(name, section, typo):
    fields = EMBEDDINGS.get(name).config_class.model_fields[section].annotation.model_fields
    with pytest.raises(ConfigError) as raised:
        build_config(overrides=[f"embedding.name={name}", f"embedding.{section}.{typo}=1"])
    assert f"unknown key '{section}.{typo}' (valid keys: {', '.join(sorted(fields))})" in str(raised.value)


def test_a_flat_key_of_before_the_sections_says_where_it_lives_now():
    with pytest.raises(ConfigError, match=r"embedding 'llmemb': 'scft_max_steps' is now 'tuning.max_steps'"):
        build_config(overrides=["embedding.name=llmemb", "embedding.scft_max_steps=3"])
    with pytest.raises(ConfigError, match=r"embedding 'ger': 'scorer' is now 'scorer.kind'"):
        build_config(overrides=["embedding.name=ger", "embedding.scorer=llm"])


def test_the_typo_is_reported_before_any_data_is_read(tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", "nowhere", "--data-dir", str(tmp_path / "none"),
                                      "--embedding", "llmemb", "--set", "embedding.tuning.lrr=0.1",
                                      "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "unknown key 'tuning.lrr'" in result.output and "nowhere" not in result.output
    assert not (tmp_path / "run").exists()


def test_nested_sections_round_trip_through_dump_toml_and_typed_settings(tmp_path):
    config = build_config(overrides=["embedding.name=llmemb", "embedding.tuning.kind=interactions",
                                     "embedding.tuning.max_steps=7", "embedding.table.scaling=standardized",
                                     "embedding.id_part.enabled=true", "embedding.id_part.init=zero",
                                     "embedding.reference.epochs=2", "model.name=gru4rec", "model.hidden=16"])
    dumped = config.model_dump(mode="json")
    assert dumped["embedding"]["tuning"]["max_steps"] == 7 and dumped["embedding"]["id_part"]["init"] == "zero"
    assert validate_config(RunConfig, json.loads(json.dumps(dumped)), "again") == config
    settings = config.embedding_settings()
    assert isinstance(settings, LLMEmbConfig) and settings.table.scaling == "standardized"
    assert LLMEmbConfig.model_validate(settings.model_dump()) == settings
    assert config.model_settings().hidden == 16

    toml = tmp_path / "run.toml"
    toml.write_text('[embedding]\nname = "ger"\nmode = "guided"\n[embedding.scorer]\nkind = "llm"\nmethod = "json"\n'
                    '[embedding.user]\ninit = "llm"\nwindow = 5\n')
    ger = build_config(config_file=toml, overrides=["embedding.tuning.steps=3"])
    typed = ger.embedding_settings()
    assert isinstance(typed, GERConfig)
    assert (typed.scorer.kind, typed.scorer.method, typed.user.window, typed.tuning.steps) == ("llm", "json", 5, 3)
    assert GERConfig.model_validate(typed.model_dump()) == typed


def test_the_schema_is_a_union_of_the_registered_classes_and_follows_the_registry(monkeypatch):
    schema = run_config_schema()
    for section, registry in (("model", BACKBONES), ("embedding", EMBEDDINGS)):
        mapping = schema["properties"][section]["discriminator"]["mapping"]
        assert set(mapping) == set(registry.names())
        for name, ref in mapping.items():
            member = schema["$defs"][ref.split("/")[-1]]
            assert set(member["properties"]) == {"name", *registry.get(name).config_class.model_fields}
            assert member["properties"]["name"]["const"] == name
    llmemb = schema["$defs"]["embedding_llmemb"]["properties"]
    assert {"tuning", "table", "id_part", "alignment", "reference"} <= set(llmemb)

    class PluginEmbedding(IdEmbedding):  # a plugin registers after RunConfig exists
        pass

    monkeypatch.setitem(EMBEDDINGS._entries, "plugin", PluginEmbedding)
    assert "plugin" in run_config_schema()["properties"]["embedding"]["discriminator"]["mapping"]
    with pytest.raises(ConfigError, match="embedding 'plugin': unknown key 'x'"):
        build_config({"embedding": {"name": "plugin", "x": 1}})


@pytest.mark.parametrize("fixture, flat_view", [("flat_llmemb_config.json", llmemb_flat), ("flat_ger_config.json", ger_flat)])
def test_a_config_saved_in_the_flat_shape_migrates_without_losing_a_setting(fixture, flat_view):
    saved = json.loads((DATA / fixture).read_text())  # written by the version before the stage sections
    with pytest.raises(ConfigError, match="is now"):
        validate_config(RunConfig, saved, "as saved")
    migrated = migrate_run_config(saved)
    assert saved == json.loads((DATA / fixture).read_text())  # the input is left alone
    config = validate_config(RunConfig, migrated, "migrated")
    flat = {k: v for k, v in saved["embedding"].items() if k != "name"}
    assert flat_view(config.embedding_settings()) == flat  # every flat setting, value for value
    assert config.model_dump(mode="json") == migrated  # already complete: nothing filled in or dropped
    assert migrate_run_config(migrated) == migrated  # today's shape passes unchanged
    assert {k: v for k, v in config.model_dump(mode="json").items() if k != "embedding"} == \
        {k: v for k, v in saved.items() if k != "embedding"}


def test_migrated_llmemb_settings_are_the_ones_that_were_saved():
    config = validate_config(RunConfig, migrate_run_config(json.loads((DATA / "flat_llmemb_config.json").read_text())), "m")
    settings = config.embedding_settings()
    assert (settings.tuning.kind, settings.tuning.max_steps, settings.table.scaling) == ("interactions", 3, "standardized")
    assert (settings.id_part.enabled, settings.id_part.init, settings.reference.epochs) == (True, "zero", 2)
    assert settings.prompts.domain == "beauty item"
    ger = validate_config(RunConfig, migrate_run_config(json.loads((DATA / "flat_ger_config.json").read_text())), "m")
    settings = ger.embedding_settings()
    assert (settings.scorer.kind, settings.scorer.llm, settings.scorer.max_failed) == ("llm", {"backend": "mock"}, 0.1)
    assert (settings.user.init, settings.user.reduced, settings.guided.scale, settings.tuning.steps) == ("llm", "base", 0.3, 9)


def test_a_setting_given_both_flat_and_nested_is_an_error():
    saved = json.loads((DATA / "flat_llmemb_config.json").read_text())
    saved["embedding"]["table"] = {"scaling": "raw"}
    with pytest.raises(ConfigError, match="'table_scaling' and 'table.scaling' are the same setting"):
        migrate_run_config(saved)
