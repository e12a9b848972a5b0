"""Offline pairwise preference losses (survey: direct human preference optimisation).

Every function here takes a PairwiseInput of per-token log-probs and reduces them itself.
Formulas: ../shared/methods.md section 3 and 8.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from .base import LossOutput, PairwiseInput, pair_logratios, preference_metrics


@dataclass(frozen=True)
class DPOConfig:
    beta: float = 0.1  # temperature on the log-ratios; larger = stronger pull to the reference


def dpo(inp: PairwiseInput, cfg: DPOConfig) -> LossOutput:
    """DPO (Rafailov et al. 2023, eq. 7): L = -log sigma(beta * [Delta(y_w) - Delta(y_l)]),
    Delta(y) = log pi(y|x) - log pi_ref(y|x) with summed token log-probs."""
    d_w, d_l = pair_logratios(inp)  # (B,), (B,)
    logits = cfg.beta * (d_w - d_l)
    return LossOutput(-F.logsigmoid(logits), preference_metrics(cfg.beta * d_w, cfg.beta * d_l))
