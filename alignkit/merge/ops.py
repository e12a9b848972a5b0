"""Merge operations on tensors: pure functions, one parameter tensor at a time.

A *delta* (task vector) is a fine-tuned tensor minus the base's: `delta_i = theta_i - theta_0`. Every
method here takes the base tensor, one delta per input model and one weight per input, and returns the
merged tensor; the streaming runner (`alignkit.merge.run`) calls them tensor by tensor. Inputs are
float tensors of one shape; callers upcast to float32 so that bf16 checkpoints merge without rounding
each partial sum.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

Tensor = torch.Tensor


def _weighted_sum(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    if len(tensors) != len(weights):
        raise ValueError(f"{len(tensors)} tensors but {len(weights)} weights")
    out = torch.zeros_like(tensors[0])
    for t, w in zip(tensors, weights):
        out.add_(t, alpha=float(w))
    return out


def task_arithmetic(base: Tensor, deltas: Sequence[Tensor], weights: Sequence[float], scale: float = 1.0) -> Tensor:
    """Task arithmetic (Ilharco et al. 2023, "Editing Models with Task Arithmetic", arXiv 2212.04089,
    Sec. 2): task vectors tau_i = theta_i - theta_0 are added to the base,
    theta = theta_0 + lambda * sum_i w_i tau_i, with lambda = `scale` and per-model weights w_i."""
    return base + scale * _weighted_sum(deltas, weights)


def linear(thetas: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Weighted average of whole models (a "model soup", Wortsman et al. 2022, arXiv 2203.05482):
    theta = sum_i w_i theta_i / sum_i w_i. The weights are normalised, so (1, 1) is the uniform soup."""
    total = float(sum(weights))
    if total == 0:
        raise ValueError("linear merge: the weights sum to 0")
    return _weighted_sum(thetas, weights) / total


def trim(delta: Tensor, density: float) -> Tensor:
    """TIES step 1, "Trim" (Yadav et al. 2023, "TIES-Merging", arXiv 2306.01708, Algorithm 1, step 1:
    keep the top-k% values of each task vector by magnitude, reset the rest to 0).

    Keeps the k = ceil(density * n) entries of largest |delta| (exactly k: ties at the threshold are
    broken by `torch.topk`), so any density > 0 keeps at least one entry. The paper trims each whole task
    vector; a streaming merge sees one tensor at a time, so this trims per parameter tensor (as mergekit
    does), which keeps the same share of every layer instead of letting large-delta layers take it all.
    """
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    n = delta.numel()
    k = min(n, math.ceil(density * n - 1e-9))  # the epsilon keeps 0.3 * 10 at 3, not 4 from rounding
    if k >= n:
        return delta.clone()
    out = torch.zeros(delta.shape, dtype=delta.dtype, device=delta.device)  # contiguous, so view(-1) writes through
    if k == 0:
        return out
    flat = delta.reshape(-1)
    idx = flat.abs().topk(k, sorted=False).indices
    out.view(-1)[idx] = flat[idx]
    return out


def elect_sign(deltas: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """TIES step 2, "Elect" (Algorithm 1, step 2: gamma_m = sgn(sum_t tau_hat_t)): per entry, the sign
    of the summed (weighted) trimmed deltas, i.e. the sign carrying the most total mass. 0 where the sum
    is 0 (every delta trimmed there, or an exact cancellation): that entry keeps the base value."""
    return torch.sign(_weighted_sum(deltas, weights))


def disjoint_mean(deltas: Sequence[Tensor], weights: Sequence[float], sign: Tensor) -> Tensor:
    """TIES step 3, "Disjoint merge" (Algorithm 1, step 3: A^p = {t : sgn(tau_hat_t^p) = gamma_m^p},
    tau_m^p = (1/|A^p|) sum_{t in A^p} tau_hat_t^p): per entry, the mean over only the models whose
    (non-zero) delta agrees with the elected sign. With per-model weights it is the weighted mean
    sum_{A} w_t tau_hat_t / sum_{A} w_t, equal to the paper's for equal weights; weights thus set how
    much each model counts where models agree, and `scale` (lambda) sets the overall step. A negative
    weight negates that model's task vector (Ilharco et al.'s "forgetting by negation") before the vote:
    its entries count with sign(w * delta) and weight |w|."""
    num = torch.zeros_like(deltas[0])
    den = torch.zeros_like(deltas[0])
    for d, w in zip(deltas, weights):
        wd = d * float(w)
        # where the elected sign is 0 a zero delta "agrees", but it adds 0 to num, so the result stays 0
        agree = torch.sign(wd) == sign
        num += wd.masked_fill_(~agree, 0.0)
        den += agree.to(den.dtype).mul_(abs(float(w)))
    return num.div_(den.masked_fill_(den == 0, 1.0))  # no agreeing model: num is 0 there, so 0


def ties(base: Tensor, deltas: Sequence[Tensor], weights: Sequence[float], density: float,
         scale: float = 1.0) -> Tensor:
    """TIES-Merging (Yadav et al. 2023, arXiv 2306.01708, Algorithm 1): trim each delta to its top
    `density` share by magnitude, elect a sign per entry, average the agreeing deltas (disjoint mean),
    theta = theta_0 + lambda * tau_m with lambda = `scale`."""
    trimmed = [trim(d, density) for d in deltas]
    return base + scale * ties_combine(trimmed, weights)


def ties_combine(deltas: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Steps 2 and 3 of TIES on already-sparsified deltas (after `trim`, or after `dare` for DARE-TIES)."""
    return disjoint_mean(deltas, weights, elect_sign(deltas, weights))


def dare(delta: Tensor, drop_rate: float, generator: torch.Generator | None = None) -> Tensor:
    """DARE, Drop And REscale (Yu et al. 2024, "Language Models are Super Mario", arXiv 2311.03099,
    Sec. 3): m ~ Bernoulli(p) per entry, delta_tilde = (1 - m) * delta, delta_hat = delta_tilde / (1 - p).
    Rescaling by 1/(1 - p) keeps the expected delta (and so the expected layer output) unchanged.
    `generator` seeds the mask (a CPU generator; the mask is drawn on CPU so a seed gives the same mask
    on any device)."""
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
    if drop_rate == 0.0:
        return delta.clone()
    keep = torch.rand(delta.shape, generator=generator, device="cpu") >= drop_rate  # P(keep) = 1 - p
    return torch.where(keep.to(delta.device), delta / (1.0 - drop_rate), 0.0)
