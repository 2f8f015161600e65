"""Benchmark of the shared language-model layer: a measurement record.

    python bench/bench_lm.py --threads 1 [--data-dir DIR] [--record FILE]

Measures, on the machine it runs on:
1. TextEncoder cold (fresh cache) vs sentence-transformers ``model.encode`` directly, same batch
   size, on the amazon-beauty item titles; the overhead ratio; and a cached re-run.
2. SmolLM2-135M-Instruct greedy generation throughput at batch 1 vs batch 32 (tokens/s).
3. Probability-weighted scoring throughput (prompts/s, one forward pass per batch).
4. A 1,000-prompt generation batch re-run through the response cache: model calls and time.
Writes ``results/measurements/lm.json`` (``--record`` for another file): a table of the results as printed and
every raw figure under ``extra``; prints the table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

TOPICS = ["the sea", "a mountain village", "autumn leaves", "a busy market", "an old library", "a thunderstorm",
          "a train journey", "a lighthouse", "fresh bread", "a chess game", "a desert night", "a winter garden",
          "a jazz club", "a river at dawn", "a bicycle ride", "an orchard", "a city rooftop", "a snowy forest",
          "a fishing boat", "a quiet museum", "a street festival", "a bakery", "a volcano", "a coral reef",
          "a windmill", "a night train", "a tea house", "a castle ruin", "a flower market", "a harbour",
          "a meadow", "a rainy street"]


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def bench_encoder(data_dir: Path, batch_size: int, rows: list, results: dict) -> None:
    from lucidrec.data.dataset import ItemCatalog
    from lucidrec.lm.encoder import TextEncoder
    from lucidrec.lm.models import load_sentence_transformer, locate_encoder
    from lucidrec.lm.text import build_item_texts

    catalog = ItemCatalog(pd.read_parquet(data_dir / "amazon-beauty" / "items.parquet"))
    texts_all = build_item_texts(catalog, list(catalog.frame.index), "title")
    # The encoder de-duplicates texts; to compare like with like both sides get the unique texts.
    texts = list(dict.fromkeys(texts_all.texts))
    location = locate_encoder("all-MiniLM-L6-v2")
    model, load_s = timed(lambda: load_sentence_transformer(location))
    model.encode(texts[:256], batch_size=batch_size)  # warm-up
    direct_times, cold_times = [], []
    for _ in range(2):  # alternate the two so load changes on the shared machine hit both
        _, seconds = timed(lambda: model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                                show_progress_bar=False))
        direct_times.append(seconds)
        with tempfile.TemporaryDirectory() as cache_dir:
            encoder = TextEncoder(st_model=model, identity=location.identity, cache_dir=cache_dir,
                                  batch_size=batch_size, show_progress=False)
            _, seconds = timed(lambda: encoder.encode(texts))
        cold_times.append(seconds)
    direct, cold = min(direct_times), min(cold_times)
    with tempfile.TemporaryDirectory() as cache_dir:
        warm_up = TextEncoder(st_model=model, identity=location.identity, cache_dir=cache_dir, batch_size=batch_size,
                              show_progress=False)
        warm_up.encode(texts_all.texts)
        rerun = TextEncoder(cache_dir=cache_dir, show_progress=False)  # a new process would start like this
        vectors, cached = timed(lambda: rerun.encode(texts_all.texts))
        assert rerun._model is None and rerun.stats["model_calls"] == 0
    n = len(texts)
    rows += [
        ("encoder", f"sentence-transformers model.encode, {n} unique titles, batch {batch_size}",
         f"{direct:.1f} s ({n / direct:.0f} texts/s)", ""),
        ("encoder", "TextEncoder cold (fresh cache), same texts and batch", f"{cold:.1f} s ({n / cold:.0f} texts/s)",
         "overhead < 5%"),
        ("encoder", "TextEncoder overhead vs direct", f"{(cold / direct - 1) * 100:+.1f}%", "< 5%"),
        ("encoder", f"TextEncoder cached re-run, all {len(texts_all.texts)} titles, new object, model never loaded",
         f"{cached:.2f} s, 0 model calls", "< 2 s"),
    ]
    results["encoder"] = {"texts_unique": n, "texts_all": len(texts_all.texts), "fallback": texts_all.n_fallback,
                          "batch_size": batch_size, "direct_s": direct_times, "cold_s": cold_times,
                          "overhead": cold / direct - 1, "cached_rerun_s": cached, "model_load_s": load_s,
                          "dim": int(vectors.shape[1])}


def bench_chat(rows: list, results: dict, n_cache_prompts: int) -> None:
    from lucidrec.lm.chat.transformers_local import TransformersChatModel

    with tempfile.TemporaryDirectory() as cache_dir:
        chat, load_s = timed(lambda: TransformersChatModel(cache={"dir": cache_dir}, batch_size=32, show_progress=False))
        _, load_s = timed(chat.load)
        prompts = [f"Write a short paragraph about {topic}." for topic in TOPICS]
        chat.complete_many(prompts[:2], max_tokens=4, no_cache=True)  # warm-up

        singles = [TransformersChatModel(cache={"enabled": False}, batch_size=1, show_progress=False,
                                         hf_model=chat.model, hf_tokenizer=chat.tokenizer)]
        out, t1 = timed(lambda: singles[0].complete_many(prompts[:4], max_tokens=32))
        tok1 = sum(r.completion_tokens for r in out)
        out32, t32 = timed(lambda: chat.complete_many(prompts, max_tokens=32, no_cache=True))
        tok32 = sum(r.completion_tokens for r in out32)
        rate1, rate32 = tok1 / t1, tok32 / t32
        rows += [
            ("SmolLM2", "greedy generation, batch 1 (4 prompts x 32 new tokens)", f"{rate1:.1f} tokens/s", ""),
            ("SmolLM2", "greedy generation, batch 32 (32 prompts x 32 new tokens, left padding)",
             f"{rate32:.1f} tokens/s ({rate32 / rate1:.1f}x)", ">= 5x batch 1"),
        ]

        scale = "How calm is this scene: {topic}? Answer with one digit from 1 (chaotic) to 9 (very calm)."
        score_prompts = [scale.format(topic=t) for t in TOPICS * 2]
        digits = [str(i) for i in range(1, 10)]
        _, ts = timed(lambda: chat.score_choices(score_prompts, digits, no_cache=True))
        ten = [str(i) for i in range(1, 11)]
        _, tseq = timed(lambda: chat.score_choices(score_prompts[:32], ten, no_cache=True))
        rows += [
            ("SmolLM2", f"choice scoring 1-9, first token, one forward pass per 32 prompts ({len(score_prompts)} prompts)",
             f"{len(score_prompts) / ts:.1f} prompts/s", ""),
            ("SmolLM2", "choice scoring 1-10 ('10' = 2 tokens), sequence likelihood with a shared prompt cache (32 prompts)",
             f"{32 / tseq:.1f} prompts/s", ""),
        ]

        many = [f"Give a one-word title for {TOPICS[i % len(TOPICS)]} number {i}." for i in range(n_cache_prompts)]
        first, tfirst = timed(lambda: chat.complete_many(many, max_tokens=8))
        calls_before = chat.usage.model_calls
        again, tagain = timed(lambda: chat.complete_many(many, max_tokens=8))
        calls = chat.usage.model_calls - calls_before
        assert [a.text for a in first] == [b.text for b in again]
        rows += [
            ("cache", f"{n_cache_prompts} prompts, SmolLM2 max_tokens=8, first run (batch 32)",
             f"{tfirst:.1f} s, {n_cache_prompts} model calls", ""),
            ("cache", f"same {n_cache_prompts} prompts re-run through the response cache",
             f"{tagain:.2f} s, {calls} model calls", "0 model calls"),
        ]
        results["chat"] = {"load_s": load_s, "batch1_tokens": tok1, "batch1_s": t1, "batch32_tokens": tok32,
                           "batch32_s": t32, "speedup": rate32 / rate1, "score_prompts_per_s": len(score_prompts) / ts,
                           "score_sequence_prompts_per_s": 32 / tseq, "cache_first_s": tfirst,
                           "cache_rerun_s": tagain, "cache_rerun_model_calls": calls, "cache_prompts": n_cache_prompts,
                           "usage": chat.usage.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=64, help="encoder batch size (both sides)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--cache-prompts", type=int, default=1000)
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/lm.json)")
    args = parser.parse_args()

    import torch

    from lucidrec.settings import resolve_data_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    rows: list[tuple[str, str, str, str]] = []
    results: dict = {}
    if not args.skip_encoder:
        bench_encoder(data_dir, args.batch_size, rows, results)
    if not args.skip_chat:
        bench_chat(rows, results, args.cache_prompts)
    table = {"title": "Language-model layer", "rows": [list(row) for row in rows],
             "columns": [{"name": "part"}, {"name": "measurement"}, {"name": "result"}, {"name": "target"}],
             "note": "all-MiniLM-L6-v2 on the amazon-beauty item titles; SmolLM2-135M-Instruct (GGUF, de-quantised "
                     "to float32); raw figures in the record's `extra`."}
    record = build_measurement("lm", "Language-model layer", [table], threads=torch.get_num_threads(), extra=results)
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
