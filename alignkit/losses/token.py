"""Token-level preference optimisation: TDPO, and the per-token implicit rewards of "From r to Q*".

Papers: TDPO (Zeng et al. 2024, arXiv 2404.11999) and "From r to Q*" (Rafailov et al. 2024,
arXiv 2404.12358); each docstring gives its formula.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import option
from .base import Logps, LossOutput, PairwiseInput, pair_logratios, preference_metrics


def token_rewards(policy: Logps, ref: Logps, beta: float) -> Tensor:
    """Per-token implicit rewards (Rafailov et al. 2024, "From r to Q*: Your Language Model is
    Secretly a Q-Function", arXiv 2404.12358): in the token-level MDP,
    beta * log(pi(y_t|s_t) / pi_ref(y_t|s_t)) = Q*(s_t, y_t) - V*(s_t), so

      r_t = beta * (log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t))        (N, T), 0 off the mask

    Summed over t this telescopes to the sequence-level DPO reward beta * Delta(y) = r(x, y) - V*(s_0),
    which is why per-token credit assignment falls out of a DPO-trained model.
    """
    return beta * (policy.tokens - ref.tokens) * policy.mask  # (N, T)


def sequential_kl(policy: Logps, ref: Logps) -> Tensor:
    """D_SeqKL(x, y) = sum_t KL(pi_ref(.|x, y_<t) || pi(.|x, y_<t)) over completion positions, (N,).
    Note the direction: reference first (as the TDPO code's `per_position_kl`). Computed in at least
    float32, since bf16 softmax over a large vocabulary loses the small differences."""
    dtype = torch.promote_types(policy.logits.dtype, torch.float32)
    logp = F.log_softmax(policy.logits.to(dtype), dim=-1)  # (N, T, V)
    ref_logp = F.log_softmax(ref.logits.to(dtype), dim=-1)  # (N, T, V)
    kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)  # (N, T)
    return (kl * policy.mask).sum(-1).to(policy.tokens.dtype)  # (N,)


@dataclass(frozen=True)
class TDPOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratios
    alpha: float = option(0.5, ge=0)  # TDPO2 weight on the sequential-KL difference (unused by TDPO1)
    variant: int = option(2, choices=(1, 2))  # 1 = TDPO1 (plain KL difference), 2 = TDPO2 (alpha-weighted, stop-gradient on the chosen KL)


def tdpo(inp: PairwiseInput, cfg: TDPOConfig) -> LossOutput:
    """TDPO (Zeng et al. 2024, "Token-level Direct Preference Optimization", arXiv 2404.11999,
    TDPO1 and TDPO2 objectives; code Vance0124/TDPO):

      u = Delta(y_w) - Delta(y_l)                        (summed token log-ratios)
      TDPO1: L = -log sigma(beta * (u - [D_SeqKL(y_l) - D_SeqKL(y_w)]))
      TDPO2: L = -log sigma(beta * (u - alpha * [D_SeqKL(y_l) - sg(D_SeqKL(y_w))]))

    D_SeqKL is the full-vocabulary KL(pi_ref || pi) summed over completion positions, so the
    policy *and* reference logits must be present (needs_logits). Default variant 2 with
    alpha = 0.5, the setting the paper's README runs (the repo yaml's default is TDPO1).
    Logged rewards are beta * (Delta + D_SeqKL), as in the reference code.
    """
    if cfg.variant not in (1, 2):
        raise ValueError(f"tdpo variant must be 1 or 2, got {cfg.variant}")
    for name in ("chosen", "rejected", "ref_chosen", "ref_rejected"):
        if getattr(inp, name) is None or getattr(inp, name).logits is None:
            raise ValueError(f"tdpo needs {name} with logits in its PairwiseInput (needs_logits)")
    d_w, d_l = pair_logratios(inp)  # (B,), (B,)
    kl_w = sequential_kl(inp.chosen, inp.ref_chosen)  # (B,)
    kl_l = sequential_kl(inp.rejected, inp.ref_rejected)  # (B,)
    if cfg.variant == 1:
        logits = (d_w - d_l) - (kl_l - kl_w)
    else:
        logits = (d_w - d_l) - cfg.alpha * (kl_l - kl_w.detach())
    metrics = preference_metrics(cfg.beta * (d_w + kl_w), cfg.beta * (d_l + kl_l))
    metrics.update({"kl/chosen": kl_w.detach(), "kl/rejected": kl_l.detach()})
    return LossOutput(-F.logsigmoid(cfg.beta * logits), metrics)
