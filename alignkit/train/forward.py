"""One forward pass over a flat list of (prompt ids, completion ids) sequences -> per-token log-probs.

All sequences of a micro-batch (chosen and rejected, the K responses of a list) go through the model
together. Rows are left-padded with explicit position ids, so every completion ends at the last
column; the LM head then runs only on the last `Tc + 1` columns (`logits_to_keep`), not on prompt or
padding positions, and log-probs come from a fused cross-entropy instead of a full log-softmax copy.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..losses.base import Logps


@dataclass
class SeqBatch:
    """Collated sequences (left-padded).

    input_ids, attention_mask, position_ids: (N, T)
    comp_ids, comp_mask: (N, Tc) completion tokens, right-aligned like the rows (pads on the left)
    prompt_end: (N,) column of each row's last prompt token (for a value head on V(x))
    """
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    comp_ids: torch.Tensor
    comp_mask: torch.Tensor
    prompt_end: torch.Tensor

    def to(self, device):
        return SeqBatch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids,
                                                 self.comp_ids, self.comp_mask, self.prompt_end)))


def collate(seqs: list, pad_id: int) -> SeqBatch:
    """seqs: list of (prompt_ids, completion_ids)."""
    n = len(seqs)
    t = max(len(p) + len(c) for p, c in seqs)
    tc = max(len(c) for _, c in seqs)
    input_ids = torch.full((n, t), pad_id, dtype=torch.long)
    attn = torch.zeros((n, t), dtype=torch.long)
    comp_ids = torch.full((n, tc), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((n, tc), dtype=torch.float32)
    prompt_end = torch.zeros(n, dtype=torch.long)
    for i, (p, c) in enumerate(seqs):
        row = list(p) + list(c)
        input_ids[i, t - len(row):] = torch.tensor(row)
        attn[i, t - len(row):] = 1
        comp_ids[i, tc - len(c):] = torch.tensor(c)
        comp_mask[i, tc - len(c):] = 1
        prompt_end[i] = t - len(c) - 1
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    return SeqBatch(input_ids, attn, position_ids, comp_ids, comp_mask, prompt_end)


def sequence_logps(model, batch: SeqBatch, want_logits: bool = False, want_hidden: bool = False):
    """-> (Logps over completion tokens, hidden state at each row's last prompt token or None)."""
    tc = batch.comp_ids.shape[1]
    t = batch.input_ids.shape[1]
    keep = torch.arange(t - tc - 1, t - 1, device=batch.input_ids.device)  # columns predicting completions
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                position_ids=batch.position_ids, logits_to_keep=keep, use_cache=False,
                output_hidden_states=want_hidden)
    logits = out.logits.float()  # (N, Tc, V)
    n, _, v = logits.shape
    tok = -F.cross_entropy(logits.reshape(-1, v), batch.comp_ids.reshape(-1), reduction="none").view(n, tc)
    tok = tok * batch.comp_mask
    hidden = None
    if want_hidden:
        last = out.hidden_states[-1]  # (N, T, H)
        hidden = last[torch.arange(n, device=last.device), batch.prompt_end]  # (N, H)
    lp = Logps(tok, batch.comp_mask, logits if want_logits else None,
               batch.comp_ids if want_logits else None)
    return lp, hidden
