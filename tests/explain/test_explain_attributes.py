import pytest

from lucidrec.config import ConfigError
from lucidrec.errors import DataFormatError, UnknownNameError
from lucidrec.embeddings.ger.attributes import (available_attribute_sets, domain_for_dataset, load_attributes,
                                         resolve_attributes)

GOOD = '''domain = "toys"
noun = "toy"
[[attributes]]
name = "noise"
description = "how loud it is"
low = "a silent toy"
high = "a very loud toy"
[[attributes]]
name = "size"
description = "how big it is"
low = "a tiny toy"
high = "a huge toy"
'''


def test_shipped_sets_have_eight_complete_attributes():
    assert {"movies", "beauty"} <= set(available_attribute_sets())
    for name in available_attribute_sets():
        attributes = load_attributes(name)
        assert len(attributes) == 8, name
        assert all(a.description and a.low and a.high and a.low != a.high for a in attributes.attributes)
        assert len(set(attributes.names)) == 8
    movies = load_attributes("movies")
    assert {"story complexity", "family friendliness", "humour"} <= set(movies.names)


def test_domain_from_dataset_name_with_override(tmp_path):
    assert domain_for_dataset("ml-1m") == "movies" and domain_for_dataset("ml-100k") == "movies"
    assert domain_for_dataset("amazon-beauty") == "beauty"
    assert domain_for_dataset("my-shop") is None
    assert resolve_attributes(None, "ml-1m").domain == "movies"
    path = tmp_path / "toys.toml"
    path.write_text(GOOD)
    assert resolve_attributes(str(path), "ml-1m").names == ["noise", "size"]  # the config wins
    with pytest.raises(ConfigError, match="no attribute set is known for dataset 'my-shop'"):
        resolve_attributes(None, "my-shop")
    with pytest.raises(UnknownNameError, match="valid attribute sets: beauty, movies"):
        load_attributes("cooking")


@pytest.mark.parametrize("edit, field", [
    (lambda t: t.replace('low = "a silent toy"\n', ""), "attributes[0].low"),
    (lambda t: t.replace('high = "a huge toy"', 'high = ""'), "attributes[1].high"),
    (lambda t: t.replace('name = "size"', 'name = "noise"'), "attributes[1].name"),
    (lambda t: t.replace('name = "size"', 'name = "size: big"'), "attributes[1].name"),
    (lambda t: t.replace('description = "how big it is"', 'description = "x"\ncolour = "red"'), "attributes[1].colour"),
    (lambda t: t.replace('noun = "toy"\n', ""), "noun"),
    (lambda t: t.split("[[attributes]]")[0], "attributes"),
])
def test_bad_files_name_the_field(tmp_path, edit, field):
    path = tmp_path / "bad.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(DataFormatError) as error:
        load_attributes(path)
    assert error.value.field == field and str(path) in str(error.value)


def test_invalid_toml_and_missing_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("domain = ")
    with pytest.raises(DataFormatError, match="not valid TOML"):
        load_attributes(path)
    with pytest.raises(DataFormatError, match="not found"):
        load_attributes(tmp_path / "absent.toml")


def test_fingerprint_changes_with_wording(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(GOOD)
    b.write_text(GOOD.replace("a very loud toy", "an ear-splitting toy"))
    assert load_attributes(a).fingerprint() != load_attributes(b).fingerprint()
    c = tmp_path / "sub"
    c.mkdir()
    (c / "a.toml").write_text(GOOD)
    assert load_attributes(c / "a.toml").fingerprint() == load_attributes(a).fingerprint()  # location-free
