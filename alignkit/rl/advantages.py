"""Advantage estimators: how a rollout's rewards become a per-token learning signal.

The pure functions at the top work on tensors (check values: tests/test_rl_math.py); the
estimators below them turn a `Rollout` into `Advantages` for one method each, including where the
KL penalty enters the reward (per token for PPO, per sequence for the REINFORCE family; GRPO keeps
its KL in the loss, so its estimator sees the task reward only).

An estimator is `fn(rollout, cfg, kl_coef, state) -> Advantages`; `state` is a dict the loop keeps
and checkpoints (the REINFORCE moving-average baseline lives there).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .types import Advantages, Rollout


# --- pure functions ---------------------------------------------------------------------------
def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple:
    """Generalised advantage estimation (Schulman et al. 2016, arXiv 1506.02438, eq. 16).

    rewards, values, mask: (B, T). delta_t = r_t + gamma * V(s_{t+1}) - V(s_t), with V = 0 after
    the last token; A_t = delta_t + gamma * lam * A_{t+1}; returns R_t = A_t + V(s_t).
    -> (advantages (B, T), returns (B, T)), zero outside the mask.
    """
    b, t = rewards.shape
    adv = torch.zeros_like(rewards)
    last = torch.zeros(b, dtype=rewards.dtype, device=rewards.device)  # A_{t+1}
    for i in reversed(range(t)):
        nxt = mask[:, i + 1] if i + 1 < t else torch.zeros_like(last)  # 0 where s_{t+1} is terminal
        next_v = values[:, i + 1] * nxt if i + 1 < t else torch.zeros_like(last)
        delta = rewards[:, i] + gamma * next_v - values[:, i]
        last = delta + gamma * lam * nxt * last
        adv[:, i] = last
    adv = adv * mask
    return adv, (adv + values) * mask


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over unmasked entries (std with Bessel's correction, as TRL's masked_whiten).
    shift_mean=False only rescales. Zero outside the mask."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = masked_mean((x - mean) ** 2, mask) * n / (n - 1).clamp(min=1)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def _group_sums(x: Tensor, group: Tensor) -> tuple:
    """x: (B,), group: (B,) long -> (per-row group sum (B,), per-row group size (B,))."""
    g = int(group.max().item()) + 1
    sums = torch.zeros(g, dtype=x.dtype, device=x.device).index_add_(0, group, x)
    counts = torch.zeros(g, dtype=x.dtype, device=x.device).index_add_(0, group, torch.ones_like(x))
    return sums[group], counts[group]


def rloo(rewards: Tensor, group: Tensor) -> Tensor:
    """RLOO (Ahmadian et al. 2024, eq. 4): A_i = R_i - (1/(k-1)) sum_{j != i} R_j within each prompt's
    k samples. rewards, group: (B,) -> (B,). Needs k >= 2 per group."""
    sums, n = _group_sums(rewards, group)
    if bool((n < 2).any()):
        raise ValueError("RLOO needs at least 2 samples per prompt (the leave-one-out baseline is undefined for 1)")
    return rewards - (sums - rewards) / (n - 1)


def group_normalise(rewards: Tensor, group: Tensor, std: str = "unbiased", eps: float = 1e-4) -> Tensor:
    """GRPO (Shao et al. 2024, sec. 4.1.2): A_i = (r_i - mean(r)) / (std(r) + eps) over each prompt's
    samples. std = "unbiased" (N-1, TRL), "population" (N) or "none" (Dr. GRPO, Liu et al. 2025:
    no division). rewards, group: (B,) -> (B,)."""
    sums, n = _group_sums(rewards, group)
    centred = rewards - sums / n
    if std == "none":
        return centred
    sq, _ = _group_sums(centred ** 2, group)
    if std == "unbiased":
        if bool((n < 2).any()):
            raise ValueError("GRPO's unbiased std needs at least 2 samples per prompt")
        sd = (sq / (n - 1)).sqrt()
    elif std == "population":
        sd = (sq / n).sqrt()
    else:
        raise ValueError(f"unknown std mode {std!r}; choose unbiased, population or none")
    return centred / (sd + eps)


def to_tokens(seq_adv: Tensor, mask: Tensor) -> Tensor:
    """(B,) sequence advantage -> (B, T), the same value on every completion token."""
    return seq_adv[:, None] * mask


# --- estimators: Rollout -> Advantages -------------------------------------------------------------
def sequence_reward(rollout: Rollout, cfg, kl_coef: float) -> Tensor:
    """(B,) R_i = r(x, y_i) - beta * sum_t KL_t: the KL-shaped sequence reward of the REINFORCE
    family (Williams 1992; Ahmadian et al. 2024, arXiv 2402.14740), with KL_t from pi_old and the
    configured estimator."""
    kl = rollout.token_kl(cfg.kl_estimator).sum(-1)  # (B,)
    return rollout.rewards - kl_coef * kl


def _finish(seq_adv: Tensor, rollout: Rollout, cfg, metrics: dict) -> Advantages:
    adv = to_tokens(seq_adv, rollout.mask)
    if cfg.whiten_advantages:
        adv = whiten(adv, rollout.mask)
    return Advantages(adv, None, metrics)


def ppo_advantages(rollout: Rollout, cfg, kl_coef: float, state: dict) -> Advantages:
    """PPO-RLHF (Ziegler et al. 2019, arXiv 1909.08593; Ouyang et al. 2022, arXiv 2203.02155):
    per-token rewards r_t = -beta * KL_t, plus the task reward on the last token; GAE on the value
    function's V(s_t); advantages whitened over the batch's tokens. Completions are right-aligned,
    so every last token sits in column T-1."""
    mask = rollout.mask
    token_rewards = -kl_coef * rollout.token_kl(cfg.kl_estimator)  # (B, T)
    token_rewards[:, -1] += rollout.rewards
    adv, returns = gae(token_rewards, rollout.values, mask, cfg.gamma, cfg.lam)
    if cfg.whiten_advantages:
        adv = whiten(adv, mask)
    return Advantages(adv, returns, {"returns": masked_mean(returns, mask).item(),
                                     "values": masked_mean(rollout.values, mask).item()})


def reinforce_advantages(rollout: Rollout, cfg, kl_coef: float, state: dict) -> Advantages:
    """REINFORCE with a baseline (Williams 1992): A_i = R_i - b, where b is a moving
    average of past batches' mean R (b <- decay * b + (1 - decay) * mean R after each batch, started
    at the first batch's mean). b is computed before this batch updates it."""
    r = sequence_reward(rollout, cfg, kl_coef)
    b = state.get("baseline")
    b = r.mean().item() if b is None else b
    state["baseline"] = cfg.baseline_decay * b + (1 - cfg.baseline_decay) * r.mean().item()
    return _finish(r - b, rollout, cfg, {"baseline": b})


def rloo_advantages(rollout: Rollout, cfg, kl_coef: float, state: dict) -> Advantages:
    """RLOO (Ahmadian et al. 2024, arXiv 2402.14740): leave-one-out baseline over the k samples of
    each prompt, on the KL-shaped sequence reward."""
    r = sequence_reward(rollout, cfg, kl_coef)
    return _finish(rloo(r, rollout.group), rollout, cfg, {})


def remax_advantages(rollout: Rollout, cfg, kl_coef: float, state: dict) -> Advantages:
    """ReMax (Li et al. 2024, arXiv 2310.10505, Algorithm 1): A_i = R_i - r(x, y_greedy). The baseline
    is the task reward of the prompt's greedy completion (after the same length control), without
    a KL term: it is action-independent either way, so the estimate stays unbiased."""
    r = sequence_reward(rollout, cfg, kl_coef)
    base = rollout.baseline_rewards
    return _finish(r - base, rollout, cfg, {"greedy_reward": base.mean().item()})


def grpo_advantages(rollout: Rollout, cfg, kl_coef: float, state: dict) -> Advantages:
    """GRPO outcome advantages (Shao et al. 2024, arXiv 2402.03300, sec. 4.1.2): group-normalised task
    rewards; the KL is in the loss (policy_losses.grpo_loss), not in the reward."""
    a = group_normalise(rollout.rewards, rollout.group, cfg.std, cfg.std_eps)
    return _finish(a, rollout, cfg, {})
