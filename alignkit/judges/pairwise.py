"""The pairwise LLM judge of RLAIF (Lee et al. 2023, arXiv 2309.00267).

The prompt is a preamble, optional few-shot exemplars, the sample (context, response 1, response 2)
and an ending that asks which response is preferred (sec. 2.1). The preference is not parsed from
text: it is the judge's next-token probability of each label, normalised over the two labels,

    P(first shown preferred) = p(label_1) / (p(label_1) + p(label_2)).

With chain of thought (cot=1) the judge first writes a rationale and the label probabilities are
read after it (sec. 2.1.2). LLM judges prefer one position (sec. 2.1.1 and sec. 5.2), so by default
each pair is judged in both orders and the two results averaged:

    P(a > b) = ( P(a first, a preferred) + 1 - P(b first, b preferred) ) / 2.

`judge_pairs` reports, per pair, that probability, the two one-order verdicts, and whether they agree
(the position-consistency rate over a dataset is the fraction that do).

A template with {principle} (the built-in `constitution`) judges each comparison under a principle
of a constitution phrased as a multiple-choice question (Constitutional AI, Bai et al. 2022, arXiv
2212.08073, sec. 4.1); `judge_pairs(..., principles=[...])` gives one per pair, and
`constitution.ConstitutionalJudge` draws them.

With a baseline (`baseline=` a Backend), the pairwise judge is also a reward: score(x, y) is
P(y > y_base(x)), the probability that y beats the baseline model's greedy answer to x (generated
once per prompt and kept). This is "direct" RLAIF (Lee et al. 2023, sec. 2.3: the judge's output is
the RL reward, no reward model) with a pairwise judge: group-normalised methods (GRPO, RLOO) only
use the differences between samples of a prompt, so the baseline answer acts as a fixed anchor.
"""
from __future__ import annotations

from dataclasses import dataclass

from .exemplars import context_text
from .llm import LLMJudge


def verdict(p_a: float) -> str:
    return "a" if p_a > 0.5 else ("b" if p_a < 0.5 else "tie")


@dataclass(frozen=True)
class PairJudgment:
    probability: float  # P(a preferred to b): the average of the two orders (or the one order judged)
    forward: float  # P(a preferred) with a shown first
    backward: float | None  # P(a preferred) with b shown first; None with debias off
    rationales: tuple = ()  # the judge's reasoning per order (cot=1), forward first
    principle: str = ""  # the constitution principle the pair was judged under ("" = none)

    @property
    def verdicts(self) -> tuple:
        """The one-order verdicts, "a" | "b" | "tie": (a shown first, b shown first)."""
        return (verdict(self.forward),) + (() if self.backward is None else (verdict(self.backward),))

    @property
    def agree(self) -> bool | None:
        """Do both orders pick the same response? None when only one order was judged."""
        return None if self.backward is None else verdict(self.forward) == verdict(self.backward)

    @property
    def first_preferred(self) -> tuple:
        """P(the response shown first is preferred), per order judged: a measure of position bias."""
        return (self.forward,) + (() if self.backward is None else (1.0 - self.backward,))


class PairwiseLLMJudge(LLMJudge):
    """compare(prompts, a, b) -> P(a_i > b_i). score() is not defined (a pairwise-only judge); rank()
    counts expected wins over all pairs (alignkit.rewards.judge.Judge.rank)."""

    def __init__(self, backend, template, exemplars: tuple = (), cot: bool = False, debias: bool = True,
                 max_new_tokens: int = 256, temperature: float = 0.0, seed: int = 0, name: str | None = None,
                 baseline=None, baseline_tokens: int = 128):
        if template.kind != "pairwise":
            raise ValueError(f"template {template.source} is {template.kind}; a pairwise judge needs a pairwise one")
        if baseline_tokens < 1:
            raise ValueError(f"baseline_tokens must be >= 1, got {baseline_tokens}")
        super().__init__(backend, template, exemplars, cot, max_new_tokens, temperature, seed)
        self.debias = bool(debias)
        self.name = name or f"llm-pair:{backend.name}"
        self.baseline, self.baseline_tokens = baseline, int(baseline_tokens)
        self._baseline_answers: dict = {}  # prompt key -> the baseline model's greedy answer

    def fields(self, prompt, responses: tuple) -> dict:
        return {"context": context_text(prompt), "response_a": responses[0], "response_b": responses[1]}

    def first_probs(self, prompts: list, firsts: list, seconds: list, principles: list | None = None) -> tuple:
        """P(the first shown response is preferred) for each (prompt, first, second), and the rationales."""
        fields = [self.fields(p, (x, y)) for p, x, y in zip(prompts, firsts, seconds)]
        if principles is not None:
            fields = [{**f, "principle": pr} for f, pr in zip(fields, principles)]
        if not self.cot:
            return [pr[0] for pr in self.label_probs([self.direct_query(f) for f in fields])], [""] * len(fields)
        cots = [self.cot_query(f) for f in fields]
        rats = self.rationales(cots)
        probs = self.label_probs([self.verdict_query(c, r, self.shared(f)) for c, r, f in zip(cots, rats, fields)])
        return [pr[0] for pr in probs], rats

    def _check_principles(self, n: int, principles) -> list | None:
        from ..errors import ConfigError
        if principles is None:
            if self.template.uses_principle:
                raise ConfigError(f"template {self.template.source} asks for a {{principle}}; judge with a "
                                  "constitution (llm-cai:BACKEND, alignkit constitution prefs)")
            return None
        if not self.template.uses_principle:
            raise ConfigError(f"template {self.template.source} has no {{principle}} placeholder; a judge under "
                              "a constitution needs one (e.g. template=constitution)")
        principles = list(principles)
        if len(principles) != n:
            raise ValueError(f"{n} pairs but {len(principles)} principles")
        return principles

    def judge_pairs(self, prompts: list, a: list, b: list, principles: list | None = None) -> list:
        """A PairJudgment per (prompt, a, b), under principles[i] when the template has {principle};
        both orders go to the backend in one batch."""
        n = len(prompts)
        if not (n == len(a) == len(b)):
            raise ValueError(f"{n} prompts, {len(a)} first and {len(b)} second responses")
        principles = self._check_principles(n, principles)
        if n == 0:
            return []
        if self.debias:
            probs, rats = self.first_probs(list(prompts) * 2, list(a) + list(b), list(b) + list(a),
                                           None if principles is None else principles * 2)
        else:
            probs, rats = self.first_probs(list(prompts), list(a), list(b), principles)
        self.counts["judgments"] += n
        out = []
        for i in range(n):
            pr = "" if principles is None else principles[i]
            if self.debias:
                fwd, bwd = probs[i], 1.0 - probs[n + i]
                out.append(PairJudgment((fwd + bwd) / 2, fwd, bwd, (rats[i], rats[n + i]) if self.cot else (), pr))
            else:
                out.append(PairJudgment(probs[i], probs[i], None, (rats[i],) if self.cot else (), pr))
        return out

    def compare(self, prompts: list, a: list, b: list) -> list:
        return [j.probability for j in self.judge_pairs(prompts, a, b)]

    # ---- a reward: P(response > the baseline's answer) ---------------------------------------------
    def baseline_answers(self, prompts: list) -> list:
        """The baseline model's greedy answer to each prompt, generated once per distinct prompt."""
        import json
        keys = [p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in prompts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._baseline_answers))
        if todo:
            first = {k: p for k, p in zip(keys, prompts)}
            answers = self.baseline.generate([first[k] for k in todo], self.baseline_tokens, 0.0, self.seed)
            self._baseline_answers.update({k: a.strip() for k, a in zip(todo, answers)})
        return [self._baseline_answers[k] for k in keys]

    def score(self, prompts: list, responses: list) -> list:
        """P(response_i > the baseline model's answer to prompt_i), with a baseline; else not defined."""
        if self.baseline is None:
            raise NotImplementedError(f"{self.name} compares pairs only; give it a baseline model "
                                      "(llm-pair:...,baseline=DIR) to score single responses")
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return self.compare(prompts, responses, self.baseline_answers(prompts))
