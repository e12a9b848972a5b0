"""What every RL run reports about a batch of samples: reward, KL to the reference, length, entropy.

The KL is the sequence-level k1 estimate (1/N) sum_i [l_pi(y_i) - l_ref(y_i)] with y_i ~ pi, the
quantity of the DPO paper's reward-KL frontier (methods.md 9.5), whatever estimator the loss uses.
Evaluation samples held-out prompts at the training temperature, with a fixed seed so that the
start and end of a run see the same random numbers.
"""
from __future__ import annotations

import dataclasses

import torch

from .advantages import masked_mean
from .kl import sequence_kl
from .length import length_stats
from .rollout import collect_rollout
from .types import Rollout


def rollout_stats(ro: Rollout) -> dict:
    out = {"reward": ro.judge_scores.mean().item(),
           "reward_std": ro.judge_scores.std().item() if len(ro) > 1 else 0.0,
           "task_reward": ro.rewards.mean().item()}
    if ro.ref_logps is not None:
        out["kl"] = sequence_kl(ro.old_logps, ro.ref_logps, ro.mask, "k1").mean().item()
    if ro.entropy is not None:
        out["entropy"] = masked_mean(ro.entropy, ro.mask).item()
    out.update(length_stats(ro.lengths(), ro.ended))
    return out


@torch.no_grad()
def evaluate_heldout(policy, reference, tokenizer, generator, prompts: list, prompt_ids: list, judge,
                    true_judge, mcfg, seed: int, batch_size: int) -> dict:
    """Sample mcfg.eval_samples completions per held-out prompt and report rollout_stats; with a
    separate evaluation judge (e.g. the bundled task's r*), also `true_reward`."""
    if not prompts:
        return {}
    cfg = dataclasses.replace(mcfg, samples_per_prompt=mcfg.eval_samples)
    ro = collect_rollout(policy, reference, None, tokenizer, generator, prompts, prompt_ids, judge, cfg,
                         seed, batch_size)
    out = rollout_stats(ro)
    if true_judge is not None:
        out["true_reward"] = sum(true_judge.score(ro.prompts, ro.texts)) / len(ro)
    return out
