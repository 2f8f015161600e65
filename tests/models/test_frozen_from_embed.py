import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.embeddings.frozen_table import load_item_matrix
from lucidrec.lm.item_vectors import ItemMatrix, ItemMatrixInfo, save_item_matrix
from lucidrec.train.run import build_config, train_run
from tests.synthetic import write_cyclic


def test_matrix_with_sidecar_is_realigned_to_the_vocabulary(tmp_path):
    vectors = np.array([[0, 0], [1, 1], [2, 2]], dtype=np.float32)
    info = ItemMatrixInfo(encoder="e", text_form="title", item_ids=["<pad>", "b", "a"], dim=2)
    save_item_matrix(ItemMatrix(vectors, info), tmp_path / "m")
    aligned = load_item_matrix(tmp_path / "m.npy", np.array(["<pad>", "a", "b", "c"], dtype=object))
    assert aligned.tolist() == [[0, 0], [2, 2], [1, 1], [0, 0]]  # c is unknown to the file: zero row


def test_embed_then_train_with_a_frozen_text_table(tmp_path):
    data_dir = write_cyclic(tmp_path / "data").parent
    matrix = tmp_path / "items"
    result = CliRunner().invoke(app, ["embed", "--dataset", "cyclic", "--data-dir", str(data_dir), "--out", str(matrix),
                                      "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    config = build_config({"data": {"dataset": "cyclic", "data_dir": str(data_dir)},
                           "model": {"name": "sasrec", "hidden": 16, "max_len": 10},
                           "embedding": {"name": "frozen", "path": str(matrix) + ".npy"},
                           "train": {"epochs": 2, "progress": False}})
    metrics = train_run(config, tmp_path / "run")
    assert metrics["status"] == "done" and 0 <= metrics["test/full/ndcg@10"] <= 1


def test_table_scaling_centres_and_standardises_the_known_rows_only():
    import torch

    from lucidrec.embeddings.frozen_table import FrozenTableEmbedding, scale_table

    rows = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [3.0, 2.0, 2.0], [0.0, 0.0, 0.0], [2.0, 5.0, 1.0]])
    assert torch.equal(scale_table(rows, "raw"), rows)
    centered = scale_table(rows, "centered")
    # the mean of the three known rows is (2, 3, 1); padding and the unknown row 3 stay zero
    assert centered.tolist() == [[0, 0, 0], [-1, -1, -1], [1, -1, 1], [0, 0, 0], [0, 2, 0]]
    standardized = scale_table(rows, "standardized")
    scale = (10 / 9) ** 0.5  # mean square of the nine centred entries: (3 + 3 + 4) / 9
    assert torch.allclose(standardized, centered / scale)
    assert standardized[[1, 2, 4]].pow(2).mean().item() == pytest.approx(1.0)
    assert torch.equal(standardized[[0, 3]], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="valid: raw, centered, standardized"):
        scale_table(rows, "whitened")
    items = FrozenTableEmbedding(rows.numpy(), dim=2, extra_tokens=1, scaling="standardized")
    assert torch.allclose(items.frozen[:5], standardized) and torch.equal(items.frozen[5], torch.zeros(3))
