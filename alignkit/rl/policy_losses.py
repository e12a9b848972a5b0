"""Policy (and value) losses of the online loop, and the KL coefficient controllers.

A policy loss is `fn(inp: PolicyInput, cfg, kl_coef) -> LossOutput` with per-sequence losses (N,) and
weights (N,): the engine divides the step's sum(loss) by sum(weight), so `aggregate` picks the
normaliser once for the whole effective batch (all micro-batches):
    token     sum_t l_t with weight |y|   -> mean over every token of the step (PPO, DAPO)
    sequence  mean_t l_t with weight 1    -> mean of per-sequence token means (GRPO paper)
    dr_grpo   sum_t l_t / L_max, weight 1 -> Dr. GRPO's constant normaliser (Liu et al. 2025)
Check values: tests/test_rl_math.py (PPO per-token losses, value clip, adaptive KL).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..losses.base import LossOutput
from .kl import kl_per_token
from .types import PolicyInput

AGGREGATIONS = ("token", "sequence", "dr_grpo")


def clipped_surrogate(ratio: Tensor, adv: Tensor, eps: float) -> Tensor:
    """PPO's clipped objective as a loss (Schulman et al. 2017, eq. 7):
    max(-A * rho, -A * clip(rho, 1 - eps, 1 + eps)) = -min(rho A, clip(rho) A), elementwise."""
    return torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps))


def clipped_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, eps_v: float) -> Tensor:
    """Clipped value loss (as in Huang et al. 2024, arXiv 2403.17031, and TRL's PPO):
    V_clip = V_old + clip(V - V_old, -eps_v, eps_v); 1/2 * max((V - R)^2, (V_clip - R)^2), elementwise."""
    v_clip = old_values + (values - old_values).clamp(-eps_v, eps_v)
    return 0.5 * torch.maximum((values - returns) ** 2, (v_clip - returns) ** 2)


def aggregate(tok_loss: Tensor, mask: Tensor, mode: str, max_len: int = 1) -> tuple:
    """(N, T) per-token losses -> (loss (N,), weight (N,)) for the engine's sum(loss)/sum(weight)."""
    s = (tok_loss * mask).sum(-1)  # (N,)
    n = mask.sum(-1)  # (N,)
    if mode == "token":
        return s, n
    if mode == "sequence":
        return s / n.clamp(min=1), torch.ones_like(s)
    if mode == "dr_grpo":
        return s / max_len, torch.ones_like(s)
    raise ValueError(f"unknown loss aggregation {mode!r}; choose one of {', '.join(AGGREGATIONS)}")


def _ratio_metrics(inp: PolicyInput, ratio: Tensor, eps: float) -> dict:
    m = inp.mask
    n = m.sum(-1).clamp(min=1)
    log_r = (inp.logps - inp.old_logps) * m
    return {"clipfrac": ((((ratio - 1).abs() > eps).float() * m).sum(-1) / n).detach(),
            # k3 estimate of KL(pi_old || pi_theta): how far this update moved from the rollout policy
            "approx_kl": (((torch.expm1(log_r) - log_r) * m).sum(-1) / n).detach()}


def ppo_loss(inp: PolicyInput, cfg, kl_coef: float) -> LossOutput:
    """PPO for RLHF (Ouyang et al. 2022, arXiv 2203.02155; Huang et al. 2024, arXiv 2403.17031):
    token-level clipped surrogate on GAE advantages plus vf_coef * the clipped value loss, both
    token means over the step. The KL penalty is already in the rewards, so kl_coef is not used here."""
    ratio = torch.exp(inp.logps - inp.old_logps)  # (N, T)
    pg = clipped_surrogate(ratio, inp.advantages, cfg.clip_range)  # (N, T)
    vf = clipped_value_loss(inp.values, inp.old_values, inp.returns, cfg.clip_range_value)  # (N, T)
    pg_sum, w = aggregate(pg, inp.mask, "token")
    vf_sum, _ = aggregate(vf, inp.mask, "token")
    n = w.clamp(min=1)
    m = inp.mask
    vf_clipfrac = (((inp.values - inp.old_values).abs() > cfg.clip_range_value).float() * m).sum(-1) / n
    metrics = {"pg_loss": (pg_sum / n).detach(), "vf_loss": (vf_sum / n).detach(),
               "vf_clipfrac": vf_clipfrac.detach(), **_ratio_metrics(inp, ratio, cfg.clip_range)}
    return LossOutput(pg_sum + cfg.vf_coef * vf_sum, metrics, weight=w)


def sequence_pg_loss(inp: PolicyInput, cfg, kl_coef: float) -> LossOutput:
    """REINFORCE / RLOO / ReMax loss (Williams 1992; Ahmadian et al. 2024, arXiv 2402.14740; Li et al.
    2024, arXiv 2310.10505): -sg(A_i) * log pi_theta(y_i | x), one
    term per sequence, mean over sequences. Written as PPO's clip on the sequence ratio
    rho_i = exp(l_theta(y_i) - l_old(y_i)) (as TRL's RLOO): on the first update of a rollout rho = 1
    and the gradient is exactly -A_i * grad l_theta(y_i); the clip only acts on later updates of the
    same batch (ppo_epochs > 1 or several minibatches). The KL is in the reward (the estimator)."""
    m = inp.mask
    adv = (inp.advantages * m).sum(-1) / m.sum(-1).clamp(min=1)  # (N,) the sequence's A_i
    log_ratio = ((inp.logps - inp.old_logps) * m).sum(-1).clamp(max=20.0)  # (N,)
    ratio = torch.exp(log_ratio)
    loss = clipped_surrogate(ratio, adv, cfg.clip_range)  # (N,)
    metrics = {"clipfrac": ((ratio - 1).abs() > cfg.clip_range).float().detach(),
               "approx_kl": (torch.expm1(log_ratio) - log_ratio).detach()}
    return LossOutput(loss, metrics, weight=torch.ones_like(loss))


def grpo_loss(inp: PolicyInput, cfg, kl_coef: float) -> LossOutput:
    """GRPO (Shao et al. 2024, arXiv 2402.03300, eq. 3): per-token clipped surrogate on the group
    advantage plus beta * D_t, the per-token KL of pi_theta to pi_ref (k3 by default) in the loss;
    aggregated per cfg.loss_type (sequence = the paper's 1/|o_i| mean, token = DAPO, dr_grpo)."""
    ratio = torch.exp(inp.logps - inp.old_logps)  # (N, T)
    tok = clipped_surrogate(ratio, inp.advantages, cfg.clip_range)  # (N, T)
    metrics = _ratio_metrics(inp, ratio, cfg.clip_range)
    if inp.ref_logps is not None and kl_coef > 0:
        kl = kl_per_token(inp.logps, inp.ref_logps, cfg.kl_estimator) * inp.mask  # (N, T)
        tok = tok + kl_coef * kl
        metrics["kl_loss"] = (kl.sum(-1) / inp.mask.sum(-1).clamp(min=1)).detach()
    loss, w = aggregate(tok, inp.mask, cfg.loss_type, inp.max_new_tokens)
    return LossOutput(loss, metrics, weight=w)


# --- KL coefficient ------------------------------------------------------------------------------
class FixedKLController:
    """beta stays at its initial value."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int):
        pass

    def state_dict(self) -> dict:
        return {"kl_coef": self.value}

    def load_state_dict(self, state: dict):
        self.value = state.get("kl_coef", self.value)


class AdaptiveKLController(FixedKLController):
    """Adaptive KL (Ziegler et al. 2019, arXiv 1909.08593, sec. 2.2; TRL v0.8.6 `AdaptiveKLController`):
    e = clip(KL / KL_target - 1, -0.2, 0.2); beta <- beta * (1 + e * n_steps / horizon),
    with KL the batch-mean sequence KL and n_steps the episodes in the batch.
    Check: beta 0.2, KL 9, target 6, n_steps 256, horizon 10000 -> 0.201024."""

    def __init__(self, kl_coef: float, target: float, horizon: int):
        super().__init__(kl_coef)
        self.target, self.horizon = target, horizon

    def update(self, current_kl: float, n_steps: int):
        err = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + err * n_steps / self.horizon
