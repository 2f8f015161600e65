"""Grid files: expansion, run references, and bad input that fails before any cell runs."""

from __future__ import annotations

import pytest

from lucidrec.config import ConfigError
from lucidrec.experiments.grid import CellKey, load_grid
from tests.experiments.helpers import write_grid
from tests.synthetic import write_cyclic


@pytest.fixture
def data(tmp_path):
    write_cyclic(tmp_path / "data")
    write_cyclic(tmp_path / "data", name="other", n_users=60)
    return str(tmp_path / "data")


def test_expansion_baselines_once_trained_cells_per_seed_and_variant(tmp_path, data):
    path = write_grid(tmp_path, """
datasets = ["cyclic", "other"]
models = ["pop", "sasrec", "gru4rec"]
seeds = [1, 2]
baseline = "sasrec/id"
[variants.default]
[variants.wide]
models = ["sasrec"]
set = { "model.hidden" = 32 }
""")
    grid = load_grid(path, data_dir=data)
    keys = [c.key for c in grid.cells]
    # per dataset: pop once (default) + pop/wide is excluded (models = sasrec) ; sasrec 2 variants x 2 seeds; gru4rec 2 seeds
    assert len(keys) == 2 * (1 + 4 + 2)
    assert CellKey("cyclic", "pop", None, "default", None) in keys
    wide = grid.cell(CellKey("cyclic", "sasrec", "id", "wide", 2))
    assert wide.values["model"]["hidden"] == 32 and wide.values["train"]["seed"] == 2
    assert grid.cell(CellKey("cyclic", "sasrec", "id", "default", 2)).values["model"]["hidden"] == 16
    assert wide.key.label == "sasrec/id/wide"
    assert str(grid.results_dir) == "results/tiny"


def test_a_variant_with_its_own_seeds(tmp_path, data):
    path = write_grid(tmp_path, """
datasets = ["cyclic"]
models = ["sasrec"]
seeds = [1, 2, 3]
[variants.default]
[variants.once]
seeds = [1]
set = { "model.hidden" = 32 }
""")
    keys = [c.key for c in load_grid(path, data_dir=data).cells]
    assert [k.seed for k in keys if k.variant == "default"] == [1, 2, 3]
    assert [k.seed for k in keys if k.variant == "once"] == [1]


def test_dataset_and_model_settings_and_run_references(tmp_path, data):
    path = write_grid(tmp_path, """
datasets = ["cyclic"]
models = ["sasrec"]
embeddings = ["id", "frozen"]
seeds = [1, 2]
[dataset_settings.cyclic]
"model.max_len" = 8
[variants.default]
embeddings = ["id"]
[variants.on_id]
embeddings = ["frozen"]
set = { "embedding.path" = "{run:embedding=id,variant=default,seed=1}" }
""")
    grid = load_grid(path, data_dir=data, runs=str(tmp_path / "runs"))
    cell = grid.cell(CellKey("cyclic", "sasrec", "frozen", "on_id", 2))
    base = CellKey("cyclic", "sasrec", "id", "default", 1)
    assert cell.needs == [base]
    assert cell.values["embedding"]["path"] == str(grid.cell(base).run_dir)
    assert cell.values["model"]["max_len"] == 8


@pytest.mark.parametrize("body, message", [
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\nepochs = 3\n', "unknown key 'epochs'"),
    ('datasets = ["nope"]\nmodels = ["sasrec"]\n', "unknown dataset 'nope'; valid: cyclic, other"),
    ('datasets = ["cyclic"]\nmodels = ["sasrek"]\n', "unknown model 'sasrek'; valid: bert4rec, caser, cooc, gru4rec, pop, sasrec"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\nembeddings = ["idd"]\n', "unknown embedding 'idd'"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\nbaseline = "sasrec/id/wide"\n', "unknown baseline row 'sasrec/id/wide'; valid: sasrec/id"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\n[variants.a]\nset = { "embedding.base.run" = "{run:variant=b}" }\n',
     "unknown run reference 'variant=b'"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\n[variants.a]\nset = { "model.hiden" = 3 }\n', "unknown key 'hiden'"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\n[variants.a]\nembeddings = ["ger"]\n', "unknown embedding (the grid's) 'ger'; valid: id"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\n[variants.a]\nset = { "x" = "{run:variant=b}" }\n'
     '[variants.b]\nset = { "y" = "{run:variant=a}" }\n', "cycle"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\nseeds = [1, 1]\n', "lists a seed twice"),
    ('datasets = ["cyclic"]\nmodels = ["sasrec"]\n[variants.a]\nseeds = [2, 2]\n', "variant 'a': 'seeds' lists a seed twice"),
])
def test_bad_grid_fails_naming_the_valid_choices(tmp_path, data, body, message):
    path = write_grid(tmp_path, body)
    with pytest.raises(ConfigError) as error:
        load_grid(path, data_dir=data)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_bad_config_key_names_the_cell_and_valid_keys(tmp_path, data):
    path = write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["sasrec"]\n', config="[config]\ntrain = { epoch = 2 }\n")
    with pytest.raises(ConfigError, match=r"cell cyclic sasrec/id seed 1: .*unknown key 'train.epoch' \(valid keys: .*epochs"):
        load_grid(path, data_dir=data)
