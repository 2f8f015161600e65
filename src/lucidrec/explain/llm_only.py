"""The LLM-only explainer, LANE's comparison row: the same chat model sees the user's history and the
recommended item, but no preferences and no weights, and names the preferences that explain the item
(most important first) before writing its recommendation text.

:func:`named_preferences` reads them back: the numbered lines ("1. ...", "2) ...", "- ...") of the answer's
step 1 (without a "Step 1" marker: the text before the first other step marker), at most ``limit``, duplicates
dropped.
"""

from __future__ import annotations

import re

PROMPT = "llm_only_explanation"
_ITEM = re.compile(r"^\s*(?:\d+\s*[.):]|[-*\u2022])\s*(.+?)\s*$")
_STEP = re.compile(r"step\s*([1-9])\s*[:.)\-]", re.IGNORECASE)


def llm_only_explanation(chat, history: list[str], target: str, n_preferences: int, *, max_tokens: int) -> dict:
    """The answer of ``chat`` to the LLM-only prompt (or its error) of at most ``max_tokens`` new tokens, with the
    prompt it was given; ``cut_at_cap`` says whether the answer reached that limit."""
    from lucidrec.lm.prompts import load_prompt

    prompt = load_prompt(PROMPT).render(history="\n".join(f"- {t}" for t in history), target_item=target,
                                        n_preferences=str(n_preferences))
    response = chat.complete(prompt, max_tokens=max_tokens)
    out = {"endpoint": chat.endpoint, "prompt": prompt.messages[-1]["content"], "max_tokens": max_tokens}
    if not response.ok:
        return {**out, "error": f"{response.error_type}: {response.error}"}
    return {**out, "text": response.text, "cut_at_cap": response.cut_at_max_tokens}


def named_preferences(text: str, limit: int = 10) -> list[str]:
    """The preferences an LLM-only answer names, in its order (see the module doc)."""
    marks = list(_STEP.finditer(text))
    section = text[: marks[0].start()] if marks else text  # no "Step 1:" marker: the list before any later step
    for k, mark in enumerate(marks):
        if mark.group(1) == "1":
            section = text[mark.end(): marks[k + 1].start() if k + 1 < len(marks) else len(text)]
            break
    out: list[str] = []
    for line in section.splitlines():
        match = _ITEM.match(line)
        if match is None:
            continue
        phrase = match.group(1).strip(" .;:*\"'")
        if phrase and phrase.lower() not in {p.lower() for p in out} and phrase != "...":
            out.append(phrase)
    return out[:limit]
