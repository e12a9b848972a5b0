"""Statistical rejection sampling (RSO, Liu et al. 2024, arXiv 2309.06657, Algorithm 1).

Draw N candidates from the SFT policy, then accept m of them so that the accepted set follows
pi_r(y|x) ∝ pi_SFT(y|x) * exp(r(x, y) / beta): each round, every remaining candidate c is kept with
probability exp((r_c - r_max) / beta), where r_max is the best remaining reward. beta -> inf accepts
uniformly (plain SFT samples); beta -> 0 keeps the top rewards (best-of-N).
"""
from __future__ import annotations

import math
import random


def rejection_sample(rewards: list, m: int, beta: float, rng: random.Random) -> list:
    """Indices of up to m accepted candidates, in acceptance order."""
    remaining = list(range(len(rewards)))
    accepted: list = []
    while remaining and len(accepted) < m:
        r_max = max(rewards[c] for c in remaining)
        newly = [c for c in remaining if rng.random() < math.exp((rewards[c] - r_max) / beta)]
        accepted.extend(newly)
        remaining = [c for c in remaining if c not in set(newly)]
    return accepted[:m]


def tournament_pairs(candidates: list, judge, prompt) -> list:
    """Pair accepted candidates consecutively, (1,2), (3,4), ..., and let the judge order each pair.
    -> [(chosen, rejected, P(chosen > rejected))]; exact ties are dropped."""
    pairs = []
    for a, b in zip(candidates[0::2], candidates[1::2]):
        if a == b:
            continue
        p = judge.compare([prompt], [a], [b])[0]
        if p == 0.5:
            continue
        pairs.append((a, b, p) if p > 0.5 else (b, a, 1 - p))
    return pairs
