"""Feedback shapes: how a record becomes sequences, and how their log-probs become a loss input.

The offline loop knows nothing about methods. A loss declares its feedback shape; the shape says
which (prompt, completion) sequences an example contributes and how to lay their log-probs out for
the loss. Adding a shape is one class here.
"""
from __future__ import annotations

import torch

from ..data import records as R
from ..losses.base import (BinaryInput, DemoInput, ListwiseInput, Logps, PairwiseInput)


class Shape:
    feedback = ""
    # which of an example's sequences get their log-prob and length logged, under what name
    logged: dict = {0: ""}

    def data_metrics(self, policy: Logps, n_examples: int) -> dict:
        """Per-example policy log-probs (summed) and lengths (tokens) of the `logged` sequences, e.g.
        logps/chosen and length/rejected: the numbers that show likelihood displacement (both
        log-probs falling) or a drift in length, whatever the loss."""
        per = len(policy) // max(n_examples, 1)
        out = {}
        for j, role in self.logged.items():
            rows = policy[j % per::per]
            name = f"/{role}" if role else ""
            out[f"logps{name}"] = rows.sum().detach()
            out[f"length{name}"] = rows.lengths().detach()
        return out

    def sequences(self, rec, idx: int, data: list) -> list:
        """[(prompt, completion), ...] for example `idx` of `data`."""
        raise NotImplementedError

    def build(self, policy: Logps, ref: Logps | None, recs: list, extra: dict):
        """The loss input of a micro-batch: its sequences' log-probs laid out for the loss."""
        raise NotImplementedError

    def prepare(self, records: list, model, tokenizer, seed: int) -> list:
        """Called once before tokenization (with the initial model); may filter or enrich records."""
        return records


class DemoShape(Shape):
    feedback = "demonstration"

    def sequences(self, rec, idx, data):
        return [(rec.prompt, rec.completion)]

    def build(self, policy, ref, recs, extra):
        return DemoInput(policy, ref, value=extra.get("value"))


class ScoredShape(DemoShape):
    feedback = "scored"

    def build(self, policy, ref, recs, extra):
        score = torch.tensor([r.score for r in recs], dtype=policy.tokens.dtype)
        return DemoInput(policy, ref, score=score, value=extra.get("value"))


class PairShape(Shape):
    feedback = "pairwise"
    logged = {0: "chosen", 1: "rejected"}

    def sequences(self, rec, idx, data):
        return [(rec.prompt, rec.chosen), (rec.prompt, rec.rejected)]

    def build(self, policy, ref, recs, extra):
        margin = torch.tensor([r.margin for r in recs], dtype=policy.tokens.dtype)
        return PairwiseInput(policy[0::2], policy[1::2],
                             None if ref is None else ref[0::2], None if ref is None else ref[1::2],
                             margin)


class BinaryShape(Shape):
    """With `needs_mismatch`, each example also contributes (its prompt, the next example's
    completion) in dataset order: KTO's mismatched pairs, fixed so their reference log-probs cache."""
    feedback = "binary"

    def sequences(self, rec, idx, data):
        seqs = [(rec.prompt, rec.completion)]
        if self.mismatch:
            other = data[(idx + 1) % len(data)]
            seqs.append((rec.prompt, other.completion))
        return seqs

    def __init__(self, mismatch: bool = False):
        self.mismatch = mismatch

    def build(self, policy, ref, recs, extra):
        desirable = torch.tensor([bool(r.label) for r in recs])
        score = torch.tensor([getattr(r, "score", 1.0 if r.label else -1.0) for r in recs],
                             dtype=policy.tokens.dtype)
        step = 2 if self.mismatch else 1
        mm = policy[1::2] if self.mismatch else None
        ref_mm = ref[1::2] if (self.mismatch and ref is not None) else None
        ref_main = None if ref is None else ref[0::step]
        return BinaryInput(policy[0::step], desirable, ref_main, mm, ref_mm,
                           value=extra.get("value"), score=score)


class NegativeShape(Shape):
    """Negative-only feedback (unlearning, harmful answers): each example is (prompt, a response to
    avoid). Reads demonstrations (the completion is the negative), thumbs-down binary records, or
    pairwise records (the rejected side). With `num_samples` K > 0 (D2O) the shape also draws K
    self-samples per prompt (the method's `shape_options`) from the initial model once, before training, so that their reference
    log-probs cache; the loss then sees a (B, K+1) list whose column 0 is the negative."""
    feedback = "negative"
    logged = {0: "negative"}

    def __init__(self, num_samples: int = 0, max_tokens: int = 64, temperature: float = 1.0):
        self.k, self.max_tokens, self.temperature = num_samples, max_tokens, temperature
        self.samples: dict = {}

    @staticmethod
    def negative_of(rec):
        if isinstance(rec, R.Pairwise):
            return rec.rejected
        if isinstance(rec, R.Binary):
            return rec.completion if not rec.label else None
        return getattr(rec, "completion", None)

    def prepare(self, records: list, model, tokenizer, seed: int) -> list:
        records = [r for r in records if self.negative_of(r) is not None]
        if self.k > 0:
            from ..models.generate import SamplingConfig, generate_texts
            prompts = sorted({repr(r.prompt): r.prompt for r in records}.items())
            todo = [p for key, p in prompts if key not in self.samples]
            flat = [p for p in todo for _ in range(self.k)]
            if flat:
                texts = generate_texts(model, tokenizer, flat, SamplingConfig(
                    max_new_tokens=self.max_tokens, temperature=self.temperature), seed=seed)
                for i, p in enumerate(todo):
                    self.samples[repr(p)] = texts[i * self.k:(i + 1) * self.k]
        return records

    def sequences(self, rec, idx, data):
        seqs = [(rec.prompt, self.negative_of(rec))]
        if self.k > 0:
            seqs += [(rec.prompt, s) for s in self.samples[repr(rec.prompt)]]
        return seqs

    def build(self, policy, ref, recs, extra):
        if self.k == 0:
            return DemoInput(policy, ref)
        scores = torch.zeros(len(recs), self.k + 1, dtype=policy.tokens.dtype)  # layout only
        return ListwiseInput(policy, scores, ref)


def ranked_subset(scores, k: int) -> list:
    """Indices of k responses, best first: the best, the worst and evenly spaced ranks between
    (all of them, best first, when k is 0 or the list is no longer)."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: -scores[i])
    if k <= 0 or n <= k:
        return order
    if k == 1:
        return order[:1]
    return [order[round(j * (n - 1) / (k - 1))] for j in range(k)]


class ListShape(Shape):
    """All lists of a run are cut to the same K (the shortest list's length), keeping the best, the
    worst and evenly spaced ranks between, so that a batch is a (B, K) grid."""
    feedback = "listwise"

    def __init__(self, k: int):
        self.k = k  # responses kept per list; 0 = all (lists of different lengths, e.g. reward models)
        self.logged = {0: "best", k - 1: "worst"} if k > 0 else {0: "best"}

    def _pick(self, rec):
        return ranked_subset(rec.scores, self.k)

    def sequences(self, rec, idx, data):
        return [(rec.prompt, rec.completions[i]) for i in self._pick(rec)]

    def build(self, policy, ref, recs, extra):
        scores = torch.tensor([[float(r.scores[i]) for i in self._pick(r)] for r in recs],
                              dtype=policy.tokens.dtype)  # (B, K)
        return ListwiseInput(policy, scores, ref)


def shape_for(method, data: list, loss_cfg=None) -> Shape:
    """The feedback shape of `method`'s loss, with the options the method declares for it."""
    fb = method.feedback
    opts = method.shape_options(loss_cfg) if method.shape_options else {}
    if fb == "negative":
        return NegativeShape(**opts)
    if fb == "demonstration":
        return DemoShape()
    if fb == "scored":
        return ScoredShape()
    if fb == "pairwise":
        return PairShape()
    if fb == "binary":
        return BinaryShape(mismatch=method.needs_mismatch)
    if fb == "listwise":
        return ListShape(k=min(len(r.completions) for r in data))
    raise ValueError(f"no shape for feedback {fb!r}")
