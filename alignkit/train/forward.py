"""One forward pass over a flat list of (prompt ids, completion ids) sequences -> per-token log-probs.

All sequences of a micro-batch (chosen and rejected, the K responses of a list) go through the model
together, in one of two layouts with the same result:

- plain (`collate(seqs, pad_id)`): one left-padded row per sequence with explicit position ids, so
  every completion ends at the last column; the LM head runs only on the last `Tc + 1` columns
  (`logits_to_keep`), not on prompt or padding positions.
- packed (`collate(seqs, pad_id, share_prefix=True)`, see packing.py): sequences that share a prompt
  share one copy of it, and everything is packed into a few rows without padding; the LM head runs
  only on the columns that predict completion tokens. Models whose attention cannot take the 4D
  mask (checked once per model) get the plain layout instead.

Log-probs come from a fused cross-entropy on the completion positions, never a full log-softmax copy.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..losses.base import Logps
from .packing import PROBE, ROW_TOKENS, PackedBatch, attention_mask, pack, probe_ok


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


def collate(seqs: list, pad_id: int, share_prefix: bool = False, row_tokens: int = ROW_TOKENS):
    """seqs: list of (prompt_ids, completion_ids) -> SeqBatch, or with share_prefix a PackedBatch
    (shared prompts once, no padding; see packing.py). Both give the same `sequence_logps`."""
    if share_prefix and all(len(p) > 0 for p, _ in seqs):
        return pack(seqs, pad_id, row_tokens)
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


def sequence_logps(model, batch, want_logits: bool = False, want_hidden: bool = False):
    """-> (Logps over completion tokens, hidden state at each sequence's last prompt token or None)."""
    if isinstance(batch, PackedBatch):
        if packing_supported(model):
            return _packed_logps(model, batch, want_logits, want_hidden)
        batch = collate(batch.seqs, batch.pad_id).to(batch.comp_ids.device)
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


def _packed_logps(model, batch: PackedBatch, want_logits: bool, want_hidden: bool):
    n, tc = batch.comp_ids.shape
    out = model(input_ids=batch.input_ids, attention_mask=attention_mask(_unwrap(model), batch),
                position_ids=batch.position_ids, logits_to_keep=batch.keep, use_cache=False,
                output_hidden_states=want_hidden)
    logits = out.logits.float()  # (K, V): the kept columns, row-major
    logits = logits.reshape(-1, logits.shape[-1])[batch.gather]  # (M, V) one per completion token
    flat = -F.cross_entropy(logits, batch.targets, reduction="none")  # (M,)
    tok = torch.zeros(n * tc, dtype=flat.dtype, device=flat.device).index_put((batch.dest,), flat).view(n, tc)
    full = None
    if want_logits:
        v = logits.shape[-1]
        full = torch.zeros(n * tc, v, dtype=logits.dtype, device=logits.device).index_put(
            (batch.dest,), logits).view(n, tc, v)
    hidden = None
    if want_hidden:
        last = out.hidden_states[-1]  # (R, L, H)
        hidden = last.reshape(-1, last.shape[-1])[batch.prompt_end]  # (N, H)
    return Logps(tok, batch.comp_mask, full, batch.comp_ids if want_logits else None), hidden


def _unwrap(model):
    return getattr(model, "module", model)  # DDP / accelerate wrappers


_SUPPORT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@torch.no_grad()
def packing_supported(model) -> bool:
    """Does this model take the packed layout (a 4D mask, 2D `logits_to_keep`) and give the plain
    layout's log-probs? Checked once per model on three tiny sequences, in eval mode."""
    m = _unwrap(model)
    if m in _SUPPORT:
        return _SUPPORT[m]
    ok = getattr(getattr(m, "config", None), "_attn_implementation", None) in ("sdpa", "eager")
    if ok:
        device = next(m.parameters()).device
        was = m.training
        m.eval()
        try:
            plain, _ = sequence_logps(m, collate(PROBE, 0).to(device))
            packed, _ = _packed_logps(m, pack(PROBE, 0).to(device), False, False)
            ok = probe_ok(plain.tokens, packed.tokens, next(m.parameters()).dtype)
        except (TypeError, ValueError, RuntimeError, IndexError):
            ok = False
        finally:
            m.train(was)
    _SUPPORT[m] = ok
    return ok
