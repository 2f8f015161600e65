import gzip
import json

import pandas as pd
import pytest

from lucidrec.data import load_dataset
from lucidrec.data.loaders import amazon, movielens
from lucidrec.data.loaders.tabular import ColumnMapping, load_table
from lucidrec.errors import DataFormatError, UnknownNameError


def test_ml100k_official_files_match_canonical_copy(data_dir):
    raw = load_dataset(str(data_dir / "ml-100k" / "raw"))
    canonical = load_dataset("ml-100k", data_dir)
    key = ["user_id", "item_id", "timestamp", "rating"]
    left = raw.interactions[key].sort_values(key).reset_index(drop=True)
    right = canonical.interactions[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left.astype(str), right.astype(str))
    assert raw.items.title("1") == "Toy Story (1995)"
    # This copy of u.item lacks item 267: it is rated, but has no text.
    assert "267" in set(raw.interactions["item_id"])
    assert not raw.items.has_text(["267"])[0]
    assert raw.items.record("267") == {"title": "", "release": "", "genres": ""}


def test_ml1m_official_format_parses_the_published_prefix(data_dir, tmp_path):
    folder = tmp_path / "ml1m"
    folder.mkdir()
    with gzip.open(data_dir / "ml-1m" / "raw" / "ratings_users1-2999.dat.gz", "rb") as src:
        (folder / "ratings.dat").write_bytes(src.read())
    (folder / "movies.dat").write_bytes((data_dir / "ml-1m" / "raw" / "movies.dat").read_bytes())
    dataset = load_dataset(str(folder))
    assert len(dataset.interactions) == 487_650
    assert dataset.interactions["user_id"].nunique() == 2999
    assert dataset.items.title("1") == "Toy Story (1995)"
    assert dataset.items.record("1")["genres"] == "Animation, Children's, Comedy"
    canonical = load_dataset("ml-1m", data_dir).interactions
    known = canonical[canonical["timestamp"].notna()]
    assert set(zip(known.user_id, known.item_id)) == set(zip(dataset.interactions.user_id, dataset.interactions.item_id))


def test_damaged_ml_latest_small_names_file_line_and_field(data_dir):
    with pytest.raises(DataFormatError) as info:
        load_dataset("ml-latest-small", data_dir)
    error = info.value
    assert error.line == 522 and error.field == "timestamp"
    assert error.path.endswith("ratings.csv")
    assert "line 522" in str(error)


def test_skipping_bad_lines_counts_them(data_dir):
    dataset = load_dataset("ml-latest-small", data_dir, on_bad_lines="skip")
    assert len(dataset.interactions) == 100_836 - 1
    assert any("skipped 1 malformed line(s): line 522" in note for note in dataset.notes)


def test_every_shared_dataset_loads_by_name(data_dir):
    for name in ("ml-100k", "ml-1m", "amazon-beauty", "amazon-scientific"):
        dataset = load_dataset(name, data_dir)
        assert len(dataset.interactions) > 0 and len(dataset.items) > 0


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(UnknownNameError) as info:
        load_dataset("no-such-set", tmp_path)
    assert "ml-1m" in str(info.value) and "amazon-beauty" in str(info.value)


def test_known_official_set_missing_locally_says_how_to_get_it(tmp_path):
    with pytest.raises(DataFormatError, match="lucidrec data download ml-1m"):
        load_dataset("ml-1m", tmp_path)


def test_field_count_error_names_the_line(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n1\t3\t4\n")
    with pytest.raises(DataFormatError) as info:
        movielens.load_100k(tmp_path)
    assert info.value.line == 2 and "expected 4 fields" in str(info.value)


def _write_gz_lines(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def test_amazon_2014_reviews_and_python_literal_metadata(tmp_path):
    reviews = [
        json.dumps({"reviewerID": "U1", "asin": "A", "overall": 5.0, "unixReviewTime": 100}),
        json.dumps({"reviewerID": "U1", "asin": "B", "overall": 3.0, "unixReviewTime": 50}),
        json.dumps({"reviewerID": "U2", "asin": "A", "overall": 4.0, "unixReviewTime": 70}),
    ]
    _write_gz_lines(tmp_path / "reviews_Beauty_5.json.gz", reviews)
    meta = [
        repr({"asin": "A", "title": "Rose <b>Cream</b>", "brand": "Acme", "price": 9.5,
              "categories": [["Beauty", "Skin Care"], ["Beauty", "Face"]], "description": "Soft."}),
        repr({"asin": "B", "categories": [["Beauty"]]}),
    ]
    _write_gz_lines(tmp_path / "meta_Beauty.json.gz", meta)
    dataset = load_dataset(str(tmp_path))
    frame = dataset.interactions
    assert list(frame[frame.user_id == "U1"].item_id) == ["B", "A"]  # ordered by time
    assert dataset.items.record("A") == {
        "title": "Rose Cream", "brand": "Acme", "categories": "Beauty, Skin Care, Face", "description": "Soft.", "price": "9.5",
    }
    assert dataset.items.title("B") == ""


def test_amazon_2018_json_lines_with_list_fields_and_bad_line(tmp_path):
    reviews = [
        json.dumps({"reviewerID": "U1", "asin": "A", "overall": 5.0, "unixReviewTime": 1}),
        "{broken",
    ]
    (tmp_path / "Industrial_and_Scientific_5.json").write_text("\n".join(reviews) + "\n")
    meta = [json.dumps({"asin": "A", "title": "Glue", "category": ["Tools", "Adhesives"],
                        "description": ["Strong.", "Dries fast."], "price": "$3.00"})]
    (tmp_path / "meta_Industrial_and_Scientific.json").write_text("\n".join(meta) + "\n")
    with pytest.raises(DataFormatError) as info:
        load_dataset(str(tmp_path))
    assert info.value.line == 2
    dataset = load_dataset(str(tmp_path), on_bad_lines="skip")
    assert len(dataset.interactions) == 1
    assert dataset.items.record("A")["description"] == "Strong. Dries fast."
    assert dataset.items.record("A")["categories"] == "Tools, Adhesives"
    assert any("skipped 1" in note for note in dataset.notes)


def test_amazon_meta_without_asin_is_reported(tmp_path):
    path = tmp_path / "meta_X.json"
    path.write_text(json.dumps({"title": "no id"}) + "\n")
    with pytest.raises(DataFormatError, match="asin"):
        amazon.load_meta(path)


def test_table_loader_with_column_mapping_and_dates(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("who,what,when\nu1,x,2024-01-02\nu1,y,2024-01-01\nu2,x,2024-01-03\n")
    items = tmp_path / "items.csv"
    items.write_text("sku,title\nx,Thing X\ny,Thing Y\n")
    dataset = load_table(path, ColumnMapping(user_id="who", item_id="what", timestamp="when", rating=None),
                         items=items, item_id_column="sku")
    frame = dataset.interactions
    assert list(frame[frame.user_id == "u1"].item_id) == ["y", "x"]
    assert frame["timestamp"].iloc[0] == 1704067200
    assert dataset.items.title("x") == "Thing X"


def test_table_loader_missing_column_is_named(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item\n1,2\n")
    with pytest.raises(DataFormatError) as info:
        load_table(path, {"user_id": "user", "item_id": "product"})
    assert info.value.field == "product"


def test_missing_user_id_value_is_reported(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id\n1,2\n,3\n")
    with pytest.raises(DataFormatError, match="user_id"):
        load_table(path)


def test_quoted_csv_with_a_short_row_names_the_line(tmp_path):
    from lucidrec.data.loaders._delimited import read_delimited

    path = tmp_path / "movies.csv"
    path.write_text('movieId,title,genres\n1,"Heat, (1995)",Action\n2,Casino\n')
    with pytest.raises(DataFormatError) as info:
        read_delimited(path, ["movieId", "title", "genres"], ",", {"movieId": "int"}, header=True, quoting=True)
    assert info.value.line == 3 and "expected 3 fields, found 2" in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path):
    lines = [json.dumps({"reviewerID": f"U{i}", "asin": "A", "overall": 5.0, "unixReviewTime": i}) for i in range(2000)]
    _write_gz_lines(tmp_path / "reviews_X_5.json.gz", lines)
    data = (tmp_path / "reviews_X_5.json.gz").read_bytes()
    (tmp_path / "reviews_X_5.json.gz").write_bytes(data[: len(data) // 2])
    _write_gz_lines(tmp_path / "meta_X.json.gz", [json.dumps({"asin": "A", "title": "Glue"})])
    with pytest.raises(DataFormatError, match="reviews_X_5.json.gz.*unreadable after line"):
        load_dataset(str(tmp_path))


def _canonical(folder, seq_pos):
    folder.mkdir()
    pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "seq_pos": seq_pos}).to_parquet(
        folder / "interactions.parquet", index=False)
    return folder


@pytest.mark.parametrize("seq_pos, message", [([0, 0, 0], "user 'u1' has position 0 twice"),
                                               ([0, 1.5, 0], "not integers, first at row 1")])
def test_bad_sequence_positions_are_named(tmp_path, seq_pos, message):
    with pytest.raises(DataFormatError, match=message) as info:
        load_dataset(str(_canonical(tmp_path / "d", seq_pos)))
    assert info.value.field == "seq_pos"


def test_unreadable_items_parquet_names_the_file(tmp_path):
    folder = _canonical(tmp_path / "d", [0, 1, 0])
    (folder / "items.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataFormatError, match="items.parquet.*cannot read parquet"):
        load_dataset(str(folder))


def test_a_canonical_folder_without_items_is_items_without_text_and_says_so(tmp_path):
    from typer.testing import CliRunner

    from lucidrec.cli import app

    folder = tmp_path / "plain"
    folder.mkdir()
    pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"]}).to_parquet(
        folder / "interactions.parquet", index=False)
    result = CliRunner().invoke(app, ["data", "info", "plain", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["items_with_text"] == 0 and stats["catalog_items"] == 0
    notes = " | ".join(stats["notes"])
    assert "no items.parquet" in notes and "no text" in notes
    # Neither seq_pos nor timestamps: the order is the file's row order, and that is said.
    assert "no seq_pos" in notes and "file's row order" in notes


def test_histories_ordered_by_timestamp_say_how_ties_were_broken(tmp_path):
    folder = tmp_path / "timed"
    folder.mkdir()
    pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2"], "item_id": ["a", "b", "c", "a"],
                  "timestamp": [5, 5, 7, 1]}).to_parquet(folder / "interactions.parquet", index=False)
    dataset = load_dataset(str(folder))
    assert dataset.interactions["item_id"].tolist() == ["a", "b", "c", "a"]
    notes = " | ".join(dataset.notes)
    assert "no seq_pos" in notes and "timestamp" in notes and "1 tie" in notes


def test_given_sequence_positions_need_no_note(tmp_path):
    dataset = load_dataset(str(_canonical(tmp_path / "d", [0, 1, 0])))
    assert not any("seq_pos" in note for note in dataset.notes)
