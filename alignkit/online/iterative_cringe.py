"""Iterative CRINGE (Xu et al. 2023, "Some things are more CRINGE than others: Iterative preference
optimization with the pairwise cringe loss", arXiv 2312.16682): the policy's own bad generations, as judged,
become CRINGE's negatives, round after round.

Each round samples K answers per prompt from the current policy and scores them with the judge (--reward);
the best answer becomes a positive (thumbs up) and the bad ones negatives (thumbs down): every answer scored
below --bad-below when it is set, else the worst of the K. A prompt whose answers all tie gives nothing.
The binary records train the CRINGE loss (Adolphs et al. 2022, arXiv 2211.05826; alignkit/losses/negative.py:
cross-entropy on the positives, the token-level contrastive loss on the negatives), or any binary loss via
--loss, from the current policy. Xu et al. also give a pairwise variant of the loss; this recipe trains the
binary CRINGE loss on the iterated, self-generated data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..data.records import Binary
from ..errors import ConfigError
from ..train.run import Job
from .iterative import JudgedRecipe
from .rounds import RoundsConfig, run_rounds


@dataclass(frozen=True)
class IterativeCringeConfig(RoundsConfig):
    reward: str = ""  # judge spec that scores the policy's answers (rm:DIR, truth, llm-score:..., ...); required
    loss: str = "cringe"  # the binary loss each round trains (cringe; kto, bco, ... also work); its own flags follow
    bad_below: Optional[float] = None  # answers scored below this are negatives; unset = the worst of each prompt's K


class CringeRecipe(JudgedRecipe):
    data_file = "thumbs.jsonl"

    def check(self) -> None:
        super().check()
        if self.mc.samples_per_prompt < 2:
            raise ConfigError("iterative-cringe needs samples_per_prompt >= 2 (the best and the bad of each prompt)")

    def records(self, prompt, candidates: list, scores: list, source: str) -> list:
        return cringe_records(prompt, candidates, scores, source, self.mc.bad_below, self.mc.min_gap)

    def empty_message(self, t: int) -> str:
        return (f"iterative-cringe round {t}: no prompt has a best and a bad answer (all tie, gaps below min_gap, or "
                "nothing below --bad-below); raise --samples-per-prompt or --temperature")


def cringe_records(prompt, answers: list, scores: list, source: str, bad_below: float | None = None,
                   min_gap: float = 0.0) -> list:
    """The best answer as a positive and the bad ones (below bad_below, else the worst) as negatives."""
    hi = max(range(len(scores)), key=lambda i: scores[i])
    lo = min(range(len(scores)), key=lambda i: scores[i])
    if scores[hi] == scores[lo] or scores[hi] - scores[lo] < min_gap:
        return []
    bad = [i for i in range(len(answers)) if scores[i] < bad_below] if bad_below is not None else [lo]
    negatives, seen = [], {answers[hi]}
    for i in bad:
        if answers[i] not in seen and scores[i] < scores[hi]:
            seen.add(answers[i])
            negatives.append(Binary(prompt, answers[i], False, source=source))
    if not negatives:
        return []
    return [Binary(prompt, answers[hi], True, source=source)] + negatives


def run_iterative_cringe(job: Job) -> dict:
    return run_rounds(job, CringeRecipe(job))
