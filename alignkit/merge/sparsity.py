"""Measures of how far a model moved from its base, for sparse-delta training and for merging.

PAFT (Pentyala et al. 2024, "PAFT: A Parallel Training Paradigm for Effective LLM Fine-Tuning",
arXiv 2406.17923, sec. 3.3) trains the SFT run with an L1 penalty on its delta from the base (alignkit
also offers it on the preference run),
lambda * ||theta - theta_0||_1, so that the delta is sparse and merges with the SFT run's delta with
little interference (the premise of TIES and DARE too: sparse deltas collide less). `l1_delta_penalty`
is that term (differentiable); `l1_delta_sparsity` measures the sparsity it reached.
"""
from __future__ import annotations

from typing import Mapping

import torch


def base_snapshot(model: torch.nn.Module) -> dict:
    """name -> detached copy of every trainable parameter: the theta_0 the delta is measured from."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _pairs(model, base_state: Mapping):
    params = model.named_parameters() if isinstance(model, torch.nn.Module) else model.items()
    for name, p in params:
        if name in base_state:
            yield name, p, base_state[name]


def l1_delta_penalty(model, base_state: Mapping) -> torch.Tensor:
    """||theta - theta_0||_1 summed over the parameters named in `base_state` (a scalar that carries
    gradients). `model`: a module (its `named_parameters()` names must match `base_state`'s) or a
    state dict. Summed, not averaged: PAFT's lambda multiplies the plain L1 norm."""
    total = None
    for _, p, p0 in _pairs(model, base_state):
        term = (p - p0.to(device=p.device, dtype=p.dtype)).abs().sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("l1_delta_penalty: no parameter of the model is named in base_state")
    return total


@torch.no_grad()
def l1_delta_sparsity(model, base_state: Mapping, threshold: float = 0.0) -> float:
    """Share of delta entries with |theta - theta_0| <= `threshold`, over the parameters named in
    `base_state` (1.0: nothing moved; 0.0: every entry moved by more than `threshold`).

    With threshold 0 only exact zeros count. Adam moves every weight with a non-zero gradient by about
    the learning rate per step, and an L1 subgradient makes weights oscillate around theta_0 rather than
    land on it, so measure a penalised run with a threshold near the learning rate (the step size) to
    see which entries the penalty holds at the base."""
    small, total = 0, 0
    for _, p, p0 in _pairs(model, base_state):
        d = (p.detach() - p0.to(device=p.device, dtype=p.dtype)).abs()
        small += int((d <= threshold).sum())
        total += d.numel()
    if total == 0:
        raise ValueError("l1_delta_sparsity: no parameter of the model is named in base_state")
    return small / total
