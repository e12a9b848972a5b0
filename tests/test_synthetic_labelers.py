"""Simulated labelers: each bias knob does what it says, measured over many seeded draws.

Tolerances are about 4 standard errors of a proportion over N draws (sqrt(p(1-p)/N) <= 0.011 at N=2000)."""
import math
from collections import Counter

import pytest

from alignkit.data.records import Binary, Listwise, Pairwise, Scored
from alignkit.errors import ConfigError
from alignkit.synthetic.labelers import (BinaryLabeler, LabelerConfig, ListwiseLabeler, PairwiseLabeler,
                                     ScoreLabeler)
from alignkit.synthetic.reward import true_reward

N = 2000
SUM = "What is 7 + 12?"
GOOD, BAD = "7 + 12 = 19.", "7 + 12 = 20."  # r* = +1 and -1
SHORT, LONG = "19.", "The sum of the two is 19."  # both right, both inside the length band: equal r*


def share_first(lab, first, second, n=N):
    return sum(lab.label(SUM, first, second).chosen == first for _ in range(n)) / n


def test_position_bias_prefers_the_first_answer_at_the_configured_rate():
    lab = PairwiseLabeler(LabelerConfig(temperature=0.0, position_bias=0.3, seed=1))
    assert share_first(lab, BAD, GOOD) == pytest.approx(0.3, abs=0.045)  # content says second
    assert share_first(lab, GOOD, BAD) == 1.0
    assert share_first(lab, SHORT, LONG) == pytest.approx(0.3 + 0.7 * 0.5, abs=0.045)  # a tie: a coin otherwise
    assert lab.p_first(SUM, BAD, GOOD) == pytest.approx(0.3)


def test_label_noise_flips_at_the_configured_rate():
    lab = PairwiseLabeler(LabelerConfig(temperature=0.0, noise=0.2, seed=2))
    assert share_first(lab, GOOD, BAD) == pytest.approx(0.8, abs=0.045)
    assert share_first(lab, BAD, GOOD) == pytest.approx(0.2, abs=0.045)


def test_length_bias_prefers_longer_answers_of_equal_truth():
    assert true_reward(SUM, SHORT) == true_reward(SUM, LONG)
    neutral = PairwiseLabeler(LabelerConfig(temperature=0.0, seed=3))
    biased = PairwiseLabeler(LabelerConfig(temperature=0.0, length_bias=0.1, seed=3))
    assert share_first(neutral, LONG, SHORT) == pytest.approx(0.5, abs=0.045)
    assert share_first(biased, LONG, SHORT) == 1.0
    # strong enough, it even beats the truth: 4 words more at 0.6 a word outweigh a wrong sum (r* gap 2)
    verbose_wrong = "Let me think about it carefully, it is 20."  # 9 words vs 5, in band, wrong
    assert PairwiseLabeler(LabelerConfig(temperature=0.0, length_bias=0.6)).label(SUM, GOOD, verbose_wrong).chosen == verbose_wrong


def test_bradley_terry_temperature_sets_the_choice_probability():
    lab = PairwiseLabeler(LabelerConfig(temperature=1.0, seed=4))
    expected = 1 / (1 + math.exp(-2.0))  # r* gap 2 at T=1
    assert lab.p_first(SUM, GOOD, BAD) == pytest.approx(expected)
    assert share_first(lab, GOOD, BAD) == pytest.approx(expected, abs=0.045)
    cold = PairwiseLabeler(LabelerConfig(temperature=0.25, seed=4))
    assert cold.p_first(SUM, GOOD, BAD) == pytest.approx(1 / (1 + math.exp(-8.0)))


def test_pairwise_label_is_a_record_and_seeded():
    a = [PairwiseLabeler(LabelerConfig(temperature=1.0, seed=5)).label(SUM, GOOD, BAD) for _ in range(3)]
    assert all(isinstance(r, Pairwise) and r.prompt == SUM for r in a)
    runs = [[PairwiseLabeler(LabelerConfig(temperature=1.0, seed=5)).label(SUM, GOOD, BAD).chosen] for _ in range(2)]
    assert runs[0] == runs[1]


def test_best_vs_worst_picks_the_extremes_or_nothing():
    lab = PairwiseLabeler(LabelerConfig(temperature=0.0, seed=6))
    resp = ["7 + 12 = 20. Whatever.", GOOD, "It is 18."]
    pair = lab.label_best_vs_worst(SUM, resp)
    assert (pair.chosen, pair.rejected) == (GOOD, "7 + 12 = 20. Whatever.")
    assert lab.label_best_vs_worst(SUM, [SHORT, LONG]) is None  # equal utility: no preference
    assert lab.label_best_vs_worst(SUM, [GOOD]) is None


def test_binary_thumbs_follow_the_threshold_and_noise():
    lab = BinaryLabeler(LabelerConfig(temperature=0.0, noise=0.1, seed=7))
    ups_good = sum(lab.label(SUM, GOOD).label for _ in range(N)) / N
    ups_bad = sum(lab.label(SUM, BAD).label for _ in range(N)) / N
    assert ups_good == pytest.approx(0.9, abs=0.045) and ups_bad == pytest.approx(0.1, abs=0.045)
    strict = BinaryLabeler(LabelerConfig(temperature=0.0, threshold=1.5))
    assert not strict.label(SUM, GOOD).label
    assert isinstance(lab.label(SUM, GOOD), Binary)
    assert BinaryLabeler(LabelerConfig(temperature=1.0)).p_up(SUM, GOOD) == pytest.approx(1 / (1 + math.exp(-1.0)))


def test_listwise_ranks_by_truth_and_follows_plackett_luce():
    resp = [BAD, GOOD, "Ugh. 7 + 12 = 20."]  # r* = -1, 1, -2
    det = ListwiseLabeler(LabelerConfig(temperature=0.0, seed=8))
    rec = det.label(SUM, resp)
    assert isinstance(rec, Listwise) and rec.completions == tuple(resp)
    assert rec.scores == (1.0, 2.0, 0.0) and rec.ranked()[0] == GOOD
    pl = ListwiseLabeler(LabelerConfig(temperature=1.0, seed=8))
    tops = Counter(pl.ranking(SUM, resp)[0] for _ in range(N))
    z = math.exp(-1) + math.exp(1) + math.exp(-2)
    assert tops[1] / N == pytest.approx(math.exp(1) / z, abs=0.045)
    assert tops[0] / N == pytest.approx(math.exp(-1) / z, abs=0.045)


def test_listwise_position_bias_and_noise():
    resp = [BAD, GOOD, "Ugh. 7 + 12 = 20."]
    shown = ListwiseLabeler(LabelerConfig(temperature=0.0, position_bias=1.0))
    assert shown.ranking(SUM, resp) == [0, 1, 2]
    half = ListwiseLabeler(LabelerConfig(temperature=0.0, position_bias=0.4, seed=9))
    assert sum(half.ranking(SUM, resp) == [0, 1, 2] for _ in range(N)) / N == pytest.approx(0.4, abs=0.045)
    noisy = ListwiseLabeler(LabelerConfig(temperature=0.0, noise=1.0, seed=9))
    orders = Counter(tuple(noisy.ranking(SUM, resp)) for _ in range(N))
    assert len(orders) == 6 and min(orders.values()) / N > 1 / 6 - 0.03


def test_scores_are_truth_plus_gaussian_noise():
    exact = ScoreLabeler(LabelerConfig())
    assert exact.label(SUM, GOOD) == Scored(SUM, GOOD, 1.0)
    noisy = ScoreLabeler(LabelerConfig(score_noise=0.5, seed=10))
    xs = [noisy.label(SUM, GOOD).score for _ in range(N)]
    mean = sum(xs) / N
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (N - 1))
    assert mean == pytest.approx(1.0, abs=0.04) and std == pytest.approx(0.5, abs=0.045)
    garbage = ScoreLabeler(LabelerConfig(noise=1.0, seed=10))
    ys = [garbage.label(SUM, GOOD).score for _ in range(N)]
    assert -4.0 <= min(ys) and max(ys) <= 2.75 and sum(ys) / N == pytest.approx(-0.625, abs=0.1)


def test_labeler_config_rejects_out_of_range_knobs():
    with pytest.raises(ConfigError):
        LabelerConfig(noise=1.5)
    with pytest.raises(ConfigError):
        LabelerConfig(position_bias=-0.1)
    with pytest.raises(ConfigError):
        LabelerConfig(temperature=-1)
