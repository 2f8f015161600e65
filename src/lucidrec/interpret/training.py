"""Training the adapter: AdamW on the adapter's parameters only, LM cross-entropy on the answers.

Every step draws its batch from a seeded per-epoch permutation and its prompt from the train
templates with a generator seeded by the step, so a run resumed from ``checkpoint.pt`` (adapter,
optimizer and scheduler state, step) continues exactly where the killed one stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lucidrec.files import atomic_torch_save
from lucidrec.interpret.config import OptimConfig
from lucidrec.interpret.interpreter import Interpreter

CHECKPOINT = "checkpoint.pt"
ADAPTER = "adapter.pt"
LOG = "log.jsonl"


@dataclass
class TrainingResult:
    status: str  # "done"; "stopped" when max_minutes ended it first; "interrupted" (stop_after_steps, tests)
    steps: int
    seconds: float
    tokens_per_second: float
    final_loss: float | None


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    return max(1, -(-n_examples // batch_size))


def batch_rows(step: int, n_examples: int, batch_size: int, seed: int) -> np.ndarray:
    per_epoch = steps_per_epoch(n_examples, batch_size)
    epoch, within = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_examples)
    return order[within * batch_size:(within + 1) * batch_size]


def batch_template(step: int, templates: tuple[str, ...], seed: int) -> str:
    return templates[int(np.random.default_rng([seed, 1_000_003, step]).integers(len(templates)))]


def train_adapter(interpreter: Interpreter, states: torch.Tensor, answers: list[list[int]], templates: tuple[str, ...],
                  config: OptimConfig, out: Path, progress: bool = True,
                  stop_after_steps: int | None = None) -> TrainingResult:
    """Train (or continue from ``out/checkpoint.pt``) and write ``out/adapter.pt``. ``stop_after_steps``
    simulates a kill: the checkpoint is written, the adapter is not."""
    out = Path(out)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    adapter = interpreter.adapter
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.2, total_iters=max(1, config.warmup_steps))
    total = steps_per_epoch(len(answers), config.batch_size) * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    step, elapsed = 0, 0.0
    if (out / CHECKPOINT).is_file():
        saved = torch.load(out / CHECKPOINT, weights_only=True)
        adapter.load_state_dict(saved["adapter"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step, elapsed = saved["step"], saved["elapsed"]
    adapter.train()
    started, tokens, losses, status = time.perf_counter(), 0, [], "done"
    bar = tqdm(total=total, initial=step, desc="adapter", disable=not progress, unit="step")
    while step < total:
        if stop_after_steps is not None and step >= stop_after_steps:
            bar.close()
            _checkpoint(out, adapter, optimizer, scheduler, step, elapsed + time.perf_counter() - started)
            return TrainingResult("interrupted", step, elapsed + time.perf_counter() - started, 0.0, None)
        if config.max_minutes is not None and elapsed + time.perf_counter() - started > 60 * config.max_minutes:
            status = "stopped"
            break
        rows = batch_rows(step, len(answers), config.batch_size, config.seed)
        template = batch_template(step, templates, config.seed)
        batch_answers = [answers[int(r)] for r in rows]
        loss = interpreter.loss(template, states[torch.as_tensor(rows)], batch_answers)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        losses.append(loss.item())
        tokens += len(rows) * interpreter.layout(template).body_length + sum(len(a) for a in batch_answers)
        rate = tokens / max(time.perf_counter() - started, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{rate:.0f}")
        if step % config.checkpoint_every == 0 or step == total:
            _checkpoint(out, adapter, optimizer, scheduler, step, elapsed + time.perf_counter() - started)
            _log(out, step=step, loss=float(np.mean(losses[-config.checkpoint_every:])), tokens_per_second=rate,
                 seconds=elapsed + time.perf_counter() - started)
    bar.close()
    seconds = elapsed + time.perf_counter() - started
    _checkpoint(out, adapter, optimizer, scheduler, step, seconds)
    atomic_torch_save(adapter.state_dict(), out / ADAPTER)
    adapter.eval()
    rate = tokens / max(time.perf_counter() - started, 1e-9)
    return TrainingResult(status, step, seconds, rate, losses[-1] if losses else None)


def _checkpoint(out: Path, adapter, optimizer, scheduler, step: int, elapsed: float) -> None:
    atomic_torch_save({"adapter": adapter.state_dict(), "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict(), "step": step, "elapsed": elapsed}, out / CHECKPOINT)


def _log(out: Path, **values) -> None:
    with open(out / LOG, "a") as handle:
        handle.write(json.dumps(values) + "\n")
