"""One forward pass of a policy (or reference) over collated rollout rows -> per-token log-probs of
the completion tokens, and on request the last hidden state at the same positions (for a value head
V(s_t)) and the entropy of pi(. | s_t).

Same layout as `alignkit.train.forward.sequence_logps` (left-padded rows, completions right-aligned,
the LM head only on the Tc columns that predict completion tokens); it adds the per-position hidden
states, which that function returns only at the prompt's end.

A packed batch (`collate(seqs, pad_id, share_prefix=True)`) computes each group's prompt once for
its G samples and no padding, and gives the same log-probs, entropies and hidden states in the plain
layout; a model that cannot take the packed mask gets the plain rows instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..train.forward import SeqBatch, collate, packing_supported
from ..train.packing import PackedBatch, attention_mask, token_rows


@dataclass
class TokenForward:
    logps: Tensor  # (N, Tc) log pi(y_t | s_t), zero outside comp_mask
    hidden: Optional[Tensor] = None  # (N, Tc, H) last hidden state at s_t (the column predicting y_t)
    entropy: Optional[Tensor] = None  # (N, Tc) H(pi(. | s_t)), no grad, zero outside comp_mask


def completion_columns(sb: SeqBatch) -> Tensor:
    """(Tc,) the input columns whose outputs predict the completion tokens."""
    tc, t = sb.comp_ids.shape[1], sb.input_ids.shape[1]
    return torch.arange(t - tc - 1, t - 1, device=sb.input_ids.device)


def _entropy(logits: Tensor) -> Tensor:
    """H = logsumexp(l) - sum softmax(l) * l over the last axis, no grad, in chunks of 1024 rows."""
    with torch.no_grad():
        flat = logits.detach().reshape(-1, logits.shape[-1])
        ent = torch.cat([torch.logsumexp(c, -1) - (torch.softmax(c, -1) * c).sum(-1) for c in flat.split(1024)])
        return ent.view(logits.shape[:-1])


def _packed_forward(model, pb: PackedBatch, want_hidden: bool, want_entropy: bool) -> TokenForward:
    n, tc = pb.comp_ids.shape
    inner = getattr(model, "module", model)  # DDP / accelerate wrappers
    out = model(input_ids=pb.input_ids, attention_mask=attention_mask(inner, pb), position_ids=pb.position_ids,
                logits_to_keep=pb.keep, use_cache=False, output_hidden_states=want_hidden)
    logits = out.logits.float()
    logits = logits.reshape(-1, logits.shape[-1])[pb.gather]  # (M, V): one row per completion token
    flat = -F.cross_entropy(logits, pb.targets, reduction="none")  # (M,)
    logps = torch.zeros(n * tc, dtype=flat.dtype, device=flat.device).index_put((pb.dest,), flat).view(n, tc)
    hidden = token_rows(out.hidden_states[-1], pb).float() if want_hidden else None
    entropy = None
    if want_entropy:
        ent = _entropy(logits)
        entropy = torch.zeros(n * tc, dtype=ent.dtype, device=ent.device).index_put((pb.dest,), ent).view(n, tc)
    return TokenForward(logps, hidden, entropy)


def token_forward(model, sb, want_hidden: bool = False, want_entropy: bool = False) -> TokenForward:
    if isinstance(sb, PackedBatch):
        if packing_supported(model):
            return _packed_forward(model, sb, want_hidden, want_entropy)
        sb = collate(sb.seqs, sb.pad_id).to(sb.comp_ids.device)
    keep = completion_columns(sb)
    out = model(input_ids=sb.input_ids, attention_mask=sb.attention_mask, position_ids=sb.position_ids,
                logits_to_keep=keep, use_cache=False, output_hidden_states=want_hidden)
    logits = out.logits.float()  # (N, Tc, V)
    n, tc, v = logits.shape
    mask = sb.comp_mask
    logps = -F.cross_entropy(logits.reshape(-1, v), sb.comp_ids.reshape(-1), reduction="none").view(n, tc)
    logps = logps * mask
    hidden = out.hidden_states[-1][:, keep].float() if want_hidden else None  # (N, Tc, H)
    return TokenForward(logps, hidden, _entropy(logits) * mask if want_entropy else None)
