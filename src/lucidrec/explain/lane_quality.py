"""LANE's explanation quality, measured without a human survey.

Over a fixed random sample of users (seeded) of a LANE run, each with the item the model recommends first:

- **weight fidelity**: the preference the chain-of-thought answer ranks first (:func:`ranked_first`) is the
  one the attention weighs most; rate over the parsed answers, unparseable answers counted apart;
- **deletion test**: hiding the highest-weight preference lowers the item's score more than hiding a random
  other one (:func:`lucidrec.explain.lane_deletion.deletion_summary`);
- **grounding**: the share of preferences whose phrase is supported by the user's training history: its
  sentence-encoder cosine similarity to the closest training title is above a threshold calibrated on
  random other users' histories (:func:`calibrate_threshold`);
- the same metrics for the LLM-only explainer (:mod:`lucidrec.explain.llm_only`: same chat model, history
  and item, no weights): fidelity maps the preference it names first to the closest of the user's LANE
  preferences (encoder similarity), grounding reads the preferences it names.

Generation is slow on a local model, so the two generated metrics use the first ``generate`` users of the
sample; the deletion test and grounding of LANE's preferences use all of them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lucidrec.data.sequences import Ragged

_STEP = re.compile(r"step\s*([1-4])\s*[:.)\-]", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*")
_NUMBER = re.compile(r"(?<![\d.])(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)(?![\d.])")
#: words that say nothing about a preference's content (the rule-based phrases all start "interest in")
_FILLER = frozenset("""a an and are as at be by for from in into is it its of on or the this to with interest interests
interested user user's likes like prefers preference enjoys""".split())
GROUNDING_QUANTILE = 0.95
FIDELITY_RULE = ("LANE: the first preference named in step 3, else step 2's highest fit rating, else step 2's first "
                 "named (named = the phrase or all its content words on one line); LLM-only: the LANE preference "
                 "closest (encoder cosine) to the first preference it names")


# -- weight fidelity: which preference does an answer rank first? -----------------------------------------------
@dataclass
class RankedFirst:
    index: int | None  # the preference (index into the phrases) the answer ranks first; None: unparseable
    how: str  # "step3-first-named" | "step2-highest-fit" | "step2-first-named" | "unparseable"


def content_words(phrase: str) -> list[str]:
    words = [w for w in _WORD.findall(phrase.lower()) if w not in _FILLER]
    return words or _WORD.findall(phrase.lower())


def mention_position(segment: str, phrase: str) -> int | None:
    """Where ``phrase`` is first named in ``segment`` (case-insensitive): the phrase itself, else the first
    place where all its content words stand within one line; None when it is not named."""
    lowered = segment.lower()
    exact = lowered.find(phrase.lower().strip())
    if exact >= 0:
        return exact
    words = content_words(phrase)
    if not words:
        return None
    offset = 0
    for line in lowered.splitlines(keepends=True):
        tokens = set(_WORD.findall(line))
        if all(w in tokens for w in words):
            return offset + min(m.start() for w in words for m in re.finditer(rf"(?<![a-z0-9]){re.escape(w)}", line))
        offset += len(line)
    return None


def step_sections(text: str) -> dict[int, str]:
    """The text of each 'Step N:' section of an answer (the last occurrence of a step wins)."""
    marks = list(_STEP.finditer(text))
    return {int(m.group(1)): text[m.end(): marks[k + 1].start() if k + 1 < len(marks) else len(text)]
            for k, m in enumerate(marks)}


def _mentions(segment: str, phrases: list[str]) -> list[tuple[int, int]]:
    """(position, phrase index) of every phrase named in ``segment``, first named first; when two phrases are
    named at the same place the longer one wins."""
    found = [(pos, -len(p), j) for j, p in enumerate(phrases) if (pos := mention_position(segment, p)) is not None]
    return [(pos, j) for pos, _, j in sorted(found)]


def _fit_ratings(segment: str, phrases: list[str]) -> dict[int, float]:
    """Per phrase, the first number in [0, 1] after its mention on the same line (step 2's fit rating)."""
    ratings: dict[int, float] = {}
    for line in segment.splitlines():
        for pos, j in _mentions(line, phrases):
            if j in ratings:
                continue
            number = _NUMBER.search(line, pos + 1)
            if number is not None:
                ratings[j] = float(number.group(1))
    return ratings


def ranked_first(text: str, phrases: list[str]) -> RankedFirst:
    """The preference an explanation ranks first, parsed from its step 2/3 text.

    Rule, in order: (1) step 3 (fit x weight -> probability, with a reason) names the preference that drives
    the verdict first: the first of ``phrases`` it names; (2) else step 2's preference with the highest fit
    rating (a number in [0, 1] after the preference on its line; ties: first named); (3) else the first
    preference step 2 names; (4) else unparseable. A preference is named by its phrase or by all of its
    content words on one line (``interest in Drama`` is named by "Drama"). Answers without step markers are
    read as one step-3 section.
    """
    sections = step_sections(text)
    step3 = sections.get(3, text if not sections else "")
    step2 = sections.get(2, "")
    named = _mentions(step3, phrases)
    if named:
        return RankedFirst(named[0][1], "step3-first-named")
    ratings = _fit_ratings(step2, phrases)
    if ratings:
        order = {j: k for k, (_, j) in enumerate(_mentions(step2, phrases))}
        return RankedFirst(max(ratings, key=lambda j: (ratings[j], -order.get(j, 0))), "step2-highest-fit")
    named = _mentions(step2, phrases)
    if named:
        return RankedFirst(named[0][1], "step2-first-named")
    return RankedFirst(None, "unparseable")


# -- grounding ----------------------------------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def closest_title_similarity(phrase_vectors: np.ndarray, title_vectors: np.ndarray) -> np.ndarray:
    """(n_phrases,) cosine similarity of each phrase to its closest title (-1 when there is no title)."""
    if len(phrase_vectors) == 0:
        return np.zeros(0)
    if len(title_vectors) == 0:
        return np.full(len(phrase_vectors), -1.0)
    return (_unit(phrase_vectors) @ _unit(title_vectors).T).max(axis=1)


def calibrate_threshold(phrase_vectors: list[np.ndarray], owners: list[int], histories: dict[int, np.ndarray],
                        rng: np.random.Generator, quantile: float = GROUNDING_QUANTILE) -> float:
    """The ``quantile`` of phrase-to-closest-title similarities when the phrases of each user (``owners[k]``
    wrote ``phrase_vectors[k]``) are matched against the training titles of another user drawn at random from
    ``histories`` (user -> title vectors; a history the phrases were not written from): a phrase above it is
    closer to its own history than ``quantile`` of chance matches are."""
    pool = [u for u, v in histories.items() if len(v)]
    null = []
    for owner, vectors in zip(owners, phrase_vectors):
        choices = [u for u in pool if u != owner]
        if len(vectors) and choices:
            null.append(closest_title_similarity(vectors, histories[choices[int(rng.integers(len(choices)))]]))
    if not null:
        raise ValueError("grounding calibration needs phrases and another user with a training history")
    return float(np.quantile(np.concatenate(null), quantile))


def grounding(phrase_vectors: list[np.ndarray], title_vectors: list[np.ndarray], threshold: float) -> dict:
    """The share of phrases (over all users) whose closest own-history title is above ``threshold``."""
    sims = [closest_title_similarity(p, t) for p, t in zip(phrase_vectors, title_vectors) if len(p)]
    flat = np.concatenate(sims) if sims else np.zeros(0)
    per_user = [float(np.mean(s > threshold)) for s in sims]
    return {"phrases": int(flat.size), "users": len(sims), "threshold": threshold,
            "rate": float(np.mean(flat > threshold)) if flat.size else None,
            "mean_user_rate": float(np.mean(per_user)) if per_user else None,
            "mean_similarity": float(flat.mean()) if flat.size else None}


# -- the whole measurement ----------------------------------------------------------------------------------
def _encode_lists(encoder, lists: list[list[str]]) -> list[np.ndarray]:
    flat = [t for texts in lists for t in texts]
    vectors = encoder.encode(flat, show_progress=False) if flat else np.zeros((0, 1))
    out, row = [], 0
    for texts in lists:
        out.append(np.asarray(vectors[row:row + len(texts)]))
        row += len(texts)
    return out


def sample_users(candidates: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A fixed random sample (``seed``) of ``n`` of the ``candidates`` (user indices), in sampled order: the
    first k of a sample of n are the sample of k."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.asarray(candidates))[:n]


def _fidelity(picks: list[int | None], weights: list[np.ndarray], how: list[str]) -> dict:
    parsed = [(p, w) for p, w in zip(picks, weights) if p is not None]
    hits = [bool(p == int(np.argmax(w))) for p, w in parsed]
    chance = [1.0 / len(w) for _, w in parsed]
    return {"answers": len(picks), "parsed": len(parsed), "unparseable": len(picks) - len(parsed),
            "rate": float(np.mean(hits)) if hits else None, "chance_rate": float(np.mean(chance)) if chance else None,
            "how": {h: how.count(h) for h in sorted(set(how))}}


@dataclass
class BothAnswers:
    """One user's LANE chain of thought and LLM-only answer, what each ranks first, and what they cost."""

    lane_text: str | None  # None: the chat model gave no answer
    lane_pick: RankedFirst
    lane_phrases: list[str]
    llm_text: str | None
    llm_named: list[str]
    llm_pick: int | None  # the LANE preference closest to the first one the LLM-only answer names
    llm_how: str
    seconds: float
    cpu_lane: float  # CPU seconds of this process (0 for an answer from the chat cache)
    cpu_llm: float
    errors: dict
    cut_at_cap: dict[str, bool]  # "lane", "llm_only": the answer stopped at the explanation_max_tokens limit

    def record(self) -> dict:
        pick = self.lane_pick.index
        return {"lane_answer": self.lane_text or self.errors.get("lane"),
                "lane_ranked_first": None if pick is None else self.lane_phrases[pick],
                "llm_only_answer": self.llm_text or self.errors.get("llm_only"), "llm_only_named": self.llm_named,
                "answers_cut_at_cap": [name for name, cut in self.cut_at_cap.items() if cut]}


def _explain_both(chat, encoder, shown: list[str], target: str, phrases: list[str], weights: np.ndarray,
                  phrase_vectors: np.ndarray, n_preferences: int, max_tokens: int) -> BothAnswers:
    from lucidrec.explain.lane import chain_of_thought
    from lucidrec.explain.llm_only import llm_only_explanation, named_preferences

    started, cpu = time.perf_counter(), time.process_time()
    cot = chain_of_thought(chat, shown, phrases, weights, target, max_tokens=max_tokens)
    cpu_lane, cpu = time.process_time() - cpu, time.process_time()
    only = llm_only_explanation(chat, shown, target, n_preferences, max_tokens=max_tokens)
    cpu_llm = time.process_time() - cpu
    lane_text, llm_text = cot.get("text"), only.get("text")
    pick = ranked_first(lane_text, phrases) if lane_text is not None else RankedFirst(None, "no answer")
    names = named_preferences(llm_text, n_preferences) if llm_text is not None else []
    llm_pick, llm_how = None, "unparseable" if llm_text is not None else "no answer"
    if names:
        sims = _unit(encoder.encode(names[:1], show_progress=False)) @ _unit(phrase_vectors).T
        llm_pick, llm_how = int(np.argmax(sims[0])), "closest LANE preference to the first named"
    errors = {k: v["error"] for k, v in (("lane", cot), ("llm_only", only)) if "error" in v}
    return BothAnswers(lane_text, pick, phrases, llm_text, names, llm_pick, llm_how, time.perf_counter() - started,
                       cpu_lane, cpu_llm, errors, {"lane": bool(cot.get("cut_at_cap")),
                                                   "llm_only": bool(only.get("cut_at_cap"))})


def lane_quality(run: Path, *, users: int = 200, generate: int = 40, seed: int = 0, chat=None, encoder=None,
                 loaded=None, progress=None) -> dict:
    """The explanation metrics of a LANE run, LANE vs the LLM-only explainer (see the module doc)."""
    from lucidrec.config import validate_config
    from lucidrec.embeddings.lane.config import LaneConfig
    from lucidrec.explain.contributions import all_scores, top_items, user_state
    from lucidrec.explain.lane import HISTORY_SHOWN, LaneExplainer
    from lucidrec.explain.lane_deletion import deletion_summary
    from lucidrec.train.run import load_run

    say = progress or (lambda message: None)
    model, data, split, run_config = loaded or load_run(Path(run))
    config = validate_config(LaneConfig, {k: v for k, v in run_config.embedding.items() if k != "name"},
                             "embedding 'lane'")
    if encoder is None:
        from lucidrec.lm.encoder import TextEncoder

        encoder = TextEncoder(config.encoder, cache_dir=config.cache_dir, show_progress=False)
    if chat is None and generate > 0:
        chat = LaneExplainer()._chat(config)
    phrases_of = model.items.phrases
    mask = model.state_hook.mask.numpy()
    candidates = np.array([u for u in range(data.n_users) if mask[u].sum() >= 1 and phrases_of.get(u)])
    sample = sample_users(candidates, users, seed)
    title = lambda i: data.catalog.title(str(data.item_ids[i])) or f"item {data.item_ids[i]}"  # noqa: E731
    train_titles = [[title(i) for i in split.train[int(u)]] for u in range(data.n_users)]

    # The recommendation explained: the top item after the full history, as `lucidrec explain` shows it.
    histories, items, weights = [], [], []
    for u in sample:
        history = [int(i) for i in data.sequences[int(u)]]
        state = user_state(model, history, int(u))
        w = model.state_hook.last_weights[0].double().numpy()[: len(phrases_of[int(u)])]
        histories.append(history)
        items.append(int(top_items(all_scores(model, state, history), 1)[0]))
        weights.append(w)
    say(f"deletion test on {len(sample)} users")
    deletion = deletion_summary(model, Ragged.from_lists(histories), sample, np.array(items), seed=seed)

    say("grounding calibration")
    rng = np.random.default_rng(seed + 1)
    title_vectors_all = {}

    def title_vectors(users_: np.ndarray) -> list[np.ndarray]:
        missing = [int(u) for u in users_ if int(u) not in title_vectors_all]
        for u, v in zip(missing, _encode_lists(encoder, [train_titles[u] for u in missing])):
            title_vectors_all[u] = v
        return [title_vectors_all[int(u)] for u in users_]

    lane_phrases = [phrases_of[int(u)] for u in sample]
    lane_vectors = _encode_lists(encoder, lane_phrases)
    own_titles = title_vectors(sample)
    # Random users' histories for the null: drawn from every user with a training history.
    pool = np.flatnonzero(split.train.lengths() > 0)
    others = rng.choice(pool, size=min(len(pool), max(2 * len(sample), 2)), replace=False)
    null_titles = title_vectors(others)
    null_pool = dict(zip((int(u) for u in others), null_titles))
    lane_threshold = calibrate_threshold(lane_vectors, [int(u) for u in sample], null_pool, rng)
    lane_grounding = grounding(lane_vectors, own_titles, lane_threshold)

    per_user = [{"user_id": str(data.user_ids[int(u)]), "item_id": str(data.item_ids[i]),
                 "preferences": {p: float(x) for p, x in zip(lane_phrases[k], weights[k])}}
                for k, (u, i) in enumerate(zip(sample, items))]
    result = {"run": str(run), "seed": seed, "users": int(len(sample)),
              "recommended_item": "the top-1 item from the full history (as lucidrec explain shows it)",
              "lane": {"deletion": deletion, "grounding": lane_grounding},
              "grounding_rule": f"phrase supported when its cosine similarity to the closest title of the user's "
                                f"training history exceeds the {GROUNDING_QUANTILE:.0%} quantile of phrase-to-"
                                "closest-title similarities against random other users' histories (calibrated per "
                                "explainer on its own phrases)",
              "fidelity_rule": FIDELITY_RULE}
    n_gen = min(generate, len(sample))
    if n_gen == 0:
        result["per_user"] = per_user
        return result
    answers = []
    for k in range(n_gen):
        shown = [title(i) for i in histories[k][-HISTORY_SHOWN:]]
        answers.append(_explain_both(chat, encoder, shown, title(items[k]), lane_phrases[k], weights[k],
                                     lane_vectors[k], config.n_preferences, config.explanation_max_tokens))
        per_user[k].update(answers[-1].record())
        say(f"generated explanations {k + 1}/{n_gen} ({answers[-1].seconds:.1f} s; CPU {answers[-1].cpu_lane:.1f} s "
            f"LANE, {answers[-1].cpu_llm:.1f} s LLM-only)")
    result["generated_users"] = n_gen
    result["endpoint"] = chat.endpoint
    result["answers_cut_at_cap"] = {"max_tokens": config.explanation_max_tokens,
                                    **{name: sum(a.cut_at_cap[name] for a in answers) for name in ("lane", "llm_only")}}
    result["seconds_per_user_both_explainers"] = float(np.mean([a.seconds for a in answers]))
    result["cpu_seconds_per_answer"] = {"lane": float(np.mean([a.cpu_lane for a in answers])),
                                        "llm_only": float(np.mean([a.cpu_llm for a in answers]))}
    result["lane"]["fidelity"] = {**_fidelity([a.lane_pick.index for a in answers], weights[:n_gen],
                                              [a.lane_pick.how for a in answers]),
                                  "chat_errors": sum(a.lane_text is None for a in answers)}
    llm_named = [a.llm_named for a in answers]
    llm_vectors = _encode_lists(encoder, llm_named)
    named_users = [k for k in range(n_gen) if len(llm_vectors[k])]
    llm_result = {"fidelity": {**_fidelity([a.llm_pick for a in answers], weights[:n_gen],
                                           [a.llm_how for a in answers]),
                               "chat_errors": sum(a.llm_text is None for a in answers)},
                  "users_naming_preferences": len(named_users),
                  "preferences_named": int(sum(len(n) for n in llm_named))}
    if named_users:
        own = [own_titles[k] for k in named_users]
        named = [llm_vectors[k] for k in named_users]
        threshold = calibrate_threshold(named, [int(sample[k]) for k in named_users], null_pool,
                                        np.random.default_rng(seed + 2))
        llm_result["grounding"] = grounding(named, own, threshold)
    result["llm_only"] = llm_result
    result["lane"]["grounding_generated_users"] = grounding(lane_vectors[:n_gen], own_titles[:n_gen], lane_threshold)
    result["per_user"] = per_user
    return result
