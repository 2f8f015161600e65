"""The training loop: Adam(W), early stopping on validation NDCG@10, checkpoints every epoch.

Reproducibility and resume: every source of randomness of epoch ``e`` (user order, negatives,
masks, dropout) is seeded from ``(seed, e)``, so a run resumed from the checkpoint of epoch ``e``
continues exactly as the uninterrupted run would have (tested).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from lucidrec.config import ConfigError, StrictConfig
from lucidrec.data.split import Split
from lucidrec.eval.evaluator import EvalConfig, evaluate
from lucidrec.files import trim_log
from lucidrec.models.backbone import Backbone
from lucidrec.models.scoring import DotProductScorer
from lucidrec.train import checkpoint
from lucidrec.train.batches import epoch_batches, history_widths, trainable_users, training_batch
from lucidrec.train.losses import CeImplementation, LossName, next_item_loss
from lucidrec.train.negatives import NegativeSampler, SampledSoftmaxConfig


#: Default negatives per loss when ``n_negatives`` is not given. ``ce`` ignores the count; it keeps 256,
#: the old shared default, so the recorded configs of earlier CE runs still match on ``--resume``.
NEGATIVES_BY_LOSS = {"bce": 1, "sampled_softmax": 256, "ce": 256}


class TrainConfig(StrictConfig):
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "adamw"] = "adam"
    loss: LossName = Field("ce", description="ce (full softmax, the published well-tuned setting), sampled_softmax (large "
                           "catalogs; options under train.sampled_softmax) or bce")
    n_negatives: int | None = Field(None, ge=1, description="negatives per position (bce) or per batch (sampled_softmax); "
                                    "default 1 for bce (SASRec's original loss, RecBole's default) and 256 for sampled_softmax")
    sampled_softmax: SampledSoftmaxConfig = Field(
        default_factory=SampledSoftmaxConfig, description="how the sampled softmax draws and corrects its negatives")
    length_bucketing: int = Field(
        0, ge=0, description="0: batches of users in random order; k > 0: within each group of k batches of the "
        "shuffled users, rows of similar history length are batched together and the batches shuffled, so less "
        "padding is computed (a new grouping every epoch; batch composition changes, so the trajectory does)")
    ce_implementation: CeImplementation = Field(
        "chunked", description="how the ce loss is computed: chunked (the gradient formed chunk by chunk, never the whole "
        "logits matrix; faster) or dense (F.cross_entropy on all logits); equal up to float rounding")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: the backbone's forward and backward run under torch.autocast and the ce loss's "
        "matrix products in bfloat16 (softmax, loss and optimizer state stay float32); faster on CPUs with bfloat16 "
        "instructions (AVX512-BF16, AMX), a different trajectory from float32. Evaluation always runs in float32")
    patience: int = Field(10, ge=1, description="epochs without a better validation NDCG@10 before stopping")
    select_on: Literal["full", "full_unmasked"] = Field(
        "full", description="the validation protocol whose NDCG@10 early stopping reads: full (history items masked) "
        "or full_unmasked (history items left in, as RecBole evaluates sequential models; for side-by-side comparisons); "
        "log.jsonl's valid_ndcg10 is this protocol's")
    eval_every: int = Field(1, ge=1)
    seed: int = 42
    threads: int | None = Field(None, description="torch intra-op threads (default: torch's choice)")
    history_window: Literal["latest", "random"] = Field(
        "latest", description="which max_len items of a longer training history make a user's row: the latest "
        "(SASRec's original), or a window ending at a random point, drawn each epoch, so older items are trained on too")
    grad_clip: float | None = Field(5.0, description="max gradient norm; None disables clipping")
    aux_weight: float = Field(1.0, ge=0, description="weight of the item embedding's auxiliary loss, if it has one")
    progress: bool = Field(True, description="epoch lines on stdout, and a batch progress bar when stderr is a terminal")

    @model_validator(mode="after")
    def _default_negatives(self):
        # Resolved here so config.json records the count a run used; ce ignores it.
        if self.n_negatives is None:
            self.n_negatives = NEGATIVES_BY_LOSS[self.loss]
        return self


@dataclass
class EpochLog:
    epoch: int
    loss: float
    valid_ndcg10: float | None
    seconds: float  # training only
    sequences_per_second: float
    elapsed: float  # wall time since this fit() call started, validation included

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def scorer_for(model: Backbone) -> DotProductScorer:
    """Score with the model's current item table; user vectors from the last position's state."""
    table = model.item_table().detach()
    return DotProductScorer(table, lambda history, users: model.user_vectors(history, users))


def negative_sampler(cfg: TrainConfig, model: Backbone, split: Split) -> NegativeSampler | None:
    """The sampled softmax's sampler for this run (checked before the first epoch); None for other losses."""
    if cfg.loss != "sampled_softmax":
        return None
    return NegativeSampler(cfg.sampled_softmax, model.n_items, cfg.n_negatives, split.item_counts())


def next_item_step_loss(wrapped, model: Backbone, inputs: torch.Tensor, targets: torch.Tensor, users: np.ndarray,
                        cfg: TrainConfig, generator: torch.Generator,
                        sampler: NegativeSampler | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch's next-item loss under ``cfg``'s loss, ce implementation and precision; also the per-position
    states (float32) and the targets of the positions that have one, for auxiliary and extra losses.
    ``sampler``: the run's :func:`negative_sampler` (built from ``cfg`` without training counts when not given)."""
    if sampler is None and cfg.loss == "sampled_softmax":
        sampler = NegativeSampler(cfg.sampled_softmax, model.n_items, cfg.n_negatives)
    low_precision = cfg.precision == "bfloat16"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision):
        states = wrapped(inputs, torch.as_tensor(users))
    states = states.float()  # losses, auxiliary terms and extra losses see float32 states
    where = targets != 0
    flat_targets = targets[where]
    loss = next_item_loss(cfg.loss, states[where], flat_targets, model.items, model.n_items, cfg.n_negatives, generator,
                          cfg.ce_implementation, torch.bfloat16 if low_precision else torch.float32, sampler)
    return loss, states, flat_targets


class Trainer:
    def __init__(self, config: TrainConfig, eval_config: EvalConfig | None = None,
                 extra_losses: list[Callable] | None = None):
        self.config = config
        # Early stopping reads validation NDCG@10 under full ranking (select_on), whatever eval.ks and protocols ask for.
        eval_config = eval_config or EvalConfig()
        self.eval_config = eval_config.model_copy(update={"protocols": (config.select_on,), "topk": 0,
                                                          "ks": tuple(sorted(set(eval_config.ks) | {10}))})
        self.extra_losses = extra_losses or []

    def validate(self, model: Backbone, split: Split) -> float:
        model.eval()
        with torch.no_grad():
            result = evaluate(scorer_for(model), split, "valid", self.eval_config)
        return result.metrics[f"valid/{self.config.select_on}/ndcg@10"]

    def fit(self, model: Backbone, split: Split, run_dir: Path | None = None, identity: dict | None = None,
            resume: bool = False, stop_after_epochs: int | None = None) -> list[EpochLog]:
        """Train with early stopping. ``identity`` (config + data hash) is stored in checkpoints and
        checked on resume. ``stop_after_epochs`` ends the call early (to simulate a killed run)."""
        cfg = self.config
        if len(split.valid) == 0:  # early stopping needs validation users; fail before the first epoch, not after it
            raise ConfigError("the validation part of the split has no users, so early stopping has nothing to "
                             "select on; check data.split (e.g. min_length, or the temporal cut-offs)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        rank, world = _world()
        optimizer_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        optimizer = optimizer_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        wrapped = model
        if world > 1:
            wrapped = torch.nn.parallel.DistributedDataParallel(
                model, find_unused_parameters=model.bypasses_encoder)
        state = checkpoint.TrainState()
        if resume and run_dir is not None and checkpoint.exists(run_dir):
            state = checkpoint.restore(run_dir, model, optimizer, identity or {})
        if run_dir is not None and rank == 0:
            # Epochs logged after the last checkpoint (a kill between the two writes) are run again.
            trim_log(run_dir / "log.jsonl", "epoch", state.epoch)
        history: list[EpochLog] = []
        users = trainable_users(split.train, model.objective)
        sampler = negative_sampler(cfg, model, split)
        epochs_run = 0
        fit_started = time.perf_counter()
        for epoch in range(state.epoch, cfg.epochs):
            if state.bad_epochs >= cfg.patience:
                break
            started = time.perf_counter()
            loss = self._epoch(wrapped, model, optimizer, split, users, epoch, rank, world, sampler)
            seconds = time.perf_counter() - started
            valid = None
            if (epoch + 1) % cfg.eval_every == 0:
                valid = self.validate(model, split)
                if valid > state.best_metric:
                    state.best_metric, state.best_epoch, state.bad_epochs = valid, epoch, 0
                    if run_dir is not None and rank == 0:
                        checkpoint.save_weights(run_dir / checkpoint.BEST, model)
                else:
                    state.bad_epochs += 1
            state.epoch = epoch + 1
            log = EpochLog(epoch, loss, valid, seconds, len(users) / seconds, time.perf_counter() - fit_started)
            history.append(log)
            if run_dir is not None and rank == 0:
                with open(run_dir / "log.jsonl", "a") as handle:
                    handle.write(json.dumps(log.as_dict()) + "\n")
                checkpoint.save(run_dir, model, optimizer, state, identity or {})
            if cfg.progress and rank == 0:
                best = f" best {state.best_metric:.4f}@{state.best_epoch}" if state.best_epoch >= 0 else ""
                tqdm.write(f"epoch {epoch:3d} loss {loss:.4f} valid ndcg@10 {valid if valid is not None else float('nan'):.4f}"
                           f"{best} ({seconds:.1f}s, {log.sequences_per_second:.0f} seq/s)")
            epochs_run += 1
            if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                break
        self.state = state
        return history

    def _epoch(self, wrapped, model: Backbone, optimizer, split: Split, users: np.ndarray, epoch: int,
               rank: int, world: int, sampler: NegativeSampler | None = None) -> float:
        cfg = self.config
        seed = [cfg.seed, epoch]
        torch.manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        numpy_rng = np.random.default_rng(seed)
        torch_rng = torch.Generator().manual_seed(int(np.random.SeedSequence([*seed, 1]).generate_state(1)[0]))
        order = numpy_rng.permutation(users)
        if world > 1:  # equal shards, so every process runs the same number of steps
            per_rank = math.ceil(len(order) / world)
            order = np.resize(order, per_rank * world)[rank::world]
        model.train()
        total, steps = 0.0, 0
        widths = history_widths(split.train, order, model) if cfg.length_bucketing else None
        batches = epoch_batches(order, cfg.batch_size, cfg.length_bucketing, widths, numpy_rng)
        # disable=None: tqdm draws no bar when stderr is not a terminal (a log file gets the epoch lines only).
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=True if not cfg.progress or rank != 0 else None)
        for batch_users in bar:
            inputs, targets = training_batch(model, split.train, batch_users, cfg.history_window, numpy_rng)
            loss, states, flat_targets = next_item_step_loss(wrapped, model, inputs, targets, batch_users, cfg, torch_rng,
                                                             sampler)
            auxiliary = model.items.auxiliary_loss(flat_targets)
            if auxiliary is not None:
                loss = loss + cfg.aux_weight * auxiliary
            for extra in self.extra_losses:
                loss = loss + extra(model, inputs, targets, states)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            steps += 1
            bar.set_postfix(loss=f"{total / steps:.4f}")
        return total / max(steps, 1)
