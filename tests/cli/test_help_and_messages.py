"""What a new user reads: help with defaults and choices, clean error messages, readable comparisons."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.embeddings import EMBEDDINGS
from lucidrec.models import BACKBONES
from tests.synthetic import write_cyclic

runner = CliRunner()


def help_of(*command) -> str:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_help_lists_registered_choices_and_defaults_without_bool_placeholders():
    train = help_of("train")
    assert "<" + "|".join(EMBEDDINGS.names()) + ">" in train and "llmemb" in train and "ger" in train
    assert "<" + "|".join(BACKBONES.names()) + ">" in train
    assert "[default: ml-100k" in train and "[default: sasrec" in train and "[default: id" in train
    for command in (("train",), ("evaluate",), ("run",), ("compare",), ("explain",), ("data", "info"), ("embed",),
                    ("lm", "clear"), ("attributes", "draft"), ("experiment", "run"), ("report",)):
        assert "<bool>" not in help_of(*command), command
    run = help_of("run")
    assert "[default: ml-100k]" in run and "[default: runs/quickstart]" in run
    assert "<title|attributes|description>" in help_of("embed") and "[default: title]" in help_of("embed")
    assert "<openai|transformers|recorded|mock>" in help_of("lm", "ask") and "<keep|first|last>" in help_of("data", "info")


def test_cli_choice_lists_match_the_configs_they_feed():
    from typing import get_args

    from lucidrec.cli._common import DEDUP_CHOICES
    from lucidrec.data.prepare import PrepareConfig

    assert DEDUP_CHOICES == get_args(PrepareConfig.model_fields["duplicates"].annotation)


@pytest.mark.parametrize("args, expected", [
    (["train", "--embedding", "llmem", "--out", "x"], "unknown item embedding 'llmem'; valid item embeddings: frozen, ger,"),
    (["evaluate", "--model", "popular"], "unknown baseline 'popular'; valid baselines: cooc, pop"),
    (["evaluate", "--protocol", "sampled", "--protocol", "all"], "unknown protocol 'all'; valid protocols: full,"),
])
def test_a_wrong_choice_is_refused_with_the_valid_names(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and expected in result.output and "Value error" not in result.output


def test_evaluate_help_marks_what_is_required():
    text = " ".join(help_of("evaluate").split())
    assert "--out <path> Folder for metrics.json and per-user ranks [required with --dataset" in text
    assert "[required unless --run]" in text and "<pop|cooc>" in text and "<leave_one_out|global_temporal>" in text
    assert "[required]" in " ".join(help_of("train").split())  # --out of train


def test_train_says_which_defaults_it_used(tmp_path):
    write_cyclic(tmp_path / "data", "cyclic", n_users=40, n_items=12, length=6)
    args = ["train", "--data-dir", str(tmp_path / "data"), "--set", "train.epochs=1", "--set", "model.hidden=8",
            "--set", "train.progress=false", "--set", "model.max_len=6", "--set", "train.threads=1"]
    result = runner.invoke(app, [*args, "--dataset", "cyclic", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "using defaults: model sasrec, embedding id (choose with --model, --embedding)" in result.output
    config = tmp_path / "run.toml"
    config.write_text('[model]\nname = "gru4rec"\n')
    result = runner.invoke(app, [*args, "--dataset", "cyclic", "--config", str(config), "--set", "embedding.name=id",
                                 "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "using defaults" not in result.output


@pytest.mark.parametrize("key, expected", [
    ("embedding.foo=1", "error: run config: embedding 'id': unknown key 'foo' (valid keys: init_std)"),
    ("model.hiden=3", "error: run config: model 'sasrec': unknown key 'hiden' (valid keys: block, causal, dropout, ffn_multiplier, heads, hidden, layers, max_len)"),
])
def test_misspelled_nested_key_reads_cleanly(tmp_path, key, expected):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run"), "--set", key])
    assert result.exit_code == 2 and expected in result.output
    assert "Value error" not in result.output and "''" not in result.output


def test_missing_data_dir_is_named_as_missing(tmp_path):
    missing = tmp_path / "no-such-folder"
    result = runner.invoke(app, ["data", "info", "ml-1m", "--data-dir", str(missing)])
    assert result.exit_code == 2
    assert f"{missing}: the data folder does not exist (given by --data-dir)" in result.output
    assert "is not in" not in result.output
    result = runner.invoke(app, ["train", "--dataset", "my-data", "--data-dir", str(missing), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "the data folder does not exist" in result.output
    assert not (tmp_path / "r").exists()
    assert "(the folder does not exist)" in runner.invoke(app, ["data", "list", "--data-dir", str(missing)]).output


def _fake_run(folder, ranks):
    folder.mkdir()
    np.savez_compressed(folder / "ranks_test.npz", users=np.arange(len(ranks)), rank_full=np.asarray(ranks))
    return folder


def test_compare_prints_underflowing_p_values_as_a_bound_and_explains_disagreement(tmp_path):
    from lucidrec.eval.metrics import per_user_metrics
    from lucidrec.eval.stats import paired_test

    rng = np.random.default_rng(0)
    base = rng.integers(20, 40, size=4000)
    better = _fake_run(tmp_path / "better", base - 15)  # every user gains: both p-values underflow to 0
    # Most users gain a little, a few lose a lot: the mean barely moves, the signs do.
    mixed_ranks = np.where(np.arange(4000) < 3700, base - 2, base + 2000)
    mixed = _fake_run(tmp_path / "mixed", mixed_ranks)
    reference = _fake_run(tmp_path / "base", base)
    stats = paired_test(per_user_metrics(base)["mrr"], per_user_metrics(mixed_ranks)["mrr"])
    assert stats["t_pvalue"] > 0.05 and stats["wilcoxon_pvalue"] < 1e-10  # the scenario is what it claims

    result = runner.invoke(app, ["compare", str(reference), str(better), str(mixed), "--metric", "mrr"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert "paired t p < 1e-300, Wilcoxon p < 1e-300" in first and "p=0," not in result.output
    assert "the two tests disagree at p < 0.05 on: mixed mrr" in result.output
    assert "MEAN per-user difference" in result.output and "more users" in result.output
    payload = json.loads(runner.invoke(app, ["compare", str(reference), str(better), "--json"]).output)
    assert payload[str(better)]["mrr"]["t_pvalue"] == 0.0  # JSON keeps the number
