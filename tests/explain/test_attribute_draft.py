"""Drafting attribute sets for datasets that ship none: encoder clusters, an LLM (mocked), the TOML file."""

import json

import numpy as np
import pandas as pd
import pytest

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.data.loaders.canonical import save
from lucidrec.methods.ger.attribute_draft import (DraftConfig, DraftError, draft_attributes, draft_for_run, spot_check,
                                              to_toml, write_attributes)
from lucidrec.embeddings.ger.attributes import Attribute, AttributeSet, load_attributes

TOPICS = {
    "nail": ["nail polish lacquer", "nail art manicure", "glossy nail enamel"],
    "shampoo": ["shampoo for dry hair", "hair conditioner shampoo", "scalp shampoo treatment"],
    "mascara": ["black mascara for eyes", "eye liner mascara", "waterproof mascara lashes"],
    "perfume": ["eau de parfum perfume", "perfume spray for women", "floral perfume scent"],
    "brush": ["makeup brush set", "foundation brush kit", "soft blush brush"],
    "cream": ["face cream moisturizer", "anti wrinkle cream serum", "night cream for skin"],
}
BRANDS = ["Acme", "Bolt", "Corvo", "Dune", "Ember", "Fjord", "Gala", "Halo", "Iris", "Jade"]


def topical_titles() -> list[tuple[str, str]]:
    """(topic, title): 6 topics x 10 titles that share the topic's words and differ in brand and size."""
    out = []
    for topic, phrases in TOPICS.items():
        for i, brand in enumerate(BRANDS):
            out.append((topic, f"{brand} {phrases[i % 3]} {10 + 5 * i} ml"))
    return out


def titles_only_dataset(name: str = "my-shop") -> Dataset:
    """Titles only; every user stays within one topic, so a recommender has something to learn."""
    titles = topical_titles()
    rng = np.random.default_rng(0)
    by_topic = {t: [i for i, (topic, _) in enumerate(titles) if topic == t] for t in TOPICS}
    rows = []
    for user in range(90):
        items = rng.permutation(by_topic[list(TOPICS)[user % len(TOPICS)]])[:8]
        rows += [(f"u{user}", f"i{item}", pos) for pos, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "seq_pos"])
    catalog = ItemCatalog(pd.DataFrame({"item_id": [f"i{i}" for i in range(len(titles))],
                                        "title": [title for _, title in titles]}))
    return Dataset(name, frame, catalog, source="<titles>")


class WordCountEncoder:
    """A stand-in sentence encoder: word counts over a fixed vocabulary (texts of a topic share words)."""

    def __init__(self):
        self.vocabulary = sorted({w for phrases in TOPICS.values() for p in phrases for w in p.split()})
        self.stats = {"encoded_texts": 0, "hits": 0}

    def encode(self, texts, show_progress=False):
        out = np.zeros((len(texts), len(self.vocabulary)), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                if word in self.vocabulary:
                    out[row, self.vocabulary.index(word)] += 1
        self.stats["encoded_texts"] += len(texts)
        return out + 1e-3


def test_encoder_draft_names_one_attribute_per_topic_and_round_trips(tmp_path):
    texts = [title for _, title in topical_titles()]
    draft = draft_attributes(texts, "my-shop", DraftConfig(method="encoder", n_attributes=6), encoder=WordCountEncoder())
    assert draft.method == "encoder-clusters" and len(draft.attributes) == 6 and not draft.notes
    # Each topic's words name exactly one attribute and fill its high anchor, not its low one.
    for topic in TOPICS:
        named = [a for a in draft.attributes.attributes if topic in a.high]
        assert len(named) == 1, (topic, draft.attributes.names)
        assert topic not in named[0].low
    path = tmp_path / "drafted.toml"
    loaded = write_attributes(draft.attributes, path, ["a header line"])
    assert loaded.names == draft.attributes.names and loaded.attributes == draft.attributes.attributes
    assert path.read_text().startswith("# a header line\ndomain = \"my-shop\"")


def test_encoder_draft_needs_enough_texts():
    with pytest.raises(DraftError, match="needs at least 24"):
        draft_attributes(["one item", "another"], "tiny", DraftConfig(method="encoder"), encoder=WordCountEncoder())


def test_toml_escapes_quotes_backslashes_and_unicode(tmp_path):
    tricky = AttributeSet("shop \"x\"", "crème", "2", tuple(
        Attribute(f"attr {i}", 'says "hi" \\ there', "low é", "high \t tab") for i in range(6)))
    loaded = write_attributes(tricky, tmp_path / "t.toml")
    assert loaded.domain == 'shop "x"' and loaded.noun == "crème"
    assert loaded.attributes[0].description == 'says "hi" \\ there' and loaded.attributes[0].high == "high \t tab"
    assert "[[attributes]]" in to_toml(tricky)


def _llm_answer(n: int) -> str:
    return json.dumps({"noun": "beauty product", "attributes": [
        {"name": f"quality {i}", "description": f"dimension {i}", "low": f"a poor item {i}", "high": f"a great item {i}"}
        for i in range(n)]})


def test_llm_draft_is_validated_reasked_and_cached(tmp_path):
    from lucidrec.lm.chat.mock import MockChatModel

    answers = iter([_llm_answer(3), _llm_answer(7)])  # too few attributes first: re-asked once
    texts = [title for _, title in topical_titles()]
    config = DraftConfig(method="llm", cache_dir=str(tmp_path))
    chat = MockChatModel(cache={"dir": tmp_path}, show_progress=False, responder=lambda request: next(answers))
    draft = draft_attributes(texts, "my-shop", config, chat=chat)
    assert draft.method == "llm:mock" and len(draft.attributes) == 7 and chat.calls == 2
    assert draft.attributes.noun == "beauty product" and draft.attributes.attributes[3].high == "a great item 3"
    assert "Your previous answer could not be used" in chat.seen[1].messages[-1]["content"]
    assert "at least 6" in chat.seen[1].messages[-1]["content"]
    assert any(title in chat.seen[0].messages[-1]["content"] for title in texts)

    again = MockChatModel(cache={"dir": tmp_path}, show_progress=False, responder=lambda r: _llm_answer(2))
    assert draft_attributes(texts, "my-shop", config, chat=again).attributes == draft.attributes and again.calls == 0


def test_llm_that_never_validates_falls_back_to_the_encoder_under_auto_only(tmp_path):
    from lucidrec.lm.chat.mock import MockChatModel

    texts = [title for _, title in topical_titles()]

    def chat():
        return MockChatModel(cache={"dir": tmp_path}, show_progress=False, responder=lambda r: "no JSON here")

    config = DraftConfig(n_attributes=6, max_reasks=1, cache_dir=str(tmp_path))
    draft = draft_attributes(texts, "my-shop", config, chat=chat(), encoder=WordCountEncoder())
    assert draft.method == "encoder-clusters" and len(draft.attributes) == 6
    assert "no valid attribute set in 2 attempt(s)" in draft.notes[0] and "encoder clusters instead" in draft.notes[0]
    with pytest.raises(DraftError, match="no valid attribute set"):
        draft_attributes(texts, "my-shop", config.model_copy(update={"method": "llm"}), chat=chat())


@pytest.mark.slow
def test_draft_for_run_writes_once_and_reuses_and_spot_check_is_plausible(tmp_path):
    texts = [title for _, title in topical_titles()]
    config = DraftConfig(n_attributes=6, cache_dir=str(tmp_path / "cache"))
    drafted = draft_for_run(texts, "my-shop", tmp_path / "ger", config)
    stored = tmp_path / "ger" / "attributes.toml"
    assert stored.is_file() and load_attributes(stored).names == drafted.names
    stored.write_text(stored.read_text().replace(drafted.names[0], "edited name", 1))
    assert draft_for_run(texts, "my-shop", tmp_path / "ger", config).names[0] == "edited name"  # never redrafted
    # With the real sentence encoder, the attribute named after an item's topic is its top one.
    rows = spot_check(drafted, texts, 12, per_item=1, cache_dir=config.cache_dir)
    topic_of = {title: topic for topic, title in topical_titles()}
    hits = sum(topic_of[row.text] in drafted.attributes[drafted.names.index(row.top[0][0])].high for row in rows)
    assert len(rows) == 12 and hits >= 9


def test_attributes_draft_cli_writes_a_set_the_loader_reads_and_keeps_an_existing_file(tmp_path):
    from typer.testing import CliRunner

    from lucidrec.cli import app

    save(titles_only_dataset(), tmp_path / "data" / "my-shop")
    out = tmp_path / "sets" / "my-shop.toml"
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"dataset": "my-shop", "answer": _llm_answer(6)}) + "\n")

    def draft(target, *extra):
        return CliRunner().invoke(app, ["attributes", "draft", "--dataset", "my-shop", "--data-dir", str(tmp_path / "data"),
                                        "--out", str(target), "--backend", "recorded", "--answers", str(answers),
                                        "--preview", "0", "--cache-dir", str(tmp_path / "cache"), *extra])

    result = draft(out)
    assert result.exit_code == 0, result.output
    assert "drafted 6 attributes for 'my-shop' (llm:answers.jsonl@" in result.output
    assert load_attributes(out).names == [f"quality {i}" for i in range(6)]
    before = out.read_text()
    result = draft(out)
    assert result.exit_code == 2 and "exists" in result.output and out.read_text() == before
    answers.write_text(json.dumps({"dataset": "other", "answer": _llm_answer(6)}) + "\n")
    result = draft(tmp_path / "never.toml", "--method", "llm")
    assert result.exit_code == 2 and "no recorded answer" in result.output
    assert not (tmp_path / "never.toml").exists()


@pytest.mark.slow
def test_ger_on_a_titles_only_dataset_drafts_its_attributes_in_one_command(tmp_path, caplog):
    from typer.testing import CliRunner

    from lucidrec.cli import app

    save(titles_only_dataset(), tmp_path / "data" / "my-shop")
    tiny = ["model.hidden=16", "model.max_len=10", "model.layers=1", "train.epochs=1", "train.threads=1",
            "train.progress=false", "embedding.base.epochs=1", f"embedding.cache_dir={tmp_path / 'cache'}"]
    args = ["train", "--dataset", "my-shop", "--data-dir", str(tmp_path / "data"), "--embedding", "ger"]
    for item in tiny:
        args += ["--set", item]

    # A failing call (a missing attribute file) leaves no half-made run folder behind.
    failed = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bad"), "--set", "embedding.attributes=nope.toml"])
    assert failed.exit_code == 2 and "attribute file not found" in failed.output
    assert not (tmp_path / "bad").exists()

    run = tmp_path / "run"
    result = CliRunner().invoke(app, [*args, "--out", str(run)])
    assert result.exit_code == 0, result.output
    stored = run / "ger" / "attributes.toml"
    said = caplog.text  # the warning goes to stderr through logging
    assert "no attribute set is known for dataset 'my-shop': drafted 8 attributes (encoder-clusters)" in said
    assert str(stored) in said and (run / "metrics.json").is_file()
    meta = json.loads((run / "ger" / "meta.json").read_text())
    assert meta["attributes"]["source"] == str(stored) and meta["m"] == 8
    assert meta["attributes"]["attributes"] == [vars(a) for a in load_attributes(stored).attributes]
    explained = CliRunner().invoke(app, ["explain", "--run", str(run), "--user", "u0", "--k", "3", "--check"])
    assert explained.exit_code == 0, explained.output
    assert load_attributes(stored).names[0] in explained.output and "PASS" in explained.output
