"""Title normalisation and matching, and catalog titles with missing entries."""

import pytest

from lucidrec.data.prepare import prepare
from lucidrec.interpret.titles import CatalogTitles, contains_title, normalise_title, token_f1


@pytest.mark.parametrize("raw, expected", [
    ("Usual Suspects, The (1995)", "the usual suspects"),
    ("Toy Story (1995)", "toy story"),
    ("  TOY   story!! ", "toy story"),
    ("Monty Python's Life of Brian (1979)", "monty python s life of brian"),
    ("Seven (Se7en) (1995)", "seven se7en"),
    ("Amélie (2001)", "amélie"),
    ("2001: A Space Odyssey (1968)", "2001 a space odyssey"),
])
def test_normalise_title(raw, expected):
    assert normalise_title(raw) == expected


def test_contains_title_matches_whole_words_after_normalisation():
    assert contains_title("I think it was The Usual Suspects.", "Usual Suspects, The (1995)")
    assert contains_title("toy story (1995)", "Toy Story (1995)")
    assert not contains_title("Heatwave", "Heat (1995)")
    assert not contains_title("The Usual", "Usual Suspects, The (1995)")
    assert not contains_title("", "Heat (1995)")


def test_token_f1():
    assert token_f1("Toy Story", "Toy Story (1995)") == 1.0
    assert token_f1("Toy Story 2", "Toy Story (1995)") == pytest.approx(0.8)
    assert token_f1("Heat", "Toy Story (1995)") == 0.0
    assert token_f1("", "Heat") == 0.0


def test_items_without_a_title_are_named_and_counted(tiny_dataset, caplog):
    data = prepare(tiny_dataset)
    with caplog.at_level("WARNING"):
        titles = CatalogTitles.from_data(data)
    index = {str(i): n for n, i in enumerate(data.item_ids)}
    assert titles[index["i3"]] == "item i3" and titles[index["i1"]] == "One"
    assert titles.missing == 1 and len(titles) == 5
    assert "1 of 5 items have no title" in caplog.text
    distinct, of_item = titles.distinct()
    assert len(distinct) == 5 and distinct[of_item[index["i4"]]] == "Four"
