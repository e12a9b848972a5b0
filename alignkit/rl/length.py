"""Length control of the task reward, and the length statistics every RL run logs.

Policies under RL drift toward whatever length the reward likes (often longer) and may stop ending
their answers. Three knobs, applied to the judge's score before any advantage is computed:
- length_normalize: r / |y| (a density: reward per token)
- length_penalty alpha: r - alpha * |y| (RLHFlow-style r - lambda |y|; RLHFlow's online recipe is
  Dong et al. 2024, arXiv 2405.07863)
- missing_eos_penalty p: r - p when the completion never emitted EOS (TRL's `missing_eos_penalty`,
  the "EOS trick" of Huang et al. 2024, arXiv 2403.17031)
|y| counts completion tokens, EOS included.
"""
from __future__ import annotations

from torch import Tensor


def length_controlled(scores: Tensor, lengths: Tensor, ended: Tensor, cfg) -> Tensor:
    """scores, lengths: (B,) float; ended: (B,) bool -> (B,) task reward."""
    r = scores
    if cfg.length_normalize:
        r = r / lengths.clamp(min=1)
    r = r - cfg.length_penalty * lengths
    return r - cfg.missing_eos_penalty * (~ended).float()


def length_stats(lengths: Tensor, ended: Tensor, prefix: str = "length") -> dict:
    lengths = lengths.float()
    out = {f"{prefix}/mean": lengths.mean().item(), f"{prefix}/min": lengths.min().item(),
           f"{prefix}/max": lengths.max().item(), "eos_rate": ended.float().mean().item()}
    if bool(ended.any()):
        out[f"{prefix}/ended_mean"] = lengths[ended].mean().item()
    return out

