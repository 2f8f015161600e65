"""SCFT: supervised contrastive fine-tuning of the item encoder on two attribute-dropout views per item.

One step takes a batch of items, builds two views of each (:mod:`prompts`), encodes the 2B prompts
in one forward pass, mean-pools, and applies the in-batch contrastive loss (InfoNCE or the code's
soft targets with a learnable τ). AdamW, linear warm-up then linear decay, gradient norm clipped
to 1. With ``lora`` only peft's LoRA matrices (and τ) train; they are merged before saving.

With ``pairs`` (rows of (item, next item) from the training interactions, :mod:`.interactions`) the
same loop tunes on interactions instead: a batch is a batch of pairs, the two "views" are the two
items' un-augmented prompts, and the other pairs of the batch are the negatives.

In-batch false negatives are masked in both: a column whose item text equals the text of the row's positive
(the same next item in two pairs, the same item in two pairs' first places, two catalog items with identical
text) is no negative for that row (:func:`lucidrec.embeddings.contrastive.false_negatives`).

Reproducibility and resume: the item order of epoch ``e`` comes from ``(seed, e)``, the views and
the dropout of step ``b`` from ``(seed, e, b)``, and the learning rate is a function of the step,
so a run continued from a checkpoint (trainable weights, τ, optimizer, step; written atomically
every ``scft_checkpoint_every`` steps) computes exactly what the uninterrupted run does (tested).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lucidrec.config import ConfigError
from lucidrec.files import replace_dir, trim_log
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.methods.llmemb.encoder import embed, load_encoder
from lucidrec.methods.llmemb.prompts import ItemPrompts, make_views
from lucidrec.lm.models import ModelLocation
from lucidrec.train.checkpoint import load_trainable, save_trainable
from lucidrec.embeddings.contrastive import contrastive_loss

STATE = "state.pt"
MODEL = "model"
LOG = "scft_log.jsonl"
GRAD_CLIP = 1.0


@dataclass
class SCFTResult:
    model_dir: Path
    steps: int
    seconds: float  # wall time of the whole SCFT (model loading and saving included), over all calls
    last_loss: float | None
    temperature: float
    finished: bool = True


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) % 2**32 for p in parts]).generate_state(1)[0])


def epoch_batches(items: np.ndarray, config: LLMEmbConfig, epoch: int) -> list[np.ndarray]:
    """The epoch's batches of item rows (or pair rows); a trailing batch of one (no negatives) is dropped."""
    order = np.random.default_rng([config.tuning.seed, epoch]).permutation(items)
    batches = [order[s:s + config.tuning.batch_size] for s in range(0, len(order), config.tuning.batch_size)]
    return [b for b in batches if len(b) >= 2]


def planned_steps(n_items: int, config: LLMEmbConfig) -> tuple[int, int]:
    """(steps per epoch, total steps)."""
    per_epoch = sum(1 for s in range(0, n_items, config.tuning.batch_size) if min(config.tuning.batch_size, n_items - s) >= 2)
    total = per_epoch * config.tuning.epochs
    return per_epoch, min(total, config.tuning.max_steps) if config.tuning.max_steps else total


def learning_rate(step: int, total: int, config: LLMEmbConfig) -> float:
    warmup = math.ceil(config.tuning.warmup_ratio * total)
    if step < warmup:
        return config.tuning.lr * (step + 1) / warmup
    return config.tuning.lr * max(0.0, (total - step) / max(1, total - warmup))


def step_views(prompts: ItemPrompts, rows: np.ndarray, config: LLMEmbConfig, epoch: int, index: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng([config.tuning.seed, epoch, index])
    pairs = [make_views(prompts.segments[row], config, rng) for row in rows]
    return [a for a, _ in pairs], [b for _, b in pairs]


def text_keys(prompts: ItemPrompts) -> np.ndarray:
    """One id per prompt row, equal for equal un-augmented texts: what identifies a copy of a positive."""
    return np.unique(np.array(prompts.texts, dtype=str), return_inverse=True)[1].astype(np.int64)


def has_duplicate_texts(prompts: ItemPrompts) -> bool:
    """Two items with text share one: only then does SCFT (on items) mask anything."""
    rows = prompts.with_text()
    return len(np.unique(text_keys(prompts)[rows])) < len(rows)


def batch_keys(keys: np.ndarray, rows: np.ndarray, pairs: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys of a batch's two sides: the items' own (SCFT) or the pairs' first and next items'."""
    if pairs is None:
        side = torch.from_numpy(keys[rows])
        return side, side
    chosen = pairs[rows]
    return torch.from_numpy(keys[chosen[:, 0] - 1]), torch.from_numpy(keys[chosen[:, 1] - 1])


def pair_views(prompts: ItemPrompts, pairs: np.ndarray) -> tuple[list[str], list[str]]:
    """The un-augmented prompts of each pair's two items (``pairs`` holds item indices, 1-based)."""
    return [prompts.texts[a - 1] for a in pairs[:, 0]], [prompts.texts[b - 1] for b in pairs[:, 1]]


def with_lora(model, config: LLMEmbConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.tuning.lora_r, lora_alpha=config.tuning.lora_alpha, lora_dropout=config.tuning.lora_dropout,
                      target_modules=config.tuning.lora_targets)
    return get_peft_model(model, lora)


def run_scft(config: LLMEmbConfig, prompts: ItemPrompts, out_dir: Path, *, location: ModelLocation, key: str,
             progress: bool = True, stop_after_steps: int | None = None, pairs: np.ndarray | None = None) -> SCFTResult:
    """Tune the encoder on ``prompts`` (or on ``pairs`` of item indices); the tuned weights go to
    ``out_dir/model`` (HF format).

    A checkpoint ``out_dir/state.pt`` of the same ``key`` is continued. ``stop_after_steps`` ends
    the call early (simulates a killed run; the result has ``finished=False``).
    """
    call_started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = prompts.with_text() if pairs is None else np.arange(len(pairs))
    if len(items) < 2:
        what = "items with text" if pairs is None else "training pairs of items with text"
        raise ConfigError(f"encoder tuning needs at least two {what}, found {len(items)}")
    per_epoch, total = planned_steps(len(items), config)
    keys = text_keys(prompts)
    model, tokenizer = load_encoder(location)
    if config.tuning.lora:
        model = with_lora(model, config)
    tau = torch.nn.Parameter(torch.tensor(config.tuning.effective_temperature())) if config.tuning.loss == "soft" else None
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([*trainable.values(), *([tau] if tau is not None else [])], lr=config.tuning.lr,
                                  weight_decay=config.tuning.weight_decay)
    start, earlier = 0, 0.0  # earlier: wall seconds of previous (interrupted) calls
    if (out_dir / STATE).is_file():
        start, earlier = _restore(out_dir / STATE, key, model, trainable, tau, optimizer)
    trim_log(out_dir / LOG, "step", start + 1)  # lines "step" > start were written after the last checkpoint

    def wall() -> float:
        return earlier + time.perf_counter() - call_started

    model.train()
    last_loss = None
    bar = tqdm(total=total, initial=start, desc="SCFT" if pairs is None else "interaction tuning", unit="step", disable=not progress, file=sys.stderr)
    batches, batches_epoch = None, -1
    for step in range(start, total):
        epoch, index = divmod(step, per_epoch)
        if epoch != batches_epoch:
            batches, batches_epoch = epoch_batches(items, config, epoch), epoch
        if pairs is None:
            first, second = step_views(prompts, batches[index], config, epoch, index)
        else:
            first, second = pair_views(prompts, pairs[batches[index]])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total, config)
        torch.manual_seed(_seed(config.tuning.seed, epoch, index, 1))
        pooled = embed(model, tokenizer, first + second, config.prompts.max_seq_length)
        x, y = pooled[: len(first)], pooled[len(first):]
        x_keys, y_keys = batch_keys(keys, batches[index], pairs)
        loss = contrastive_loss(config.tuning.loss, x, y, tau if tau is not None else config.tuning.effective_temperature(),
                                x_keys=x_keys, y_keys=y_keys)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(trainable.values()), GRAD_CLIP)
        optimizer.step()
        last_loss = float(loss.detach())
        done = step + 1
        with open(out_dir / LOG, "a") as handle:
            handle.write(json.dumps({"step": done, "epoch": epoch, "loss": last_loss,
                                     "lr": optimizer.param_groups[0]["lr"], "tau": _tau(tau, config)}) + "\n")
        bar.update(1)
        bar.set_postfix(loss=f"{last_loss:.4f}")
        if done % config.tuning.checkpoint_every == 0 or done == total:
            _save_state(out_dir / STATE, key, done, trainable, tau, optimizer, wall())
        if stop_after_steps is not None and done - start >= stop_after_steps and done < total:
            bar.close()
            _save_state(out_dir / STATE, key, done, trainable, tau, optimizer, wall())
            return SCFTResult(out_dir / MODEL, done, wall(), last_loss, _tau(tau, config), finished=False)
    bar.close()
    _save_model(model, tokenizer, out_dir / MODEL, config)
    return SCFTResult(out_dir / MODEL, total, wall(), last_loss, _tau(tau, config))


def finish(out_dir: Path) -> None:
    """Drop the resume checkpoint once the artifact is complete (it holds optimizer state: large)."""
    (Path(out_dir) / STATE).unlink(missing_ok=True)


def _tau(tau, config: LLMEmbConfig) -> float:
    return float(tau.detach()) if tau is not None else config.tuning.effective_temperature()


def _save_state(path: Path, key: str, step: int, trainable: dict, tau, optimizer, seconds: float) -> None:
    save_trainable(path, key, step, seconds, trainable, optimizer, tau=tau.detach().clone() if tau is not None else None)


def _restore(path: Path, key: str, model, trainable: dict, tau, optimizer) -> tuple[int, float]:
    payload = load_trainable(path, key, trainable, "SCFT")
    if tau is not None and payload.get("tau") is not None:
        with torch.no_grad():
            tau.copy_(payload["tau"])
    optimizer.load_state_dict(payload["optimizer"])
    return int(payload["step"]), float(payload.get("seconds", 0.0))


def _save_model(model, tokenizer, target: Path, config: LLMEmbConfig) -> None:
    if config.tuning.lora:
        model = model.merge_and_unload()
    model.eval()

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    replace_dir(target, write)
