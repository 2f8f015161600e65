"""Special-token rows (ids past the catalog, e.g. BERT4Rec's mask) replace the table's rows there only."""

import torch

from lucidrec.embeddings.base import with_special_rows


def test_ids_past_the_catalog_take_their_special_row_and_the_others_keep_theirs():
    n_items = 3
    rows = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)  # (batch, positions, dim)
    special = torch.tensor([[100.0, 101.0], [200.0, 201.0]])  # ids 4 and 5
    item_ids = torch.tensor([[0, 4, 2], [5, 3, 4]])
    out = with_special_rows(item_ids, rows, special, n_items)
    expected = rows.clone()
    expected[0, 1] = special[0]
    expected[1, 0] = special[1]
    expected[1, 2] = special[0]
    assert torch.equal(out, expected)


def test_without_special_rows_or_special_ids_the_rows_are_returned_as_they_are():
    rows = torch.ones(2, 2)
    assert with_special_rows(torch.tensor([1, 2]), rows, None, 3) is rows
    assert with_special_rows(torch.tensor([1, 2]), rows, torch.zeros(1, 2), 3) is rows
