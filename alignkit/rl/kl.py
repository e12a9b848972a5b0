"""Per-token KL estimators (Schulman 2020, "Approximating KL divergence"; k3 is the estimator of GRPO,
Shao et al. 2024, arXiv 2402.03300, eq. 4).

With log_ratio = log pi(y_t) - log pi_ref(y_t) at the sampled token y_t ~ pi:
    k1 = log_ratio                        unbiased, can be negative per token
    k2 = log_ratio^2 / 2                  biased, low variance, >= 0
    k3 = exp(-log_ratio) - 1 + log_ratio  unbiased, >= 0 (GRPO's D_{i,t})
Summed over a completion's tokens, k1 (and k3) estimate the sequence KL(pi || pi_ref).
Check values (tests/test_rl_math.py): at log(pi_ref/pi) = -0.2, k1 = 0.2, k2 = 0.02, k3 = 0.0187307531.
"""
from __future__ import annotations

import torch
from torch import Tensor

ESTIMATORS = ("k1", "k2", "k3")


def kl_per_token(logp: Tensor, ref_logp: Tensor, estimator: str = "k1") -> Tensor:
    """logp, ref_logp: (B, T) per-token log-probs of the sampled tokens -> (B, T) KL estimates.
    Positions outside the mask should be zero in both inputs (then every estimator gives 0 there)."""
    log_ratio = logp - ref_logp  # (B, T) log pi / pi_ref
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.pow(2)
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")


def sequence_kl(logp: Tensor, ref_logp: Tensor, mask: Tensor, estimator: str = "k1") -> Tensor:
    """(B,) sum over each completion's tokens of the per-token estimate."""
    return (kl_per_token(logp, ref_logp, estimator) * mask).sum(-1)
