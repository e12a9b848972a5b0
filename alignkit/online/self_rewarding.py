"""Self-rewarding language models (Yuan et al. 2024, arXiv 2401.10020): the policy is its own judge.

Each round t the current model M_t (a) answers each prompt K times (the paper: 4, temperature 0.7), (b)
scores its own answers with the pointwise LLM-as-a-Judge prompt, the additive 0-5 rubric of the paper's fig. 2
(alignkit's `llm-score:hf:M_t` judge: the judges package with the current policy as its backend, loaded
afresh each round), (c) pairs its highest- against its lowest-scored answer, dropping prompts whose answers
tie (sec. 2.3: "we discard the pair if the scores are the same"), and (d) trains DPO (any pairwise loss via
--loss) on those pairs with reference = M_t, giving M_{t+1} (sec. 2.4: AIFT(M_t)).

EFT (the paper's evaluation fine-tuning data, sec. 2.2): with --eft-data FILE of judgments (prompt,
response, score; scored records `prompt/completion/score`), each round first trains SFT on
"the judge prompt for (prompt, response)" -> "the rubric answer for score" (the score label nearest to the
given score; with cot=1 the answer is "Score: N"), so the model's judging is trained along with its
answering; then the round's DPO starts from that model, reference M_t. (The paper mixes EFT into the seed
SFT of M_1 only; --eft-rounds first does that, all repeats it every round.)

With --eval-judge truth on the bundled task, each round reports the self-judge's pairwise agreement with r*:
over the round's K answers per prompt, the share of pairs both judges order strictly that they order alike.

Judge options (--judge-options, added to the spec): template=helpful|harmless|FILE, cot=0|1, samples=N,
temperature=T, max_tokens=N, batch_size=N, dtype=... (alignkit/judges/specs.py). The paper's judge writes
a justification (cot=1) and averages 3 sampled verdicts; cot=0 reads the expected score from the label
probabilities instead (what a model too small to write a verdict can do).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..data.records import Demonstration
from ..errors import ConfigError
from ..train.run import Job
from .iterative import best_vs_worst
from .rounds import Recipe, RoundsConfig, run_rounds


@dataclass(frozen=True)
class SelfRewardingConfig(RoundsConfig):
    loss: str = "dpo"  # the pairwise loss each round trains (the paper: DPO, beta 0.1); its own flags follow
    samples_per_prompt: int = option(4, ge=1)  # N answers per prompt the model judges (the paper: 4)
    temperature: float = option(0.7, ge=0, aliases=("sample_temperature",))  # the paper samples at T=0.7, top-p 0.9
    reference: str = "previous"  # the paper: M_t is the reference of the round that trains M_{t+1}
    judge_options: str = ""  # options of the self-judge, appended to llm-score:hf:POLICY, e.g. "cot=0,template=FILE" (alignkit/judges/specs.py)
    eft_data: str = ""  # judgments (prompt, completion, score) to train the model's judging on (EFT, sec. 2.2); "" = none
    eft_rounds: str = option("all", choices=("all", "first"))  # all | first: the rounds that train on the EFT data before their DPO
    eft_steps: int = option(0, ge=0)  # optimizer steps of the EFT SFT (0 = the run's --epochs / --max-steps)


class SelfRewardingRecipe(Recipe):
    def __init__(self, job: Job):
        super().__init__(job)
        self._judge, self._judge_path = None, None
        self._eft = None

    def check(self) -> None:
        if self.mc.samples_per_prompt < 2:
            raise ConfigError("self-rewarding needs samples_per_prompt >= 2 (best against worst)")
        if self.mc.eft_rounds not in ("all", "first"):
            raise ConfigError(f"--eft-rounds must be all or first, got {self.mc.eft_rounds!r}")
        if self.mc.eft_data:
            from ..data.readers import read_records
            records, report = read_records(self.mc.eft_data, shape="scored", on_bad_record=self.job.cfg.on_bad_record)
            self.job.log(report.summary())
            if not records:
                raise ConfigError(f"{self.mc.eft_data}: no judgments (prompt, completion, score)")
            self._eft = records
        self.judge_spec(self.job.model)  # a bad --judge-options is an error before any sampling

    def judge_spec(self, policy: str) -> str:
        spec = f"hf:{policy}" + (f",{self.mc.judge_options}" if self.mc.judge_options else "")
        from ..judges.specs import parse_llm_spec
        parse_llm_spec("llm-score", spec)
        return spec

    def judge_name(self) -> str:
        return "llm-score:" + self.judge_spec("POLICY")

    def judge(self, policy: str):
        from ..judges.specs import llm_judge
        if self._judge_path != policy:
            self.release()
            self._judge, self._judge_path = llm_judge("llm-score", self.judge_spec(policy)), policy
        return self._judge

    def release(self) -> None:
        self._judge, self._judge_path = None, None

    def records(self, prompt, candidates: list, scores: list, source: str) -> list:
        r = best_vs_worst(prompt, candidates, scores, source, self.mc.min_gap)
        return [r] if r is not None else []

    def before_training(self, t: int, policy: str, rdir: Path, judge, round_cfg) -> str:
        if not self._eft or (self.mc.eft_rounds == "first" and t > 1):
            return policy
        from ..losses.registry import get_loss
        from ..train.offline import train_offline
        from ..train.run import load_split
        demos = eft_demonstrations(judge, self._eft)
        sft = get_loss("sft")
        cfg = dataclasses.replace(round_cfg, ref="", max_steps=self.mc.eft_steps or round_cfg.max_steps)
        self.job.log(f"self-rewarding round {t}: EFT, SFT on {len(demos)} judging examples before the round's "
                     f"{self.spec.name}")
        train, ev = load_split(demos, cfg, "demonstration", self.job.log)
        self.release()
        s = train_offline(sft, sft.config(), cfg, policy, train, ev, str(rdir / "eft"), self.job.log)
        if s.get("interrupted"):
            raise KeyboardInterrupt
        return str(rdir / "eft")


def eft_demonstrations(judge, judgments: list) -> list:
    """EFT records: the judge's query for (prompt, response) -> the rubric's answer for the score (the
    nearest score label; with chain of thought, 'Score: N' after the cot ending)."""
    values = judge.template.scores()
    out = []
    for r in judgments:
        label = judge.template.labels[min(range(len(values)), key=lambda i: abs(values[i] - float(r.score)))]
        fields = judge.fields(r.prompt, (r.completion,))
        if judge.cot:
            out.append(Demonstration(judge.cot_query(fields), f"Score: {label}", source=r.source))
        else:
            out.append(Demonstration(judge.direct_query(fields), label, source=r.source))
    return out


def run_self_rewarding(job: Job) -> dict:
    return run_rounds(job, SelfRewardingRecipe(job))
