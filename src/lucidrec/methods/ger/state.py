"""The GER state of a run: attributes, item (and user) scores, z-scores, the reduced base table, PCA.

:func:`compute_state` makes what ``<run>/ger/`` holds (written by the recipe with
:func:`lucidrec.embeddings.ger.state_files.write_state`); :func:`auto_base_run` trains (or reuses) the
id-based ``base_model`` run with the same data, train and eval config, cached under
``<cache>/ger/base/<dataset>-<model>-<config hash>/`` (resumable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from lucidrec.config import ConfigError
from lucidrec.embeddings.ger.attributes import AttributeSet, domain_for_dataset, load_attributes, resolve_attributes
from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.embeddings.ger.normalise import zscore
from lucidrec.embeddings.pca import reduce_table
from lucidrec.errors import DataFormatError
from lucidrec.files import read_json
from lucidrec.lm.text import build_item_texts
from lucidrec.locks import hold
from lucidrec.methods.ger import scorers
from lucidrec.methods.ger.attribute_draft import DraftConfig, draft_for_run
from lucidrec.methods.ger.tuning import history_profiles, tune_and_rescore
from lucidrec.settings import user_cache_dir
from lucidrec.train import checkpoint
from lucidrec.train.run import RunConfig, build_config, train_run

log = logging.getLogger(__name__)


def cache_root(config: GERConfig) -> Path:
    return Path(config.cache_dir).expanduser() if config.cache_dir else user_cache_dir()


def item_texts(data, config: GERConfig) -> tuple[list[str], np.ndarray]:
    """Texts of items 1..n (cut to ``max_text_chars``) and which of them have no text at all."""
    ids = [str(i) for i in data.item_ids[1:]]
    built = build_item_texts(data.catalog, ids, config.scorer.text_form, exclude=config.scorer.text_exclude)
    missing = np.isin(ids, built.fallback_ids)
    return [t[: config.scorer.max_text_chars] for t in built.texts], missing


def history_texts(data, train, config: GERConfig, users: np.ndarray) -> list[str]:
    """One line per item (title, else the item text) of each user's last ``user_window`` training items."""
    titles = [data.catalog.title(str(i)) or f"item {i}" for i in data.item_ids]
    return ["\n".join(f"- {titles[i][:120]}" for i in train[int(u)][-config.user.window:]) for u in users]


def score_items(config: GERConfig, attributes: AttributeSet, texts: list[str], missing: np.ndarray):
    """Raw (n, m) scores for the texts (NaN where missing) and the scorer's statistics."""
    todo = np.flatnonzero(~missing)
    if config.scorer.kind == "encoder":
        scorer = scorers.EncoderScorer(attributes, model=config.scorer.encoder, cache_dir=config.cache_dir)
    else:
        chat = scorers.create_chat(config.scorer.llm, config.cache_dir)
        scorer = scorers.make_llm_scorer(attributes, chat, config.scorer.method, batch_size=config.scorer.batch_size,
                                         max_reasks=config.scorer.max_reasks)
    result = scorer.score([texts[i] for i in todo])
    scorers.require_scores(result, scorer, stage="GER item scoring", unit="items", allowed_share=config.scorer.max_failed,
                           fallback="z = 0 (the attribute mean)")
    raw = np.full((len(texts), len(attributes)), np.nan)
    raw[todo] = result.raw
    stats = {"scorer": result.scorer, "range": [result.low, result.high], **result.stats}
    return raw, stats


def score_users(config: GERConfig, attributes: AttributeSet, data, split) -> tuple[np.ndarray, dict]:
    """LLM user priors (z-scored over users) from the training history text; NaN for users without one."""
    prior = np.full((data.n_users, len(attributes)), np.nan)
    users = np.flatnonzero(split.train.lengths() > 0)
    chat = scorers.create_chat(config.scorer.llm, config.cache_dir)
    scorer = scorers.make_llm_scorer(attributes, chat, config.scorer.method, users=True, batch_size=config.scorer.batch_size,
                                     max_reasks=config.scorer.max_reasks)
    result = scorer.score(history_texts(data, split.train, config, users))
    scorers.require_scores(result, scorer, stage="GER user scoring", unit="users", allowed_share=config.scorer.max_failed,
                           fallback="the history prior")
    normalised = zscore(result.raw)
    prior[users[~normalised.missing]] = normalised.z[~normalised.missing]
    return prior, {"scorer": result.scorer, **result.stats, "users_without_prior": int(np.isnan(prior).any(axis=1).sum())}


def load_base_table(run: Path, data) -> np.ndarray:
    run = Path(run)
    path = run / "item_table.npy"
    if not path.is_file():
        raise DataFormatError(path, "base run has no item table (is it finished?)")
    info = read_json(run / "data.json") if (run / "data.json").is_file() else {}
    if info.get("data_hash") not in (None, data.data_hash):
        raise ConfigError(f"base run {run} was trained on different data (hash {info.get('data_hash')} != "
                          f"{data.data_hash}); use a base run with the same data config")
    table = np.load(path).astype(np.float32)
    if table.shape[0] != data.n_items + 1:
        raise DataFormatError(path, f"has {table.shape[0]} rows, the data has {data.n_items + 1} item indices")
    return table


def base_run_config(config: GERConfig, run_config: RunConfig, dim: int) -> tuple[RunConfig, Path]:
    """The id-based base run behind a GER run without ``base.run``: its config and cached folder."""
    model = dict(run_config.model) if run_config.model["name"] == config.base.model else {"name": config.base.model, "hidden": dim}
    train = run_config.train.model_dump(mode="json")
    if config.base.epochs:
        train["epochs"] = config.base.epochs
    values = {"data": run_config.data.model_dump(mode="json"), "model": model, "embedding": {"name": "id"},
              "train": train, "eval": run_config.eval.model_dump(mode="json")}
    base = build_config(values)
    identity = base.model_dump(mode="json")
    identity["train"].pop("progress", None)
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return base, cache_root(config) / "ger" / "base" / f"{run_config.data.dataset}-{config.base.model}-{digest}"


def auto_base_run(config: GERConfig, run_config: RunConfig, dim: int) -> Path:
    """Train (or reuse, or resume) the id-based base run with the same data, train and eval config."""
    base, out = base_run_config(config, run_config, dim)
    if (out / "item_table.npy").is_file() and (out / "metrics.json").is_file():
        return out
    with hold(out, wait=True):  # shared by every run of this data and config: one process trains it, others wait
        if (out / "item_table.npy").is_file() and (out / "metrics.json").is_file():
            return out
        log.warning("GER: training the base run %s (no embedding.base.run given)", out)
        state = np.random.get_state()
        with torch.random.fork_rng():  # the refined run's own initialisation must not depend on this
            result = train_run(base, out, resume=checkpoint.exists(out))
        np.random.set_state(state)
    if result.get("status") != "done":
        raise ConfigError(f"the GER base run {out} did not finish")
    return out


def user_profile_scale(guided: np.ndarray, train, config: GERConfig) -> float:
    """1 / RMS of the training users' history profiles (recency-weighted means of z-scores)."""
    histories = [train[u] for u in range(len(train)) if len(train[u])]
    profiles = history_profiles(guided, histories, config.user.window, config.user.recency_decay)
    rms = float(np.sqrt(np.mean(np.square(profiles)))) if len(profiles) else 0.0
    return 1.0 / rms if rms > 1e-6 else 1.0


def compute_state(config: GERConfig, context, dim: int, base_run: Path | None = None,
                  tuning: tuple[Path, str] | None = None):
    """Scores, z-scores, the reduced base and the user priors of a run. ``base_run``: the finished run
    whose item table is reduced (modes refined and reduced); ``tuning`` = (folder, key) of the scorer
    tuning (``tuning.enabled``: its checkpoints and adapter; the key names the run state)."""
    data, split = context.data, context.split
    run_config = getattr(context, "config", None)
    dataset = run_config.data.dataset if run_config is not None else data.name
    texts, missing = item_texts(data, config)
    if config.attributes or domain_for_dataset(dataset) is not None:
        attributes = load_attributes(config.attributes) if config.attributes else resolve_attributes(None, dataset)
    else:  # no known set: draft one from the item texts, kept in the run folder
        run_dir = getattr(context, "run_dir", None)
        attributes = draft_for_run([t for t, m in zip(texts, missing) if not m], dataset,
                                   Path(run_dir) / "ger" if run_dir is not None else None,
                                   DraftConfig(encoder=config.scorer.encoder, cache_dir=config.cache_dir))
    m = len(attributes)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"attributes": attributes.to_dict(), "mode": config.mode, "dim": dim, "m": m}
    started = time.perf_counter()
    if config.mode == "reduced":  # the ablation without a guided block: nothing to score
        raw = np.full((data.n_items, m), np.nan)
        meta["scoring"] = {"scorer": None}
    elif config.scorer.scores_path:
        with np.load(config.scorer.scores_path) as stored:
            if "raw" not in stored.files:
                raise DataFormatError(config.scorer.scores_path, f"no 'raw' array (has: {', '.join(stored.files)}); "
                                      "give the scores.npz a GER run wrote", field="raw")
            raw = stored["raw"]
        if raw.shape != (data.n_items, m):
            raise DataFormatError(config.scorer.scores_path, f"scores of shape {raw.shape}, expected {(data.n_items, m)}")
        meta["scoring"] = {"scorer": "file", "path": config.scorer.scores_path}
    else:
        raw, meta["scoring"] = score_items(config, attributes, texts, missing)
    meta["scoring"]["wall_seconds"] = round(time.perf_counter() - started, 3)
    guided, normalised = _normalised(raw, missing, config)
    meta["items"] = {"n": data.n_items, "without_text": int(missing.sum()), "without_score": normalised.n_missing,
                     "fallback": "z = 0 (the attribute mean)"}
    scale = config.guided.scale
    if config.mode != "guided":
        if base_run is None:
            raise ValueError(f"GER mode '{config.mode}' needs a base run (the recipe's base_run stage)")
        base = Path(base_run)
        table = load_base_table(base, data)
        arrays["reduced"], pca = reduce_table(table, dim - m)
        arrays["pca_components"] = pca.components.astype(np.float32)
        meta["base"] = {"run": str(base), "dim": int(table.shape[1]), "pca_dims": dim - m,
                        "explained_variance": float(pca.explained.sum())}
        scale = scale or float(np.sqrt(np.mean(table[1:] ** 2)))
    meta["guided_scale"] = scale or 0.1
    meta["user_scale"] = user_profile_scale(guided, split.train, config)
    if config.tuning.enabled:
        if tuning is None:
            raise ValueError("tuning.enabled needs a folder for its checkpoints: build the embedding through build_ger")
        folder, key = tuning
        arrays["raw_zero_shot"] = raw
        meta["scoring_zero_shot"] = meta["scoring"]
        raw, meta["scoring"], meta["scorer_tuning"] = tune_and_rescore(
            config, attributes, texts, missing, normalised, guided, Path(meta["base"]["run"]), meta["guided_scale"],
            meta["user_scale"], context, folder, key)
        guided, normalised = _normalised(raw, missing, config)
        meta["items"]["without_score"] = normalised.n_missing
        meta["user_scale"] = user_profile_scale(guided, split.train, config)
    arrays.update(raw=raw, guided=guided, missing=normalised.missing, mean=normalised.mean, std=normalised.std)
    if config.user.init == "llm" and config.mode != "reduced":
        arrays["user_prior"], meta["user_scoring"] = score_users(config, attributes, data, split)
    return arrays, meta, attributes


def _normalised(raw: np.ndarray, missing: np.ndarray, config: GERConfig):
    """(guided table with row 0 = padding, the z-scoring) of raw item scores."""
    normalised = zscore(raw, missing) if config.mode != "reduced" else zscore(np.zeros_like(raw))
    guided = np.zeros((raw.shape[0] + 1, raw.shape[1]), np.float32)
    guided[1:] = normalised.z
    return guided, normalised
