"""Simulated labelers on the ground truth r*, one per feedback shape, with knobs for known biases.

Every labeler judges by a utility u(x, y) = r*(x, y) + length_bias * words(y) (length_bias > 0: a
preference for longer answers, the bias length-controlled methods correct) and then:

- PairwiseLabeler (Bradley-Terry, Bradley & Terry 1952; the DPO paper's eq. 1):
  P(first preferred) = sigma((u_first - u_second) / temperature) (temperature 0: the better one, a
  coin for ties); with probability `position_bias` it prefers whichever answer is shown first without
  looking; then the label is flipped with probability `noise` (the flip model cDPO and rDPO assume).
  So P(first chosen) = (1 - noise) q + noise (1 - q), q = position_bias + (1 - position_bias) * BT.
- BinaryLabeler (thumbs, KTO's data): P(up) = sigma((u - threshold) / temperature), flipped w.p. `noise`.
- ListwiseLabeler (Plackett-Luce, Plackett 1975): picks the best of the remaining answers with
  probability proportional to exp(u / temperature), repeatedly; w.p. `position_bias` it returns the
  shown order, w.p. `noise` a uniformly random order. Scores are (K-1, ..., 0) by rank.
- ScoreLabeler (noisy scalar ratings): u + N(0, score_noise^2); w.p. `noise` a uniform random value
  in r*'s range instead.

Labelers are seeded and stateful (one random stream each), so a run's labels are reproducible.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..config import option
from ..data.records import Binary, Listwise, Pairwise, Scored, prompt_text
from ..rewards.judge import Judge, sigmoid
from .reward import RewardWeights, n_words, true_reward, true_reward_breakdown

R_MIN, R_MAX = -4.0, 2.75  # the range of r* with the default weights


@dataclass(frozen=True)
class LabelerConfig:
    temperature: float = option(0.5, ge=0)  # Bradley-Terry / Plackett-Luce / thumbs temperature on utility gaps; 0 = deterministic
    noise: float = option(0.0, ge=0, le=1)  # probability a label is corrupted (flipped; random order; random score)
    length_bias: float = 0.0  # utility bonus per word of the answer: > 0 prefers longer answers
    position_bias: float = option(0.0, ge=0, le=1)  # probability of preferring whichever answer is shown first, unseen (pairwise, listwise)
    score_noise: float = option(0.0, ge=0)  # standard deviation of Gaussian noise on scalar scores
    threshold: float = 0.0  # binary: the utility above which an answer deserves a thumbs up
    seed: int = 0  # the labeler's random stream
    population: bool = False  # pairwise labels from the intransitive annotator population (substance, manners, brevity; one drawn annotator per pair, its own temperature 0.25) instead of one labeller on r*

    def __post_init__(self):
        from ..errors import ConfigError
        for name in ("noise", "position_bias"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"labeler {name} must be in [0, 1], got {v}")
        if self.temperature < 0 or self.score_noise < 0:
            raise ConfigError("labeler temperature and score_noise must be >= 0")


class _Labeler:
    def __init__(self, cfg: LabelerConfig = LabelerConfig(), weights: RewardWeights = RewardWeights()):
        self.cfg, self.weights = cfg, weights
        self.rng = random.Random(f"labeler|{type(self).__name__}|{cfg.seed}")

    def utility(self, prompt, response: str) -> float:
        return true_reward(prompt_text(prompt), response, self.weights) + self.cfg.length_bias * n_words(response)

    def _gap_prob(self, gap: float) -> float:
        """sigma(gap / T), the T -> 0 limit being a step with 1/2 at a tie."""
        if self.cfg.temperature == 0:
            return 1.0 if gap > 0 else 0.0 if gap < 0 else 0.5
        return sigmoid(gap / self.cfg.temperature)


class PairwiseLabeler(_Labeler):
    def p_first(self, prompt, first: str, second: str) -> float:
        """P(the first-shown answer is chosen), biases and noise included."""
        bt = self._gap_prob(self.utility(prompt, first) - self.utility(prompt, second))
        q = self.cfg.position_bias + (1 - self.cfg.position_bias) * bt
        return (1 - self.cfg.noise) * q + self.cfg.noise * (1 - q)

    def label(self, prompt, first: str, second: str) -> Pairwise:
        """One judgement of two answers shown in this order."""
        if self.rng.random() < self.cfg.position_bias:
            pick_first = True
        else:
            gap = self.utility(prompt, first) - self.utility(prompt, second)
            pick_first = self.rng.random() < self._gap_prob(gap)
        if self.rng.random() < self.cfg.noise:
            pick_first = not pick_first
        chosen, rejected = (first, second) if pick_first else (second, first)
        return Pairwise(prompt, chosen, rejected)

    def label_best_vs_worst(self, prompt, responses: list) -> Pairwise | None:
        """Rate all answers, take the highest- and lowest-utility ones (None when they tie or are the
        same text), show them in random order and judge that pair (biases and noise apply)."""
        if len(responses) < 2:
            return None
        u = [self.utility(prompt, r) for r in responses]
        hi = max(range(len(u)), key=lambda i: u[i])
        lo = min(range(len(u)), key=lambda i: u[i])
        if u[hi] == u[lo] or responses[hi] == responses[lo]:
            return None
        a, b = (responses[hi], responses[lo]) if self.rng.random() < 0.5 else (responses[lo], responses[hi])
        return self.label(prompt, a, b)


class BinaryLabeler(_Labeler):
    def p_up(self, prompt, response: str) -> float:
        q = self._gap_prob(self.utility(prompt, response) - self.cfg.threshold)
        return (1 - self.cfg.noise) * q + self.cfg.noise * (1 - q)

    def label(self, prompt, response: str) -> Binary:
        up = self.rng.random() < self._gap_prob(self.utility(prompt, response) - self.cfg.threshold)
        if self.rng.random() < self.cfg.noise:
            up = not up
        return Binary(prompt, response, up)


class ListwiseLabeler(_Labeler):
    def ranking(self, prompt, responses: list) -> list:
        """Indices best first."""
        k = len(responses)
        r = self.rng.random()
        if r < self.cfg.position_bias:
            return list(range(k))
        if self.rng.random() < self.cfg.noise:
            order = list(range(k))
            self.rng.shuffle(order)
            return order
        u = [self.utility(prompt, y) for y in responses]
        left, order = list(range(k)), []
        while left:
            if self.cfg.temperature == 0:
                best = max(u[i] for i in left)
                pick = self.rng.choice([i for i in left if u[i] == best])
            else:
                m = max(u[i] for i in left)
                w = [math.exp((u[i] - m) / self.cfg.temperature) for i in left]
                pick = self.rng.choices(left, weights=w)[0]
            order.append(pick)
            left.remove(pick)
        return order

    def label(self, prompt, responses: list) -> Listwise:
        order = self.ranking(prompt, responses)
        scores = [0.0] * len(responses)
        for rank, i in enumerate(order):
            scores[i] = float(len(responses) - 1 - rank)
        return Listwise(prompt, tuple(responses), tuple(scores))


class ScoreLabeler(_Labeler):
    def label(self, prompt, response: str) -> Scored:
        if self.rng.random() < self.cfg.noise:
            s = self.rng.uniform(R_MIN, R_MAX)
        else:
            s = self.utility(prompt, response) + (self.rng.gauss(0.0, self.cfg.score_noise) if self.cfg.score_noise else 0.0)
        return Scored(prompt, response, float(s))


LABELERS = {"pairwise": PairwiseLabeler, "binary": BinaryLabeler, "listwise": ListwiseLabeler,
            "scored": ScoreLabeler}


# --- an intransitive labeller population ------------------------------------------------------------
COMPONENTS = ("correctness", "harmlessness", "on_topic", "style", "length")  # r*'s parts (reward.py)


@dataclass(frozen=True)
class AnnotatorType:
    """One kind of annotator: r* with some components weighted more (an emphasis of 4 counts that part
    four times; parts not named count once)."""
    name: str
    share: float  # fraction of the population
    emphasis: tuple  # ((component, multiplier), ...)

    def utility(self, prompt, response: str) -> float:
        parts = true_reward_breakdown(prompt_text(prompt), response)
        m = dict(self.emphasis)
        return sum(m.get(c, 1.0) * parts[c] for c in COMPONENTS)


# Three equal thirds, each caring most about one aspect of r*. Each is transitive; their majority is not:
# answers that trade substance, manners and length against each other form Condorcet cycles
# (A > B > C > A), while answers far apart under r* are ordered as r* orders them.
POPULATION = (AnnotatorType("substance", 1 / 3, (("correctness", 4.0), ("harmlessness", 4.0), ("on_topic", 4.0))),
              AnnotatorType("manners", 1 / 3, (("style", 4.0),)),
              AnnotatorType("brevity", 1 / 3, (("length", 4.0),)))
POPULATION_TEMPERATURE = 0.25  # each annotator's Bradley-Terry temperature on its own utility gaps


class PopulationLabeler:
    """A labeller population (Munos et al. 2023, arXiv 2312.00886, sec. 1: a preference averaged over
    annotators need not be transitive, so no reward represents it). An annotator of type k prefers a to b
    with sigma((u_k(a) - u_k(b)) / T); the population's preference is the share-weighted average

        P(a > b) = sum_k share_k * sigma((u_k(a) - u_k(b)) / T),

    and a label is one randomly drawn annotator's judgement (then flipped w.p. `noise`)."""

    def __init__(self, cfg: LabelerConfig = LabelerConfig(temperature=POPULATION_TEMPERATURE),
                 types: tuple = POPULATION):
        if not types or abs(sum(t.share for t in types) - 1.0) > 1e-6:
            raise ValueError("annotator shares must sum to 1")
        self.cfg, self.types = cfg, types
        self.rng = random.Random(f"labeler|population|{cfg.seed}")

    def _gap_prob(self, gap: float) -> float:
        if self.cfg.temperature == 0:
            return 1.0 if gap > 0 else 0.0 if gap < 0 else 0.5
        return sigmoid(gap / self.cfg.temperature)

    def p_first(self, prompt, first: str, second: str) -> float:
        """P(the population prefers `first`), noise included."""
        q = sum(t.share * self._gap_prob(t.utility(prompt, first) - t.utility(prompt, second)) for t in self.types)
        return (1 - self.cfg.noise) * q + self.cfg.noise * (1 - q)

    def majority_prefers(self, prompt, a: str, b: str) -> bool:
        return self.p_first(prompt, a, b) > 0.5

    def draw(self) -> AnnotatorType:
        return self.rng.choices(self.types, weights=[t.share for t in self.types])[0]

    def label(self, prompt, first: str, second: str, annotator: AnnotatorType | None = None) -> Pairwise:
        """One judgement of two answers by one annotator (drawn from the population unless given)."""
        t = annotator or self.draw()
        pick_first = self.rng.random() < self._gap_prob(t.utility(prompt, first) - t.utility(prompt, second))
        if self.rng.random() < self.cfg.noise:
            pick_first = not pick_first
        chosen, rejected = (first, second) if pick_first else (second, first)
        return Pairwise(prompt, chosen, rejected)

    def label_best_vs_worst(self, prompt, responses: list) -> Pairwise | None:
        """A drawn annotator rates every answer and judges its own best against its own worst, shown in
        random order (None when they tie or are the same text)."""
        if len(responses) < 2:
            return None
        t = self.draw()
        u = [t.utility(prompt, r) for r in responses]
        hi = max(range(len(u)), key=lambda i: u[i])
        lo = min(range(len(u)), key=lambda i: u[i])
        if u[hi] == u[lo] or responses[hi] == responses[lo]:
            return None
        a, b = (responses[hi], responses[lo]) if self.rng.random() < 0.5 else (responses[lo], responses[hi])
        return self.label(prompt, a, b, annotator=t)


def find_cycles(labeler: PopulationLabeler, prompt, responses: list, limit: int = 0) -> list:
    """Triples (a, b, c) of distinct responses whose majority preference is a cycle a > b > c > a, each
    listed once (limit > 0: stop after that many)."""
    import itertools
    uniq = list(dict.fromkeys(responses))
    n = len(uniq)
    maj = {(i, j): labeler.majority_prefers(prompt, uniq[i], uniq[j]) for i in range(n) for j in range(n) if i != j}
    out = []
    for i, j, k in itertools.combinations(range(n), 3):
        for a, b, c in ((i, j, k), (i, k, j)):
            if maj[(a, b)] and maj[(b, c)] and maj[(c, a)]:
                out.append((uniq[a], uniq[b], uniq[c]))
                if limit and len(out) >= limit:
                    return out
    return out


class PopulationJudge(Judge):
    """The population as a pairwise-only judge (no scalar score represents it): `population` answers
    compare() with the population's probability P(a > b); `population:SEED` with one drawn annotator's
    0/1 vote per comparison (a seeded stream), as a round of human labelling would."""

    def __init__(self, seed: int | None = None, types: tuple = POPULATION):
        self.seed = seed
        self.labeler = PopulationLabeler(LabelerConfig(temperature=POPULATION_TEMPERATURE, seed=seed or 0), types)
        self.name = "population" if seed is None else f"population:{seed}"

    def compare(self, prompts: list, a: list, b: list) -> list:
        if self.seed is None:
            return [self.labeler.p_first(p, x, y) for p, x, y in zip(prompts, a, b)]
        return [1.0 if self.labeler.label(p, x, y).chosen == x and x != y else 0.5 if x == y else 0.0
                for p, x, y in zip(prompts, a, b)]
