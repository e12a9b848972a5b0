"""Iterative (online) preference optimisation: sample -> judge -> train, round after round.

Each round samples K responses per prompt from the *current* policy, lets a judge score them
(a reward model `rm:DIR`, the bundled task's `truth`, a rule, an implicit reward...: RLAIF when the
judge is a model), pairs each prompt's best against its worst answer, and trains a registered
pairwise loss on those pairs from the current model. Offline DPO learns from one fixed set of
pairs sampled from the SFT model; here the pairs follow the policy as it moves, so they keep
covering what the policy now writes (Xiong et al. 2024, "Iterative Preference Learning from Human
Feedback", arXiv 2312.11456: best-vs-worst of the current policy's samples under a reward model,
reference = the initial model; Xu et al. 2023, arXiv 2312.16682). Its relatives on the same rounds are
methods of their own: `dno` (Rosset et al. 2024: win rates under a preference function, large-margin
pairs, reference = the previous round, teacher answers; alignkit/online/dno.py), `self-rewarding` (Yuan
et al. 2024: the policy as its own LLM judge; self_rewarding.py) and `iterative-cringe` (iterative_cringe.py).

With a listwise loss (SPPO, Wu et al. 2024, arXiv 2405.00675) the round keeps the best and the worst
sample with their win rates against the policy, estimated from the K samples (a pairwise judge's probabilities
as they are, a scoring judge's scores read as Bradley-Terry preferences);
SPPO's reference is the round's policy pi_t (--reference previous).

The rounds themselves (sampling, judging, training, resuming, the held-out figures and --stop-when) are
the shared machinery of alignkit/online/rounds.py; this module is what iterative-dpo does in a round.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..data.records import Listwise, Pairwise
from ..errors import ConfigError
from ..rewards.judge import sigmoid
from ..train.run import Job
from .rounds import Recipe, RoundsConfig, judged, round_prompts, run_rounds  # noqa: F401  (round_prompts: API)


@dataclass(frozen=True)
class IterativeConfig(RoundsConfig):
    reward: str = ""  # judge spec that scores each prompt's samples (rm:DIR, truth, rule:NAME, implicit:..., llm-score:...); required
    loss: str = "dpo"  # the loss each round trains: any pairwise one (dpo, ipo, simpo, ...) or sppo (win rates); its own flags follow (e.g. --beta, --eta)


def _extremes(responses: list, scores: list, min_gap: float) -> tuple | None:
    """(best index, worst index), or None when they tie, are the same text, or differ by less than min_gap."""
    hi = max(range(len(scores)), key=lambda i: scores[i])
    lo = min(range(len(scores)), key=lambda i: scores[i])
    if scores[hi] == scores[lo] or responses[hi] == responses[lo] or scores[hi] - scores[lo] < min_gap:
        return None
    return hi, lo


def best_vs_worst(prompt, responses: list, scores: list, source: str, min_gap: float = 0.0) -> Pairwise | None:
    """The highest- against the lowest-scored response."""
    ends = _extremes(responses, scores, min_gap)
    return None if ends is None else Pairwise(prompt, responses[ends[0]], responses[ends[1]], source=source)


def win_rates(scores: list) -> list:
    """Each response's win rate against the policy, estimated from its K samples (SPPO, Wu et al. 2024):
    P(y_i > pi) = (1/K) sum_j sigma(s_i - s_j), j = i included (it adds 1/2), under a Bradley-Terry
    reading of the judge's scores."""
    k = len(scores)
    return [sum(sigmoid(si - sj) for sj in scores) / k for si in scores]


def round_robin_win_rates(wins: list) -> list:
    """The same estimate from a pairwise judge's round robin, w_i = mean_{j != i} P(y_i > y_j) (what
    rounds.judge_scores gives for a judge without scores): P(y_i > pi) = (1/K) (1/2 + sum_{j != i} P(y_i > y_j))
    = ((K - 1) w_i + 1/2) / K. The judge's probabilities are used as they are, not read as scores again."""
    k = len(wins)
    return [((k - 1) * w + 0.5) / k for w in wins]


def best_vs_worst_win_rates(prompt, responses: list, scores: list, source: str,
                            min_gap: float = 0.0, round_robin: bool = False) -> Listwise | None:
    """The best and the worst response with their win rates (SPPO's pair), as a two-response list;
    `round_robin`: the scores are a pairwise judge's round-robin win rates (round_robin_win_rates)."""
    ends = _extremes(responses, scores, min_gap)
    if ends is None:
        return None
    (hi, lo), p = ends, (round_robin_win_rates if round_robin else win_rates)(scores)
    return Listwise(prompt, (responses[hi], responses[lo]), (p[hi], p[lo]), source=source)


class JudgedRecipe(Recipe):
    """A recipe whose judge is one fixed judge spec (--reward)."""

    def __init__(self, job: Job):
        super().__init__(job)
        self._judge = None

    def check(self) -> None:
        if not self.mc.reward:
            raise ConfigError(f"{self.name} needs --reward SPEC (the judge that scores the samples), e.g. rm:DIR "
                              "or truth")

    def judge(self, policy: str):
        from ..rewards.specs import judge_from_spec
        if self._judge is None:
            self._judge = judge_from_spec(self.mc.reward)
        return self._judge


class IterativeRecipe(JudgedRecipe):
    """Best against worst of each prompt's K samples (or SPPO's pair with win rates)."""

    round_robin = False  # the round's scores are a pairwise-only judge's round-robin win rates (rounds.judged)

    def check(self) -> None:
        super().check()
        if self.mc.samples_per_prompt < 2:
            raise ConfigError("iterations must be >= 1 and samples_per_prompt >= 2")
        if self.spec.feedback == "listwise" and self.mc.reference != "previous":
            self.job.log("note: the win rates are against the round's own policy pi_t; SPPO's reference is that "
                         "policy (--reference previous)")

    def scores(self, judge, groups: list) -> list:
        scores, self.round_robin = judged(judge, groups)
        return scores

    def records(self, prompt, candidates: list, scores: list, source: str) -> list:
        if self.spec.feedback == "listwise":  # SPPO's pair with its win rates against pi_t
            r = best_vs_worst_win_rates(prompt, candidates, scores, source, self.mc.min_gap, self.round_robin)
        else:
            r = best_vs_worst(prompt, candidates, scores, source, self.mc.min_gap)
        return [r] if r is not None else []


def run_iterative(job: Job) -> dict:
    return run_rounds(job, IterativeRecipe(job))
