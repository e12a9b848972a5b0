"""Listwise and ranking losses: LiPO-lambda, RRHF, PRO.

Each takes a ListwiseInput: B prompts x K responses flattened prompt-major (row b*K + k), with
scores (B, K) where higher is better. Papers: LiPO (Liu et al. 2024, arXiv 2402.01878), RRHF (Yuan et al.
2023, arXiv 2304.05302), PRO (Song et al. 2023, arXiv 2306.17492); each docstring gives its loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import option
from .base import ListwiseInput, LossOutput


def _best(inp: ListwiseInput):
    """(B,) index of the best-scored response of each list (first one on ties)."""
    return inp.scores.argmax(dim=1)


# --------------------------------------------------------------------------------------------
# LiPO-lambda
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LiPOConfig:
    beta: float = option(0.05, gt=0)  # temperature on the log-ratios: s_i = beta * Delta(y_i)


def lipo(inp: ListwiseInput, cfg: LiPOConfig) -> LossOutput:
    """LiPO-lambda (Liu et al. 2024, arXiv 2402.01878, the LiPO-lambda objective with the
    LambdaLoss lambda weights; written out here because equation numbers differ between versions):

      L = sum_{psi_i > psi_j} Lambda_ij * log(1 + exp(-(s_i - s_j))),   s_i = beta * Delta(y_i)
      Lambda_ij = |G_i - G_j| * |1/D(tau_i) - 1/D(tau_j)|,  G_i = 2^psi_i - 1,  D(tau) = log2(1 + tau)

    psi are the list's scores (the paper's labels live in [0, 1]); tau_i is the 1-based rank of y_i
    when the list is sorted by the *model* scores s (dynamic, detached). Delta uses summed log-probs.
    A text copy of the paper drops the "1/" in front of D; we follow the DCG/LambdaLoss definition
    that the paper cites.
    """
    delta = inp.policy.sum() - inp.ref.sum()  # (B*K,)
    s = inp.grouped(cfg.beta * delta)  # (B, K)
    psi = inp.scores.to(s.dtype)  # (B, K)
    order = s.detach().argsort(dim=1, descending=True, stable=True)  # (B, K)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(1, s.shape[1] + 1, device=s.device).expand_as(order))
    inv_discount = 1.0 / torch.log2(1.0 + ranks.to(s.dtype))  # (B, K) 1/D(tau_i)
    gain = torch.pow(2.0, psi) - 1  # (B, K)
    lam = (gain[:, :, None] - gain[:, None, :]).abs() * (
        inv_discount[:, :, None] - inv_discount[:, None, :]).abs()  # (B, K, K)
    better = (psi[:, :, None] > psi[:, None, :]).to(s.dtype)  # (B, K, K) pairs psi_i > psi_j
    pair_loss = F.softplus(-(s[:, :, None] - s[:, None, :]))  # (B, K, K)
    loss = (better * lam * pair_loss).sum(dim=(1, 2))  # (B,)
    n_pairs = better.sum(dim=(1, 2)).clamp(min=1)
    acc = (better * (s[:, :, None] > s[:, None, :]).to(s.dtype)).sum(dim=(1, 2)) / n_pairs
    return LossOutput(loss, {"rewards": s.detach().flatten(), "rank_accuracy": acc.detach()})


# --------------------------------------------------------------------------------------------
# RRHF
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RRHFConfig:
    rank_weight: float = option(1.0, ge=0)  # w on the ranking hinge (1 in the paper's scripts; the code default is 100)
    length_penalty: float = option(1.0, ge=0)  # p_i = log pi(y_i) / |y_i|^length_penalty (1 = mean log-prob)


def rrhf(inp: ListwiseInput, cfg: RRHFConfig) -> LossOutput:
    """RRHF (Yuan et al. 2023, arXiv 2304.05302, the rank, fine-tune and total losses): reference-free.

      p_i = log pi(y_i|x) / |y_i|^lp
      L = w * sum_{r_i < r_j} max(0, p_i - p_j)  +  L_ft,   L_ft = token-mean NLL of argmax_i r_i

    L_ft is the best response's mean NLL over its own completion tokens (the official code,
    GanjinZero/RRHF, averages over padded positions too, which is not a token mean).
    """
    lengths = inp.policy.lengths().clamp(min=1)  # (B*K,)
    p = inp.grouped(inp.policy.sum() / lengths ** cfg.length_penalty)  # (B, K)
    r = inp.scores.to(p.dtype)  # (B, K)
    worse = (r[:, :, None] < r[:, None, :]).to(p.dtype)  # (B, K, K) pairs r_i < r_j
    rank = (worse * F.relu(p[:, :, None] - p[:, None, :])).sum(dim=(1, 2))  # (B,)
    mean_logp = inp.grouped(inp.policy.mean())  # (B, K)
    best = _best(inp)  # (B,)
    ft = -mean_logp.gather(1, best[:, None]).squeeze(1)  # (B,)
    loss = cfg.rank_weight * rank + ft
    return LossOutput(loss, {"rrhf/rank": rank.detach(), "rrhf/sft": ft.detach()})


# --------------------------------------------------------------------------------------------
# PRO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PROConfig:
    sft_weight: float = option(0.05, ge=0)  # w_sft; the SFT term is w_sft * (K-1)^2 * NLL(best), as in the official code


def pro(inp: ListwiseInput, cfg: PROConfig) -> LossOutput:
    """PRO (Song et al. 2023, arXiv 2306.17492, the ranking loss with dynamic temperature plus SFT):
    reference-free. Sort the list best first, y^1 > ... > y^n by score r, s_k = mean log-prob.

      L_k = -log [ exp(s_k * m_k) / (exp(s_k * m_k) + sum_{i>k} exp(s_i * (r^k - r^i))) ],
      m_k = max_{i>k} (r^k - r^i)        (paper: T_i^k = 1/(r^k - r^i), T_k^k = min_{i>k} T_i^k)
      L = sum_{k=1}^{n-1} L_k  +  w_sft * (n-1)^2 * (-log pi(y^1|x))     (summed log-prob)

    Follows the official code (DAMO-ConvAI/PRO, process_manager.py). Ties (r^k = r^i) give the tied
    response a zero temperature; with all rewards equal every L_k is log(n - k + 1).
    """
    r = inp.scores.to(inp.policy.tokens.dtype)  # (B, K)
    n = r.shape[1]
    order = r.argsort(dim=1, descending=True, stable=True)  # (B, K) best first
    r = r.gather(1, order)  # (B, K) sorted
    s = inp.grouped(inp.policy.mean()).gather(1, order)  # (B, K)
    seq_logp = inp.grouped(inp.policy.sum()).gather(1, order)  # (B, K)
    rank = torch.zeros_like(s[:, 0])  # (B,)
    for k in range(n - 1):
        gaps = r[:, k:k + 1] - r[:, k + 1:]  # (B, n-k-1) r^k - r^i
        m = gaps.max(dim=1).values  # (B,)
        top = s[:, k] * m  # (B,)
        rest = s[:, k + 1:] * gaps  # (B, n-k-1)
        rank = rank + torch.logsumexp(torch.cat([top[:, None], rest], dim=1), dim=1) - top
    sft = -seq_logp[:, 0]  # (B,)
    loss = rank + cfg.sft_weight * (n - 1) ** 2 * sft
    return LossOutput(loss, {"pro/rank": rank.detach(), "pro/sft": sft.detach()})
