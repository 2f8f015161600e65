"""`lucidrec lm serve` machinery: a real chat-completions server on loopback serving SmolLM2,
used through the OpenAI-compatible backend (the official openai client)."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from lucidrec.lm.chat.openai_http import OpenAIChatModel
from lucidrec.lm.chat.transformers_local import TransformersChatModel
from lucidrec.lm.errors import LLMRequestError
from lucidrec.serve.lm_app import serve_in_thread

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name a fruit.", "Hi", "What colour is the sky?"]


@pytest.fixture
def served(smollm2, tmp_path):
    local = TransformersChatModel(cache={"enabled": False}, show_progress=False, hf_model=smollm2.model,
                                  hf_tokenizer=smollm2.tokenizer, batch_size=4, context_window=256)
    server = serve_in_thread(local, model_name="smollm2", batch_wait=0.05)
    yield server, local
    server.close()


def http_client(server, tmp_path, **overrides):
    options = dict(base_url=server.url, model="smollm2", cache={"dir": tmp_path}, show_progress=False, max_retries=1,
                   backoff_base=0.01)
    return OpenAIChatModel(**{**options, **overrides})


def post(url, payload):
    request = urllib.request.Request(url + "/chat/completions", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_backend_matches_local_greedy_output(served, smollm2, tmp_path):
    server, local = served
    client = http_client(server, tmp_path, concurrency=4)
    remote = client.complete_many(PROMPTS, max_tokens=8)
    direct = smollm2.complete_many(PROMPTS, max_tokens=8, no_cache=True)
    assert [r.text for r in remote] == [r.text for r in direct]
    assert [r.prompt_tokens for r in remote] == [r.prompt_tokens for r in direct]
    assert client.last_batch.completion_tokens == sum(r.completion_tokens for r in direct)
    served_calls = local.usage.model_calls
    again = client.complete_many(PROMPTS, max_tokens=8)
    assert all(r.cached for r in again) and local.usage.model_calls == served_calls  # no request reached the server
    assert [m.id for m in client.client.models.list().data] == ["smollm2"]


def test_logprobs_and_choice_scoring_over_http(served, smollm2, tmp_path):
    server, _ = served
    client = http_client(server, tmp_path)
    response = client.complete("What is 2+2?", max_tokens=3, top_logprobs=2)
    assert len(response.logprobs) == response.completion_tokens and len(response.logprobs[0].top) == 2
    digits = [str(i) for i in range(1, 10)]
    prompt = "How sweet is honey on a scale from 1 to 9? Answer with one digit."
    remote = client.score_choices([prompt], digits)
    local = smollm2.score_choices([prompt], digits, no_cache=True)
    np.testing.assert_allclose(remote.sum(), 1.0, atol=1e-9)
    assert remote.argmax() == local.argmax()
    with pytest.raises(ValueError, match="first token"):
        client.score_choices([prompt], digits, method="sequence")


def test_bad_requests_get_openai_style_400s(served, tmp_path):
    server, _ = served
    status, body = post(server.url, {"model": "smollm2", "messages": []})
    assert status == 400 and "messages" in body["error"]["message"]
    status, body = post(server.url, {"model": "smollm2", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert status == 400 and "streaming" in body["error"]["message"]
    status, body = post(server.url, {"model": "smollm2", "messages": [{"role": "robot", "content": "x"}]})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body = post(server.url, {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                                     "max_tokens": 2})
    assert status == 200 and body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] <= 2


def test_prompt_over_the_context_window(served, tmp_path):
    server, _ = served
    long_prompt = " ".join(f"word{i}" for i in range(400))
    status, body = post(server.url, {"messages": [{"role": "user", "content": long_prompt}], "max_tokens": 4})
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"
    client = http_client(server, tmp_path, max_retries=3)
    with pytest.raises(LLMRequestError, match="HTTP 400.*context window") as info:
        client.complete(long_prompt, max_tokens=4)
    assert info.value.attempts == 1  # a 400 is not retried
    assert client.cache.stats()["entries"] == 0
