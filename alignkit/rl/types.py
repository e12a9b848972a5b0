"""Typed data of the online loop: a rollout batch, the advantages computed from it, and the view of
one micro-batch that a policy loss sees.

Per-token tensors share one layout: (B, T) with T = the longest completion of the batch, completions
right-aligned (padding on the left, each completion's last token in column T-1), exactly as
`alignkit.train.forward.collate` lays out `comp_ids`. A subset of rows with a shorter longest
completion is therefore the last T' columns of the same rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor


@dataclass
class Rollout:
    """B = prompts x samples per prompt completions, sampled from pi_old, scored, with log-probs."""
    prompts: list  # (B,) raw prompts (text or conversation), repeated per sample
    texts: list  # (B,) decoded completions (special tokens stripped)
    seqs: list  # (B,) (prompt_ids, completion_ids); completion ids keep EOS when the answer ended
    group: Tensor  # (B,) long, index of the prompt within the batch (samples of a prompt share it)
    mask: Tensor  # (B, T) 1.0 on completion tokens
    old_logps: Optional[Tensor]  # (B, T) log pi_old(y_t | s_t), the sampling policy, no grad; None until the update computes it (one update per batch)
    ended: Tensor  # (B,) bool, the completion ends with EOS (False: cut at max_new_tokens)
    judge_scores: Tensor  # (B,) the judge's score of each completion
    rewards: Tensor  # (B,) the task reward after length control (what the estimators use)
    ref_logps: Optional[Tensor] = None  # (B, T) log pi_ref(y_t | s_t); None when reference-free
    values: Optional[Tensor] = None  # (B, T) V_old(s_t) when the method has a value function
    entropy: Optional[Tensor] = None  # (B, T) entropy of pi_old(. | s_t) at each completion position
    baseline_rewards: Optional[Tensor] = None  # (B,) reward of the greedy completion of each row's prompt (ReMax)

    def __len__(self) -> int:
        return len(self.seqs)

    def lengths(self) -> Tensor:  # (B,) completion tokens (EOS included when present)
        return self.mask.sum(-1)

    @property
    def num_groups(self) -> int:
        return int(self.group.max().item()) + 1 if len(self.group) else 0

    def token_kl(self, estimator: str) -> Tensor:
        """(B, T) per-token KL estimate of pi_old against pi_ref (zeros when reference-free)."""
        from .kl import kl_per_token
        if self.ref_logps is None:
            return torch.zeros_like(self.mask)
        return kl_per_token(self.old_logps, self.ref_logps, estimator) * self.mask


@dataclass
class Advantages:
    """What an advantage estimator returns for a rollout batch.
    advantages: (B, T) per-token advantage (a sequence-level estimator repeats A_i on every token)
    returns: (B, T) value targets R_t = A_t + V(s_t), only when there is a value function
    metrics: detached scalars to log (e.g. the baseline)"""
    advantages: Tensor
    returns: Optional[Tensor] = None
    metrics: dict = field(default_factory=dict)


@dataclass
class PolicyInput:
    """One micro-batch of rollout rows as a policy loss sees it; every tensor (N, T) unless noted.
    logps and values carry gradients; everything else is from the rollout (no grad)."""
    logps: Tensor  # log pi_theta(y_t | s_t), current policy
    old_logps: Tensor  # log pi_old(y_t | s_t)
    mask: Tensor
    advantages: Tensor
    ref_logps: Optional[Tensor] = None
    returns: Optional[Tensor] = None
    values: Optional[Tensor] = None  # V_psi(s_t), current value function
    old_values: Optional[Tensor] = None  # V_old(s_t) at rollout time
    max_new_tokens: int = 1  # the generation budget (Dr. GRPO divides by it)

    def lengths(self) -> Tensor:  # (N,)
        return self.mask.sum(-1)


@dataclass(frozen=True)
class RLMethod:
    """An online RL method = an advantage estimator + a policy loss + what they need from the loop.
    advantages(rollout, cfg, kl_coef, state) -> Advantages; loss(PolicyInput, cfg, kl_coef) -> LossOutput."""
    name: str
    advantages: object
    loss: object
    needs_value: bool = False  # a value function V(s_t) is trained with the policy (PPO)
    greedy_baseline: bool = False  # each rollout also decodes every prompt greedily (ReMax)
    kl_in_loss: bool = False  # the KL sits in the loss, so the advantages never read pi_old's log-probs (GRPO)
    min_samples: int = 1  # completions per prompt the estimator needs (RLOO, GRPO: 2)
    # auxiliary(mcfg, encoder, log): an extra objective mixed into every optimizer step (PPO-ptx's
    # demonstrations); it owns its micro-batches and computes their loss
    auxiliary: object = None
