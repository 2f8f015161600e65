import numpy as np
import pytest
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.explain.contributions import (NotExplainableError, all_scores, contributions, explain_user,
                                            faithfulness_check, user_state)
from lucidrec.models.scoring import DotProductScorer
from lucidrec.train.trainer import scorer_for

HISTORY = [3, 7, 1, 12, 5]


def test_contributions_sum_exactly_to_the_evaluator_score(ger_model):
    explanation = explain_user(ger_model, HISTORY, user=2, k=6)
    # The same score through the path the evaluator uses (scorer_for -> user_state -> score_items).
    scorer: DotProductScorer = scorer_for(ger_model)
    state = scorer.user_state(Ragged.from_lists([HISTORY]), np.array([2]))
    evaluator_scores = scorer.score_items(state, torch.as_tensor(explanation.items)[None])[0].double().numpy()
    np.testing.assert_allclose(explanation.scores, evaluator_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(explanation.guided + explanation.rest, explanation.scores, rtol=0, atol=1e-6)
    # The guided block really matters here (not a trivially zero explanation).
    assert np.abs(explanation.contributions).max() > 1e-2
    assert not set(explanation.items) & set(HISTORY) and 0 not in explanation.items
    assert np.all(np.diff(explanation.scores) <= 1e-9)  # best first
    assert ((explanation.guided_share >= 0) & (explanation.guided_share <= 1)).all()


def test_known_user_profile_differs_from_cold_but_cold_still_has_one(ger_model):
    known = user_state(ger_model, HISTORY, 2)
    cold = user_state(ger_model, HISTORY, None)
    m = ger_model.items.m
    assert not torch.allclose(known[:m], cold[:m])
    assert cold[:m].abs().sum() > 0  # from the history alone
    torch.testing.assert_close(known[m:], cold[m:])  # the backbone part does not depend on the user id
    delta = ger_model.state_hook.user_multiplier * ger_model.state_hook.user_delta.weight[2]
    torch.testing.assert_close(known[:m] - cold[:m], delta)


def test_faithfulness_check_passes_and_follows_the_reranking(ger_model):
    explanation = explain_user(ger_model, HISTORY, user=1, k=5)
    result = faithfulness_check(ger_model, HISTORY, 1, explanation.items)
    assert result["ok"], result
    for entry in result["items"]:
        assert entry["drop_error"] < 1e-5
        assert entry["rank_after"] == entry["rank_predicted"]
        contrib = contributions(ger_model, user_state(ger_model, HISTORY, 1), [entry["item"]])[1][0]
        assert abs(entry["contribution"]) == pytest.approx(np.abs(contrib).max())
    # The intervention is undone: scores are what they were.
    state = user_state(ger_model, HISTORY, 1)
    np.testing.assert_allclose(all_scores(ger_model, state, HISTORY)[explanation.items].numpy(), explanation.scores,
                               atol=1e-6)
    # At least one item moved in the ranking or kept its place for the right reason: the rank is recomputed.
    assert all(isinstance(e["rank_after"], int) for e in result["items"])


def test_faithfulness_check_catches_a_state_that_depends_on_the_item(ger_model):
    # If the explained item is in the history, zeroing its attribute changes the user state too:
    # the drop is no longer the contribution alone, and the check must say so.
    item = 9
    result = faithfulness_check(ger_model, HISTORY + [item], 1, [item])
    assert not result["items"][0]["state_unchanged"] and not result["ok"]


def test_non_ger_models_are_refused():
    from lucidrec.embeddings.id_table import IdEmbedding
    from lucidrec.models import make_backbone

    model = make_backbone("sasrec", {"hidden": 8, "max_len": 5}, IdEmbedding(10, 8))
    with pytest.raises(NotExplainableError, match="--embedding ger"):
        explain_user(model, [1, 2], None)
