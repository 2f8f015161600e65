"""LoRA-tuning GER's attribute scorer on the recommendation loss (the paper's L_rec + lambda L_format).

The paper adapts its scoring LLM with LoRA on "a recommendation loss plus a format loss" (methods.md
§1.2, step 4; the exact L_rec was not retrieved). lucidrec's concrete choice, run once before the
catalog is scored (``tuning.enabled=true``):

- **the score being trained** is the refined model's score at its start: the frozen base run's score
  plus the attribute term, ``s(u, i) = <h_u, e_i> + c * <p_u, g_i(theta)>``. ``h_u`` is the base
  model's state after the user's training history without its last item, ``e_i`` the base item
  table, ``p_u`` the user guided profile (recency-weighted mean of the zero-shot z-scores of those
  history items, times the user scale, as in ``refined.py``), ``c`` the guided block's scale, and
  ``g_i(theta) = (E_theta[score_i] - mu) / sigma`` the LLM's expected scores over the digits 1..9,
  z-scored with the zero-shot catalog statistics (held fixed while tuning). So the attributes are
  pushed to carry what the base model's score misses;
- **L_rec**: softmax cross-entropy of each user's last *training* item against ``tune_negatives``
  items with text shared by the step (no validation or test interaction is used): uniform draws, or
  with ``tune_negatives_from="base_top"`` each user's best-scored items under the base model (not
  its target or history; a rival picked for one user stays a negative for the others even when it
  is in their history: only a collision with the target is masked);
- **L_format** = mean of -log(probability mass on the tokens "1".."9") at every answer slot: the
  slot scorer reads the distribution over those tokens, so a well-formed answer is mass on them;
- **LoRA** (peft) on the query and value projections of the top ``tune_layers`` layers.

Per step only the target and negative items pass through the LLM, with gradient; profiles and base
scores are constants, and the shared prompt prefix is encoded without gradient (its keys and values
are constants within a step; only the item text and the answer stems see the gradient).
Checkpoints every ``tune_checkpoint_every`` steps in ``<folder>/state.pt`` (LoRA weights, optimizer,
step); every step's negatives come from a generator seeded by (seed, step), so a killed tuning
resumes to the same weights. The adapter is saved with ``save_pretrained`` in ``<folder>/adapter``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lucidrec.files import read_json, trim_log, write_json_atomic
from lucidrec.methods.ger import scorers
from lucidrec.train.checkpoint import load_trainable, save_trainable
from lucidrec.train.run import load_run

log = logging.getLogger(__name__)
STATE, LOG, ADAPTER, DONE = "state.pt", "log.jsonl", "adapter", "result.json"
DIGITS = torch.arange(1, 10, dtype=torch.float32)


@dataclass
class TuningData:
    """What L_rec needs per training user: base state, guided profile, last training item."""

    states: torch.Tensor  # (U, d) base model states after the history without its last item
    profiles: torch.Tensor  # (U, m) user guided profiles from the zero-shot scores
    targets: np.ndarray  # (U,) item index of the last training item
    base_table: torch.Tensor  # (n + 1, d)
    candidates: np.ndarray  # item indices with text: the targets and negatives that can be scored
    history: object = None  # Ragged (U rows): the histories, so "base_top" negatives skip the user's own items


def history_profiles(guided: np.ndarray, histories, window: int, decay: float) -> np.ndarray:
    """(U, m) recency-weighted means (weight decay**k, k steps back) of ``guided`` rows over the last
    ``window`` items of each history; zero for an empty history."""
    weights = decay ** np.arange(window)
    out = np.zeros((len(histories), guided.shape[1]), np.float64)
    for row, history in enumerate(histories):
        items = np.asarray(history[-window:])[::-1]  # most recent first
        if len(items):
            w = weights[: len(items)]
            out[row] = (w[:, None] * guided[items]).sum(0) / w.sum()
    return out


def tuning_data(base_model, train, guided: np.ndarray, candidates: np.ndarray, *, window: int, decay: float,
                user_scale: float, batch: int = 512) -> TuningData:
    users = np.flatnonzero(train.lengths() >= 2)
    rows = train.take(users)
    lengths = rows.lengths()
    history = rows.truncate(lengths - 1)
    targets = np.asarray([rows[k][-1] for k in range(len(users))])
    keep = np.isin(targets, candidates)  # a target without text cannot be scored by the LLM
    base_model.eval()
    states = []
    with torch.no_grad():
        for start in range(0, len(users), batch):
            part = np.arange(start, min(start + batch, len(users)))
            states.append(base_model.user_vectors(history.take(part), users[part]))
    profiles = user_scale * history_profiles(guided, [history[k] for k in range(len(users))], window, decay)
    pick = np.flatnonzero(keep)
    return TuningData(torch.cat(states)[pick], torch.as_tensor(profiles[pick], dtype=torch.float32), targets[pick],
                      base_model.item_table().detach(), np.asarray(candidates), history.take(pick))


class ScorerTuning:
    """One LoRA tuning of a :class:`lucidrec.methods.ger.slots.SlotScorer` (see the module docstring).

    ``segments`` maps an item index to its token ids (item text plus the prompt's suffix);
    ``mean``/``std`` are the zero-shot z-score statistics; ``scale`` is c.
    """

    def __init__(self, slots, segments: dict[int, list[int]], data: TuningData, mean: np.ndarray, std: np.ndarray,
                 scale: float, config, key: str):
        from peft import LoraConfig, get_peft_model

        self.slots, self.segments, self.data, self.config, self.key = slots, segments, data, config, key
        self.mean = torch.as_tensor(np.asarray(mean, np.float32))
        self.std = torch.as_tensor(np.asarray(std, np.float32))
        self.scale = float(scale)
        model = slots.model
        layers = _n_layers(model)
        top = list(range(max(0, layers - config.tuning.layers), layers)) if config.tuning.layers and layers else None
        lora = LoraConfig(r=config.tuning.lora_r, lora_alpha=config.tuning.lora_alpha, lora_dropout=0.0,
                          target_modules=["q_proj", "v_proj"], layers_to_transform=top)
        with torch.random.fork_rng():  # LoRA's initialisation must not move the caller's random stream
            torch.manual_seed(config.tuning.seed)
            # get_peft_model injects the LoRA layers into ``model`` in place: the slot scorer keeps
            # calling the same object and now runs with the adapters.
            self.peft_model = get_peft_model(model, lora)
        self.trainable = {name: p for name, p in self.peft_model.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.AdamW(list(self.trainable.values()), lr=config.tuning.lr, weight_decay=0.0)

    def step_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(users, negatives) of a step: a generator seeded by (seed, step), so resume redraws them."""
        rng = np.random.default_rng([self.config.tuning.seed, step])
        users = rng.choice(len(self.data.targets), size=min(self.config.tuning.users, len(self.data.targets)),
                           replace=False)
        if self.config.tuning.negatives_from == "base_top":
            return users, self.base_top_negatives(users)
        negatives = rng.choice(self.data.candidates, size=min(self.config.tuning.negatives, len(self.data.candidates)),
                               replace=False)
        return users, negatives

    def base_top_negatives(self, users: np.ndarray) -> np.ndarray:
        """The union over the step's users of each one's ceil(N / B) best-scored candidates under the
        base model, other than its target and its own history: the rivals the attributes must beat."""
        candidates = torch.as_tensor(self.data.candidates)
        with torch.no_grad():
            scores = self.data.states[users] @ self.data.base_table[candidates].T  # (B, C)
        for row, user in enumerate(users):
            own = np.append(self.data.history[int(user)], self.data.targets[user])
            scores[row, torch.as_tensor(np.isin(self.data.candidates, own))] = -torch.inf
        per_user = -(-self.config.tuning.negatives // len(users))
        top = scores.topk(min(per_user, scores.shape[1]), dim=1).indices
        return np.unique(self.data.candidates[top.reshape(-1).numpy()])

    def losses(self, users: np.ndarray, negatives: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_rec, L_format) of one step, with gradient to the LoRA weights."""
        targets = self.data.targets[users]
        items = np.unique(np.concatenate([targets, negatives]))
        logprobs = self.slots.choice_logprobs([self.segments[int(i)] for i in items], grad=True)  # (I, m, 9)
        expected = torch.softmax(logprobs, dim=-1) @ DIGITS
        g = (expected - self.mean) / self.std  # (I, m)
        column = {int(i): k for k, i in enumerate(items)}
        candidates = np.concatenate([targets[:, None], np.broadcast_to(negatives, (len(users), len(negatives)))], axis=1)
        index = torch.as_tensor(np.vectorize(column.__getitem__)(candidates))  # (B, 1 + N)
        base = torch.einsum("bd,bnd->bn", self.data.states[users], self.data.base_table[torch.as_tensor(candidates)])
        attribute = self.scale * torch.einsum("bm,bnm->bn", self.data.profiles[users], g[index])
        logits = base + attribute
        logits = _mask_collisions(logits, candidates)  # a negative equal to the target is not a negative
        l_rec = torch.nn.functional.cross_entropy(logits, torch.zeros(len(users), dtype=torch.long))
        l_format = -torch.logsumexp(logprobs, dim=-1).mean()
        return l_rec, l_format

    def run(self, folder: Path, *, stop_after_steps: int | None = None, progress: bool = False) -> dict:
        """Tune to ``tune_steps`` (continuing ``folder/state.pt``); returns the log summary.
        ``stop_after_steps`` ends this call early (tests simulate a kill with it)."""
        from tqdm.auto import tqdm

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / DONE).is_file():
            result = read_json(folder / DONE)
            if result.get("key") == self.key:
                self._load_weights(folder / STATE)
                return result
        start, earlier = self._restore(folder / STATE) if (folder / STATE).is_file() else (0, 0.0)
        trim_log(folder / LOG, "step", start)
        started = time.perf_counter()
        total, every = self.config.tuning.steps, self.config.tuning.checkpoint_every
        done_now = 0
        self.peft_model.train()
        with open(folder / LOG, "a") as log_file, tqdm(total=total, initial=start, desc="GER scorer tuning",
                                                        disable=not progress) as bar:
            for step in range(start, total):
                if stop_after_steps is not None and done_now >= stop_after_steps:
                    break
                users, negatives = self.step_batch(step)
                l_rec, l_format = self.losses(users, negatives)
                loss = l_rec + self.config.tuning.format_weight * l_format
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.slots.reset_prefix()  # the prefix's keys and values depend on the new weights
                done_now += 1
                l_rec, l_format = float(l_rec.detach()), float(l_format.detach())
                record = {"step": step, "loss": float(loss.detach()), "l_rec": l_rec, "l_format": l_format,
                          "coverage": float(np.exp(-l_format)),
                          "seconds": round(earlier + time.perf_counter() - started, 3)}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                bar.update(1)
                if (step + 1) % every == 0 or step + 1 == total:
                    self._save(folder / STATE, step + 1, earlier + time.perf_counter() - started)
        self.peft_model.eval()
        self.slots.reset_prefix()
        steps_done = start + done_now
        if steps_done < total:
            return {"finished": False, "steps": steps_done}
        self.peft_model.save_pretrained(folder / ADAPTER)
        records = [json.loads(line) for line in (folder / LOG).read_text().splitlines() if line.strip()]
        result = {"key": self.key, "finished": True, "steps": total, "seconds": records[-1]["seconds"],
                  "first": _window_mean(records[:10]), "last": _window_mean(records[-10:]),
                  "trainable_parameters": int(sum(p.numel() for p in self.trainable.values())),
                  "weights_digest": self.weights_digest()}
        write_json_atomic(folder / DONE, result)
        return result

    def weights_digest(self) -> str:
        """A hash of the LoRA weights: part of the tuned scores' cache key."""
        import hashlib

        digest = hashlib.sha1()
        for name in sorted(self.trainable):
            digest.update(name.encode())
            digest.update(self.trainable[name].detach().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    # -- checkpoints ------------------------------------------------------------------------------
    def _save(self, path: Path, step: int, seconds: float) -> None:
        save_trainable(path, self.key, step, seconds, self.trainable, self.optimizer)

    def _load_weights(self, path: Path) -> dict:
        payload = load_trainable(path, self.key, self.trainable, "GER scorer-tuning")
        self.slots.reset_prefix()
        return payload

    def _restore(self, path: Path) -> tuple[int, float]:
        payload = self._load_weights(path)
        self.optimizer.load_state_dict(payload["optimizer"])
        return int(payload["step"]), float(payload.get("seconds", 0.0))


def _mask_collisions(logits: torch.Tensor, candidates: np.ndarray) -> torch.Tensor:
    collide = np.zeros(candidates.shape, bool)
    collide[:, 1:] = candidates[:, 1:] == candidates[:, :1]
    return logits.masked_fill(torch.as_tensor(collide), -torch.inf)


def _window_mean(records: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in records])), 5) for k in ("l_rec", "l_format", "coverage")}


def _n_layers(model) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "num_hidden_layers", 0) or 0)


def tune_and_rescore(config, attributes, texts: list[str], missing: np.ndarray, zero_shot, guided: np.ndarray,
                     base_run: Path, scale: float, user_scale: float, context, folder: Path, key: str):
    """Tune the slot scorer (resuming ``folder``), then score the catalog with the tuned weights.

    Returns (raw scores, the rescoring's statistics, the tuning's summary). The chat model is a
    private one: the LoRA layers go into its model object and must not reach other scorers.
    """
    chat = scorers.create_chat(config.scorer.llm, config.cache_dir)
    scorer = scorers.make_llm_scorer(attributes, chat, "slots", batch_size=config.scorer.batch_size)
    todo = np.flatnonzero(~missing)
    segments = {int(i) + 1: scorer.segment(texts[i]) for i in todo}
    base_model = load_run(base_run)[0]
    data = tuning_data(base_model, context.split.train, guided, todo + 1, window=config.user.window,
                       decay=config.user.recency_decay, user_scale=user_scale)
    if not len(data.targets):
        raise ValueError("scorer tuning found no training user whose last training item has text")
    show = bool(getattr(getattr(context, "config", None), "train", None) and context.config.train.progress)
    tuning = ScorerTuning(scorer.prepare(), segments, data, zero_shot.mean, zero_shot.std, scale, config, key)
    summary = tuning.run(folder, progress=show)
    if not summary.get("finished"):
        raise RuntimeError(f"scorer tuning stopped at step {summary.get('steps')} of {config.tuning.steps}")
    scorer.variant = f"lora:{summary['weights_digest']}"
    result = scorer.score([texts[i] for i in todo])
    scorers.require_scores(result, scorer, stage="GER rescoring with the tuned scorer", unit="items",
                           allowed_share=config.scorer.max_failed, fallback="z = 0 (the attribute mean)")
    raw = np.full((len(texts), len(attributes)), np.nan)
    raw[todo] = result.raw
    stats = {"scorer": f"{result.scorer}+lora", "range": [result.low, result.high], **result.stats}
    return raw, stats, {**summary, "folder": str(folder), "training_users": int(len(data.targets))}
