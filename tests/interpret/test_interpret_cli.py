"""``lucidrec interpret train|evaluate|ask`` end to end on a tiny run and a tiny LM, and bad input."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.config import ConfigError
from lucidrec.interpret import pipeline
from lucidrec.interpret.config import InterpretConfig
from tests.interpret.conftest import cyclic_run, random_vectors
from tests.synthetic import write_cyclic
from tests.tiny_lm import tiny_llama, tiny_soft_lm, tiny_tokenizer

runner = CliRunner()
FAST = ["--set", "optim.max_steps=3", "--set", "optim.batch_size=4", "--set", "evaluation.rank_users=2",
        "--set", "evaluation.max_new_tokens=4", "--set", "evaluation.probe=false", "--no-progress"]


def settings(task="residual", adapter=None, **optim):
    return InterpretConfig(task=task, optim={"max_steps": 3, "batch_size": 4, **optim}, adapter=adapter or {},
                           evaluation={"rank_users": 2, "generate_users": 3, "max_new_tokens": 4})


@pytest.mark.parametrize("task", ["residual", "recovery"])
def test_cli_train_evaluate_ask(run_dir, lm_folder, tmp_path, task):
    out = tmp_path / task
    result = runner.invoke(app, ["interpret", "train", "--run", str(run_dir), "--task", task, "--out", str(out),
                                 "--set", f"lm.model={lm_folder}", *FAST])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "interpret.json").read_text())
    assert manifest["status"] == "done" and manifest["training"]["steps"] == 3 and manifest["task"] == task
    result = runner.invoke(app, ["interpret", "evaluate", str(out), "--set", "evaluation.generate_users=3", "--no-progress"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    if task == "residual":
        assert metrics["residual/likelihood/n_users"] == 2 and metrics["candidates"] == 30
        assert metrics["chance/top10"] == pytest.approx(10 / 30) and "shuffled/likelihood/top10" in metrics
        assert metrics["instantiation/n_users"] == min(len(manifest["users"]["heldout"]), 50)
    else:
        assert sum(metrics["recovery/generation/distribution"]) == 3 and "shuffled/generation/mean" in metrics
    assert (out / "cases.jsonl").read_text().count("\n") == 3
    result = runner.invoke(app, ["interpret", "ask", str(out), "--user", "u3", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["user"] == "u3" and len(answer["backbone_top10"]) == 10 and "predicted_next_item" in answer
    result = runner.invoke(app, ["interpret", "ask", str(out), "--user", "nobody"])
    assert result.exit_code == 2 and "unknown user id 'nobody'" in result.output


def test_pipeline_with_the_probe_and_resume_after_a_kill(run_dir, tmp_path):
    lm = tiny_soft_lm()
    out = tmp_path / "adapter"
    assert pipeline.train(run_dir, out, settings(), lm=lm, progress=False, stop_after_steps=2)["status"] == "interrupted"
    with pytest.raises(ConfigError, match="has not finished"):
        pipeline.evaluate(out, lm=lm, progress=False)
    resumed = pipeline.train(run_dir, out, settings(), lm=lm, progress=False)
    assert resumed["status"] == "done" and resumed["steps"] == 3
    assert pipeline.train(run_dir, out, settings(), lm=lm, progress=False)["status"] == "reused"
    metrics = pipeline.evaluate(out, lm=lm, title_vectors=random_vectors, progress=False)
    assert metrics["probe/n_users"] == metrics["heldout_users"] and 0 <= metrics["probe/top10"] <= 1


def test_a_time_limited_training_stops_and_continues_when_given_more_time(run_dir, tmp_path):
    lm = tiny_soft_lm()
    out = tmp_path / "adapter"
    limited = settings(max_minutes=1e-6)
    assert pipeline.train(run_dir, out, limited, lm=lm, progress=False)["status"] == "stopped"
    assert json.loads((out / "interpret.json").read_text())["training"]["steps"] == 0
    assert pipeline.train(run_dir, out, limited, lm=lm, progress=False)["status"] == "reused"
    more = pipeline.train(run_dir, out, settings(), lm=lm, progress=False)
    assert more["status"] == "done" and more["steps"] == 3


def test_folder_of_another_run_or_lm_or_settings_is_refused(run_dir, tmp_path):
    lm = tiny_soft_lm()
    out = tmp_path / "adapter"
    pipeline.train(run_dir, out, settings(), lm=lm, progress=False)
    other_run = cyclic_run(tmp_path / "other", seed=7)
    with pytest.raises(ConfigError, match=r"trained on the run .*run42.* not on .*run7"):
        pipeline.train(other_run, out, settings(), lm=lm, progress=False)
    with pytest.raises(ConfigError, match=r"trained on the run .*run42.* not on .*run7"):
        pipeline.evaluate(out, run=other_run, lm=lm, progress=False)
    other_lm = tiny_soft_lm()
    other_lm.identity = "tiny-llama-other"
    with pytest.raises(ConfigError, match="trained for the LM tiny-llama-0, not for tiny-llama-other"):
        pipeline.ask(out, "u3", lm=other_lm)
    with pytest.raises(ConfigError, match="other settings"):
        pipeline.train(run_dir, out, settings(lr=0.5), lm=lm, progress=False)
    with pytest.raises(ConfigError, match="only evaluation"):
        pipeline.evaluation_settings(out, ["optim.lr=0.1"])


def test_changed_or_missing_data_is_an_error_with_the_hash(tmp_path):
    run = cyclic_run(tmp_path)
    lm = tiny_soft_lm()
    pipeline.train(run, tmp_path / "adapter", settings(), lm=lm, progress=False)
    write_cyclic(tmp_path / "data", n_users=40, seed=3)  # same name, other interactions
    result = runner.invoke(app, ["interpret", "evaluate", str(tmp_path / "adapter"), "--no-progress"])
    assert result.exit_code == 2 and "data changed" in result.output and "hash" in result.output
    shutil.rmtree(tmp_path / "data")
    result = runner.invoke(app, ["interpret", "evaluate", str(tmp_path / "adapter"), "--no-progress"])
    assert result.exit_code == 2 and "cyclic" in result.output and "data hash" in result.output


def test_lm_without_a_chat_template_uses_plain_prompts_and_says_so(run_dir, tmp_path, caplog):
    from lucidrec.lm.soft_prompt import SoftPromptLM

    tokenizer = tiny_tokenizer(chat_template=False)
    with caplog.at_level("WARNING"):
        lm = SoftPromptLM(tiny_llama(len(tokenizer)), tokenizer, identity="plain")
    assert caplog.text.count("has no chat template") == 1
    layout = lm.layout("Between <SeqHere> and <SeqHere>?")
    assert layout.prefix[0] == tokenizer.bos_token_id
    result = pipeline.train(run_dir, tmp_path / "plain", settings(), lm=lm, progress=False)
    assert result["status"] == "done"


def test_bad_templates_and_task_names(tmp_path, run_dir, lm_folder):
    from lucidrec.interpret.templates import load_templates

    bad = tmp_path / "t.toml"
    bad.write_text('train = ["only <SeqHere> one slot"]\ntest = ["<SeqHere> and <SeqHere>"]\n')
    with pytest.raises(ConfigError, match="needs exactly 2 <SeqHere> slot"):
        load_templates("residual", bad)
    bad.write_text('train = ["<SeqHere> and <SeqHere>"]\ntest = ["<SeqHere> and <SeqHere>"]\n')
    with pytest.raises(ConfigError, match="must differ"):
        load_templates("residual", bad)
    result = runner.invoke(app, ["interpret", "train", "--run", str(run_dir), "--task", "summary", "--out",
                                 str(tmp_path / "x"), "--set", f"lm.model={lm_folder}"])
    assert result.exit_code == 2 and "task" in result.output and "residual" in result.output


@pytest.mark.parametrize("backbone", ["gru4rec", "bert4rec", "caser"])
def test_every_backbone(tmp_path, backbone):
    from lucidrec.train.run import build_config, train_run

    data = write_cyclic(tmp_path / "data", n_users=30).parent
    config = build_config({"data": {"dataset": "cyclic", "data_dir": str(data)},
                           "model": {"name": backbone, "hidden": 16, "max_len": 10},
                           "train": {"epochs": 1, "batch_size": 32, "progress": False}})
    train_run(config, tmp_path / "run")
    lm = tiny_soft_lm()
    out = tmp_path / "adapter"
    conv = settings(adapter={"pool": "conv", "window": 4})
    assert pipeline.train(tmp_path / "run", out, conv, lm=lm, progress=False)["status"] == "done"
    metrics = pipeline.evaluate(out, lm=lm, title_vectors=random_vectors, progress=False)
    assert metrics["residual/likelihood/n_users"] == 2 and metrics["instantiation/n_users"] == metrics["heldout_users"]
    answer = pipeline.ask(out, "u1", lm=lm)
    assert len(answer["backbone_top10"]) == 10 and all(t.startswith("Item number") for t in answer["backbone_top10"])
