"""The loss contract.

A loss is a pure function `fn(inp, cfg) -> LossOutput`:
- `inp` holds *per-token* log-probs and masks (a `Logps`) for the policy and, when the loss asks for
  one, the reference, laid out by the feedback shape (pairwise, binary, listwise, demonstration,
  scored). The loss reduces them itself (sum, mean, length-normalised): that choice is part of the
  paper's formula, so it lives in the loss, not in the loop.
- `cfg` is the loss's own small frozen dataclass; every field has a comment that becomes `--help`.
- It returns per-example losses (B,) and a dict of detached metrics. The engine averages
  `sum(loss) / sum(weight)` over the whole effective batch (all accumulation steps), so a loss that
  wants a token mean returns per-example *sums* with `weight` = token counts.

Each loss is registered once in `alignkit/losses/registry.py` as a `Method` (alignkit/method.py) saying
what it needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Logps:
    """Per-token log-probs of the completion tokens of N sequences.

    tokens: (N, T) log pi(y_t | x, y_<t), zero where mask is 0
    mask:   (N, T) 1.0 on completion tokens (prompt and padding are 0)
    logits: (N, T, V) completion-position logits, only when the loss's spec asks for them
    ids:    (N, T) the completion token ids (same layout), when logits are given
    """
    tokens: Tensor
    mask: Tensor
    logits: Optional[Tensor] = None
    ids: Optional[Tensor] = None

    def sum(self) -> Tensor:  # (N,) log pi(y|x)
        return (self.tokens * self.mask).sum(-1)

    def mean(self) -> Tensor:  # (N,) log pi(y|x) / |y|
        return self.sum() / self.lengths().clamp(min=1)

    def lengths(self) -> Tensor:  # (N,) |y| in tokens
        return self.mask.sum(-1)

    def __getitem__(self, idx) -> "Logps":
        return Logps(
            self.tokens[idx], self.mask[idx],
            None if self.logits is None else self.logits[idx],
            None if self.ids is None else self.ids[idx],
        )

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def detach(self) -> "Logps":
        return Logps(self.tokens.detach(), self.mask,
                     None if self.logits is None else self.logits.detach(), self.ids)

    @staticmethod
    def from_lists(seqs: list, dtype=torch.float32) -> "Logps":
        """Build from a list of 1-D per-token log-prob tensors (tests and caches)."""
        n, t = len(seqs), max((len(s) for s in seqs), default=0)
        tokens = torch.zeros(n, t, dtype=dtype)
        mask = torch.zeros(n, t, dtype=dtype)
        for i, s in enumerate(seqs):
            s = torch.as_tensor(s, dtype=dtype)
            tokens[i, : len(s)] = s
            mask[i, : len(s)] = 1
        return Logps(tokens, mask)


@dataclass
class PairwiseInput:
    """Pairwise feedback: B pairs. `margin` (B,) is the data's preference strength (0 if none)."""
    chosen: Logps
    rejected: Logps
    ref_chosen: Optional[Logps] = None
    ref_rejected: Optional[Logps] = None
    margin: Optional[Tensor] = None


@dataclass
class BinaryInput:
    """Unpaired thumbs up/down: B single responses.

    desirable: (B,) bool
    mismatch / ref_mismatch: the batch's completions paired with shifted prompts (KTO's z_0),
        present when the spec sets `needs_mismatch`.
    value: (B,) V(x) from the value head, when the spec sets `needs_value` (DRO).
    score: (B,) scalar rating when the data has one (DRO), else +1/-1 from the label.
    """
    policy: Logps
    desirable: Tensor
    ref: Optional[Logps] = None
    mismatch: Optional[Logps] = None
    ref_mismatch: Optional[Logps] = None
    value: Optional[Tensor] = None
    score: Optional[Tensor] = None


@dataclass
class ListwiseInput:
    """Listwise feedback: B prompts x K responses, flattened prompt-major (row b*K + k).
    scores: (B, K), higher is better; all lists in a batch have the same K."""
    policy: Logps
    scores: Tensor
    ref: Optional[Logps] = None

    @property
    def k(self) -> int:
        return self.scores.shape[1]

    def grouped(self, per_seq: Tensor) -> Tensor:
        """(B*K,) -> (B, K)"""
        return per_seq.view(-1, self.k)


@dataclass
class DemoInput:
    """Demonstrations (SFT) or single responses with no label. `score` (B,) when scored data."""
    policy: Logps
    ref: Optional[Logps] = None
    score: Optional[Tensor] = None
    value: Optional[Tensor] = None


@dataclass
class LossOutput:
    """loss: (B,) per-example losses; weight: (B,) per-example weights for the global mean
    (None = 1 each); metrics: name -> detached tensor (scalar or (B,)), averaged for logging."""
    loss: Tensor
    metrics: dict = field(default_factory=dict)
    weight: Optional[Tensor] = None


def pair_logratios(inp: PairwiseInput) -> tuple:
    """(Delta_w, Delta_l): summed log-ratios to the reference, each (B,)."""
    return (inp.chosen.sum() - inp.ref_chosen.sum(), inp.rejected.sum() - inp.ref_rejected.sum())


def preference_metrics(r_chosen: Tensor, r_rejected: Tensor) -> dict:
    """The standard implicit-reward metrics every pairwise loss logs."""
    r_chosen, r_rejected = r_chosen.detach(), r_rejected.detach()
    margin = r_chosen - r_rejected
    # a tie (|margin| below float noise, e.g. at step 0 where policy == reference) counts half
    tie = margin.abs() <= 1e-6
    return {
        "rewards/chosen": r_chosen,
        "rewards/rejected": r_rejected,
        "rewards/margin": margin,
        "rewards/accuracy": (margin > 1e-6).float() + 0.5 * tie.float(),
    }
