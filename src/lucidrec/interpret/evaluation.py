"""Measuring what the LM reads from the states, on held-out users only.

- residual: free generation (normalised title contained in the answer; token-F1 >= threshold) and
  likelihood ranking of every distinct catalog title given the soft tokens (top-1 / top-10 against
  chance 1/K and 10/K, K = distinct titles), on a fixed random sample of held-out users;
- recovery: correct titles per generated answer (distribution, mean, share above 5);
- controls: the same adapter fed the states of another held-out user (a fixed derangement: it should
  fall to chance), and the linear probe from states to sentence-encoder title vectors; for reference,
  the same probe onto the recommender's own item vectors (does the state hold the item at all?);
- instantiation (residual): the backbone's next-item state fed as the "after" state; how often the
  title the LM names is the backbone's top-1 / in its top-10 (and, for reference, the last item).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from lucidrec.interpret.config import EvaluationConfig
from lucidrec.interpret.examples import Examples
from lucidrec.interpret.interpreter import Interpreter
from lucidrec.interpret.probe import LinearProbe, probe_features
from lucidrec.interpret.titles import CatalogTitles, contains_title, token_f1

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    metrics: dict = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)
    instantiation: list[dict] = field(default_factory=list)


def derangement(n: int, seed: int) -> np.ndarray:
    """A permutation with no fixed point: row i takes the states of row perm[i] != i."""
    if n < 2:
        raise ValueError("the shuffled-user control needs at least 2 held-out users")
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, 1)
    return perm


def sample_rows(n: int, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def test_template(templates: tuple[str, ...], row: int) -> str:
    """Held-out rows cycle through the test prompts (fixed per row)."""
    return templates[row % len(templates)]


def generate_answers(interpreter: Interpreter, states: torch.Tensor, rows: np.ndarray, templates: tuple[str, ...],
                     max_new_tokens: int, batch_size: int, desc: str, progress: bool) -> dict[int, str]:
    answers: dict[int, str] = {}
    by_template: dict[str, list[int]] = {}
    for row in rows:
        by_template.setdefault(test_template(templates, int(row)), []).append(int(row))
    bar = tqdm(total=len(rows), desc=desc, disable=not progress)
    for template, members in by_template.items():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            for row, text in zip(chunk, interpreter.generate(template, states[torch.as_tensor(chunk)], max_new_tokens)):
                answers[row] = text
            bar.update(len(chunk))
    bar.close()
    return answers


def likelihood_ranks(interpreter: Interpreter, states: torch.Tensor, rows: np.ndarray, targets: np.ndarray,
                     candidates: list[list[int]], templates: tuple[str, ...], chunk: int, desc: str,
                     progress: bool, cap: int | None = None) -> np.ndarray:
    """0-based rank of each row's target among the candidates (number of candidates scored higher;
    ``cap`` when at least ``cap`` are)."""
    ranks = np.empty(len(rows), dtype=np.int64)
    bar = tqdm(total=len(rows), desc=desc, disable=not progress, unit="user")
    started, tokens = time.perf_counter(), [0]

    def count(n: int) -> None:
        tokens[0] += n
        bar.set_postfix(tok_s=f"{tokens[0] / max(time.perf_counter() - started, 1e-9):.0f}")

    for i, row in enumerate(rows):
        template = test_template(templates, int(row))
        ranks[i] = int(interpreter.target_ranks(template, states[int(row):int(row) + 1], candidates, [int(targets[i])],
                                                chunk, cap, count)[0])
        bar.update(1)
    bar.close()
    return ranks


def rank_metrics(prefix: str, ranks: np.ndarray, n_candidates: int, cap: int | None = None) -> dict:
    """top-1 / top-10 (exact when ``cap`` is None or >= 10); the mean rank only from uncapped ranks."""
    metrics = {f"{prefix}/top1": float(np.mean(ranks < 1)), f"{prefix}/n_users": int(len(ranks))}
    if cap is None or cap >= 10:
        metrics[f"{prefix}/top10"] = float(np.mean(ranks < 10))
    if cap is None:
        metrics[f"{prefix}/mean_rank"] = float(np.mean(ranks + 1))
    return metrics


def recovery_counts(answers: dict[int, str], targets: list[list[int]], titles: CatalogTitles) -> np.ndarray:
    counts = []
    for row, answer in sorted(answers.items()):
        wanted = list(dict.fromkeys(titles[i] for i in targets[row]))
        counts.append(sum(contains_title(answer, t) for t in wanted))
    return np.asarray(counts, dtype=np.int64)


def recovery_metrics(prefix: str, counts: np.ndarray, k: int) -> dict:
    return {f"{prefix}/mean": float(counts.mean()) if len(counts) else float("nan"),
            f"{prefix}/share_over_5": float(np.mean(counts > 5)) if len(counts) else float("nan"),
            f"{prefix}/distribution": np.bincount(counts, minlength=k + 1).tolist(), f"{prefix}/n_users": int(len(counts))}


def evaluate_interpreter(interpreter: Interpreter, task: str, heldout: Examples, states: torch.Tensor,
                         train: Examples, train_states: torch.Tensor, titles: CatalogTitles,
                         templates: tuple[str, ...], config: EvaluationConfig, *, title_vectors=None,
                         instantiation_states: torch.Tensor | None = None, backbone_top: np.ndarray | None = None,
                         last_items: np.ndarray | None = None, item_vectors: np.ndarray | None = None,
                         progress: bool = True) -> Evaluation:
    """``title_vectors``: a callable texts -> (n, e) array for the probe (None: the configured encoder).
    ``instantiation_states`` (B, 2, positions, d) with ``backbone_top`` (B, 10) item indices: the
    residual prompt fed with the backbone's next-item state, for the first B held-out rows.
    ``item_vectors`` (n_items + 1, d): the backbone's item table, for the item-vector probe (residual)."""
    result = Evaluation()
    metrics = result.metrics
    k_recovery = max(len(t) for t in heldout.targets)
    n = len(heldout)
    shuffled = states[torch.as_tensor(derangement(n, config.seed))]
    max_new = config.max_new_tokens or (32 if task == "residual" else 24 * k_recovery)
    gen_rows = sample_rows(n, config.generate_users, config.seed)
    started = time.perf_counter()
    answers = generate_answers(interpreter, states, gen_rows, templates, max_new, config.generate_batch, "generate", progress)
    control = generate_answers(interpreter, shuffled, gen_rows, templates, max_new, config.generate_batch,
                               "generate (shuffled)", progress)
    metrics["seconds/generation"] = time.perf_counter() - started
    distinct, title_index = titles.distinct()
    if task == "residual":
        for prefix, outputs in (("residual/generation", answers), ("shuffled/generation", control)):
            hits = [contains_title(outputs[r], titles[heldout.targets[r][0]]) for r in gen_rows]
            fuzzy = [token_f1(outputs[r], titles[heldout.targets[r][0]]) >= config.f1_threshold for r in gen_rows]
            metrics.update({f"{prefix}/match": float(np.mean(hits)), f"{prefix}/f1_match": float(np.mean(fuzzy)),
                            f"{prefix}/n_users": len(gen_rows)})
        candidates = [interpreter.lm.encode_answer(t) for t in distinct]
        rank_rows = sample_rows(n, config.rank_users, config.seed)
        targets = np.asarray([title_index[heldout.targets[r][0]] for r in rank_rows])
        started = time.perf_counter()
        ranks = likelihood_ranks(interpreter, states, rank_rows, targets, candidates, templates, config.rank_chunk,
                                 "rank titles", progress, config.rank_cap)
        control_ranks = likelihood_ranks(interpreter, shuffled, rank_rows, targets, candidates, templates,
                                         config.rank_chunk, "rank titles (shuffled)", progress, config.rank_cap)
        metrics["seconds/likelihood"] = time.perf_counter() - started
        metrics.update(rank_metrics("residual/likelihood", ranks, len(distinct), config.rank_cap))
        metrics.update(rank_metrics("shuffled/likelihood", control_ranks, len(distinct), config.rank_cap))
        metrics["likelihood_rank_cap"] = config.rank_cap
        metrics.update({"chance/top1": 1 / len(distinct), "chance/top10": min(1.0, 10 / len(distinct)),
                        "candidates": len(distinct), "likelihood_users_sampled": bool(len(rank_rows) < n)})
        rank_of = dict(zip(rank_rows.tolist(), ranks.tolist()))
    else:
        counts = recovery_counts({r: answers[r] for r in gen_rows}, heldout.targets, titles)
        control_counts = recovery_counts({r: control[r] for r in gen_rows}, heldout.targets, titles)
        metrics.update(recovery_metrics("recovery/generation", counts, k_recovery))
        metrics.update(recovery_metrics("shuffled/generation", control_counts, k_recovery))
        rank_of = {}
    for r in gen_rows[:50]:
        case = {"row": int(r), "template": test_template(templates, int(r)), "answer": answers[int(r)],
                "shuffled_answer": control[int(r)], "target": [titles[i] for i in heldout.targets[int(r)]]}
        if int(r) in rank_of:
            case["likelihood_rank"] = rank_of[int(r)] + 1
        result.cases.append(case)
    if config.probe:
        metrics.update(_probe(task, heldout, states, train, train_states, titles, distinct, title_index, config,
                              title_vectors, k_recovery))
        if task == "residual" and item_vectors is not None:
            metrics.update(_item_probe(heldout, states, train, train_states, item_vectors, config))
    if task == "residual" and instantiation_states is not None:
        metrics.update(_instantiation(interpreter, instantiation_states, backbone_top, last_items, titles, templates,
                                      max_new, config, result, progress))
    metrics["heldout_users"] = n
    metrics["titles_missing"] = titles.missing
    return result


def _probe(task, heldout, states, train, train_states, titles, distinct, title_index, config, title_vectors, k) -> dict:
    if title_vectors is None:
        from lucidrec.lm.encoder import TextEncoder

        encoder = TextEncoder(config.probe_encoder)
        title_vectors = lambda texts: encoder.encode(texts, show_progress=False)  # noqa: E731
    vectors = np.asarray(title_vectors(distinct), dtype=np.float64)

    def target_vector(targets: list[int]) -> np.ndarray:
        return vectors[[title_index[i] for i in targets]].mean(axis=0)

    probe = LinearProbe(config.probe_ridge).fit(probe_features(train_states.numpy()),
                                                np.stack([target_vector(t) for t in train.targets]))
    similarities = probe.similarities(probe_features(states.numpy()), vectors)
    if task == "residual":
        targets = np.asarray([title_index[t[0]] for t in heldout.targets])
        ranks = (similarities > similarities[np.arange(len(targets)), targets][:, None]).sum(axis=1)
        return rank_metrics("probe", ranks, len(distinct))
    nearest = np.argsort(-similarities, axis=1)[:, :k]
    counts = np.asarray([len({title_index[i] for i in t} & set(nearest[row].tolist()))
                         for row, t in enumerate(heldout.targets)])
    return recovery_metrics("probe", counts, k)


def _item_probe(heldout, states, train, train_states, item_vectors, config) -> dict:
    """The probe onto the backbone's item vectors (padding row 0 excluded), ranked over items, not titles."""
    vectors = np.asarray(item_vectors, dtype=np.float64)
    probe = LinearProbe(config.probe_ridge).fit(probe_features(train_states.numpy()),
                                                vectors[[t[0] for t in train.targets]])
    similarities = probe.similarities(probe_features(states.numpy()), vectors)
    similarities[:, 0] = -np.inf
    targets = np.asarray([t[0] for t in heldout.targets])
    ranks = (similarities > similarities[np.arange(len(targets)), targets][:, None]).sum(axis=1)
    return rank_metrics("probe_items", ranks, len(vectors) - 1)


def named_title(answer: str, titles: CatalogTitles) -> int | None:
    """The item index whose title the answer names: contained in it (longest such title), else best token-F1."""
    contained = [i for i in range(1, len(titles) + 1) if contains_title(answer, titles[i])]
    if contained:
        return max(contained, key=lambda i: len(titles[i]))
    scores = [token_f1(answer, titles[i]) for i in range(1, len(titles) + 1)]
    best = int(np.argmax(scores))
    return best + 1 if scores[best] > 0 else None


def _instantiation(interpreter, states, backbone_top, last_items, titles, templates, max_new, config, result,
                   progress) -> dict:
    rows = np.arange(len(states))
    answers = generate_answers(interpreter, states, rows, templates, max_new, config.generate_batch, "instantiate", progress)
    top1, top10, last = [], [], []
    for r in rows:
        named = named_title(answers[int(r)], titles)
        top = [titles[i] for i in backbone_top[r]]
        is_named = lambda title: named is not None and titles[named] == title  # noqa: E731
        top1.append(is_named(top[0]))
        top10.append(any(is_named(t) for t in top))
        last.append(is_named(titles[int(last_items[r])]))
        if r < 50:
            result.instantiation.append({"row": int(r), "answer": answers[int(r)],
                                         "named": titles[named] if named is not None else None,
                                         "backbone_top1": top[0], "backbone_top10": top,
                                         "last_item": titles[int(last_items[r])]})
    return {"instantiation/named_is_top1": float(np.mean(top1)), "instantiation/named_in_top10": float(np.mean(top10)),
            "instantiation/named_is_last_item": float(np.mean(last)), "instantiation/n_users": len(rows)}
