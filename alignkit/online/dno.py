"""DNO: Direct Nash Optimization, its practical batched on-policy form (Rosset et al. 2024, arXiv 2404.03715,
Algorithm 2, "DNO-Prct").

Per round t, for each prompt x:
1. K answers y_1..y_K ~ pi_t(.|x) (the paper: 5), plus the teacher's (gold) answer when --teacher-data has
   one for x (the paper adds GPT-4's);
2. a preference function ranks them: each candidate's win rate against the others,
   w(y_i) = mean_{j != i} P(y_i > y_j | x), from any judge: a pairwise judge (llm-pair:..., a preference
   model) is asked every pair, a pointwise one (rm:DIR, truth, llm-score:...) gives P = sigma(s_i - s_j);
3. the pair (best, worst) by win rate is kept only when w(best) - w(worst) >= --min-gap (the large-margin
   filter; the margin is in win-rate units, in [0, 1]);
4. a contrastive update, DPO's loss (any pairwise loss via --loss), on the kept pairs from pi_t with
   reference pi_t (the previous round), giving pi_{t+1}.

This is iterative-dpo's flow with other settings (reference = previous, win-rate scores, a margin, teacher
candidates), so dno is that flow (alignkit/online/rounds.py) with these defaults, not a copy: --samples-per-prompt
5, --reference previous, --min-gap 0.2 (the paper filters for large margins; the threshold is a setting
here), and DPO.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import ConfigError
from ..rewards.judge import sigmoid
from ..train.run import Job
from .iterative import JudgedRecipe, best_vs_worst
from .rounds import RoundsConfig, judge_scores, run_rounds


@dataclass(frozen=True)
class DNOConfig(RoundsConfig):
    reward: str = ""  # the preference function: any judge spec (llm-pair:..., rm:DIR, truth, llm-score:...); required
    loss: str = "dpo"  # the contrastive update: DPO (the paper) or any pairwise loss; its own flags follow
    samples_per_prompt: int = option(5, ge=1)  # K on-policy answers per prompt (the paper: 5)
    reference: str = "previous"  # the paper: the reference of round t's update is pi_t
    min_gap: float = option(0.2, ge=0, le=1)  # keep a pair only if the winner's win rate beats the loser's by at least this (large-margin filter, win-rate units)
    teacher_data: str = ""  # file of teacher (gold) answers, prompt/completion or prompt/chosen records, added to their prompt's candidates; "" = none


class DNORecipe(JudgedRecipe):
    def __init__(self, job: Job):
        super().__init__(job)
        self.teacher: dict = {}

    def check(self) -> None:
        super().check()
        if not 0 <= self.mc.min_gap <= 1:
            raise ConfigError(f"dno: --min-gap is a win-rate margin in [0, 1], got {self.mc.min_gap}")
        if self.mc.teacher_data:
            from ..data.readers import read_records
            records, report = read_records(self.mc.teacher_data, on_bad_record=self.job.cfg.on_bad_record)
            self.job.log(report.summary())
            for r in records:
                text = getattr(r, "completion", None) or getattr(r, "chosen", None)
                if text is None:
                    raise ConfigError(f"{self.mc.teacher_data}: teacher answers are prompt/completion or "
                                      f"prompt/chosen records, got {type(r).__name__}")
                self.teacher.setdefault(repr(r.prompt), []).append(text)
            self.job.log(f"dno: teacher answers for {len(self.teacher)} prompts")
        if self.mc.samples_per_prompt + (1 if self.teacher else 0) < 2:
            raise ConfigError("dno needs at least two candidates per prompt (--samples-per-prompt, --teacher-data)")

    def candidates(self, prompt, answers: list) -> list:
        return list(answers) + [t for t in self.teacher.get(repr(prompt), []) if t not in answers]

    def scores(self, judge, groups: list) -> list:
        try:  # a pointwise judge's own scores, also for the log (the win rates average 1/2 by construction)
            self.raw = judge.score([p for p, cs in groups for _ in cs], [c for _, cs in groups for c in cs])
        except NotImplementedError:  # a pairwise judge: the round robin of compare()
            self.raw = None
        return preference_win_rates(judge, groups, self.raw)

    def mean_reward(self, scores: list) -> float:
        """The judge's mean score of the round's candidates (a pairwise judge: the mean win rate, 1/2)."""
        return sum(self.raw) / len(self.raw) if self.raw else super().mean_reward(scores)

    def records(self, prompt, candidates: list, scores: list, source: str) -> list:
        r = best_vs_worst(prompt, candidates, scores, source, self.mc.min_gap)
        return [r] if r is not None else []

    def empty_message(self, t: int) -> str:
        return (f"dno round {t}: no prompt's best answer beats its worst by the win-rate margin --min-gap "
                f"{self.mc.min_gap}; lower it, or raise --samples-per-prompt or --temperature")


def preference_win_rates(judge, groups: list, scores: list | None = None) -> list:
    """Each candidate's mean P(it beats another candidate of its prompt). A pointwise judge's scores (or the
    flat `scores` already taken) are read as Bradley-Terry preferences, P = sigma(s_i - s_j); a pairwise judge
    is asked every pair."""
    s = scores
    if s is None:
        try:
            s = judge.score([p for p, cs in groups for _ in cs], [c for _, cs in groups for c in cs])
        except NotImplementedError:
            return judge_scores(judge, groups)  # the round robin of compare()
    out, i = [], 0
    for _, cs in groups:
        g = s[i:i + len(cs)]
        i += len(cs)
        n = len(g)
        out.append([sum(sigmoid(g[a] - g[b]) for b in range(n) if b != a) / max(1, n - 1) for a in range(n)])
    return out


def run_dno(job: Job) -> dict:
    return run_rounds(job, DNORecipe(job))
