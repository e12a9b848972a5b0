"""RSO's statistical rejection sampling (Algorithm 1) and tournament pairing."""
import math
import random

from alignkit.online.rejection_sampling import rejection_sample, tournament_pairs
from alignkit.rewards.judge import Judge


def test_large_beta_accepts_everything_in_order():
    assert rejection_sample([0.0, 5.0, -3.0, 1.0], m=4, beta=1e9, rng=random.Random(0)) == [0, 1, 2, 3]


def test_small_beta_is_best_of_n():
    rewards = [0.1, 0.9, 0.5, 0.7, 0.3]
    got = rejection_sample(rewards, m=3, beta=1e-6, rng=random.Random(0))
    assert got == [1, 3, 2]  # one per round: the current maximum


def test_acceptance_follows_tilted_distribution():
    # With two candidates and m=1, the lower one is accepted in round 1 with prob exp(-(gap)/beta),
    # and it comes first in candidate order, so P(pick low) = exp(-gap/beta).
    rng = random.Random(1)
    gap, beta, n = 1.0, 1.0, 20000
    low_first = sum(rejection_sample([0.0, gap], 1, beta, rng) == [0] for _ in range(n)) / n
    assert abs(low_first - math.exp(-gap / beta)) < 0.015


class LengthJudge(Judge):
    name = "length"

    def score(self, prompts, responses):
        return [float(len(r)) for r in responses]


def test_tournament_pairs_order_by_judge_and_drop_ties():
    pairs = tournament_pairs(["a", "bbb", "cc", "dd", "e"], LengthJudge(), "p")
    assert [(c, r) for c, r, _ in pairs] == [("bbb", "a")]  # (cc, dd) tie is dropped, "e" has no partner
    assert pairs[0][2] > 0.5
