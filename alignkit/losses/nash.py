"""Nash-learning losses: preferences as a game, not a reward (Munos et al. 2023, arXiv 2312.00886).

SPPO takes each response's *win rate* against the current policy, P(y > pi_t), as its score. The
feedback is listwise: a prompt's responses with those win rates (the iterative recipe computes them
from a judge's pairwise comparisons among the policy's own samples; a file can carry them).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from .base import ListwiseInput, LossOutput, preference_metrics


@dataclass(frozen=True)
class SPPOConfig:
    eta: float = option(1000.0, gt=0)  # eta: the log-ratio's target is eta * (P(y > pi_t) - 1/2) (paper/repo: 1000, i.e. beta 0.001)


def sppo(inp: ListwiseInput, cfg: SPPOConfig) -> LossOutput:
    """SPPO (Wu et al. 2024, "Self-Play Preference Optimization for Language Model Alignment", arXiv
    2405.00675, eq. 4.6 / the SPPO objective): regress each response's log-ratio to the previous
    iterate pi_t onto its centred win rate,

      L = (1/K) sum_k ( log(pi(y_k)/pi_t(y_k)) - eta * (P_hat(y_k > pi_t) - 1/2) )^2

    with summed log-probs; the reference is pi_t (the round's starting model). With K = 2 (the
    chosen and the rejected sample, as in the paper's pipeline) this is the repo's 1/2-average of
    the two squared terms. log Z is approximated by eta/2, which the centring absorbs.
    """
    delta = inp.grouped(inp.policy.sum() - inp.ref.sum())  # (B, K) log pi/pi_t
    target = cfg.eta * (inp.scores.to(delta.dtype) - 0.5)  # (B, K)
    loss = ((delta - target) ** 2).mean(dim=1)  # (B,)
    best = inp.scores.argmax(dim=1, keepdim=True)
    worst = inp.scores.argmin(dim=1, keepdim=True)
    d = delta.detach()
    metrics = preference_metrics(d.gather(1, best).squeeze(1), d.gather(1, worst).squeeze(1))  # best vs worst
    metrics["sppo/logratio_mean"] = d.mean(dim=1)
    return LossOutput(loss, metrics)
