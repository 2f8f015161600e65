"""Drafting an attribute set for a dataset that ships none (``lucidrec attributes draft``).

Two ways to the same result, an :class:`AttributeSet` written as a TOML file in the format of the
shipped sets (``attributes/*.toml``), which :func:`load_attributes` reads back and a person can edit:

- ``llm``: a chat model (:mod:`lucidrec.lm`) reads a sample of item texts and proposes 6-10 named
  attributes with a low and a high anchor sentence each; the JSON answer is validated against a
  schema and re-asked a bounded number of times (:func:`lucidrec.lm.structured.complete_structured`),
  and valid answers are cached, so a second call makes no model call.
- ``encoder``: offline and deterministic. Item texts are embedded with the sentence encoder and
  clustered (k-means); each cluster becomes one attribute, named by its most characteristic TF-IDF
  words. The high anchor lists the cluster's characteristic words, the low anchor the words most
  characteristic of the other items, so the encoder scorer (cos to high - cos to low) measures how much
  an item looks like that cluster rather than the rest.

``auto`` (the default) uses the LLM when a chat model is configured and the encoder otherwise; when
the LLM's answers never validate it falls back to the encoder and says so in :attr:`Draft.notes`.
The local default chat model (SmolLM2-135M) is not used unless asked for: it cannot write a valid set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lucidrec.config import StrictConfig
from lucidrec.embeddings.ger.attributes import Attribute, AttributeSet, load_attributes, parse_attributes
from lucidrec.errors import LucidrecError
from lucidrec.files import write_text_atomic
from lucidrec.methods.ger.scorers import EncoderScorer

log = logging.getLogger(__name__)

MIN_ATTRIBUTES, MAX_ATTRIBUTES = 6, 10
DRAFT_PROMPT = "attribute_draft"
#: file name of a drafted set inside a run's ``ger/`` folder
RUN_FILE = "attributes.toml"
#: Words that describe packaging, units or HTML residue, not what an item is; they would otherwise
#: name clusters of catalogues with many "Pack of 3, 12 Ounce" titles.
NOISE_WORDS = frozenset({
    "amp", "quot", "nbsp", "pack", "packs", "ounce", "ounces", "oz", "fl", "ml", "lb", "lbs", "count", "ct", "piece",
    "pieces", "pcs", "inch", "inches", "size", "new", "set", "edition", "version", "item", "items", "product",
})

DraftMethod = Literal["auto", "llm", "encoder"]


class DraftError(LucidrecError, ValueError):
    """No attribute set could be drafted (too few texts, an LLM whose answers never validated, ...)."""


class DraftConfig(StrictConfig):
    """How an attribute set is drafted."""

    method: DraftMethod = Field("auto", description="llm, encoder, or auto = llm when `llm` is set, else encoder "
                                                    "(and encoder when the LLM's answers never validate)")
    n_attributes: int = Field(8, ge=MIN_ATTRIBUTES, le=MAX_ATTRIBUTES, description="attributes wanted (the encoder "
                                                                                  "makes exactly this many; an LLM 6-10)")
    llm: dict[str, Any] | None = Field(None, description="chat model config (lucidrec.lm.chat_config); None = the "
                                                         "local default model, used only with method='llm'")
    llm_items: int = Field(40, ge=5, description="item texts shown to the LLM")
    max_reasks: int = Field(2, ge=0, description="re-asks of an LLM answer that does not validate")
    encoder: str = Field("all-MiniLM-L6-v2", description="sentence encoder of the encoder method")
    max_items: int = Field(5000, ge=20, description="item texts clustered by the encoder method")
    top_words: int = Field(6, ge=2, le=20, description="characteristic words per anchor")
    seed: int = 0
    cache_dir: str | None = Field(None, description="cache root (default: the lucidrec user cache)")


@dataclass
class Draft:
    attributes: AttributeSet
    method: str  # "encoder-clusters" or "llm:<model id>"
    n_texts: int  # item texts the draft was made from
    notes: list[str] = field(default_factory=list)


# -- the LLM's answer ------------------------------------------------------------------------------

class DraftedAttribute(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=40)
    description: str = Field(min_length=1, max_length=200)
    low: str = Field(min_length=1, max_length=200)
    high: str = Field(min_length=1, max_length=200)

    @field_validator("name", "description", "low", "high")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("must be one line")
        return value

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if ":" in value or '"' in value:
            raise ValueError("must not contain ':' or '\"'")
        return value


class DraftedSet(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    noun: str = Field(min_length=1, max_length=40)
    attributes: list[DraftedAttribute] = Field(min_length=MIN_ATTRIBUTES, max_length=MAX_ATTRIBUTES)

    @model_validator(mode="after")
    def _unique_names(self):
        names = [a.name.lower() for a in self.attributes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"attribute names must be unique; repeated: {', '.join(repeated)}")
        return self


# -- drafting ----------------------------------------------------------------------------------------

def sample_texts(texts: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """Up to ``n`` distinct non-empty texts, chosen reproducibly (same texts + seed = same sample)."""
    unique = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
    if len(unique) <= n:
        return unique
    chosen = np.random.default_rng(seed).choice(len(unique), size=n, replace=False)
    return [unique[i] for i in sorted(chosen)]


def draft_with_llm(texts: Sequence[str], dataset: str, config: DraftConfig, chat=None) -> tuple[AttributeSet, str]:
    """Ask a chat model for a set; ``(set, model id)``. Raises :class:`DraftError` when no answer validates."""
    from lucidrec.lm.chat import create_chat_model
    from lucidrec.lm.prompts import load_prompt
    from lucidrec.lm.structured import complete_structured

    if chat is None:
        llm = {"backend": "transformers", **(config.llm or {})}
        if config.cache_dir and "cache" not in llm:
            llm["cache"] = {"dir": config.cache_dir}
        if llm.get("backend") == "recorded":
            llm.setdefault("key_field", "dataset")  # a recorded file holds one answer per dataset
        chat = create_chat_model(llm, show_progress=False)
    shown = sample_texts(texts, config.llm_items, config.seed)
    if not shown:
        raise DraftError(f"dataset '{dataset}' has no item text to draft attributes from")
    prompt = load_prompt(DRAFT_PROMPT).render(
        dataset=dataset, n_min=MIN_ATTRIBUTES, n_max=MAX_ATTRIBUTES, items="\n".join(f"- {t[:150]}" for t in shown))
    result = complete_structured(chat, [prompt], DraftedSet, max_reasks=config.max_reasks, keys=[dataset],
                                 show_progress=False, max_tokens=1200)
    if not result.ok:
        failure = result.failures[0]
        raise DraftError(f"the LLM ({chat.model_id}) gave no valid attribute set in {failure.attempts} attempt(s): "
                         f"{failure.error}")
    answer: DraftedSet = result.values[0]
    data = {"domain": dataset, "noun": answer.noun, "version": "1",
            "attributes": [a.model_dump() for a in answer.attributes]}
    return parse_attributes(data, f"<LLM draft for {dataset}>"), chat.model_id


def _characteristic_words(texts: list[str], labels: np.ndarray, k: int, top: int):
    """Per cluster: (words most typical of it, words most typical of the other items), by mean TF-IDF."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | NOISE_WORDS), token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
                                 min_df=2 if len(texts) >= 50 else 1, max_df=0.5, sublinear_tf=True)
    try:
        weights = vectorizer.fit_transform(texts)
    except ValueError:  # every word is a stop word or too rare
        raise DraftError("the item texts have too few distinct words to name attributes by") from None
    vocabulary = vectorizer.get_feature_names_out()
    out = []
    for c in range(k):
        inside = labels == c
        mean_in = np.asarray(weights[inside].mean(axis=0)).ravel()
        mean_out = np.asarray(weights[~inside].mean(axis=0)).ravel() if (~inside).any() else np.zeros_like(mean_in)
        difference = mean_in - mean_out
        high = [vocabulary[i] for i in np.argsort(-difference) if difference[i] > 0][:top]
        low = [vocabulary[i] for i in np.argsort(difference) if difference[i] < 0][:top]
        out.append((high, low))
    return out


def draft_with_encoder(texts: Sequence[str], dataset: str, config: DraftConfig, encoder=None) -> AttributeSet:
    """Cluster the item texts' sentence vectors; one attribute per cluster, named by its TF-IDF words."""
    from sklearn.cluster import KMeans

    k = config.n_attributes
    sample = sample_texts(texts, config.max_items, config.seed)
    if len(sample) < 3 * k:
        raise DraftError(f"dataset '{dataset}' has {len(sample)} distinct item texts; drafting {k} attributes from "
                         f"clusters needs at least {3 * k}")
    if encoder is None:
        from lucidrec.lm.encoder import TextEncoder

        encoder = TextEncoder(config.encoder, cache_dir=config.cache_dir, show_progress=False)
    vectors = np.asarray(encoder.encode(sample), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=k, n_init=10, random_state=config.seed).fit_predict(vectors)
    words = _characteristic_words(sample, labels, k, config.top_words)
    attributes, used = [], set()
    # Largest clusters first: they get the plainest names when two clusters share their top words.
    for c in sorted(range(k), key=lambda c: (-int((labels == c).sum()), c)):
        high, low = words[c]
        if not high:
            continue
        name_words = [w for w in high if w not in used][:2] or high[:2]
        name = " / ".join(name_words)
        if name.lower() in {a.name.lower() for a in attributes}:
            name = f"{name} {c + 1}"
        used.update(name_words)
        share = float((labels == c).mean())
        attributes.append(Attribute(
            name=name,
            description=f"how much the item is like the {share:.0%} of items about {', '.join(high[:4])}",
            low=f"an item about {', '.join(low)}" if low else "an item unlike these",
            high=f"an item about {', '.join(high)}",
        ))
    if len(attributes) < MIN_ATTRIBUTES:
        raise DraftError(f"only {len(attributes)} clusters of dataset '{dataset}' have characteristic words; "
                         f"at least {MIN_ATTRIBUTES} are needed")
    return AttributeSet(dataset, "item", "1", tuple(attributes), f"<encoder draft for {dataset}>")


def draft_attributes(texts: Sequence[str], dataset: str, config: DraftConfig | None = None, *, chat=None,
                     encoder=None) -> Draft:
    """A drafted set for ``dataset`` from its item ``texts`` (``chat``/``encoder``: models to use instead
    of building them from the config, e.g. in tests)."""
    config = config or DraftConfig()
    texts = [t for t in texts if t and t.strip()]
    use_llm = config.method == "llm" or (config.method == "auto" and (config.llm is not None or chat is not None))
    notes: list[str] = []
    if use_llm:
        try:
            attributes, model_id = draft_with_llm(texts, dataset, config, chat)
            return Draft(attributes, f"llm:{model_id}", min(len(set(texts)), config.llm_items), notes)
        except DraftError as exc:
            if config.method == "llm":
                raise
            notes.append(f"{exc}; drafted from encoder clusters instead")
    attributes = draft_with_encoder(texts, dataset, config, encoder)
    return Draft(attributes, "encoder-clusters", min(len(set(texts)), config.max_items), notes)


# -- files -------------------------------------------------------------------------------------------

def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes): no TOML writer is needed for flat tables.
    return json.dumps(value, ensure_ascii=False)


def to_toml(attributes: AttributeSet, header: Sequence[str] = ()) -> str:
    """The set in the format of the shipped files (comments first, then domain/noun/version, then tables)."""
    lines = [f"# {line}" for line in header]
    lines += [f"domain = {_toml_string(attributes.domain)}", f"noun = {_toml_string(attributes.noun)}",
              f"version = {_toml_string(attributes.version)}"]
    for a in attributes.attributes:
        lines += ["", "[[attributes]]"] + [f"{key} = {_toml_string(getattr(a, key))}"
                                           for key in ("name", "description", "low", "high")]
    return "\n".join(lines) + "\n"


def draft_header(draft: Draft, dataset: str) -> list[str]:
    return [f"GER attribute set for dataset '{dataset}', drafted by `lucidrec attributes draft` "
            f"({draft.method}, from {draft.n_texts} item texts).",
            "Edit freely: names are shown in explanations; low/high are the anchors, what a low and a high score "
            "mean (also the encoder scorer's anchor sentences). Use it with --set embedding.attributes=THIS_FILE.",
            *draft.notes]


def write_attributes(attributes: AttributeSet, path: Path, header: Sequence[str] = ()) -> AttributeSet:
    """Write atomically (a failed call leaves no partial file) and read back with the loader."""
    write_text_atomic(Path(path), to_toml(attributes, header))
    return load_attributes(path)


def draft_for_run(texts: Sequence[str], dataset: str, folder: Path | None, config: DraftConfig | None = None) -> AttributeSet:
    """The attribute set of a GER run on a dataset without a known set: the one drafted earlier into
    ``folder`` (``<run>/ger/attributes.toml``), else a new draft written there."""
    path = Path(folder) / RUN_FILE if folder is not None else None
    if path is not None and path.is_file():
        return load_attributes(path)
    draft = draft_attributes(texts, dataset, config)
    where = "not stored (no run folder)"
    if path is not None:
        write_attributes(draft.attributes, path, draft_header(draft, dataset))
        where = f"written to {path}"
    log.warning("GER: no attribute set is known for dataset '%s': drafted %d attributes (%s) from its item texts, %s; "
                "edit it and pass --set embedding.attributes=FILE to use your version.%s", dataset, len(draft.attributes),
                draft.method, where, "".join(f" {note}." for note in draft.notes))
    return draft.attributes if path is None else load_attributes(path)


# -- spot check --------------------------------------------------------------------------------------

@dataclass
class SpotCheckRow:
    text: str
    top: list[tuple[str, float]]  # (attribute, z-score), highest first
    bottom: list[tuple[str, float]]  # lowest first


def spot_check(attributes: AttributeSet, texts: Sequence[str], n: int = 10, *, per_item: int = 2, seed: int = 0,
               reference: int = 2000, encoder=None, cache_dir: str | None = None) -> list[SpotCheckRow]:
    """``n`` items with their highest and lowest attributes, scored as GER scores them by default (the
    encoder scorer, z-scored per attribute over up to ``reference`` items of the catalogue)."""

    pool = sample_texts(texts, max(reference, n), seed)
    if not pool:
        return []
    scorer = EncoderScorer(attributes, encoder, cache_dir=cache_dir)
    raw = scorer.score(pool).raw
    z = (raw - raw.mean(axis=0)) / np.maximum(raw.std(axis=0), 1e-12)
    names = attributes.names
    shown = np.random.default_rng(seed + 1).choice(len(pool), size=min(n, len(pool)), replace=False)
    rows = []
    for i in shown:
        order = np.argsort(-z[i])
        rows.append(SpotCheckRow(pool[i], [(names[j], float(z[i, j])) for j in order[:per_item]],
                                 [(names[j], float(z[i, j])) for j in order[::-1][:per_item]]))
    return rows
