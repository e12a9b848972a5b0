"""Reference log-probs, computed once.

pi_ref is frozen, so its per-token log-probs on the training data never change: one no-grad pass
before training fills the cache, and training never runs the reference again. The pass needs no
second model copy: with no `--ref`, the reference *is* the policy before its first update; under
LoRA it is the same model with the adapter disabled. On disk (safetensors) the cache is keyed by the
reference and the tokenized data, so `--resume` reuses it instead of reloading the initial weights.
With several processes each computes the whole cache (the same examples in the same order): under
FSDP the policy's forward is collective, so every process must run the same passes; the main one
writes the file.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..losses.base import Logps
from .forward import collate, packing_supported, sequence_logps


def data_key(examples: list, ref_id: str) -> str:
    h = hashlib.sha256(ref_id.encode())
    for ex in examples:
        for p, c in ex.seqs:
            h.update(json.dumps([p, c]).encode())
    return h.hexdigest()[:16]


@contextmanager
def reference_mode(model):
    """Adapter disabled under peft (the base weights are the reference), else nothing to do."""
    m = getattr(model, "module", model)
    ctx = m.disable_adapter() if hasattr(m, "peft_config") else nullcontext()
    with ctx:
        yield m


@torch.no_grad()
def compute_ref_logps(model, examples: list, pad_id: int, batch_seqs: int = 32, progress=None) -> dict:
    """-> {example idx: [per-token log-prob tensor (len(c),) for each sequence]}."""
    was_training = model.training
    model.eval()
    flat = [(ex.idx, j, s) for ex in examples for j, s in enumerate(ex.seqs)]
    packed = packing_supported(model)
    if not packed:  # sort by length so each chunk pads little; packed chunks keep an example's
        flat.sort(key=lambda x: len(x[2][0]) + len(x[2][1]))  # sequences together (shared prompt)
    cache: dict = {ex.idx: [None] * len(ex.seqs) for ex in examples}
    device = next(model.parameters()).device
    with reference_mode(model) as m:
        for i in range(0, len(flat), batch_seqs):
            chunk = flat[i: i + batch_seqs]
            sb = collate([s for _, _, s in chunk], pad_id, share_prefix=packed).to(device)
            lp, _ = sequence_logps(m, sb)
            tc = sb.comp_ids.shape[1]
            for row, (idx, j, (_, c)) in enumerate(chunk):
                cache[idx][j] = lp.tokens[row, tc - len(c):].float().cpu().clone()
            if progress is not None:
                progress.update(len(chunk))
    if was_training:
        model.train()
    return cache


def save_cache(cache: dict, path: Path, key: str):
    tensors, meta = {}, {}
    for idx, seqs in cache.items():
        for j, t in enumerate(seqs):
            tensors[f"{idx}.{j}"] = t.contiguous()
    meta["key"] = key
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_cache(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        if (f.metadata() or {}).get("key") != key:
            return None
    flat = load_file(str(path))
    cache: dict = {}
    for name, t in flat.items():
        idx, j = (int(x) for x in name.split("."))
        cache.setdefault(idx, {})[j] = t
    return {idx: [d[j] for j in sorted(d)] for idx, d in cache.items()}


def cached_logps(cache: dict, batch: list, tc: int, device) -> Logps:
    """Lay cached reference log-probs out like the collated completions (right-aligned in Tc)."""
    rows = [t for ex in batch for t in cache[ex.idx]]
    tokens = torch.zeros(len(rows), tc)
    mask = torch.zeros(len(rows), tc)
    for i, t in enumerate(rows):
        tokens[i, tc - len(t):] = t
        mask[i, tc - len(t):] = 1
    return Logps(tokens.to(device), mask.to(device))
