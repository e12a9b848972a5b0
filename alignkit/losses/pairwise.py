"""Offline pairwise preference losses (survey: direct human preference optimisation).

Every function here takes a PairwiseInput of per-token log-probs and reduces them itself: the DPO
family uses *summed* log-probs, SimPO and ORPO *mean* log-probs, as each paper defines its loss.
Reference-free losses (slic-hf, simpo, cpo, orpo) never read `inp.ref_chosen` / `inp.ref_rejected`.
Notation: l(y) = log pi(y|x) summed over completion tokens, Delta(y) = l(y) - l_ref(y),
h = Delta(y_w) - Delta(y_l). Check values: tests/test_losses_pairwise.py.
Docstrings give each paper's loss written out, with its equation number where it was checked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import option
from .base import LossOutput, PairwiseInput, pair_logratios, preference_metrics


def _neg_logsigmoid(z: Tensor) -> Tensor:
    """-log sigma(z) = softplus(-z), computed stably."""
    return F.softplus(-z)


def _chosen_nll(inp: PairwiseInput) -> Tensor:
    """(B,) token-mean NLL of each chosen completion, -l(y_w)/|y_w| (prompt tokens are masked).
    Each pair's own token mean counts once in the batch mean; on one pair this is TRL's token mean."""
    return -inp.chosen.mean()


def _check(cond: bool, msg: str):
    if not cond:
        raise ValueError(msg)


# --------------------------------------------------------------------------------------------
# DPO and its label-noise variants
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DPOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratios; larger = stronger pull to the reference


def dpo(inp: PairwiseInput, cfg: DPOConfig) -> LossOutput:
    """DPO (Rafailov et al. 2023, eq. 7): L = -log sigma(beta * [Delta(y_w) - Delta(y_l)]),
    Delta(y) = log pi(y|x) - log pi_ref(y|x) with summed token log-probs."""
    d_w, d_l = pair_logratios(inp)  # (B,), (B,)
    logits = cfg.beta * (d_w - d_l)
    return LossOutput(-F.logsigmoid(logits), preference_metrics(cfg.beta * d_w, cfg.beta * d_l))


@dataclass(frozen=True)
class CDPOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratios (as in DPO)
    eps: float = option(0.1, ge=0, le=0.5)  # assumed label-flip rate (label smoothing), in [0, 0.5]; 0 = plain DPO

    def __post_init__(self):
        _check(0.0 <= self.eps <= 0.5, f"cdpo: eps must be in [0, 0.5], got {self.eps}")


def cdpo(inp: PairwiseInput, cfg: CDPOConfig) -> LossOutput:
    """Conservative DPO (Mitchell 2023, "A note on DPO with noisy preferences", eq. 3; TRL
    `label_smoothing`): labels flipped with probability eps, so
      L = (1 - eps) * [-log sigma(beta h)] + eps * [-log sigma(-beta h)],
    whose minimiser is the finite beta h* = log((1 - eps) / eps)."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    z = cfg.beta * (d_w - d_l)
    loss = (1 - cfg.eps) * _neg_logsigmoid(z) + cfg.eps * _neg_logsigmoid(-z)
    return LossOutput(loss, preference_metrics(cfg.beta * d_w, cfg.beta * d_l))


@dataclass(frozen=True)
class RobustDPOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratios (as in DPO)
    eps: float = option(0.1, ge=0, lt=0.5)  # assumed label-flip rate, in [0, 0.5); 0 = plain DPO

    def __post_init__(self):
        _check(0.0 <= self.eps < 0.5, f"robust: eps must be in [0, 0.5), got {self.eps}")


def robust(inp: PairwiseInput, cfg: RobustDPOConfig) -> LossOutput:
    """Robust DPO, rDPO (Chowdhury et al. 2024, "Provably Robust DPO", arXiv 2403.00409, its
    de-biased loss): an unbiased estimate of the clean-label DPO loss under flip rate eps,
      L = [(1 - eps) * (-log sigma(beta h)) - eps * (-log sigma(-beta h))] / (1 - 2 eps).
    Note the *minus* on the flipped term (cDPO has a plus) and the 1/(1 - 2 eps) rescaling."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    z = cfg.beta * (d_w - d_l)
    loss = ((1 - cfg.eps) * _neg_logsigmoid(z) - cfg.eps * _neg_logsigmoid(-z)) / (1 - 2 * cfg.eps)
    return LossOutput(loss, preference_metrics(cfg.beta * d_w, cfg.beta * d_l))


# --------------------------------------------------------------------------------------------
# IPO, GPO, RSO: other functions of the same margin h
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IPOConfig:
    tau: float = option(0.1, gt=0)  # regularisation tau; the loss regresses h onto 1/(2 tau) (HALOs / TRL beta = 0.1)
    length_normalize: bool = False  # TRL's variant: h from per-token-mean log-ratios (tau values are not comparable)

    def __post_init__(self):
        _check(self.tau > 0, f"ipo: tau must be > 0, got {self.tau}")


def ipo(inp: PairwiseInput, cfg: IPOConfig) -> LossOutput:
    """IPO (Azar et al. 2024, "A General Theoretical Paradigm to Understand Learning from Human
    Preferences", arXiv 2310.12036, eq. 17): L = (h - 1/(2 tau))^2, with summed log-probs as in the
    paper's equation. Its minimiser is h = 1/(2 tau), so it stays finite on deterministic labels.
    UNCERTAIN: TRL's `ipo` length-normalises, h = Delta_w/|y_w| - Delta_l/|y_l| (its code comment:
    "confirmed with IPO authors"); that is `length_normalize=True`. We default to the paper's sum."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    if cfg.length_normalize:
        d_w = d_w / inp.chosen.lengths().clamp(min=1)
        d_l = d_l / inp.rejected.lengths().clamp(min=1)
    h = d_w - d_l
    target = 1.0 / (2.0 * cfg.tau)
    metrics = preference_metrics(cfg.tau * d_w, cfg.tau * d_l)
    metrics["ipo/h_minus_target"] = (h - target).detach()
    return LossOutput((h - target) ** 2, metrics)


GPO_FUNCTIONS = {
    "logistic": lambda r: F.softplus(-r),  # log(1 + e^-rho): DPO
    "exponential": lambda r: torch.exp(-r),  # e^-rho
    "squared": lambda r: (r - 1) ** 2,  # (rho - 1)^2: IPO up to scale (beta = 2 tau)
    "hinge": lambda r: F.relu(1 - r),  # max(0, 1 - rho): SLiC / RSO hinge-norm
    "truncated_quadratic": lambda r: F.relu(1 - r) ** 2,  # max(0, 1 - rho)^2
    "savage": lambda r: torch.sigmoid(-r) ** 2,  # 1 / (1 + e^rho)^2 (non-convex)
}


@dataclass(frozen=True)
class GPOConfig:
    beta: float = option(0.1, gt=0)  # scale on h, rho = beta * h; its effective strength depends on f, retune it per f
    f: str = option("logistic", choices=GPO_FUNCTIONS)  # the function f(rho): logistic | exponential | squared | hinge | truncated_quadratic | savage

    def __post_init__(self):
        _check(self.f in GPO_FUNCTIONS, f"gpo: f must be one of {', '.join(GPO_FUNCTIONS)}, got {self.f!r}")


def gpo(inp: PairwiseInput, cfg: GPOConfig) -> LossOutput:
    """GPO (Tang et al. 2024, "Generalized Preference Optimization", arXiv 2402.05749, the GPO
    loss and its Table 1 of f): L = f(beta * h) for a (mostly convex) f; logistic recovers DPO, hinge SLiC, squared IPO.
    UNCERTAIN (Table 1's constants not re-checked): we use the unscaled form of each f,
    e.g. squared = (rho - 1)^2, not 1/2 (rho - 1)^2 (the minimiser is the same)."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    rho = cfg.beta * (d_w - d_l)
    metrics = preference_metrics(cfg.beta * d_w, cfg.beta * d_l)
    return LossOutput(GPO_FUNCTIONS[cfg.f](rho), metrics)


@dataclass(frozen=True)
class RSOConfig:
    gamma: float = option(0.05, gt=0)  # loss temperature gamma on h (RSO decouples it from the sampling beta = 0.5)
    loss_type: str = option("sigmoid_norm", choices=("sigmoid_norm", "hinge_norm"))  # sigmoid_norm: -log sigma(gamma h) | hinge_norm: max(0, 1 - gamma h)

    def __post_init__(self):
        _check(self.loss_type in ("sigmoid_norm", "hinge_norm"),
               f"rso: loss_type must be sigmoid_norm or hinge_norm, got {self.loss_type!r}")


def rso(inp: PairwiseInput, cfg: RSOConfig) -> LossOutput:
    """RSO's losses (Liu et al. 2024, "Statistical Rejection Sampling Improves Preference
    Optimization", arXiv 2309.06657, its
    sigmoid-norm and hinge-norm losses), fitted on rejection-sampled pairs:
      sigmoid-norm: -log sigma(gamma h);   hinge-norm: max(0, 1 - gamma h).
    "norm" means normalised by the reference (SFT) policy, i.e. log-ratios h; it is *not* TRL's
    `sigmoid_norm` (DPO on length-normalised scores). The rejection sampling is a separate step."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    z = cfg.gamma * (d_w - d_l)
    loss = _neg_logsigmoid(z) if cfg.loss_type == "sigmoid_norm" else F.relu(1 - z)
    return LossOutput(loss, preference_metrics(cfg.gamma * d_w, cfg.gamma * d_l))


# --------------------------------------------------------------------------------------------
# Likelihood and length corrections on the DPO logit: DPOP, R-DPO, RPO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DPOPConfig:
    beta: float = option(0.3, gt=0)  # temperature on the log-ratios (Smaug used 0.3; UNCERTAIN, recalled)
    lam: float = option(50.0, ge=0)  # lambda, weight of the penalty max(0, -Delta(y_w)) inside the beta bracket (Smaug: 50)


def dpop(inp: PairwiseInput, cfg: DPOPConfig) -> LossOutput:
    """DPO-Positive (Pal et al. 2024, "Smaug", arXiv 2402.13228, the DPOP loss):
      L = -log sigma(beta * [Delta(y_w) - Delta(y_l) - lambda * max(0, -Delta(y_w))]).
    lambda sits *inside* the beta bracket; the penalty is active only while the chosen response is
    less likely than under the reference (Delta_w < 0), which counters likelihood displacement."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    penalty = F.relu(-d_w)  # (B,) max(0, log pi_ref(y_w) - log pi(y_w))
    z = cfg.beta * (d_w - d_l - cfg.lam * penalty)
    metrics = preference_metrics(cfg.beta * d_w, cfg.beta * d_l)
    metrics["dpop/penalty"] = penalty.detach()
    return LossOutput(_neg_logsigmoid(z), metrics)


@dataclass(frozen=True)
class RDPOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the log-ratios (DPO range)
    alpha: float = option(0.05, ge=0)  # alpha, weight of the length difference |y_w| - |y_l| in tokens (UNCERTAIN default)


def r_dpo(inp: PairwiseInput, cfg: RDPOConfig) -> LossOutput:
    """Length-regularised DPO, R-DPO (Park et al. 2024, "Disentangling Length from Quality in
    Direct Preference Optimization", arXiv 2403.19159, the R-DPO objective):
      L = -log sigma(beta h + alpha (|y_w| - |y_l|)).
    Sign: optimising r - alpha|y| gives r = beta log(pi/pi_ref) + alpha|y| + const, so a longer
    chosen response *raises* the logit (lowers the loss) and length stops being a free win
    (Park et al.'s derivation; SimPO, Meng et al. 2024, arXiv 2405.14734, writes the same logit in
    its Table 3). |y| counts completion tokens. UNCERTAIN: Park et al.'s alpha values; the SimPO
    paper tunes alpha in {0.05, 0.1, 0.5, 1}."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    len_diff = inp.chosen.lengths() - inp.rejected.lengths()  # (B,)
    z = cfg.beta * (d_w - d_l) + cfg.alpha * len_diff
    metrics = preference_metrics(cfg.beta * d_w, cfg.beta * d_l)
    metrics["rdpo/length_diff"] = len_diff.detach()
    return LossOutput(_neg_logsigmoid(z), metrics)


@dataclass(frozen=True)
class RPOConfig:
    beta: float = option(0.1, gt=0)  # temperature of the DPO term
    alpha: float = option(1.0, ge=0)  # weight of the length-normalised NLL of the chosen response (the paper and TRL: 1.0)


def rpo(inp: PairwiseInput, cfg: RPOConfig) -> LossOutput:
    """RPO (Pang et al. 2024, "Iterative Reasoning Preference Optimization", arXiv 2404.19733,
    the DPO+NLL loss; TRL `rpo_alpha`): L = -log sigma(beta h) + alpha * (-log pi(y_w|x) / |y_w|).
    The NLL is normalised by length; here it is over the completion tokens only (the paper's y_w
    is the chain of thought plus answer, i.e. our whole completion)."""
    d_w, d_l = pair_logratios(inp)  # (B,)
    pref = _neg_logsigmoid(cfg.beta * (d_w - d_l))
    nll = _chosen_nll(inp)
    metrics = preference_metrics(cfg.beta * d_w, cfg.beta * d_l)
    metrics.update({"rpo/dpo": pref.detach(), "nll": nll.detach()})
    return LossOutput(pref + cfg.alpha * nll, metrics)


# --------------------------------------------------------------------------------------------
# beta-DPO: a batch-level beta and gap-guided filtering (stateful)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BetaDPOConfig:
    beta: float = option(0.1, gt=0)  # beta_0, the base temperature
    a: float = option(0.6, ge=0)  # sensitivity of beta to the batch gap: beta = beta_0 (1 + a (mean M - M_0)) (README example; code default 0.01)
    rho: float = option(0.2, ge=0, lt=1)  # filter ratio: each training batch keeps floor(N (1 - rho)) pairs (the repo's mode_weight)
    momentum: float = option(0.9, ge=0, le=1)  # EMA momentum of the running gap mean M_0 and std sigma_M
    filter_seed: int = 0  # seed of the filtering draws (each step seeds from it and the draw count in the state, so runs are reproducible)

    def __post_init__(self):
        _check(0.0 <= self.rho < 1.0, f"beta-dpo: rho must be in [0, 1), got {self.rho}")
        _check(0.0 <= self.momentum <= 1.0, f"beta-dpo: momentum must be in [0, 1], got {self.momentum}")


def beta_dpo_batch_beta(beta0: float, a: float, gap_selected_mean: float, gap_ema: float) -> float:
    """beta_batch = beta_0 * (1 + a * (mean_selected M - M_0)), clamped >= 1e-3 (a plain float)."""
    return max(beta0 * (1.0 + a * (gap_selected_mean - gap_ema)), 1e-3)


def _filter_pairs(gap: Tensor, m0: float, sigma: float, n_keep: int, gen: torch.Generator) -> Tensor:
    """(N,) 0/1 mask of n_keep pairs drawn without replacement with p ~ exp(-(M - M_0)^2 / (2 sigma^2))."""
    g = gap.detach().double().cpu()
    w = torch.ones_like(g)
    if sigma > 0:  # floor: far-off pairs stay drawable (last), so n_keep draws always exist
        w = torch.exp(-0.5 * ((g - m0) / sigma) ** 2).clamp(min=1e-30)
    if not torch.isfinite(w).all():
        w = torch.ones_like(g)  # non-finite gaps (a skipped step): draw uniformly
    idx = torch.multinomial(w, n_keep, replacement=False, generator=gen)
    mask = torch.zeros_like(g)
    mask[idx] = 1.0
    return mask.to(device=gap.device, dtype=gap.dtype)


def beta_dpo(inp: PairwiseInput, cfg: BetaDPOConfig, state: dict) -> LossOutput:
    """beta-DPO (Wu et al. 2024, "beta-DPO: Direct Preference Optimization with Dynamic beta",
    arXiv 2407.08639; the details below are checked against the authors' code, junkangwu/beta-DPO
    trainers.py, `preference_loss` and `update_and_sync_tensor_mean`).

    Per-pair gap M_i = h_i, the raw log-ratio gap without beta (as in the code; UNCERTAIN, the paper
    writes it on implicit rewards, i.e. times beta). While training (autograd on):
      1. EMA, before the loss: M_0 <- m M_0 + (1 - m) mean(M), sigma_M <- m sigma_M + (1 - m) std(M)
         (unbiased std, 0 for one pair); both start at 0 as in the code, kept in `state`.
      2. Filtering: draw floor(N (1 - rho)) pairs (at least 1) without replacement with weights
         exp(-(M_i - M_0)^2 / (2 sigma_M^2)) (uniform while sigma_M = 0), from a torch.Generator
         seeded by (cfg.filter_seed, state["draws"]), so a run (and a resumed run) is deterministic.
      3. beta_batch = beta_0 (1 + a (mean_selected M - M_0)), clamped >= 1e-3, detached.
      4. L_i = -log sigma(beta_batch h_i) on kept pairs; dropped pairs get loss 0 and weight 0, so
         the engine's sum(loss)/sum(weight) is the mean over kept pairs.
    Under torch.no_grad() (evaluation) the stored statistics are used unchanged and every pair is
    kept (the reference code also moves the EMA during evaluation; we do not). Statistics are per
    micro-batch and per process (the reference gathers the gaps across devices).
    Logged rewards use beta_0, as in the reference code.
    """
    d_w, d_l = pair_logratios(inp)  # (B,)
    h = d_w - d_l  # (B,)
    gap = h.detach()
    n = gap.numel()
    training = torch.is_grad_enabled()
    if training:
        m = cfg.momentum
        batch_std = float(gap.double().std()) if n > 1 else 0.0
        state["gap_mean"] = m * float(state.get("gap_mean", 0.0)) + (1 - m) * float(gap.double().mean())
        state["gap_std"] = m * float(state.get("gap_std", 0.0)) + (1 - m) * batch_std
    m0, sigma = float(state.get("gap_mean", 0.0)), float(state.get("gap_std", 0.0))
    if training:
        draws = int(state.get("draws", 0))
        gen = torch.Generator().manual_seed(cfg.filter_seed * 1_000_003 + draws)
        state["draws"] = draws + 1
        keep = _filter_pairs(gap, m0, sigma, max(1, math.floor(n * (1 - cfg.rho))), gen)  # (B,)
    else:
        keep = torch.ones_like(gap)
    selected_mean = float((gap * keep).sum() / keep.sum())
    beta = beta_dpo_batch_beta(cfg.beta, cfg.a, selected_mean, m0)
    loss = _neg_logsigmoid(beta * h) * keep  # (B,)
    metrics = preference_metrics(cfg.beta * d_w, cfg.beta * d_l)
    metrics.update({
        "beta_dpo/beta": torch.tensor(beta, dtype=gap.dtype),
        "beta_dpo/gap_mean": torch.tensor(m0, dtype=gap.dtype),
        "beta_dpo/gap_std": torch.tensor(sigma, dtype=gap.dtype),
        "beta_dpo/kept": keep.detach(),
    })
    return LossOutput(loss, metrics, weight=keep)


# --------------------------------------------------------------------------------------------
# Reference-free losses: SLiC-HF, SimPO, CPO, ORPO
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SLiCConfig:
    delta: float = option(1.0, ge=0)  # hinge margin delta on raw summed log-probs (paper and HALOs: 1.0)
    lam: float = option(0.1, ge=0)  # lambda, weight of the cross-entropy regulariser on y_ref = the chosen response (HALOs: 0.1; paper value UNCERTAIN)


def slic_hf(inp: PairwiseInput, cfg: SLiCConfig) -> LossOutput:
    """SLiC-HF (Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human Feedback",
    arXiv 2305.10425, the SLiC-HF loss): L = max(0, delta - l(y_w) + l(y_l)) - lambda * l(y_ref),
    a hinge on *raw summed* log-probs (no reference model) plus a cross-entropy regulariser. y_ref is
    the SFT target; with human pairs ("SLiC-HF direct") that is the chosen response, so the
    regulariser is the summed NLL of y_w (as in HALOs). Rewards logged are the summed log-probs."""
    l_w, l_l = inp.chosen.sum(), inp.rejected.sum()  # (B,)
    hinge = F.relu(cfg.delta - l_w + l_l)
    metrics = preference_metrics(l_w, l_l)
    metrics.update({"slic/hinge": hinge.detach(), "nll": _chosen_nll(inp).detach()})
    return LossOutput(hinge - cfg.lam * l_w, metrics)


@dataclass(frozen=True)
class SimPOConfig:
    beta: float = option(2.0, gt=0)  # reward scale on mean log-probs (20-100x DPO's beta; released configs 2.0-10)
    gamma: float = option(1.0, ge=0)  # absolute target margin gamma (the repo's gamma_beta_ratio 0.5 times beta 2.0)
    length_normalize: bool = True  # use mean log-probs (SimPO); False = summed (with gamma=0: the reference-free sigmoid loss)


def simpo(inp: PairwiseInput, cfg: SimPOConfig) -> LossOutput:
    """SimPO (Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free
    Reward", arXiv 2405.14734, the SimPO objective): L = -log sigma(beta (l_w/|y_w| - l_l/|y_l|) - gamma).
    gamma is absolute (TRL's simpo_gamma), not the repo's gamma/beta ratio. No reference model.
    With length_normalize=False and gamma=0 this is -log sigma(beta (l_w - l_l)), DPO with a
    uniform reference (CPO's preference term)."""
    if cfg.length_normalize:
        s_w, s_l = inp.chosen.mean(), inp.rejected.mean()  # (B,)
    else:
        s_w, s_l = inp.chosen.sum(), inp.rejected.sum()  # (B,)
    z = cfg.beta * (s_w - s_l) - cfg.gamma
    return LossOutput(_neg_logsigmoid(z), preference_metrics(cfg.beta * s_w, cfg.beta * s_l))


@dataclass(frozen=True)
class CPOConfig:
    beta: float = option(0.1, gt=0)  # temperature on the summed log-prob difference
    alpha: float = option(1.0, ge=0)  # weight of the chosen response's token-mean NLL (TRL cpo_alpha = 1.0)


def cpo(inp: PairwiseInput, cfg: CPOConfig) -> LossOutput:
    """CPO (Xu et al. 2024, "Contrastive Preference Optimization", arXiv 2401.08417, the CPO loss):
    L = -log sigma(beta (l(y_w) - l(y_l))) + alpha * NLL(y_w): DPO with a uniform reference on
    *summed* log-probs, plus the token-mean NLL of the chosen response (completion tokens only).
    No reference model."""
    l_w, l_l = inp.chosen.sum(), inp.rejected.sum()  # (B,)
    pref = _neg_logsigmoid(cfg.beta * (l_w - l_l))
    nll = _chosen_nll(inp)
    metrics = preference_metrics(cfg.beta * l_w, cfg.beta * l_l)
    metrics.update({"cpo/preference": pref.detach(), "nll": nll.detach()})
    return LossOutput(pref + cfg.alpha * nll, metrics)


@dataclass(frozen=True)
class ORPOConfig:
    lam: float = option(0.1, ge=0)  # lambda, weight of the odds-ratio term (paper and TRL beta: 0.1)


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - e^x) for x < 0, stable on both sides of -log 2 (Maechler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo(inp: PairwiseInput, cfg: ORPOConfig) -> LossOutput:
    """ORPO (Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model",
    arXiv 2403.07691, eqs. 6-7): with P(y) = exp(mean log-prob) and odds = P / (1 - P),
      L = NLL(y_w) + lambda * (-log sigma(log odds(y_w) - log odds(y_l))),
    log odds(y) = lbar(y) - log(1 - exp(lbar(y))) via log1mexp (mean log-probs clamped <= -1e-6 so
    a certain response has finite odds). No reference model.
    The NLL here is completion-only (the prompt is masked): the official code and TRL include the
    prompt tokens unless --disable_prompt_loss is set, so their numbers differ. The check value in
    tests/test_losses_pairwise.py (case A, total 2.4060381600 with lambda = 0.1) is this
    completion-only token-mean form.
    Rewards logged are lambda * mean log-probs, as in TRL."""
    s_w = inp.chosen.mean().clamp(max=-1e-6)  # (B,)
    s_l = inp.rejected.mean().clamp(max=-1e-6)  # (B,)
    log_odds = (s_w - _log1mexp(s_w)) - (s_l - _log1mexp(s_l))  # (B,)
    l_or = _neg_logsigmoid(log_odds)
    nll = _chosen_nll(inp)
    metrics = preference_metrics(cfg.lam * s_w, cfg.lam * s_l)
    metrics.update({"orpo/log_odds_ratio": log_odds.detach(), "orpo/or_loss": l_or.detach(),
                    "nll": nll.detach()})
    return LossOutput(nll + cfg.lam * l_or, metrics)
