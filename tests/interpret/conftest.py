"""Fixtures for the RecInterpreter tests: a small SASRec run on the cyclic data, and tiny LMs."""

from __future__ import annotations

import pytest

from lucidrec.train.run import build_config, train_run
from tests.synthetic import write_cyclic
from tests.tiny_lm import tiny_llama, tiny_soft_lm, tiny_tokenizer


def cyclic_run(root, seed: int = 42, n_users: int = 40):
    data = write_cyclic(root / "data", n_users=n_users).parent
    config = build_config({"data": {"dataset": "cyclic", "data_dir": str(data)},
                           "model": {"name": "sasrec", "hidden": 16, "max_len": 10},
                           "train": {"epochs": 2, "batch_size": 32, "progress": False, "seed": seed}})
    train_run(config, root / f"run{seed}")
    return root / f"run{seed}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return cyclic_run(tmp_path_factory.mktemp("interpret"))


@pytest.fixture
def lm():
    return tiny_soft_lm()


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory):
    """The tiny LM saved like any Hugging Face model, for the CLI (``--set lm.model=FOLDER``)."""
    folder = tmp_path_factory.mktemp("tiny-lm")
    tokenizer = tiny_tokenizer()
    tiny_llama(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def random_vectors(texts):
    """Stand-in for the sentence encoder: a fixed random vector per text."""
    import zlib

    import numpy as np

    return np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])
