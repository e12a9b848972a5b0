"""Supervised fine-tuning: negative log-likelihood of the completion tokens."""
from __future__ import annotations

from dataclasses import dataclass

from .base import DemoInput, LossOutput


@dataclass(frozen=True)
class SFTConfig:
    token_mean: bool = True  # average NLL over all completion tokens of the effective batch (True) or per sequence then over sequences (False)


def sft(inp: DemoInput, cfg: SFTConfig) -> LossOutput:
    """SFT, the token-level NLL of demonstrations (InstructGPT's SFT stage, Ouyang et al. 2022,
    arXiv 2203.02155, sec. 3.5): L = -(1/N_tok) sum_batch sum_t log pi(y_t | x, y_<t).

    With `token_mean`, returns per-sequence NLL sums weighted by token counts, so the engine's
    sum(loss)/sum(weight) is the token mean over the whole effective batch, also across gradient
    accumulation (the TRL #2617 pitfall). Otherwise each sequence's mean NLL counts once.
    """
    nll = -inp.policy.sum()  # (B,)
    n = inp.policy.lengths()  # (B,)
    if cfg.token_mean:
        return LossOutput(nll, {"nll": (nll / n.clamp(min=1)).detach()}, weight=n)
    per_seq = nll / n.clamp(min=1)
    return LossOutput(per_seq, {"nll": per_seq.detach()})
