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


_DROPOUT_KEYS = ("attention_dropout", "hidden_dropout", "dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop",
                 "hidden_dropout_prob", "attention_probs_dropout_prob")


def deterministic(model) -> bool:
    """Does the model's forward give the same numbers in training mode as in eval mode (no active
    dropout anywhere)?"""
    m = getattr(model, "module", model)
    if any(isinstance(x, torch.nn.modules.dropout._DropoutNd) and x.p > 0 for x in m.modules()):
        return False
    cfg = getattr(m, "config", None)
    return not any(float(getattr(cfg, k, 0) or 0) > 0 for k in _DROPOUT_KEYS)


class LazyReference:
    """Reference log-probs computed as training reaches them, batch by batch, and kept.

    A short run needs the reference only on the examples it visits: 10 DPO steps of 8 pairs read 80
    pairs, not the 1,800 of the data set that an up-front pass computes (issue 21). Each example is
    computed once and cached (memory, and with a file the cache is saved at checkpoints and at the
    end, so later epochs and a resumed run reuse it).

    While the policy still is the reference (`policy_is_reference()`: no optimizer step yet, no
    --ref, no LoRA, no dropout), an example's reference log-probs are the policy's own, detached,
    from the same forward: free, and exactly equal, so at step 0 every held-out margin is exactly 0
    and the accuracy exactly 0.5. Later misses run `load_reference()` (the initial weights from disk,
    or the adapter-disabled policy under LoRA) on those examples only; it is released once every
    example is cached."""

    def __init__(self, cache: dict, load_reference, pad_id: int, n_examples: int, policy_is_reference,
                 batch_seqs: int = 32, path: Path | None = None, key: str = "", autocast=nullcontext):
        self.cache, self.pad_id, self.n_examples = cache, pad_id, n_examples
        self._load, self._model = load_reference, None
        self.policy_is_reference, self.batch_seqs = policy_is_reference, batch_seqs
        self.path, self.key, self.autocast = path, key, autocast
        self.computed = {"from_policy": 0, "reference_pass": 0}  # examples, for the log and the tests
        self._dirty = False

    def logps(self, batch: list, sb, policy: Logps) -> Logps:
        """The reference log-probs of `batch` laid out like `sb`'s completions; `policy` is the
        policy's forward on the same sequences (its rows in the order of the examples' sequences)."""
        missing = [ex for ex in batch if ex.idx not in self.cache]
        if missing:
            if self.policy_is_reference():
                tc = sb.comp_ids.shape[1]
                row, want = 0, {ex.idx for ex in missing}
                for ex in batch:
                    if ex.idx in want and ex.idx not in self.cache:
                        self.cache[ex.idx] = [policy.tokens[row + j, tc - len(c):].detach().float().cpu().clone()
                                              for j, (_, c) in enumerate(ex.seqs)]
                    row += len(ex.seqs)
                self.computed["from_policy"] += len(missing)
            else:
                model = self._reference()
                with self.autocast():
                    self.cache.update(compute_ref_logps(model, missing, self.pad_id, self.batch_seqs))
                self.computed["reference_pass"] += len(missing)
                if len(self.cache) >= self.n_examples:
                    self._model = None  # everything is cached: the reference is no longer needed
            self._dirty = True
        return cached_logps(self.cache, batch, sb.comp_ids.shape[1], sb.comp_ids.device)

    def _reference(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def save(self):
        """Write the cache (what has been computed so far) when it has a file and changed."""
        if self.path is not None and self._dirty:
            save_cache(self.cache, self.path, self.key)
            self._dirty = False
