"""What the pairwise and the pointwise LLM judges share: a backend, a template, exemplars, and the
three kinds of query they send.

- direct:  preamble, exemplars, sample, ending -> read the label probabilities next
- cot:     preamble, exemplars, sample, cot_ending -> the judge writes its reasoning
- verdict: the cot query, the reasoning, then the template's verdict -> read the label probabilities

This is RLAIF's two-step chain of thought (Lee et al. 2023, arXiv 2309.00267, sec. 2.1.2: generate
a rationale, then append the ending and score the labels). With a chat backend the query is one user
message, and the verdict step is a second user turn after the assistant's reasoning, which every chat
API accepts; with a completion backend it is one text.
"""
from __future__ import annotations

from ..rewards.judge import Judge


class LLMJudge(Judge):
    def __init__(self, backend, template, exemplars: tuple = (), cot: bool = False, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0):
        if max_new_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if cot:
            template.require_cot()
        self.backend, self.template, self.exemplars = backend, template, tuple(exemplars)
        self.cot, self.max_new_tokens, self.temperature, self.seed = bool(cot), max_new_tokens, temperature, seed
        self.counts = {"judgments": 0, "queries": 0}

    # ---- building queries ---------------------------------------------------------------------------
    def fields(self, prompt, responses: tuple) -> dict:
        """The sample's placeholder values for one prompt and its response(s), in the order shown."""
        raise NotImplementedError

    @staticmethod
    def shared(fields: dict) -> dict:
        """The values of a judgment that every section may use (a constitution's {principle})."""
        return {k: fields[k] for k in ("principle",) if k in fields}

    def _exemplar_block(self, shared: dict) -> str:
        t, shots = self.template, []
        for ex in self.exemplars:
            sample = t.section("sample", **self.fields(ex.prompt, ex.responses), **shared)
            if self.cot and ex.rationale:
                shots.append(f"{sample}\n\n{t.section('cot_ending', **shared)} {ex.rationale.strip()}\n\n"
                             f"{t.section('verdict', **shared)} {ex.answer}")
            else:
                shots.append(f"{sample}\n\n{t.section('ending', **shared)} {ex.answer}")
        return "\n\n".join(shots)

    def _text(self, fields: dict, last: str) -> str:
        t, shared = self.template, self.shared(fields)
        parts = [t.section("preamble", **shared)]
        if self.exemplars:
            parts.append(self._exemplar_block(shared))
        parts += [t.section("sample", **fields), t.section(last, **shared)]
        return "\n\n".join(parts)

    def _wrap(self, text: str):
        return [{"role": "user", "content": text}] if self.backend.chat else text

    def direct_query(self, fields: dict):
        return self._wrap(self._text(fields, "ending"))

    def cot_query(self, fields: dict):
        return self._wrap(self._text(fields, "cot_ending"))

    def verdict_query(self, cot_query, rationale: str, shared: dict | None = None):
        verdict = self.template.section("verdict", **(shared or {}))
        if self.backend.chat:
            return list(cot_query) + [{"role": "assistant", "content": rationale.strip()},
                                      {"role": "user", "content": verdict}]
        return f"{cot_query} {rationale.strip()}\n\n{verdict}"

    # ---- asking ------------------------------------------------------------------------------------
    def label_probs(self, queries: list) -> list:
        """Per query, the probabilities of the template's labels (normalised over the labels)."""
        from .backends import normalise
        self.counts["queries"] += len(queries)
        return [normalise(lp) for lp in self.backend.label_logprobs(queries, self.template.labels)]

    def rationales(self, queries: list, seed: int | None = None) -> list:
        self.counts["queries"] += len(queries)
        return self.backend.generate(queries, self.max_new_tokens, self.temperature,
                                     self.seed if seed is None else seed)

    def usage(self) -> dict:
        """Judgments made, queries sent, and the backend's calls and tokens (cache hits are not calls)."""
        return {**self.counts, **self.backend.usage()}
