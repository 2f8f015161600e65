"""The soft-token path of a frozen causal LM (tiny random Llama; one slow test on SmolLM2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lucidrec.lm.soft_prompt import PromptLayout
from tests.tiny_lm import tiny_soft_lm

PROMPT = "Which movie was added between <SeqHere> and <SeqHere>? Name it."
TITLES = ["Toy Story (1995)", "Heat (1995)", "Usual Suspects, The (1995)", "Star Wars (1977)", "x"]


def text_logprob(model, ids: list[int], answer: list[int]) -> float:
    """The plain text path: one forward over prompt + answer, sum of the answer's token log-probs."""
    full = torch.tensor([ids + answer])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=full).logits[0].float(), -1)
    return float(sum(logprobs[len(ids) - 1 + j, t] for j, t in enumerate(answer)))


@pytest.mark.parametrize("chat_template", [True, False])
@pytest.mark.parametrize("width", [1, 3])
def test_soft_tokens_equal_to_text_embeddings_reproduce_the_text_path(chat_template, width):
    lm = tiny_soft_lm(chat_template)
    layout = lm.layout(PROMPT, slot_width=width)
    filler = [lm.tokenizer.encode(w, add_special_tokens=False)[0] for w in ("Heat", "Toy", "Star", "movie", "was", "The")]
    rows = [filler[: layout.n_soft], filler[-layout.n_soft:]]
    soft = torch.stack([lm.embed_ids(r) for r in rows]).detach()
    answers = [lm.encode_answer(TITLES[0]), lm.encode_answer(TITLES[2])]
    picked, mask = lm.answer_logprobs(layout, soft, answers)
    for row, answer in enumerate(answers):
        expected = text_logprob(lm.model, layout.text_ids(rows[row]), answer)
        assert float((picked[row] * mask[row]).sum()) == pytest.approx(expected, abs=1e-4)
    # Generation: the same greedy tokens as transformers' own generate() on the text.
    generated = lm.generate(layout, soft, max_new_tokens=6)
    for row in range(2):
        ids = torch.tensor([layout.text_ids(rows[row])])
        reference = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                                      eos_token_id=lm.end_id, pad_token_id=lm.pad_id)[0, ids.shape[1]:].tolist()
        reference = reference[: reference.index(lm.end_id)] if lm.end_id in reference else reference
        assert generated[row] == reference


def test_rank_candidates_equals_a_brute_force_loop():
    lm = tiny_soft_lm()
    layout = lm.layout(PROMPT)
    torch.manual_seed(1)
    soft = torch.randn(3, 2, lm.dim) * 0.05
    candidates = [lm.encode_answer(t) for t in TITLES]
    fast = lm.rank_candidates(layout, soft, candidates, chunk=2)  # chunks mix lengths and are padded
    for row in range(3):
        for k, candidate in enumerate(candidates):
            picked, mask = lm.answer_logprobs(layout, soft[row:row + 1], [candidate])
            brute = float(picked.sum())
            assert float(fast[row, k]) == pytest.approx(brute, abs=1e-4)
    assert len({round(float(v), 3) for v in fast[0]}) == len(TITLES)  # candidates really differ


def test_candidate_ranks_equal_the_ranks_of_the_full_scores_and_skip_hopeless_candidates():
    lm = tiny_soft_lm()
    layout = lm.layout(PROMPT)
    torch.manual_seed(2)
    soft = torch.randn(4, 2, lm.dim) * 0.05
    candidates = [lm.encode_answer(t) for t in TITLES]
    full = lm.rank_candidates(layout, soft, candidates, chunk=2)
    for targets in ([0, 1, 2, 3], [int(full[r].argmax()) for r in range(4)], [int(full[r].argmin()) for r in range(4)]):
        expected = [int((full[r] > full[r, targets[r]] + 1e-9).sum()) for r in range(4)]
        run = []
        ranks = lm.candidate_ranks(layout, soft, candidates, targets, chunk=2, progress=run.append)
        assert ranks.tolist() == expected
        capped = lm.candidate_ranks(layout, soft, candidates, targets, chunk=1, cap=1)
        assert capped.tolist() == [min(e, 1) for e in expected]
        if targets[0] == int(full[0].argmax()):  # a top-ranked target: no candidate can beat its first token
            assert sum(run) < 4 * sum(len(c) - 1 for c in candidates)


def test_loss_counts_answer_tokens_only():
    lm = tiny_soft_lm()
    layout = lm.layout(PROMPT)
    soft = torch.randn(2, 2, lm.dim) * 0.05
    answers = [lm.encode_answer("Heat (1995)"), lm.encode_answer("Usual Suspects, The (1995)")]
    loss = lm.loss(layout, soft, answers)
    # Reference: transformers' own cross-entropy, labels -100 on the prompt and the soft tokens.
    body = lm.body_embeddings(layout, soft)
    total, count = 0.0, 0
    for row, answer in enumerate(answers):
        prefix = lm.embed_ids(list(layout.prefix)).unsqueeze(0)
        embeds = torch.cat([prefix, body[row:row + 1], lm.embed_ids(answer).unsqueeze(0)], 1)
        labels = torch.full(embeds.shape[:2], -100)
        labels[0, -len(answer):] = torch.tensor(answer)
        with torch.no_grad():
            reference = lm.model(inputs_embeds=embeds, labels=labels).loss
        total += float(reference) * len(answer)
        count += len(answer)
    assert float(loss) == pytest.approx(total / count, abs=1e-5)
    # The right padding of the shorter answer is neither attended to nor counted, whatever its id.
    lm.pad_id = 5
    assert float(lm.loss(layout, soft, answers)) == pytest.approx(float(loss), abs=1e-6)


def test_gradient_reaches_only_the_soft_tokens_and_the_lm_stays_bit_identical():
    lm = tiny_soft_lm()
    layout = lm.layout(PROMPT)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    adapter = torch.nn.Linear(8, lm.dim)
    params = list(adapter.parameters()) + list(lm.model.parameters())  # a careless optimizer over everything
    optimizer = torch.optim.AdamW(params, lr=0.1, weight_decay=0.1)
    states = torch.randn(2, 2, 8)
    loss = lm.loss(layout, adapter(states), [lm.encode_answer("Heat (1995)"), lm.encode_answer("x")])
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in lm.model.parameters())
    assert adapter.weight.grad is not None and adapter.weight.grad.abs().sum() > 0
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_layout_errors_and_text_ids():
    lm = tiny_soft_lm()
    with pytest.raises(ValueError, match="no <SeqHere> slot"):
        lm.layout("no slot here")
    layout = PromptLayout((1, 2), ((3,), ()), slot_width=2)
    assert layout.n_soft == 4 and layout.body_length == 5
    assert layout.text_ids([7, 8, 9, 10]) == [1, 2, 7, 8, 3, 9, 10]
    with pytest.raises(ValueError, match="shape"):
        lm.body_embeddings(lm.layout(PROMPT), torch.zeros(1, 3, lm.dim))


@pytest.mark.slow
def test_smollm2_soft_path_matches_text_path():
    from lucidrec.lm.soft_prompt import SoftPromptLM

    lm = SoftPromptLM.load()
    layout = lm.layout("Name the movie between <SeqHere> and <SeqHere>.")
    ids = [lm.tokenizer.encode(w, add_special_tokens=False)[0] for w in (" Toy", " Heat")]
    soft = lm.embed_ids(ids).unsqueeze(0).detach()
    answer = lm.encode_answer("Toy Story (1995)")
    picked, _ = lm.answer_logprobs(layout, soft, [answer])
    assert float(picked.sum()) == pytest.approx(text_logprob(lm.model, layout.text_ids(ids), answer), abs=1e-3)
    ranked = lm.rank_candidates(layout, soft, [answer, lm.encode_answer("Heat (1995)")])
    np.testing.assert_allclose(float(ranked[0, 0]), float(picked.sum()), atol=1e-3)
