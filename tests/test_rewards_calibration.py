"""Preference metrics on hand cases: accuracy with ties, reliability table, ECE, Cohen's kappa."""
import pytest

from alignkit.data.records import Pairwise
from alignkit.rewards import calibration as C
from alignkit.rewards.evaluate import as_pairs, preference_report
from alignkit.rewards.judge import Judge


def test_accuracy_counts_ties_half():
    assert C.preference_accuracy([0.9, 0.7, 0.4, 0.5]) == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    # soft labels: a label of 0.2 means the second response is better
    assert C.preference_accuracy([0.9, 0.3], [1.0, 0.2]) == 1.0


def test_reliability_table_and_ece_by_hand():
    # both orders: (0.9,1) (0.7,1) (0.4,1) (0.5,1) (0.1,0) (0.3,0) (0.6,0) (0.5,0)
    table = C.reliability_table([0.9, 0.7, 0.4, 0.5], n_bins=2)
    lo, hi = table
    assert (lo["count"], hi["count"]) == (3, 5)
    assert lo["confidence"] == pytest.approx((0.4 + 0.1 + 0.3) / 3)
    assert lo["frequency"] == pytest.approx(1 / 3)
    assert hi["confidence"] == pytest.approx((0.9 + 0.7 + 0.5 + 0.6 + 0.5) / 5)
    assert hi["frequency"] == pytest.approx(3 / 5)
    # ECE = 3/8 |1/3 - 0.8/3| + 5/8 |0.6 - 0.64| = 0.025 + 0.025
    assert C.expected_calibration_error(table) == pytest.approx(0.05)


def test_perfectly_calibrated_judge_has_zero_ece():
    # p = 0.75 on 4 pairs, 3 labelled as the judge says: in both orders, bins 0.25 / 0.75 hit exactly
    table = C.reliability_table([0.75, 0.75, 0.75, 0.75], [1, 1, 1, 0], n_bins=10)
    assert C.expected_calibration_error(table) == pytest.approx(0.0)


def test_cohen_kappa_by_hand():
    # p_o = 3/4; p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2 -> kappa = 1/2
    assert C.cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert C.cohen_kappa([1, 0, 1], [1, 0, 1]) == 1.0


def test_agreement_counts_each_pair_in_both_orders():
    a, b = [0.9, 0.8, 0.2, 0.5], [0.7, 0.3, 0.1, 0.5]  # decisions (1, 1, -1, 0) vs (1, -1, -1, 0)
    out = C.agreement(a, b)
    assert out["accuracy"] == pytest.approx(0.75)
    # both orders: p_o = 6/8; marginals 3/8, 3/8, 2/8 each -> p_e = 22/64; kappa = (3/4 - 22/64) / (42/64) = 13/21
    assert out["kappa"] == pytest.approx(13 / 21)


class LengthJudge(Judge):
    name = "length"

    def score(self, prompts, responses):
        return [float(len(r)) for r in responses]


def test_preference_report_with_a_judge():
    pairs = [Pairwise("p", "long answer", "short"), Pairwise("p", "x", "longer"), Pairwise("q", "ab", "cd")]
    rep = preference_report(LengthJudge(), pairs, against=LengthJudge(), n_bins=4)
    assert rep["pairs"] == 3 and rep["ties"] == 1
    assert rep["accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert rep["against"]["accuracy"] == 1.0 and rep["against"]["kappa"] == 1.0


def test_listwise_and_scored_records_become_pairs():
    from alignkit.data.records import Listwise, Scored
    pairs = as_pairs([Listwise("p", ("a", "b", "c"), (2.0, 0.0, 1.0))])
    assert [(p.chosen, p.rejected) for p in pairs] == [("a", "c"), ("a", "b"), ("c", "b")]
    pairs = as_pairs([Scored("p", "a", 1.0), Scored("p", "b", 3.0)])
    assert [(p.chosen, p.rejected) for p in pairs] == [("b", "a")]


def test_binary_auc_by_hand():
    # up scores 3, 1; down scores 2, 1, 0. Pairs (up, down): (3,2) (3,1) (3,0) win; (1,2) loses,
    # (1,1) ties, (1,0) wins -> (3 + 0 + 0.5 + 1) / 6.
    assert C.binary_auc([3.0, 2.0, 1.0, 1.0, 0.0], [True, False, True, False, False]) == pytest.approx(4.5 / 6)
    assert C.binary_auc([0.0, 0.0, 0.0], [True, False, False]) == 0.5  # all tied: chance
    assert C.binary_auc([1.0, 2.0], [True, True]) != C.binary_auc([1.0, 2.0], [True, True])  # nan: one class


def test_binary_report_scores_thumbs_with_auc_and_gap():
    from alignkit.data.records import Binary
    from alignkit.rewards.evaluate import binary_report, is_binary
    recs = [Binary("p", "a long answer", True), Binary("p", "short", False), Binary("q", "tiny", False),
            Binary("q", "mid size", True)]
    assert is_binary(recs) and not is_binary([Pairwise("p", "a", "b")])
    rep = binary_report(LengthJudge(), recs)  # lengths: up 13, 8; down 5, 4 -> perfectly separated
    assert rep["responses"] == 4 and rep["thumbs_up"] == 2 and rep["auc"] == 1.0
    assert rep["reward_gap"] == pytest.approx((13 + 8) / 2 - (5 + 4) / 2)
