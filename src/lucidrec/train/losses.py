"""Next-item losses, chosen by name (not by subclassing the backbone).

All take per-position states (N, d) at the positions that have a target, the targets (N,), and
the item embedding; the vectors of negatives come from the same item embedding.

- ``bce``: binary cross-entropy, the positive against ``n_negatives`` uniformly drawn items per
  position (SASRec's original loss; LLMEmb and LANE use it with one negative, the default).
- ``sampled_softmax``: softmax over the positive and negatives shared by the batch (drawn by a
  :class:`~lucidrec.train.negatives.NegativeSampler`: uniform, by popularity, or the batch's own
  targets), each negative's logit corrected by the log of its sampling rate (logQ), and a negative
  equal to the row's positive (an accidental hit) masked out. Only the rows of the positives and the
  drawn items are computed, so it works with every item embedding.
- ``ce``: full softmax over the whole catalog. ``ce_implementation="chunked"`` (default) computes it
  a few hundred rows at a time and forms the gradient in the same pass, so the (positions × catalog)
  logits never exist whole. The dense version is bound by memory traffic over those logits: on ml-1m
  (14k positions × 3.7k items per batch) the chunked loss is about 2× faster and a training step
  1.3–1.5× (docs/benchmarks.md); with a few hundred positions per batch (amazon-beauty) no gain.
  ``"dense"`` is ``F.cross_entropy`` on the full logits (runs saved before the option existed).

``matmul_dtype=torch.bfloat16`` (``train.precision="bfloat16"``) runs the ``ce`` loss's matrix products
(logits, and the gradients of the states and the table) in bfloat16 while the softmax, the loss and
the gradient buffers stay float32; on CPUs with bfloat16 dot-product instructions (AVX512-BF16, AMX)
those products are about 3x faster, and with the backbone under autocast a training step 1.3-1.8x
(docs/benchmarks.md). ``bce`` and ``sampled_softmax`` are cheap and always run in float32.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from lucidrec.train.negatives import NegativeSampler, SampledSoftmaxConfig

LossName = Literal["bce", "sampled_softmax", "ce"]
CeImplementation = Literal["chunked", "dense"]

#: Logits per chunk of the chunked full softmax (8 MB of float32): small enough to stay in cache while
#: it is turned into probabilities and multiplied back, large enough for efficient matrix products.
CHUNK_ELEMENTS = 2**21


def next_item_loss(name: LossName, states: torch.Tensor, targets: torch.Tensor, items, n_items: int,
                   n_negatives: int, generator: torch.Generator,
                   ce_implementation: CeImplementation = "chunked",
                   matmul_dtype: torch.dtype = torch.float32, sampler: NegativeSampler | None = None) -> torch.Tensor:
    """``sampler`` draws the sampled softmax's negatives (default: ``n_negatives`` uniform, with logQ)."""
    if name == "ce":
        return full_softmax_loss(states, targets, items.table(), ce_implementation, matmul_dtype=matmul_dtype)
    positives = (states * items(targets)).sum(-1)
    if name == "bce":
        negatives = torch.randint(1, n_items + 1, (len(targets), n_negatives), generator=generator)
        negative_scores = torch.einsum("nd,nkd->nk", states, items(negatives))
        positive_term = F.binary_cross_entropy_with_logits(positives, torch.ones_like(positives))
        return positive_term + F.binary_cross_entropy_with_logits(negative_scores, torch.zeros_like(negative_scores))
    if name == "sampled_softmax":
        sampler = sampler or NegativeSampler(SampledSoftmaxConfig(), n_items, n_negatives)
        negatives, log_q = sampler.draw(targets, generator)
        return sampled_softmax_loss(states, targets, items, negatives, log_q, positives=positives)
    raise ValueError(f"unknown loss '{name}' (valid: bce, sampled_softmax, ce)")


def sampled_softmax_loss(states: torch.Tensor, targets: torch.Tensor, items, negatives: torch.Tensor,
                         log_q: torch.Tensor | None = None, positives: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of each row's positive against the shared ``negatives`` (K,).

    Row ``r``'s logits are ``[s(r, target_r), s(r, j) - log_q_j for j in negatives]``, with the columns
    where ``j == target_r`` (accidental hits, and in-batch negatives' own positive) set to -inf. The
    positive is not corrected: it is always in the softmax, not drawn (correcting it too, as some
    implementations do, biases the estimate of the full softmax; see docs/fidelity.md).
    """
    if positives is None:
        positives = (states * items(targets)).sum(-1)
    negative_scores = states @ items(negatives).T
    if log_q is not None:
        negative_scores = negative_scores - log_q[None, :]
    negative_scores = negative_scores.masked_fill(negatives[None, :] == targets[:, None], -torch.inf)
    logits = torch.cat([positives[:, None], negative_scores], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))


def full_softmax_loss(states: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                      implementation: CeImplementation = "chunked", chunk_rows: int | None = None,
                      matmul_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Mean cross-entropy of ``targets`` under a softmax over every row of ``table`` but row 0 (padding)."""
    if implementation == "dense":
        logits = (states.to(matmul_dtype) @ table.to(matmul_dtype).T).float()
        logits[:, 0] = -torch.inf
        return F.cross_entropy(logits, targets)
    if implementation != "chunked":
        raise ValueError(f"unknown ce_implementation {implementation!r} (valid: chunked, dense)")
    rows = chunk_rows or max(1, CHUNK_ELEMENTS // len(table))
    if not torch.is_grad_enabled():
        # Under no_grad a Function still sees needs_input_grad from requires_grad: detach, or the
        # gradients would be computed and thrown away.
        states, table = states.detach(), table.detach()
    return _ChunkedSoftmaxLoss.apply(states, table, targets, rows, matmul_dtype)


class _ChunkedSoftmaxLoss(torch.autograd.Function):
    """Forward computes the loss and, when needed, the gradients; backward only scales them.

    d loss / d logits = (softmax - one_hot(target)) / n, so each chunk's probabilities give its share
    of d/d states (probs @ table) and of d/d table (probs.T @ states) before the chunk is dropped.
    """

    @staticmethod
    def forward(ctx, states, table, targets, chunk_rows, matmul_dtype):
        n = len(targets)
        want_states, want_table = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_states = torch.empty_like(states) if want_states else None
        grad_table = torch.zeros_like(table) if want_table else None
        total = states.new_zeros(())
        low_precision = matmul_dtype != table.dtype
        table_mm = table.to(matmul_dtype)
        for start in range(0, n, chunk_rows):
            chunk_states = states[start:start + chunk_rows].to(matmul_dtype)
            chunk_targets = targets[start:start + chunk_rows]
            rows = torch.arange(len(chunk_targets))
            logits = (chunk_states @ table_mm.T).float()
            logits[:, 0] = -torch.inf
            # One exp pass (max, exp, sum) instead of logsumexp and a second exp: exp is most of the
            # elementwise cost, which dominates once the products run in bfloat16.
            target_logits = logits[rows, chunk_targets]
            top = logits.max(dim=1, keepdim=True).values
            probs = logits.sub_(top).exp_()  # in place: the logits are not needed again
            normaliser = probs.sum(dim=1, keepdim=True)
            total += (normaliser.log() + top - target_logits[:, None]).sum()
            if want_states or want_table:
                probs.div_(normaliser)
                probs[rows, chunk_targets] -= 1
                probs = probs.to(matmul_dtype)
                if want_states:
                    grad_states[start:start + chunk_rows] = probs @ table_mm
                if low_precision and want_table:  # addmm_ needs one dtype; the table's gradient sums in float32
                    grad_table += (probs.T @ chunk_states).float()
                elif want_table:
                    grad_table.addmm_(probs.T, chunk_states)
        ctx.n = n
        ctx.save_for_backward(*(g for g in (grad_states, grad_table) if g is not None))
        ctx.saved_which = (want_states, want_table)
        return total / n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        saved = iter(ctx.saved_tensors)
        # No targets: the loss is NaN (0/0, as F.cross_entropy's), but the gradients are zero, not NaN.
        scale = grad_output / max(ctx.n, 1)
        grads = [next(saved) * scale if wanted else None for wanted in ctx.saved_which]
        return grads[0], grads[1], None, None, None
