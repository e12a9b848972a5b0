"""Reward-model losses: pure functions of scalar rewards r(x, y), one per feedback shape.

- `bradley_terry` (pairwise): -log sigma(r_w - r_l - m) [+ eta (r_w + r_l)^2]
      (Ouyang et al. 2022, arXiv 2203.02155, eq. 1; margin m: Touvron et al. 2023, arXiv 2307.09288, eq. 2)
- `pointwise` (scored):      (r - s)^2            (e.g. SteerLM, Dong et al. 2023, arXiv 2310.05344)
- `plackett_luce` (listwise): negative log-likelihood of the whole ranking

Each returns a `LossOutput` with per-example losses (B,) so that the engine can average them exactly
over micro-batches and processes (alignkit/train/engine.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses.base import LossOutput, preference_metrics


def bradley_terry(r_chosen: Tensor, r_rejected: Tensor, margin: Tensor | None = None,
                  center_coef: float = 0.0, label: Tensor | None = None) -> LossOutput:
    """Bradley-Terry reward-model loss (Ouyang et al. 2022, arXiv 2203.02155, eq. 1):

        L = -log sigma(r_w - r_l - m)                     (m = 0: plain BT)

    margin m (B,): Llama 2's rating margin (Touvron et al. 2023, arXiv 2307.09288, eq. 2).
    center_coef eta: adds eta * (r_w + r_l)^2, which pins the free per-prompt offset of BT rewards near
        zero (Eisenstein et al. 2023, "Helping or Herding", arXiv 2312.09244; TRL's
        `center_rewards_coefficient`, 0.01 suggested).
    label p (B,): an optional soft label P(y_w > y_l); the loss is then the cross-entropy
        -p log sigma(z) - (1 - p) log sigma(-z), which is plain BT at p = 1.

    r_chosen, r_rejected: (B,) scalar rewards.
    """
    z = r_chosen - r_rejected  # (B,)
    if margin is not None:
        z = z - margin
    loss = F.softplus(-z)  # -log sigma(z), stable
    if label is not None:
        loss = label * loss + (1 - label) * F.softplus(z)
    if center_coef:
        loss = loss + center_coef * (r_chosen + r_rejected) ** 2
    return LossOutput(loss, preference_metrics(r_chosen, r_rejected))


def pointwise(reward: Tensor, target: Tensor) -> LossOutput:
    """Pointwise regression reward model (e.g. SteerLM, Dong et al. 2023,
    arXiv 2310.05344): L = (r(x, y) - s)^2 for a scalar label s. reward, target: (B,)."""
    err = reward - target  # (B,)
    loss = err ** 2
    return LossOutput(loss, {"rewards/mse": loss.detach(), "rewards/abs_error": err.detach().abs()})


def plackett_luce(rewards: Tensor, scores: Tensor, mask: Tensor | None = None) -> LossOutput:
    """Plackett-Luce negative log-likelihood of a ranking (Plackett 1975; Luce 1959), the listwise
    reward-model loss that reduces to Bradley-Terry for K = 2 (Zhu et al. 2023, arXiv 2301.11270):

        L = -sum_k [ r_pi(k) - log sum_{j >= k} exp r_pi(j) ]     pi = the order by label, best first

    Written per item, the sum over j >= k is the item's "risk set": every item whose label is not
    higher than its own. Tied labels share a risk set (Breslow's handling of ties), so the loss does not
    depend on the order in which tied items are listed; an item with nothing strictly below it
    carries no ordering information and adds no term (the last item of a strict ranking adds 0 anyway).

    rewards, scores: (B, K); mask: (B, K) bool, False on padding (lists of different lengths).
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    mask = mask.bool()
    neg = torch.finfo(rewards.dtype).min
    s_i, s_j = scores.unsqueeze(2), scores.unsqueeze(1)  # (B, K, 1), (B, 1, K)
    valid_j = mask.unsqueeze(1)  # (B, 1, K)
    risk = (s_j <= s_i) & valid_j  # (B, K, K): j is in item i's risk set
    below = ((s_j < s_i) & valid_j).any(-1) & mask  # (B, K): i has an item strictly below it
    r_j = rewards.unsqueeze(1).expand_as(risk)  # (B, K, K)
    log_denom = torch.logsumexp(r_j.masked_fill(~risk, neg), dim=-1)  # (B, K)
    terms = (log_denom - rewards).masked_fill(~below, 0.0)  # (B, K)
    loss = terms.sum(-1)  # (B,)
    return LossOutput(loss, {"rewards/accuracy": ranking_accuracy(rewards.detach(), scores, mask)})


def ranking_accuracy(rewards: Tensor, scores: Tensor, mask: Tensor) -> Tensor:
    """(B,) share of each list's strictly ordered pairs (s_i > s_j) that the rewards order the same
    way; a reward tie counts half. A list with no strictly ordered pair scores 0.5."""
    mask = mask.bool()
    pair = (scores.unsqueeze(2) > scores.unsqueeze(1)) & mask.unsqueeze(1) & mask.unsqueeze(2)  # (B, K, K)
    diff = rewards.unsqueeze(2) - rewards.unsqueeze(1)  # (B, K, K) r_i - r_j
    right = (diff > 1e-6).float() + 0.5 * (diff.abs() <= 1e-6).float()
    n = pair.sum((1, 2))
    return torch.where(n > 0, (right * pair).sum((1, 2)) / n.clamp(min=1), torch.full_like(n, 0.5, dtype=right.dtype))
