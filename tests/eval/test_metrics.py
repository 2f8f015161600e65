import math

import numpy as np
import pytest

from lucidrec.eval.metrics import mrr, ndcg_at, per_user_metrics, recall_at
from lucidrec.eval.stats import mean_std, paired_test


def test_metrics_against_hand_computed_values():
    ranks = np.array([0, 1, 4, 9, 10, 25])
    assert recall_at(ranks, 5).tolist() == [1, 1, 1, 0, 0, 0]
    assert recall_at(ranks, 10).tolist() == [1, 1, 1, 1, 0, 0]
    # NDCG@10 of a single target at 0-based rank r is 1 / log2(r + 2).
    assert ndcg_at(ranks, 10).tolist() == pytest.approx([1.0, 1 / math.log2(3), 1 / math.log2(6), 1 / math.log2(11), 0, 0])
    assert mrr(ranks).tolist() == pytest.approx([1, 1 / 2, 1 / 5, 1 / 10, 1 / 11, 1 / 26])
    table = per_user_metrics(ranks, ks=(5,))
    assert table["hr@5"].mean() == pytest.approx(0.5)
    assert table["ndcg@5"].mean() == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 6)


def test_mean_std_and_paired_test():
    runs = [{"a": 1.0, "b": "x"}, {"a": 3.0, "b": "y"}]
    assert mean_std(runs) == {"a": {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}}
    rng = np.random.default_rng(0)
    base = rng.random(500)
    better = base + 0.05 + rng.normal(0, 0.01, 500)
    result = paired_test(base, better)
    assert result["diff"] == pytest.approx(0.05, abs=0.005)
    assert result["t_pvalue"] < 1e-6 and result["wilcoxon_pvalue"] < 1e-6
    same = paired_test(base, base)
    assert same["t_pvalue"] == 1.0
    with pytest.raises(ValueError, match="same users"):
        paired_test(base, base[:10])
