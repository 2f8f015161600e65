"""LANE's preference extraction: P diverse preferences per user from the TRAINING part of the history.

Only ``split.train`` is ever read, so no validation or test item reaches a prompt. Per user with a
training history: the ``lane_preferences`` prompt over the time-ordered titles (the last
``max_history``), a JSON object of exactly P distinct preferences, validated and re-asked up to
``max_reasks`` times (:func:`lucidrec.lm.structured.complete_structured`); users whose answers stay
invalid get the deterministic fallback of :func:`~lucidrec.methods.lane.phrases.fallback_phrases`,
flagged ``fallback`` and counted, never dropped. Users with an empty training history get no
preferences (the model uses the backbone state alone). Valid answers are cached by the chat layer,
group by group, so a killed extraction asks again only for the users it had not finished.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lucidrec.embeddings.lane.config import LaneConfig
from lucidrec.errors import DataFormatError
from lucidrec.files import read_jsonl
from lucidrec.methods.lane.phrases import fallback_phrases, preferences_schema, split_recorded

log = logging.getLogger(__name__)
LLM, FALLBACK, RECORDED, HISTORY, NONE = "llm", "fallback", "recorded", "history", "none"


@dataclass
class Extraction:
    """Phrases per user index (an empty list: no preferences) and where each user's came from."""

    phrases: list[list[str]]
    sources: list[str]
    stats: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: self.sources.count(name) for name in (LLM, RECORDED, HISTORY, FALLBACK, NONE)}


def item_titles(data) -> list[str]:
    """Title per item index ('' for padding and items without one)."""
    return [""] + [data.catalog.title(str(i)) for i in data.item_ids[1:]]


def item_genres(data) -> list[str] | None:
    """A genre value per item index when the catalog has a ``genres`` field (for the fallback)."""
    if "genres" not in data.catalog.fields:
        return None
    return [""] + [data.catalog.record(str(i)).get("genres", "") for i in data.item_ids[1:]]


def history_titles(train, user: int, titles: list[str], max_history: int) -> list[str]:
    """The user's training items' titles, oldest first (the last ``max_history``; items without a title
    are shown as 'item <index>' so the order stays visible)."""
    items = train[int(user)][-max_history:]
    return [titles[i] or f"item {i}" for i in items]


def preference_prompts(histories: list[list[str]], n: int) -> list:
    from lucidrec.lm.prompts import load_prompt

    template = load_prompt("lane_preferences")
    return [template.render(history="\n".join(f"- {t}" for t in h), n_preferences=str(n)) for h in histories]


def create_chat(config: LaneConfig):
    from lucidrec.lm.chat import create_chat_model

    values = dict(config.llm or {"backend": "transformers"})
    if config.cache_dir is not None and "cache" not in values:
        values["cache"] = {"dir": str(config.cache_dir)}
    return create_chat_model(values)


def history_phrases(train, user: int, titles: list[str], genres: list[str] | None, config: LaneConfig) -> list[str]:
    """The deterministic preferences of one user (the fallback), from the training history only."""
    items = train[int(user)][-config.max_history:]
    return fallback_phrases([titles[i] for i in items if titles[i]], config.n_preferences,
                            [genres[i] for i in items] if genres else None)


def extract_from_history(config: LaneConfig, data, train) -> Extraction:
    """``source = "history"``: no model; every user with a training history gets :func:`history_phrases`."""
    titles, genres = item_titles(data), item_genres(data)
    phrases: list[list[str]] = [[] for _ in range(len(train))]
    sources = [NONE] * len(train)
    for user in np.flatnonzero(train.lengths() > 0):
        phrases[user], sources[user] = history_phrases(train, user, titles, genres, config), HISTORY
    return Extraction(phrases, sources, {"rule": "most frequent genres, then title words, of the training history"})


def extract_with_chat(config: LaneConfig, data, train, chat, progress: bool = False) -> Extraction:
    """Preferences from ``chat`` for every user with a training history (``train``: one row per user)."""
    from lucidrec.lm.failures import require_answers

    titles, genres = item_titles(data), item_genres(data)
    n_users, p = len(train), config.n_preferences
    phrases: list[list[str]] = [[] for _ in range(n_users)]
    sources = [NONE] * n_users
    users = np.flatnonzero(train.lengths() > 0)
    schema = preferences_schema(p)
    reasks, no_answer, invalid, first_error = 0, 0, 0, None
    for start in range(0, len(users), config.users_per_call):
        group = users[start:start + config.users_per_call]
        histories = [history_titles(train, u, titles, config.max_history) for u in group]
        result = chat.complete_structured(preference_prompts(histories, p), schema, max_reasks=config.max_reasks,
                                          show_progress=False, max_tokens=config.max_tokens)
        reasks += sum(max(0, a - 1) for a in result.attempts)
        for user, value in zip(group, result.values):
            if value is not None:
                phrases[user], sources[user] = [v.strip() for v in value.root.values()], LLM
            else:
                phrases[user], sources[user] = history_phrases(train, user, titles, genres, config), FALLBACK
        for failure in result.failures:
            if not failure.answer and not failure.error.startswith("the answer is empty"):  # no answer at all
                no_answer += 1
                first_error = first_error or failure.error
            else:
                invalid += 1
        if progress:
            print(f"lane: preferences of {min(start + len(group), len(users))}/{len(users)} users", file=sys.stderr,
                  flush=True)
    require_answers("LANE preference extraction", no_answer, len(users), allowed_share=config.llm_max_failed,
                    endpoint=chat.endpoint, unit="users", first_error=first_error, setting="embedding.llm_max_failed",
                    fallback="the fallback preferences (most frequent title words)")
    stats = {"users_asked": int(len(users)), "reasks": int(reasks), "invalid_after_reasks": int(invalid),
             "no_answer": int(no_answer), "endpoint": chat.endpoint}
    return Extraction(phrases, sources, stats)


def read_recorded(path: Path, data, n: int) -> Extraction:
    """One recorded preference text per user, split into phrases (:func:`split_recorded`).

    A line that is not a JSON object with ``user_id``, a ``preference`` that is not a text, or a user given
    twice, is an error naming the line; a user the dataset does not have is skipped, named with its line
    in a warning and in the stats. Users without a line or with an empty text (amazon-beauty's file has 43)
    get no preferences (counted; the model keeps their backbone state). Recorded texts
    were written over whole histories (for amazon-beauty, the reviews of every item, held-out ones
    included), so results using them may see the test target: the stage's meta says so
    (``possible_test_leakage``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataFormatError(path, "recorded preferences file not found")
    index = {str(u): i for i, u in enumerate(data.user_ids)}
    phrases: list[list[str]] = [[] for _ in range(data.n_users)]
    sources = [NONE] * data.n_users
    seen: dict[int, int] = {}
    unknown: list[dict] = []
    empty: list[int] = []
    for line_no, record in read_jsonl(path):
        if not isinstance(record, dict) or "user_id" not in record:
            raise DataFormatError(path, "not an object with a user_id", line=line_no, field="user_id")
        if "preference" not in record:
            raise DataFormatError(path, "no preference field", line=line_no, field="preference")
        text = record["preference"]
        if text is not None and not isinstance(text, str):
            raise DataFormatError(path, f"the preference is a {type(text).__name__}, not a text", line=line_no,
                                  field="preference")
        user = index.get(str(record["user_id"]))
        if user is None:  # e.g. a user the dataset's filters removed: named, counted, skipped
            unknown.append({"line": line_no, "user_id": str(record["user_id"])})
            continue
        if user in seen:
            raise DataFormatError(path, f"user '{record['user_id']}' already given on line {seen[user]}",
                                  line=line_no, field="user_id")
        seen[user] = line_no
        if not (text or "").strip():  # the recording model wrote nothing for this user: as if no line
            empty.append(line_no)
            continue
        phrases[user], sources[user] = split_recorded(text, n), RECORDED
    if unknown:
        first = ", ".join(f"line {u['line']} ({u['user_id']})" for u in unknown[:5])
        log.warning("%s: %d users not in dataset '%s' were skipped: %s%s", path, len(unknown), data.name, first,
                    " ..." if len(unknown) > 5 else "")
    if empty:
        log.warning("%s: %d users have an empty preference text and get no preferences: lines %s%s", path,
                    len(empty), ", ".join(map(str, empty[:5])), " ..." if len(empty) > 5 else "")
    stats = {"recorded_path": str(path), "users_without_line": int(data.n_users - len(seen)),
             "users_with_empty_text": len(empty), "empty_text_lines": empty[:20],
             "unknown_users": len(unknown), "unknown_user_lines": unknown[:20],
             "split_rule": "sentence ends, semicolons and commas; pieces under 3 words joined to the previous one; "
                           "leading 'The user prefers' removed; first P kept",
             "possible_test_leakage": True}
    return Extraction(phrases, sources, stats)


def encode_preferences(extraction: Extraction, encoder, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_users, P, d) phrase vectors and the (n_users, P) mask of real phrases."""
    flat = [phrase for user in extraction.phrases for phrase in user[:n]]
    vectors = encoder.encode(flat, show_progress=False) if flat else np.zeros((0, encoder.dim), np.float32)
    out = np.zeros((len(extraction.phrases), n, vectors.shape[1]), np.float32)
    mask = np.zeros((len(extraction.phrases), n), bool)
    row = 0
    for user, phrases in enumerate(extraction.phrases):
        k = min(len(phrases), n)
        out[user, :k], mask[user, :k] = vectors[row:row + k], True
        row += k
    return out, mask
