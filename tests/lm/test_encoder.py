"""TextEncoder and item matrices on the real all-MiniLM-L6-v2."""


import numpy as np
import pandas as pd
import pytest

from lucidrec.data.dataset import ItemCatalog
from lucidrec.errors import DataFormatError
from lucidrec.lm.encoder import TextEncoder
from lucidrec.lm.errors import EmptyTextError
from lucidrec.lm.item_vectors import encode_catalog, load_item_matrix, save_item_matrix

pytestmark = pytest.mark.slow

TEXTS = ["Rose lip balm with shea butter", "Anti-aging night cream", "Mascara, waterproof, black",
         "Rose lip balm with shea butter", "Eau de parfum spray 50 ml"]


def make_encoder(minilm, model, tmp_path, **kwargs):
    return TextEncoder(st_model=model, identity=minilm[1], cache_dir=tmp_path, show_progress=False, batch_size=4, **kwargs)


def test_output_is_normalised_float32_and_matches_sentence_transformers(minilm, counting_encoder, tmp_path):
    encoder = make_encoder(minilm, counting_encoder, tmp_path)
    vectors = encoder.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    direct = minilm[0].encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, direct, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[3])
    assert counting_encoder.texts == 4  # the duplicate text was encoded once
    related = vectors[0] @ vectors[1]
    assert vectors[0] @ vectors[3] > related  # sanity: identical > different


def test_cached_rerun_makes_zero_encoder_calls(minilm, counting_encoder, tmp_path):
    make_encoder(minilm, counting_encoder, tmp_path).encode(TEXTS)
    calls = counting_encoder.calls
    again = make_encoder(minilm, counting_encoder, tmp_path)
    vectors = again.encode(TEXTS + ["Eau de parfum spray 50 ml"])
    assert vectors.shape[0] == len(TEXTS) + 1
    assert counting_encoder.calls == calls
    assert again.stats["hits"] == 4 and again.stats["misses"] == 0 and again.stats["model_calls"] == 0
    partly = make_encoder(minilm, counting_encoder, tmp_path)
    partly.encode(["Anti-aging night cream", "A brand new text"])
    assert partly.stats == {**partly.stats, "hits": 1, "misses": 1, "encoded_texts": 1}


def test_cache_is_keyed_by_model_identity(minilm, counting_encoder, tmp_path):
    make_encoder(minilm, counting_encoder, tmp_path).encode(TEXTS[:2])
    other = TextEncoder(st_model=counting_encoder, identity="another-model", cache_dir=tmp_path, show_progress=False)
    other.encode(TEXTS[:2])
    assert other.stats["misses"] == 2
    shorter = make_encoder(minilm, counting_encoder, tmp_path, max_seq_length=16)
    shorter.encode(TEXTS[:2])
    assert shorter.stats["misses"] == 2  # truncation changes vectors, so it changes the key


def test_default_encoder_loads_lazily(tmp_path, minilm):
    encoder = TextEncoder(cache_dir=tmp_path, show_progress=False)
    assert encoder.identity.startswith(minilm[1]) and encoder._model is None
    encoder._model = minilm[0]  # reuse the session's weights instead of loading a second copy
    encoder.encode(["warm"])
    cold_start = TextEncoder(cache_dir=tmp_path, show_progress=False)
    cold_start.encode(["warm"])
    assert cold_start._model is None  # all cached: the model was never loaded


def test_empty_texts(minilm, counting_encoder, tmp_path):
    encoder = make_encoder(minilm, counting_encoder, tmp_path)
    with pytest.raises(EmptyTextError, match="1 empty text.*index 1"):
        encoder.encode(["fine", "  ", "also fine"])
    zeros = make_encoder(minilm, counting_encoder, tmp_path, empty_text="zero").encode(["fine", ""])
    assert np.all(zeros[1] == 0) and abs(np.linalg.norm(zeros[0]) - 1) < 1e-5
    assert make_encoder(minilm, counting_encoder, tmp_path).encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.encode("a single string")


def test_encode_catalog_save_and_load(minilm, counting_encoder, tmp_path):
    catalog = ItemCatalog(pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["Lip balm", None, "Night cream"],
                                        "brand": ["Acme", None, "Lux"]}))
    encoder = make_encoder(minilm, counting_encoder, tmp_path)
    ids = ["<pad>", "i3", "i1", "i2"]
    matrix = encode_catalog(catalog, ids, encoder, "attributes", domain="beauty item", data_hash="abc")
    assert matrix.vectors.shape == (4, 384) and np.all(matrix.vectors[0] == 0)
    assert matrix.info.n_fallback == 1 and matrix.info.fallback_ids == ["i2"]
    expected = encoder.encode(["The beauty item has the following attributes:\ntitle is Night cream; brand is Lux"])
    np.testing.assert_allclose(matrix.vectors[1], expected[0], atol=1e-6)
    npy, sidecar = save_item_matrix(matrix, tmp_path / "out" / "items")
    loaded = load_item_matrix(npy, expect_item_ids=ids, expect_data_hash="abc")
    assert np.array_equal(loaded.vectors, matrix.vectors) and loaded.info.encoder == encoder.identity
    with pytest.raises(DataFormatError, match="row 1"):
        load_item_matrix(sidecar, expect_item_ids=["<pad>", "i1", "i3", "i2"])
    with pytest.raises(DataFormatError, match="data_hash"):
        load_item_matrix(npy, expect_data_hash="other")
    sidecar.write_text('{"encoder": "x",')
    with pytest.raises(DataFormatError, match=r"items.json.*not valid JSON"):
        load_item_matrix(npy)
    sidecar.write_text('{"encoder": "x"}')
    with pytest.raises(DataFormatError, match=r"not an item-matrix sidecar.*missing"):
        load_item_matrix(npy)
