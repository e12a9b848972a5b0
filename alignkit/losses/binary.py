"""Unpaired binary (thumbs up / thumbs down) and single-trajectory rated losses: KTO, BCO, DRO.

Each takes a BinaryInput of per-token log-probs for B single responses and reduces them itself
(summed log-probs, like DPO). Papers: KTO (Ethayarajh et al. 2024, arXiv 2402.01306), BCO (Jung et al.
2024, arXiv 2404.04656), DRO (Richemond et al. 2024, arXiv 2405.19107); each docstring gives its loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import option
from .base import BinaryInput, LossOutput


def _require(value, what: str, loss: str):
    if value is None:
        raise ValueError(f"{loss} needs {what} in its BinaryInput (see its Method entry in losses/registry.py)")
    return value


# --------------------------------------------------------------------------------------------
# KTO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KTOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratio to the reference
    desirable_weight: float = option(1.0, gt=0)  # lambda_D, weight of thumbs-up examples (aim for lambda_D*n_D/(lambda_U*n_U) in [1, 4/3])
    undesirable_weight: float = option(1.0, gt=0)  # lambda_U, weight of thumbs-down examples


def kto(inp: BinaryInput, cfg: KTOConfig) -> LossOutput:
    """KTO (Ethayarajh et al. 2024, arXiv 2402.01306, the KTO loss L = E[lambda_y - v(x, y)], eq. 8).

    Delta(y) = log pi(y|x) - log pi_ref(y|x) with summed token log-probs.
    Reference point z_0 = max(0, mean_j [log pi(y'_j|x_j) - log pi_ref(y'_j|x_j)]), detached, where
    y'_j are the batch's completions paired with prompts shifted by one (`inp.mismatch`, as in TRL).
      desirable:   lambda_D * (1 - sigma(beta * (Delta - z_0)))
      undesirable: lambda_U * (1 - sigma(beta * (z_0 - Delta)))
    The loss adds lambda_y - v as in the paper, so it starts near 0.5 * lambda (sigma(0) = 0.5).
    z_0 is a mean over this micro-batch's mismatched pairs (a batch of one makes it the example's
    own log-ratio; the engine must use batches > 1).
    """
    mismatch = _require(inp.mismatch, "mismatch", "kto")
    ref_mismatch = _require(inp.ref_mismatch, "ref_mismatch", "kto")
    ref = _require(inp.ref, "ref", "kto")
    delta = inp.policy.sum() - ref.sum()  # (B,)
    z0 = (mismatch.sum() - ref_mismatch.sum()).mean().clamp(min=0).detach()  # ()
    desirable = inp.desirable.bool()  # (B,)
    loss = torch.where(
        desirable,
        cfg.desirable_weight * (1 - torch.sigmoid(cfg.beta * (delta - z0))),
        cfg.undesirable_weight * (1 - torch.sigmoid(cfg.beta * (z0 - delta))),
    )  # (B,)
    return LossOutput(loss, {
        "kto/z0": z0,
        "rewards": (cfg.beta * delta).detach(),
        "desirable_frac": desirable.float().mean(),
    })


def kto_advice(records: list, cfg: KTOConfig) -> list:
    """The paper's guidance (section 4.2): lambda_D * n_D / (lambda_U * n_U) in [1, 4/3]. Outside it,
    the thumbs-down examples dominate (or the thumbs-up ones do) and KTO can unlearn good answers."""
    n_d = sum(1 for r in records if getattr(r, "label", None) is True)
    n_u = sum(1 for r in records if getattr(r, "label", None) is False)
    if not n_d or not n_u:
        return [f"kto: the data has {n_d} thumbs-up and {n_u} thumbs-down examples; KTO needs both"]
    ratio = cfg.desirable_weight * n_d / (cfg.undesirable_weight * n_u)
    if 1.0 <= ratio <= 4.0 / 3.0:
        return []
    suggested = 7.0 / 6.0 * cfg.undesirable_weight * n_u / n_d  # the middle of [1, 4/3]
    return [f"kto: desirable_weight * n_up / (undesirable_weight * n_down) = {cfg.desirable_weight:g} * {n_d} / "
            f"({cfg.undesirable_weight:g} * {n_u}) = {ratio:.2f}, outside the paper's [1, 4/3]; "
            f"--desirable-weight {suggested:.2f} puts it at 7/6"]


# --------------------------------------------------------------------------------------------
# BCO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BCOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratio; the implicit reward is r = beta * Delta


def bco(inp: BinaryInput, cfg: BCOConfig, state: dict) -> LossOutput:
    """BCO (Jung et al. 2024, arXiv 2404.04656, the binary-classifier loss with reward shift delta).

    r(y) = beta * Delta(y) (summed log-probs); delta = running mean of r over every example seen.
      thumbs up:   -log sigma(r - delta)
      thumbs down: -log sigma(-(r - delta))
    `state` (owned and checkpointed by the engine) holds "reward_mean" and "reward_count": a
    count-weighted cumulative mean as in TRL's RunningMoments. It is updated with this batch's
    detached rewards *before* use, and only when autograd is on (training): under
    torch.no_grad() (evaluation) the stored shift is used unchanged.
    Not included: the optional UDM density-ratio weights (needs a prompt classifier).
    """
    ref = _require(inp.ref, "ref", "bco")
    r = cfg.beta * (inp.policy.sum() - ref.sum())  # (B,)
    if torch.is_grad_enabled():
        n_old = float(state.get("reward_count", 0.0))
        m_old = float(state.get("reward_mean", 0.0))
        n_new = float(r.numel())
        m_batch = float(r.detach().double().mean())
        state["reward_count"] = n_old + n_new
        state["reward_mean"] = m_old + (m_batch - m_old) * n_new / (n_old + n_new)
    shift = float(state.get("reward_mean", 0.0))
    desirable = inp.desirable.bool()  # (B,)
    loss = torch.where(desirable, F.softplus(-(r - shift)), F.softplus(r - shift))  # (B,)
    return LossOutput(loss, {
        "bco/delta": torch.tensor(shift),
        "rewards": r.detach(),
        "bco/accuracy": ((r.detach() > shift) == desirable).float(),
    })


# --------------------------------------------------------------------------------------------
# DRO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DROConfig:
    tau: float = option(1.0, gt=0)  # KL-regularisation temperature tau (UNCERTAIN: the paper's default is not verified)
    rescale_policy: bool = True  # paper's DRO-V update: policy gradient not scaled by tau (False: exact gradient of the square)
    mean_logps: bool = False  # length-normalised log-ratio (some code) instead of the paper's summed log pi(y|x)


def dro(inp: BinaryInput, cfg: DROConfig) -> LossOutput:
    """DRO, Direct Reward Optimisation (Richemond et al. 2024, arXiv 2405.19107, the DRO objective
    and Algorithm 1, DRO-V):  L(theta, phi) = 1/2 (r - V_phi(x) - tau * log(pi_theta(y|x)/pi_ref(y|x)))^2.

    r is `inp.score` (a rating) when present, else +1 / -1 from the thumbs label; V(x) is
    `inp.value` (B,) from the value head the engine trains with the policy (needs_value).

    Gradients follow the paper's separate policy and value updates rather than autograd of the
    square (checked against the DRO-V implementation in LLNL/protein_tune_rl, whose comment cites
    Algorithm 1): with res = r - V - tau * Delta,
      value:  grad_phi  = -res * grad V                   (= autograd of the square)
      policy: grad_theta = -(r - V) grad log pi + tau * Delta grad Delta = -res * grad Delta,
    i.e. the squared loss's policy gradient divided by tau, so a small tau does not shrink the
    policy step. `rescale_policy=False` gives the exact autograd of the square instead.
    The returned value is always 1/2 res^2; the policy part is a zero-valued surrogate
    -sg(res) * (Delta - sg(Delta)) that carries the gradient.
    UNCERTAIN (not checked in the paper's text): its default tau and whether it length-normalises;
    we use summed log-probs (the paper writes log pi(y|x)) and tau = 1.
    """
    ref = _require(inp.ref, "ref", "dro")
    value = _require(inp.value, "value (the value head's V(x))", "dro")  # (B,)
    if cfg.mean_logps:
        delta = inp.policy.mean() - ref.mean()  # (B,)
    else:
        delta = inp.policy.sum() - ref.sum()  # (B,)
    if inp.score is not None:
        r = inp.score.to(delta.dtype)  # (B,)
    else:
        r = inp.desirable.bool().to(delta.dtype) * 2 - 1  # (B,) +1 / -1
    value = value.to(delta.dtype)
    res_value = r - value - cfg.tau * delta.detach()  # (B,) carries the value-head gradient
    value_part = 0.5 * res_value ** 2
    scale = 1.0 if cfg.rescale_policy else cfg.tau
    res = (r - value - cfg.tau * delta).detach()  # (B,)
    policy_part = -scale * res * (delta - delta.detach())  # (B,) zero-valued, gradient -scale*res*grad Delta
    return LossOutput(value_part + policy_part, {
        "dro/residual": res,
        "dro/value": value.detach(),
        "rewards": (cfg.tau * delta).detach(),
    })
