"""One forward pass of a policy (or reference) over collated rollout rows -> per-token log-probs of
the completion tokens, and on request the last hidden state at the same positions (for a value head
V(s_t)) and the entropy of pi(. | s_t).

Same layout as `alignkit.train.forward.sequence_logps` (left-padded rows, completions right-aligned,
the LM head only on the Tc columns that predict completion tokens); it adds the per-position hidden
states, which that function returns only at the prompt's end.

A packed batch (`collate(seqs, pad_id, share_prefix=True)`) computes each group's prompt once for
its G samples and no padding; it gives the same log-probs and entropies, but no per-token hidden
states, so runs with a value model (which reads the rows itself) keep the plain layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..train.forward import SeqBatch, sequence_logps
from ..train.packing import PackedBatch


@dataclass
class TokenForward:
    logps: Tensor  # (N, Tc) log pi(y_t | s_t), zero outside comp_mask
    hidden: Optional[Tensor] = None  # (N, Tc, H) last hidden state at s_t (the column predicting y_t)
    entropy: Optional[Tensor] = None  # (N, Tc) H(pi(. | s_t)), no grad, zero outside comp_mask


def completion_columns(sb: SeqBatch) -> Tensor:
    """(Tc,) the input columns whose outputs predict the completion tokens."""
    tc, t = sb.comp_ids.shape[1], sb.input_ids.shape[1]
    return torch.arange(t - tc - 1, t - 1, device=sb.input_ids.device)


def _entropy(logits: Tensor, mask: Tensor) -> Tensor:
    """(N, Tc) H = logsumexp(l) - sum softmax(l) * l, no grad, one row at a time (a (Tc, V) copy at most)."""
    with torch.no_grad():
        return torch.stack([torch.logsumexp(row, -1) - (torch.softmax(row, -1) * row).sum(-1)
                            for row in logits.detach()]) * mask


def token_forward(model, sb, want_hidden: bool = False, want_entropy: bool = False) -> TokenForward:
    if isinstance(sb, PackedBatch):
        if want_hidden:
            raise ValueError("per-token hidden states need the plain layout (collate without share_prefix)")
        lp, _ = sequence_logps(model, sb, want_logits=want_entropy)
        return TokenForward(lp.tokens * sb.comp_mask, None,
                            _entropy(lp.logits, sb.comp_mask) if want_entropy else None)
    keep = completion_columns(sb)
    out = model(input_ids=sb.input_ids, attention_mask=sb.attention_mask, position_ids=sb.position_ids,
                logits_to_keep=keep, use_cache=False, output_hidden_states=want_hidden)
    logits = out.logits.float()  # (N, Tc, V)
    n, tc, v = logits.shape
    mask = sb.comp_mask
    logps = -F.cross_entropy(logits.reshape(-1, v), sb.comp_ids.reshape(-1), reduction="none").view(n, tc)
    logps = logps * mask
    hidden = out.hidden_states[-1][:, keep].float() if want_hidden else None  # (N, Tc, H)
    return TokenForward(logps, hidden, _entropy(logits, mask) if want_entropy else None)
