"""The presets ``lucidrec run`` trains with (``BACKBONE-DATASET``) parse, validate and say where they came from."""

from __future__ import annotations

import pytest

from lucidrec.data.download import OFFICIAL_DATASETS
from lucidrec.models import BACKBONES
from lucidrec.train.presets import dataset_preset, load_preset, preset_names, resources
from lucidrec.train.run import RunConfig, build_config

DATASET_PRESETS = sorted((backbone, dataset) for backbone in BACKBONES.names() for dataset in OFFICIAL_DATASETS
                         if dataset_preset(backbone, dataset))


def test_the_default_dataset_has_a_sasrec_preset_and_others_have_none():
    assert ("sasrec", "ml-100k") in DATASET_PRESETS
    assert dataset_preset("sasrec", "ml-100k") == "sasrec-ml-100k"
    assert dataset_preset("sasrec", "no-such-dataset") is None and dataset_preset("gru4rec", "ml-100k") is None


@pytest.mark.parametrize("backbone, dataset", DATASET_PRESETS)
def test_every_dataset_preset_validates_and_records_its_provenance(backbone, dataset):
    name = dataset_preset(backbone, dataset)
    values = load_preset(name)
    # Only what is tuned per dataset: no data or eval section could contradict the dataset it is named for.
    assert set(values) <= {"model", "train"} and values["model"].get("name", backbone) == backbone
    header = (resources.files("lucidrec.train.presets") / f"{name}.toml").read_text().split("\n[")[0].lower()
    assert "validation ndcg@10" in header and "test split" in header
    config = build_config({"data": {"dataset": dataset}, "model": {"name": backbone}}, None, [], preset=name)
    assert isinstance(config, RunConfig)
    for section, entries in values.items():
        kept = getattr(config, section)
        kept = kept if isinstance(kept, dict) else kept.model_dump()
        assert {key: kept[key] for key in entries} == entries  # every tuned value reaches the run config


def test_dataset_presets_are_named_presets_too():
    assert {dataset_preset(b, d) for b, d in DATASET_PRESETS} <= set(preset_names())
