"""The pointwise LLM judge: an additive 0-5 rubric, as the LLM-as-a-Judge prompt of Self-Rewarding
Language Models (Yuan et al. 2024, arXiv 2401.10020, sec. 2.3 and fig. 2): points accumulate for
relevance, coverage, usefulness, clarity and excellence; the judge justifies its rating and ends with
"Score: <points>".

Two ways to get a number:
- cot=1 (default, as in the paper): the judge writes its justification and the score is parsed from
  the text (`parse.parse_score`). With samples=N > 1 (at temperature > 0) N verdicts are sampled and
  their scores averaged, as the paper does with 3. A verdict without a readable score is not dropped:
  the template's verdict line is appended after it and the expected score read from the label
  probabilities (counted in `usage()["parse_fallbacks"]`).
- cot=0: no text at all; the expected score sum_k v_k p(v_k) under the judge's next-token
  probabilities over the score labels after the ending, normalised over them (the "direct" scoring of
  RLAIF, Lee et al. 2023, arXiv 2309.00267, sec. 2.3, which weighs each score by its likelihood).

score() is a reward (RL, rejection sampling, iterative DPO); rank() sorts K samples by it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .exemplars import context_text
from .llm import LLMJudge
from .parse import parse_score


@dataclass(frozen=True)
class ScoreJudgment:
    score: float  # the reward: the mean parsed score, or the expected score from label probabilities
    parsed: tuple = ()  # per sample: the score read from the text, or None where it fell back
    texts: tuple = ()  # per sample: the judge's written verdict (cot=1)
    probabilities: dict | None = None  # label -> probability (cot=0)


class PointwiseLLMJudge(LLMJudge):
    def __init__(self, backend, template, exemplars: tuple = (), cot: bool = True, samples: int = 1,
                 max_new_tokens: int = 256, temperature: float = 0.0, seed: int = 0, name: str | None = None):
        if template.kind != "pointwise":
            raise ValueError(f"template {template.source} is {template.kind}; a pointwise judge needs a pointwise one")
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if samples > 1 and (temperature <= 0 or not cot):
            raise ValueError("samples > 1 needs cot=1 and temperature > 0 (greedy verdicts would all be the same)")
        super().__init__(backend, template, exemplars, cot, max_new_tokens, temperature, seed)
        self.samples = samples
        self.values = template.scores()
        self.low, self.high = min(self.values), max(self.values)
        self.counts["parse_fallbacks"] = 0
        self.name = name or f"llm-score:{backend.name}"

    def fields(self, prompt, responses: tuple) -> dict:
        return {"context": context_text(prompt), "response": responses[0]}

    def _expected(self, probs: list) -> float:
        return sum(v * p for v, p in zip(self.values, probs))

    def score_details(self, prompts: list, responses: list) -> list:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return []
        fields = [self.fields(p, (r,)) for p, r in zip(prompts, responses)]
        self.counts["judgments"] += len(fields)
        if not self.cot:
            probs = self.label_probs([self.direct_query(f) for f in fields])
            return [ScoreJudgment(self._expected(p), probabilities=dict(zip(self.template.labels, p))) for p in probs]
        cots = [self.cot_query(f) for f in fields]
        texts = [self.rationales(cots, self.seed + s) for s in range(self.samples)]  # [sample][item]
        parsed = [[parse_score(t, self.low, self.high) for t in row] for row in texts]
        todo = [(s, i) for s in range(self.samples) for i in range(len(fields)) if parsed[s][i] is None]
        fallback = {}
        if todo:
            self.counts["parse_fallbacks"] += len(todo)
            probs = self.label_probs([self.verdict_query(cots[i], texts[s][i]) for s, i in todo])
            fallback = {key: self._expected(p) for key, p in zip(todo, probs)}
        out = []
        for i in range(len(fields)):
            values = [parsed[s][i] if parsed[s][i] is not None else fallback[(s, i)] for s in range(self.samples)]
            out.append(ScoreJudgment(sum(values) / len(values), tuple(parsed[s][i] for s in range(self.samples)),
                                     tuple(texts[s][i] for s in range(self.samples))))
        return out

    def score(self, prompts: list, responses: list) -> list:
        return [j.score for j in self.score_details(prompts, responses)]
