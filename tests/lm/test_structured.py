import pytest
from pydantic import BaseModel, Field

from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.lm.errors import StructuredOutputError
from lucidrec.lm.structured import extract_json, parse_answer


class Scores(BaseModel):
    pacing: int = Field(ge=1, le=10)
    humour: int = Field(ge=1, le=10)


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1}', {"a": 1}),
    ('Sure! Here it is: {"a": {"b": 2}} Hope that helps.', {"a": {"b": 2}}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('noise {not json} then {"a": 3}', {"a": 3}),
    ('[1, 2, 3]', [1, 2, 3]),
])
def test_extract_json(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no braces here", '{"a": 1', "{'a': 1}"])
def test_extract_json_failures_are_clear(text):
    with pytest.raises(StructuredOutputError):
        extract_json(text)


def test_parse_answer_reports_schema_problems():
    assert parse_answer('{"pacing": 3, "humour": 9}', Scores) == Scores(pacing=3, humour=9)
    with pytest.raises(StructuredOutputError, match="humour"):
        parse_answer('{"pacing": 3}', Scores)
    with pytest.raises(StructuredOutputError, match="pacing"):
        parse_answer('{"pacing": 30, "humour": 2}', Scores)
    assert parse_answer('{"x": 1, "y": 2}', dict[str, int]) == {"x": 1, "y": 2}


def scripted(answers_by_prompt):
    """Responder giving the i-th scripted answer on the i-th time a prompt is asked."""
    asked = {}

    def respond(request):
        prompt = request.messages[0]["content"]
        n = asked.get(prompt, 0)
        asked[prompt] = n + 1
        answers = answers_by_prompt[prompt]
        return answers[min(n, len(answers) - 1)]

    return respond


def test_reask_fixes_invalid_answers_and_reports_the_rest(tmp_path):
    responder = scripted({
        "good": ['{"pacing": 4, "humour": 5}'],
        "fixable": ["I think it is fast.", '{"pacing": 9}', '{"pacing": 9, "humour": 2}'],
        "hopeless": ["no idea"],
    })
    model = MockChatModel(cache={"dir": tmp_path}, responder=responder, show_progress=False)
    result = model.complete_structured(["good", "fixable", "hopeless"], Scores, max_reasks=2)
    assert result.values[0] == Scores(pacing=4, humour=5)
    assert result.values[1] == Scores(pacing=9, humour=2)
    assert result.values[2] is None
    assert result.attempts == [1, 3, 3]
    assert [f.index for f in result.failures] == [2]
    failure = result.failures[0]
    assert failure.answer == "no idea" and "JSON object" in failure.error and failure.attempts == 3
    assert result.to_dict()["n_failed"] == 1 and result.to_dict()["reasks"] == 4
    # the re-ask carried the bad answer and the validation error
    reask = [r for r in model.seen if r.messages[0]["content"] == "fixable"][1]
    assert reask.messages[1] == {"role": "assistant", "content": "I think it is fast."}
    assert "Your previous answer could not be used" in reask.messages[2]["content"]
    with pytest.raises(StructuredOutputError, match="1 of 3"):
        result.raise_for_failures()
    # invalid answers never reach the cache
    for entry in model.cache.entries():
        text = entry["payload"]["text"]
        assert text.startswith("{") and "humour" in text


def test_structured_rerun_makes_zero_model_calls(tmp_path):
    responder = scripted({"fixable": ["nope", '{"pacing": 1, "humour": 1}'], "good": ['{"pacing": 2, "humour": 2}']})
    first = MockChatModel(cache={"dir": tmp_path}, responder=responder, show_progress=False)
    first.complete_structured(["fixable", "good"], Scores)
    assert first.calls == 3
    second = MockChatModel(cache={"dir": tmp_path}, responder=lambda r: pytest.fail("model called"), show_progress=False)
    result = second.complete_structured(["fixable", "good"], Scores)
    assert second.calls == 0 and result.ok
    assert result.values == [Scores(pacing=1, humour=1), Scores(pacing=2, humour=2)]


def test_zero_reasks_and_transport_failures(tmp_path):
    def respond(request):
        if request.messages[0]["content"] == "down":
            raise ConnectionError("server gone")
        return "garbage"

    model = MockChatModel(cache={"dir": tmp_path}, responder=respond, show_progress=False)
    result = model.complete_structured(["down", "bad"], Scores, max_reasks=0)
    assert model.calls == 2
    errors = {f.index: f.error for f in result.failures}
    assert errors[0].startswith("ConnectionError") and "JSON object" in errors[1]
    assert model.cache.stats()["entries"] == 0


def test_complete_json_single_answer(tmp_path):
    model = MockChatModel(cache={"dir": tmp_path}, responder=scripted({"q": ['{"pacing": 7, "humour": 3}'],
                                                                        "bad": ["?"]}), show_progress=False)
    assert model.complete_json("q", Scores) == Scores(pacing=7, humour=3)
    with pytest.raises(StructuredOutputError, match="1 of 1 answers failed"):
        model.complete_json("bad", Scores, max_reasks=1)
