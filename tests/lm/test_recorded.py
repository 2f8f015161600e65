import json

import pytest

from lucidrec.errors import DataFormatError
from lucidrec.lm.chat import create_chat_model
from lucidrec.lm.errors import RecordNotFoundError

def test_published_preferences_by_user_id(tmp_path, data_dir):
    shared = data_dir / "amazon-beauty" / "llm" / "user_preferences.jsonl"
    if not shared.is_file():
        pytest.skip(f"{shared}: the shared amazon-beauty LLM outputs are not in this data directory")
    records = [json.loads(line) for line in shared.read_text().splitlines()[:3]]
    model = create_chat_model("recorded", path=shared, key_field="user_id", answer_field="preference",
                              cache={"dir": tmp_path}, show_progress=False)
    users = [r["user_id"] for r in records]
    answers = model.complete_many(["Describe this user's preference."] * 3, keys=users)
    assert [a.text for a in answers] == [r["preference"] for r in records]
    assert len(model) > 1000
    missing = model.complete_many(["x", "y"], keys=[users[0], "NO-SUCH-USER"], errors="return")
    assert missing[0].ok and not missing[1].ok
    assert missing[1].error_type == "RecordNotFoundError" and "NO-SUCH-USER" in missing[1].error
    with pytest.raises(RecordNotFoundError, match="user_id='NO-SUCH-USER'"):
        model.complete("x", key="NO-SUCH-USER")


def test_records_by_prompt_and_by_messages(tmp_path):
    path = tmp_path / "answers.jsonl"
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    path.write_text("\n".join([
        json.dumps({"prompt": "What is 2+2?", "answer": "4"}),
        json.dumps({"messages": messages, "answer": "hello"}),
        "",
    ]))
    model = create_chat_model("recorded", path=path, show_progress=False)
    assert model.complete("What is 2+2?").text == "4"
    assert model.complete([{"role": "system", "content": "anything"}, {"role": "user", "content": "What is 2+2?"}]).text == "4"
    assert model.complete(messages).text == "hello"
    with pytest.raises(RecordNotFoundError, match="no recorded answer for this prompt"):
        model.complete("What is 3+3?")
    with pytest.raises(RecordNotFoundError, match="not keyed"):
        model.complete("What is 2+2?", key="u1")
    assert model.cache is None  # the file is the store


@pytest.mark.parametrize("content, message", [
    ('{"prompt": "a", "answer": "1"}\nnot json\n', "line 2"),
    ('{"prompt": "a"}\n', "field 'answer'"),
    ('{"prompt": "a", "answer": "1"}\n{"prompt": "a", "answer": "2"}\n', "a second, different answer"),
    ('{"other": "a", "answer": "1"}\n', "none of the lookup fields"),
])
def test_bad_recorded_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        create_chat_model("recorded", path=path)


def test_missing_recorded_file(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        create_chat_model("recorded", path=tmp_path / "nope.jsonl")
