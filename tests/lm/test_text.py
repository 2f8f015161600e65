import numpy as np
import pandas as pd
import pytest

from lucidrec.data.dataset import ItemCatalog
from lucidrec.errors import UnknownNameError
from lucidrec.lm.text import (
    attribute_pairs,
    attribute_views,
    build_item_texts,
    clean_value,
    description_text,
    drop_attributes,
)


@pytest.fixture
def catalog():
    frame = pd.DataFrame({
        "item_id": ["a", "b", "c", "d"],
        "title": ["Rose Lip Balm", "Night Cream", None, "  "],
        "brand": ["Acme", "Lux;Co", None, None],
        "categories": [["Beauty", "Lips"], ["Beauty", "Skin"], [], None],
        "description": ["Soft.\nSmooth; shiny", "x" * 250, None, ""],
    })
    return ItemCatalog(frame)


def test_clean_value_replaces_separators_and_truncates():
    assert clean_value("a;b\nc\r\nd") == "a,b c d"
    assert len(clean_value("y" * 300)) == 100
    assert clean_value("z" * 300, None) == "z" * 300


def test_attribute_pairs_key_is_value(catalog):
    pairs = attribute_pairs(catalog.record("a"))
    assert pairs == ["title is Rose Lip Balm", "brand is Acme", "categories is Beauty, Lips",
                     "description is Soft. Smooth, shiny"]
    long = attribute_pairs(catalog.record("b"))
    assert long[-1] == "description is " + "x" * 100
    assert attribute_pairs(catalog.record("a"), exclude=["description", "categories"]) == ["title is Rose Lip Balm", "brand is Acme"]


def test_attribute_text_with_domain_line(catalog):
    texts = build_item_texts(catalog, ["a"], "attributes", domain="beauty item")
    first, second = texts.texts[0].split("\n")
    assert first == "The beauty item has the following attributes:"
    assert second.split("; ")[1] == "brand is Acme"
    assert ";" not in second.split("; ")[1]  # ';' inside 'Lux;Co' style values never leaks in


def test_items_without_text_fall_back_and_are_counted(catalog):
    for form in ("title", "attributes", "description"):
        texts = build_item_texts(catalog, ["a", "c", "d", "unknown"], form)
        assert texts.texts[1:] == ["item c", "item d", "item unknown"]
        assert texts.fallback_ids == ["c", "d", "unknown"] and texts.n_fallback == 3
        assert texts.texts[0] and not texts.texts[0].startswith("item ")


def test_title_form_and_unknown_form(catalog):
    assert build_item_texts(catalog, ["a", "b"], "title").texts == ["Rose Lip Balm", "Night Cream"]
    with pytest.raises(UnknownNameError, match="valid text forms: attributes, description, title"):
        build_item_texts(catalog, ["a"], "summary")


def test_description_text_for_ger(catalog):
    text = description_text(catalog, "a")
    assert text.startswith("Rose Lip Balm. Brand: Acme. Categories: Beauty, Lips.")
    short = description_text(catalog, "b", max_chars=60)
    assert len(short) == 60 and short.endswith("...")


def test_drop_attributes_ratio_and_minimum():
    pairs = [f"k{i} is v{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    kept = drop_attributes(pairs, 0.4, rng)
    assert len(kept) == 6 and set(kept) <= set(pairs) and len(set(kept)) == 6
    assert len(drop_attributes(pairs, 0.0, rng)) == 10
    assert len(drop_attributes(pairs, 1.0, rng)) == 1  # never an empty view
    assert len(drop_attributes(["only"], 0.9, rng)) == 1
    with pytest.raises(ValueError):
        drop_attributes(pairs, 1.5, rng)


def test_attribute_views_are_seeded_and_shuffled(catalog):
    many = ItemCatalog(pd.DataFrame({"item_id": ["x"], **{f"f{i}": [f"v{i}"] for i in range(12)}}))
    a1, b1 = attribute_views(many, ["x"] * 5, ratio=0.25, seed=7)
    a2, b2 = attribute_views(many, ["x"] * 5, ratio=0.25, seed=7)
    a3, _ = attribute_views(many, ["x"] * 5, ratio=0.25, seed=8)
    assert (a1, b1) == (a2, b2)
    assert a1 != a3
    for view in a1 + b1:
        parts = view.split("; ")
        assert len(parts) == 12 - 3
    orders = {tuple(v.split("; ")) for v in a1 + b1}
    assert len(orders) > 1  # shuffled: not the same order every time
    fa, fb = attribute_views(catalog, ["c"], ratio=0.5, seed=0)
    assert fa == fb == ["item c"]
