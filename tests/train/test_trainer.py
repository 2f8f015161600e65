import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.config import ConfigError
from lucidrec.train.checkpoint import CheckpointError
from lucidrec.train.run import build_config, build_model, hidden_states, load_run, train_or_reuse, train_run
from tests.resume import assert_resume_equals_uninterrupted
from tests.synthetic import write_cyclic

runner = CliRunner()


@pytest.fixture
def cyclic_dir(tmp_path):
    write_cyclic(tmp_path / "data")
    return tmp_path / "data"


def _config(data_dir, model="sasrec", epochs=4, max_len=10, **train):
    return build_config(
        {
            "data": {"dataset": "cyclic", "data_dir": str(data_dir)},
            "model": {"name": model, "hidden": 16, "max_len": max_len},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "patience": 50, "lr": 0.01, **train},
        }
    )


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "bert4rec", "caser"])
def test_every_backbone_learns_the_cycle_and_beats_popularity(cyclic_dir, tmp_path, model):
    from lucidrec.data.pipeline import load_split
    from lucidrec.eval.evaluator import evaluate
    from lucidrec.models.baselines import MostPopular

    config = _config(cyclic_dir, model, epochs=15, loss="ce")
    metrics = train_run(config, tmp_path / model)
    _, split = load_split(config.data)
    pop = evaluate(MostPopular().fit(split), split).metrics
    assert metrics["test/full/ndcg@10"] > pop["test/full/ndcg@10"] + 0.1
    assert json.loads((tmp_path / model / "metrics.json").read_text())["test/full/ndcg@10"] == metrics["test/full/ndcg@10"]
    table = np.load(tmp_path / model / "item_table.npy")
    assert table.shape == (31, 16)
    assert json.loads((tmp_path / model / "item_ids.json").read_text())[:2] == ["<pad>", "i0"]


@pytest.mark.parametrize("loss", ["bce", "sampled_softmax"])
def test_losses_train(cyclic_dir, tmp_path, loss):
    metrics = train_run(_config(cyclic_dir, epochs=6, loss=loss, n_negatives=8), tmp_path / loss)
    assert metrics["test/full/recall@10"] > 0.5


@pytest.mark.parametrize("negatives", [{"negatives": "popularity", "alpha": 0.75}, {"negatives": "in_batch"},
                                       {"replacement": False, "logq_correction": False}])
def test_sampled_softmax_variants_train(cyclic_dir, tmp_path, negatives):
    config = _config(cyclic_dir, epochs=6, loss="sampled_softmax", n_negatives=8, sampled_softmax=negatives)
    assert train_run(config, tmp_path / "run")["test/full/recall@10"] > 0.5


def test_more_negatives_than_items_fails_before_the_first_epoch(cyclic_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"train.n_negatives=64 is larger than the catalog \(30 items\)"):
        train_run(_config(cyclic_dir, epochs=2, loss="sampled_softmax", n_negatives=64), tmp_path / "run")
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_length_bucketing_trains_and_resumes_exactly(cyclic_dir, tmp_path):
    config = _config(cyclic_dir, epochs=4, max_len=5, loss="sampled_softmax", n_negatives=8, length_bucketing=2,
                     batch_size=4, history_window="random")
    assert_resume_equals_uninterrupted(config, tmp_path, stop_after_epochs=2)


def test_sampled_softmax_options_are_no_part_of_other_losses_runs(cyclic_dir, tmp_path):
    # A ce run saved before the options existed is reused; a sampled-softmax one saved then ran without logQ.
    config = _config(cyclic_dir, epochs=2, loss="ce")
    train_run(config, tmp_path / "ce")
    saved = json.loads((tmp_path / "ce" / "config.json").read_text())
    del saved["train"]["sampled_softmax"]
    (tmp_path / "ce" / "config.json").write_text(json.dumps(saved))
    assert train_or_reuse(config, tmp_path / "ce")["status"] == "done"
    sampled = _config(cyclic_dir, epochs=2, loss="sampled_softmax", n_negatives=8)
    train_run(sampled, tmp_path / "ss")
    saved = json.loads((tmp_path / "ss" / "config.json").read_text())
    del saved["train"]["sampled_softmax"]
    (tmp_path / "ss" / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=r"logq_correction': False.*saved before the option existed"):
        train_or_reuse(sampled, tmp_path / "ss")
    old_behaviour = _config(cyclic_dir, epochs=2, loss="sampled_softmax", n_negatives=8,
                            sampled_softmax={"logq_correction": False})
    assert train_or_reuse(old_behaviour, tmp_path / "ss")["status"] == "done"


@pytest.mark.parametrize("window", ["latest", "random"])
def test_resume_continues_exactly_like_an_uninterrupted_run(cyclic_dir, tmp_path, window):
    # bce: sampled negatives must also line up; random: so must the epoch's history windows, which
    # max_len 5 < 10 training items makes real.
    config = _config(cyclic_dir, epochs=4, max_len=5, loss="bce", history_window=window)
    assert_resume_equals_uninterrupted(config, tmp_path, stop_after_epochs=2)


def test_evaluating_an_unfinished_run_says_so(cyclic_dir, tmp_path, caplog):
    from lucidrec.train.run import evaluate_run

    config = _config(cyclic_dir, epochs=4)
    train_run(config, tmp_path / "run", stop_after_epochs=2)  # as if killed after two epochs
    evaluate_run(tmp_path / "run", out=tmp_path / "eval")
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["unfinished_training"] is True
    assert "has not finished training" in caplog.text
    train_run(config, tmp_path / "run", resume=True)
    evaluate_run(tmp_path / "run", out=tmp_path / "eval2")
    assert "unfinished_training" not in json.loads((tmp_path / "eval2" / "metrics.json").read_text())


def test_resume_forgets_epochs_logged_after_the_last_checkpoint(cyclic_dir, tmp_path):
    # A kill between the log line and the checkpoint repeats that epoch; a kill inside the write cuts a line.
    config = _config(cyclic_dir, epochs=4)
    train_run(config, tmp_path / "run", stop_after_epochs=2)
    log = tmp_path / "run" / "log.jsonl"
    first_two = log.read_text()
    log.write_text(first_two + first_two.splitlines()[0].replace('"epoch": 0', '"epoch": 2') + "\n" + '{"epoch": 3, "lo')
    train_run(config, tmp_path / "run", resume=True)
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3] and log.read_text().startswith(first_two)


def test_a_split_without_validation_users_fails_before_training(cyclic_dir, tmp_path):
    config = _config(cyclic_dir)
    config.data.split.min_length = 10_000  # every user becomes training-only
    with pytest.raises(ValueError, match="validation part of the split has no users"):
        train_run(config, tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_finished_run_is_reused_only_for_the_same_config(cyclic_dir, tmp_path):
    first = train_or_reuse(_config(cyclic_dir, epochs=2), tmp_path / "run")
    log = (tmp_path / "run" / "log.jsonl").read_text()
    again = train_or_reuse(_config(cyclic_dir, epochs=2, progress=True, threads=1), tmp_path / "run")  # not identity
    assert again == first and first["status"] == "done" and "best_epoch" in first
    assert (tmp_path / "run" / "log.jsonl").read_text() == log  # reused, not retrained
    with pytest.raises(ConfigError, match=r"train.lr: 0.01 -> 0.02"):
        train_or_reuse(_config(cyclic_dir, epochs=2, lr=0.02), tmp_path / "run")


def test_cli_run_keeps_each_dataset_in_its_own_folder(cyclic_dir, tmp_path):
    args = ["run", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--out", str(tmp_path / "out"),
            "--set", "train.epochs=2", "--set", "train.progress=false", "--set", "model.hidden=16"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "cyclic" / "sasrec" / "metrics.json").is_file()
    changed = runner.invoke(app, args + ["--set", "train.lr=0.5"])
    assert changed.exit_code == 2 and "holds a finished run of another config" in changed.output


def test_refuses_to_overwrite_a_run_without_resume(cyclic_dir, tmp_path):
    config = _config(cyclic_dir, epochs=1)
    train_run(config, tmp_path / "run", stop_after_epochs=1)
    with pytest.raises(ConfigError, match="--resume"):
        train_run(config, tmp_path / "run")


def test_corrupted_checkpoint_is_an_error_not_a_restart(cyclic_dir, tmp_path):
    config = _config(cyclic_dir, epochs=3)
    train_run(config, tmp_path / "run", stop_after_epochs=1)
    (tmp_path / "run" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupted"):
        train_run(config, tmp_path / "run", resume=True)


def test_changed_data_or_config_is_reported_on_resume(cyclic_dir, tmp_path):
    config = _config(cyclic_dir, epochs=3)
    train_run(config, tmp_path / "run", stop_after_epochs=1)
    with pytest.raises(CheckpointError, match=r"config differs from the checkpoint's \(train.lr: 0.01 -> 0.5\);"):
        train_run(_config(cyclic_dir, epochs=3, lr=0.5), tmp_path / "run", resume=True)  # named alone, nothing else
    write_cyclic(cyclic_dir, n_users=100)  # the dataset changes under the run
    with pytest.raises(CheckpointError, match="data changed"):
        train_run(config, tmp_path / "run", resume=True)


def test_a_run_saved_before_an_option_existed_resumes_at_its_default(cyclic_dir, tmp_path):
    config = _config(cyclic_dir, epochs=3)
    train_run(config, tmp_path / "run", stop_after_epochs=1)
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    del payload["identity"]["config"]["train"]["history_window"]  # as written before the option was added
    torch.save(payload, tmp_path / "run" / "last.pt")
    assert train_run(config, tmp_path / "run", resume=True)["status"] == "done"
    train_run(config, tmp_path / "other", stop_after_epochs=1)
    payload = torch.load(tmp_path / "other" / "last.pt", weights_only=True)
    del payload["identity"]["config"]["train"]["history_window"]
    torch.save(payload, tmp_path / "other" / "last.pt")
    with pytest.raises(CheckpointError, match=r"history_window: 'latest' \(saved before the option existed\) -> 'random'"):
        train_run(_config(cyclic_dir, epochs=3, history_window="random"), tmp_path / "other", resume=True)


def test_a_run_saved_before_the_chunked_loss_resumes_only_with_the_dense_one(cyclic_dir, tmp_path):
    # Its trajectory was computed with the dense loss: a chunked continuation would differ in float
    # rounding from the uninterrupted run, so it is refused with the value to set; once finished, it is reused.
    config = _config(cyclic_dir, epochs=3, loss="ce")
    train_run(config, tmp_path / "run", stop_after_epochs=1)
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    del payload["identity"]["config"]["train"]["ce_implementation"]
    torch.save(payload, tmp_path / "run" / "last.pt")
    with pytest.raises(CheckpointError, match=r"ce_implementation: 'dense' \(saved before the option existed\) -> 'chunked'"):
        train_run(config, tmp_path / "run", resume=True)
    dense = _config(cyclic_dir, epochs=3, loss="ce", ce_implementation="dense")
    assert train_run(dense, tmp_path / "run", resume=True)["status"] == "done"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["train"]["ce_implementation"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    assert train_or_reuse(config, tmp_path / "run")["status"] == "done"


def test_the_loss_implementation_is_no_part_of_a_run_that_does_not_use_ce(cyclic_dir, tmp_path):
    # Its checkpoint's identity leaves the option out, as every run's did before the option existed,
    # so such a run resumes whatever the option says.
    train_run(_config(cyclic_dir, epochs=3, loss="bce"), tmp_path / "run", stop_after_epochs=1)
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert "ce_implementation" not in payload["identity"]["config"]["train"]
    changed = _config(cyclic_dir, epochs=3, loss="bce", ce_implementation="dense")
    assert train_run(changed, tmp_path / "run", resume=True)["status"] == "done"


def test_chunked_and_dense_loss_train_alike(cyclic_dir, tmp_path):
    runs = {kind: train_run(_config(cyclic_dir, epochs=3, loss="ce", ce_implementation=kind), tmp_path / kind)
            for kind in ("chunked", "dense")}
    assert runs["chunked"]["test/full/ndcg@10"] == pytest.approx(runs["dense"]["test/full/ndcg@10"], abs=1e-3)


def test_defaults_of_an_embedding_with_required_settings_cover_its_optional_fields():
    from lucidrec.train.run import config_defaults

    defaults = config_defaults(build_config({"embedding": {"name": "frozen", "path": "table.npy"}}))["embedding"]
    assert defaults["residual_id"] is False and defaults["dropout"] == 0.0 and "path" not in defaults


def test_hidden_states_of_any_history(cyclic_dir, tmp_path):
    train_run(_config(cyclic_dir, epochs=1), tmp_path / "run")
    model, data, split, config = load_run(tmp_path / "run")
    states = hidden_states(model, [[1, 2, 3], [4]])
    assert states.shape == (2, 10, 16)
    # Histories longer than max_len keep their most recent items.
    long = hidden_states(model, [list(range(1, 25))])
    assert torch.allclose(long, hidden_states(model, [list(range(15, 25))]), atol=1e-6)


def test_config_file_flags_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nname = "gru4rec"\nhidden = 32\n[train]\nlr = 0.005\nepochs = 7\n')
    config = build_config({"data": {"dataset": "x"}}, path, ["train.lr=0.002", "model.layers=2"])
    assert config.model["name"] == "gru4rec" and config.model["hidden"] == 32 and config.model["layers"] == 2
    assert config.train.lr == 0.002 and config.train.epochs == 7 and config.data.dataset == "x"
    with pytest.raises(ConfigError, match=r"unknown key 'train.lrate' \(valid keys: .*\blr\b"):
        build_config({}, None, ["train.lrate=1"])
    with pytest.raises(Exception, match="valid backbones: bert4rec, caser, gru4rec, sasrec"):
        build_config({"model": {"name": "transformer"}})


def test_negative_count_defaults_to_the_loss_convention():
    # BCE defaults to SASRec's one negative per position, sampled softmax to a shared pool; both recorded.
    assert build_config({}, None, ["train.loss=bce"]).train.n_negatives == 1
    assert build_config({}, None, ["train.loss=sampled_softmax"]).train.n_negatives == 256
    assert build_config({}, None, ["train.loss=bce", "train.n_negatives=4"]).train.n_negatives == 4


def test_cli_train_and_evaluate_run(cyclic_dir, tmp_path):
    out = tmp_path / "cli"
    result = runner.invoke(app, ["train", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--model", "gru4rec",
                                 "--set", "train.epochs=2", "--set", "model.hidden=16", "--set", "train.progress=false",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "metrics.json").read_text())
    result = runner.invoke(app, ["evaluate", "--run", str(out), "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["test/full/ndcg@10"] == saved["test/full/ndcg@10"]
    # In place, sampled-100 adds to full ranking and the training context (best epoch, timings) survives.
    result = runner.invoke(app, ["evaluate", "--run", str(out), "--protocol", "sampled", "--protocol", "full_unmasked"])
    assert result.exit_code == 0, result.output
    in_place = json.loads((out / "metrics.json").read_text())
    assert in_place["test/full/ndcg@10"] == saved["test/full/ndcg@10"] and "test/sampled100/ndcg@10" in in_place
    unmasked = in_place["test/full_unmasked/ndcg@10"]
    assert "history items left in (extra): " in result.output and f"ndcg@10={unmasked:.4f}" in result.output
    assert "sampled-100 (extra): " in result.output
    assert in_place["best_epoch"] == saved["best_epoch"] and in_place["reevaluated"] is True
    result = runner.invoke(app, ["train", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--model", "nope",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "valid backbones" in result.output


def test_evaluate_run_keeps_the_runs_own_protocols(cyclic_dir, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--model", "gru4rec",
                                 "--set", "train.epochs=1", "--set", "model.hidden=16", "--set", "train.progress=false",
                                 "--set", 'eval.protocols=["sampled"]', "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--run", str(out), "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    saved, again = (json.loads((d / "metrics.json").read_text()) for d in (out, tmp_path / "again"))
    assert again["test/sampled100/ndcg@10"] == saved["test/sampled100/ndcg@10"]
    assert "test/full/ndcg@10" in again  # full ranking is always added: summaries and compare read it


def test_distributed_training_with_two_gloo_processes(cyclic_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "lucidrec", "train", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--model", "sasrec",
               "--set", "train.epochs=6", "--set", "model.hidden=16", "--set", "model.max_len=10",
               "--set", "train.lr=0.01", "--set", "train.loss=ce", "--set", "train.progress=false", "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test/full/recall@10"] > 0.5  # trained: the cycle is learnt
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 6 and log[-1]["loss"] < log[0]["loss"]


def test_early_stopping_reads_the_chosen_validation_protocol(cyclic_dir, tmp_path):
    from lucidrec.eval.evaluator import EvalConfig, evaluate
    from lucidrec.train.trainer import Trainer, TrainConfig, scorer_for

    train_run(_config(cyclic_dir, epochs=1), tmp_path / "run")
    model, _, split, _ = load_run(tmp_path / "run")
    by_protocol = evaluate(scorer_for(model), split, "valid", EvalConfig(protocols=("full", "full_unmasked"))).metrics
    for protocol in ("full", "full_unmasked"):
        chosen = Trainer(TrainConfig(select_on=protocol)).validate(model, split)
        assert chosen == by_protocol[f"valid/{protocol}/ndcg@10"]
    assert by_protocol["valid/full_unmasked/ndcg@10"] != by_protocol["valid/full/ndcg@10"]


def test_bfloat16_training_runs_the_backbone_in_bfloat16_and_learns_like_float32(cyclic_dir, tmp_path):
    from lucidrec.data.pipeline import load_split
    from lucidrec.train.batches import training_batch
    from lucidrec.train.trainer import next_item_step_loss

    config = _config(cyclic_dir, epochs=6, loss="ce", precision="bfloat16")
    data, split = load_split(config.data)
    model = build_model(config, data, split)
    seen = []
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    users = np.arange(4)
    inputs, targets = training_batch(model, split.train, users, "latest", np.random.default_rng(0))
    loss, states, _ = next_item_step_loss(model, model, inputs, targets, users, config.train, torch.Generator())
    assert seen == [torch.bfloat16] and states.dtype == torch.float32 and loss.dtype == torch.float32
    runs = {p: train_run(_config(cyclic_dir, epochs=6, loss="ce", precision=p), tmp_path / p) for p in ("float32", "bfloat16")}
    assert runs["bfloat16"]["test/full/ndcg@10"] == pytest.approx(runs["float32"]["test/full/ndcg@10"], abs=0.05)
    losses = {p: [json.loads(line)["loss"] for line in (tmp_path / p / "log.jsonl").read_text().splitlines()] for p in runs}
    assert losses["bfloat16"] != losses["float32"] and losses["bfloat16"] == pytest.approx(losses["float32"], rel=1e-2)
    # The precision changes the trajectory: a finished float32 run is not reused for bfloat16.
    with pytest.raises(ConfigError, match="precision"):
        train_or_reuse(_config(cyclic_dir, epochs=6, loss="ce", precision="bfloat16"), tmp_path / "float32")


@pytest.mark.parametrize("model", ["gru4rec", "bert4rec", "caser"])
def test_every_backbone_trains_in_bfloat16(cyclic_dir, tmp_path, model):
    metrics = train_run(_config(cyclic_dir, model, epochs=3, loss="ce", precision="bfloat16"), tmp_path / model)
    assert np.isfinite([json.loads(line)["loss"] for line in (tmp_path / model / "log.jsonl").read_text().splitlines()]).all()
    assert metrics["test/full/ndcg@10"] > 0
