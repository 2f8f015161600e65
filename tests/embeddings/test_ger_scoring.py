"""GER attribute scorers: JSON parsing and re-asks, per-attribute logprobs, the single-pass slot scorer
(exact against separate prompts), the encoder scorer on real titles, and the real SmolLM2 (slow)."""

import json

import numpy as np
import pytest
import torch

from lucidrec.embeddings.ger.attributes import load_attributes, parse_attributes
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.lm.errors import StructuredOutputError

ATTRS = parse_attributes({"domain": "movies", "noun": "movie", "attributes": [
    {"name": "humour", "description": "how funny", "low": "a serious film", "high": "a hilarious comedy"},
    {"name": "family friendliness", "description": "fit for children", "low": "a violent, dark film for adults only",
     "high": "a wholesome family movie suitable for young children"},
]})


def test_parse_scores_valid_clipped_and_missing():
    from lucidrec.methods.ger.scorers import parse_scores

    np.testing.assert_allclose(parse_scores('{"humour": 7, "family friendliness": 2}', ATTRS), [7, 2])
    # Keys are matched loosely (case, underscores); values outside 1..10 are clipped; extra keys ignored.
    text = 'Sure! {"Humour": 14, "family_friendliness": -3, "pacing": 5}'
    np.testing.assert_allclose(parse_scores(text, ATTRS), [10, 1])
    with pytest.raises(StructuredOutputError, match="family friendliness"):
        parse_scores('{"humour": 7}', ATTRS)
    with pytest.raises(StructuredOutputError):
        parse_scores("seven", ATTRS)


def test_json_scorer_reasks_then_reports_failures(tmp_path):
    from lucidrec.methods.ger.scorers import JsonScorer

    def responder(request):
        text = request.messages[1]["content"]
        if "Toy Story" in text:  # first answer incomplete, fixed after the re-ask
            asked_again = len(request.messages) > 2
            return '{"humour": 8, "family friendliness": 9}' if asked_again else '{"humour": 8}'
        if "Heat" in text:
            return '{"humour": 2, "family friendliness": 12}'
        return "I cannot rate this."  # never valid

    chat = MockChatModel(responder=responder, cache={"dir": tmp_path}, show_progress=False)
    scorer = JsonScorer(ATTRS, chat, max_reasks=1)
    result = scorer.score(["Toy Story (1995)", "Heat (1995)", "Unknown film"])
    np.testing.assert_allclose(result.raw[0], [8, 9])
    np.testing.assert_allclose(result.raw[1], [2, 10])  # clipped
    assert np.isnan(result.raw[2]).all() and result.valid.tolist() == [True, True, False]
    assert result.stats["failures"] == 1 and result.stats["failure_examples"][0]["index"] == 2
    assert result.stats["failure_examples"][0]["attempts"] == 2 and result.stats["reasks"] >= 2
    assert result.stats["clipped_values"] == 1
    calls = chat.calls
    again = JsonScorer(ATTRS, chat, max_reasks=1).score(["Toy Story (1995)", "Heat (1995)"])
    assert chat.calls == calls  # valid answers are cached: a re-run makes no model calls
    np.testing.assert_allclose(again.raw, result.raw[:2])


def test_logprob_scorer_is_the_expected_value_of_the_choice_distribution(tmp_path):
    from lucidrec.methods.ger.scorers import LogprobScorer

    chat = MockChatModel(cache={"dir": tmp_path}, show_progress=False)
    scorer = LogprobScorer(ATTRS, chat)
    result = scorer.score(["Toy Story (1995)", "Heat (1995)"])
    assert result.raw.shape == (2, 2) and ((result.raw >= 1) & (result.raw <= 9)).all()
    prompts = [scorer.template.render(**scorer._values("Heat (1995)", 1, 9), attribute=a.name,
                                      attribute_description=a.description, low=a.low, high=a.high)
               for a in ATTRS.attributes]
    probs = chat.score_choices(prompts, [str(v) for v in range(1, 10)])
    np.testing.assert_allclose(result.raw[1], probs @ np.arange(1, 10))
    assert scorer.score(["Toy Story (1995)"]).stats["cache_hits"] == 2


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_slots_equal_separate_prompts_in_one_pass(attention):
    from lucidrec.methods.ger.slots import SlotScorer, reference_scores

    model = tiny_llama()
    model.config._attn_implementation = attention
    prefix, branches, choices = [1, 5, 7, 9, 11], [[20, 21], [22], [23, 24, 25]], [30, 31, 32, 33]
    segments = [[40, 41, 42], [43], [44, 45, 46, 47, 48]]  # ragged: padded between segment and branches
    out = SlotScorer(model, prefix, branches, choices).score(segments)
    assert out.probs.shape == (3, 3, 4)
    np.testing.assert_allclose(out.probs.sum(-1), 1, atol=1e-12)
    for b, segment in enumerate(segments):
        ref = reference_scores(model, prefix, segment, branches, choices)
        np.testing.assert_allclose(out.probs[b], ref.probs[0], atol=1e-5)
        np.testing.assert_allclose(out.coverage[b], ref.coverage[0], atol=1e-5)


def test_slot_scorer_needs_the_transformers_backend(tmp_path):
    from lucidrec.config import ConfigError
    from lucidrec.methods.ger.scorers import SlotScorer, make_llm_scorer

    chat = MockChatModel(cache={"dir": tmp_path})
    with pytest.raises(ConfigError, match="transformers backend"):
        SlotScorer(ATTRS, chat)
    assert make_llm_scorer(ATTRS, chat, "auto").name == "llm:logprobs"


def test_encoder_scorer_orders_family_vs_violent_film(tmp_path, data_dir):
    from lucidrec.data import load_dataset
    from lucidrec.methods.ger.scorers import EncoderScorer
    from lucidrec.lm.text import build_item_texts

    catalog = load_dataset("ml-100k", data_dir).items
    texts = build_item_texts(catalog, ["1", "56"], "description", exclude=["release"]).texts
    assert texts[0].startswith("Toy Story") and texts[1].startswith("Pulp Fiction")
    attributes = load_attributes("movies")
    result = EncoderScorer(attributes, cache_dir=tmp_path).score(texts)
    family, darkness = attributes.names.index("family friendliness"), attributes.names.index("darkness")
    assert result.raw[0, family] > result.raw[1, family]
    assert result.raw[1, darkness] > result.raw[0, darkness]
    assert ((result.raw >= -2) & (result.raw <= 2)).all() and result.stats["encoded"] == 2


@pytest.mark.slow
def test_slot_scorer_on_real_smollm2(tmp_path):
    from lucidrec.methods.ger.scorers import SlotScorer, create_chat
    from lucidrec.methods.ger.slots import reference_scores

    chat = create_chat({"backend": "transformers", "show_progress": False}, tmp_path)
    attributes = load_attributes("movies")
    scorer = SlotScorer(attributes, chat, batch_size=2)
    texts = ["Toy Story (1995). Genres: Animation, Children's, Comedy.", "Pulp Fiction (1994). Genres: Crime, Drama.",
             "Heat (1995). Genres: Action, Crime, Thriller."]
    result = scorer.score(texts)
    assert result.raw.shape == (3, 8) and ((result.raw >= 1) & (result.raw <= 9)).all()
    stored = chat.cache.get_many([scorer.key(t) for t in texts])
    for i, text in enumerate(texts):  # the score is exactly sum_v p(v) * v over the digit tokens
        payload = stored[scorer.key(text)]
        probs = np.asarray(payload["probs"])
        np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-9)
        np.testing.assert_allclose(result.raw[i], probs @ np.arange(1, 10), atol=1e-12)
        assert all(0 < c <= 1 for c in payload["coverage"])
    slots = scorer.prepare()  # one pass == eight separate prompts sharing the prefix
    ref = reference_scores(chat.model, slots.prefix_ids, scorer.segment(texts[0]),
                           slots.branch_ids, slots.choice_ids)
    np.testing.assert_allclose(np.asarray(stored[scorer.key(texts[0])]["probs"]), ref.probs[0], atol=2e-4)
    again = SlotScorer(attributes, chat).score(texts)  # a re-run is served from the cache
    assert again.stats["cache_hits"] == 3 and again.stats["model_calls"] == 0
    np.testing.assert_allclose(again.raw, result.raw)
    json.dumps(result.stats)  # stats are plain JSON
