"""One Judge interface for every source of feedback: explicit reward models, implicit (DPO) rewards,
rule rewards, the bundled task's ground truth, and LLM judges (RLAIF).

A judge scores one response, compares two, and ranks several. Judges with a scalar score get
`compare` (Bradley-Terry: P(a > b) = sigma(s_a - s_b)) and `rank` for free; pairwise-only judges
(an LLM asked "which is better?") override `compare` and inherit a win-count `rank`.
"""
from __future__ import annotations

import math


def sigmoid(z: float) -> float:
    """1 / (1 + e^-z) without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class Judge:
    name = "judge"

    def score(self, prompts: list, responses: list) -> list:
        """Scalar reward per (prompt, response); higher is better. Batched and deterministic."""
        raise NotImplementedError(f"{type(self).__name__} gives pairwise judgements only; use compare()")

    def compare(self, prompts: list, a: list, b: list) -> list:
        """P(a_i preferred to b_i) for each i."""
        sa, sb = self.score(prompts, a), self.score(prompts, b)
        return [sigmoid(x - y) for x, y in zip(sa, sb)]

    def rank(self, prompt, responses: list) -> list:
        """Indices of `responses`, best first."""
        try:
            s = self.score([prompt] * len(responses), responses)
        except NotImplementedError:
            n = len(responses)
            wins = [0.0] * n
            for i in range(n):
                for j in range(i + 1, n):
                    p = self.compare([prompt], [responses[i]], [responses[j]])[0]
                    wins[i] += p
                    wins[j] += 1 - p
            s = wins
        return sorted(range(len(responses)), key=lambda i: -s[i])


class WeightedJudge(Judge):
    """sum_k w_k * judge_k.score: several rewards combined with weights."""

    def __init__(self, parts: list):
        self.parts = parts  # [(weight, Judge)]
        self.name = "+".join(f"{w}*{j.name}" for w, j in parts)

    def score(self, prompts, responses):
        total = [0.0] * len(responses)
        for w, j in self.parts:
            for i, s in enumerate(j.score(prompts, responses)):
                total[i] += w * s
        return total
