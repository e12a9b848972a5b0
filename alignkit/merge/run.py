"""`run_merge`: stream a merge tensor by tensor into a Hugging Face model folder.

Memory: one base tensor plus one tensor per input at a time, and the output shard being filled (at most
`max_shard_gb`, so never more than one full output model). Everything is checked (architectures, tensor
names, shapes, adapter targets) before the first tensor is merged, and the folder is written under a
temporary name and renamed at the end, so a failure leaves no half-written model behind.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch

from ..errors import ConfigError, ModelLoadError
from ..models.loading import DTYPES
from . import ops
from .config import MergeConfig
from .sources import LoraAdapter, ModelFolder, is_float_dtype, open_input, tied_groups

# Non-weight files copied from the base: the config and everything a tokenizer may consist of. Training
# artefacts a base folder may also hold (metrics, checkpoints, config.yaml) are not the merged model's.
COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
          "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
          "chat_template.json")
_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _tensor_seed(seed: int, model_index: int, name: str) -> int:
    # A mask per (seed, model, tensor), independent of reading order and sharding, so a merge is
    # reproducible and equals the same formula applied to whole state dicts.
    digest = hashlib.sha256(f"{seed}:{model_index}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def dare_generator(seed: int, model_index: int, name: str) -> torch.Generator:
    """The generator DARE draws model `model_index`'s mask for tensor `name` from."""
    return torch.Generator().manual_seed(_tensor_seed(seed, model_index, name))


def merge_tensor(cfg: MergeConfig, name: str, base: torch.Tensor | None, inputs: list,
                 weights: tuple) -> tuple:
    """Merge one tensor. `inputs`: per model, its delta from `base`; for linear, its whole tensor.
    Returns (merged tensor, the deltas as the method used them after dropping/trimming; None for
    linear)."""
    m = cfg.method
    if m == "linear":
        return ops.linear(inputs, weights), None
    deltas = inputs
    if m.startswith("dare_"):
        deltas = [ops.dare(d, cfg.drop_rate, dare_generator(cfg.seed, i, name)) for i, d in enumerate(deltas)]
    if m in ("ties", "dare_ties"):
        # DARE-TIES as Yu et al. 2024 run it: DARE on each delta, then the whole of TIES-Merging, trim included
        deltas = [ops.trim(d, cfg.density) for d in deltas]
        return base + cfg.scale * ops.ties_combine(deltas, weights), deltas
    return ops.task_arithmetic(base, deltas, weights, cfg.scale), deltas


class _ShardWriter:
    """Collects output tensors and writes a safetensors file whenever the next tensor would push it past
    `max_bytes`; `finish` names the files as transformers expects (one file, or shards plus an index)."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes
        self.buffer, self.size, self.files, self.weight_map, self.total = {}, 0, [], {}, 0

    def add(self, name: str, tensor: torch.Tensor):
        nbytes = tensor.numel() * tensor.element_size()
        if self.buffer and self.size + nbytes > self.max_bytes:
            self._flush()
        self.buffer[name] = tensor.contiguous()
        self.size += nbytes
        self.total += nbytes

    def _flush(self):
        from safetensors.torch import save_file
        path = self.folder / f"part-{len(self.files):05d}.safetensors"
        save_file(self.buffer, str(path), metadata={"format": "pt"})
        self.files.append((path, list(self.buffer)))
        self.buffer, self.size = {}, 0

    def finish(self) -> list:
        if self.buffer or not self.files:
            self._flush()
        if len(self.files) == 1:
            self.files[0][0].rename(self.folder / "model.safetensors")
            return ["model.safetensors"]
        n, names = len(self.files), []
        for i, (path, tensors) in enumerate(self.files):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            path.rename(self.folder / final)
            names.append(final)
            self.weight_map.update({t: final for t in tensors})
        index = {"metadata": {"total_size": self.total}, "weight_map": dict(sorted(self.weight_map.items()))}
        (self.folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        return names


def _check_output(cfg: MergeConfig) -> Path:
    if not cfg.output:
        raise ConfigError("merge: output is required (the folder to write the merged model to)")
    out = Path(cfg.output)
    real = out.resolve()
    for src in (cfg.base, *cfg.models):
        s = Path(src).resolve() if src else None
        if s is not None and (s == real or s in real.parents or real in s.parents):
            raise ConfigError(f"{cfg.output}: the output folder overlaps the input {src}; write elsewhere")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{cfg.output}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise ConfigError(f"{cfg.output}: folder is not empty; pass --overwrite to replace it")
    return out


class _Plan:
    """The output's tensor names (base order, tied aliases folded into one stored name), their shapes,
    and how to find each one in every input."""

    def __init__(self, ref: ModelFolder):
        self.ref = ref
        self.alias: dict = {}  # any name of a tied group -> the name stored in the output
        names = ref.names()
        present = set(names)
        for group in tied_groups(ref):
            stored = next((n for n in group if n in present), None)
            if stored is not None:
                self.alias.update({n: stored for n in group})
        self.names = [n for n in names if self.alias.get(n, n) == n]
        self.shapes = {n: ref.meta(n)[0] for n in self.names}
        self.dtypes = {n: ref.meta(n)[1] for n in self.names}

    def canonical(self, name: str) -> str | None:
        name = self.alias.get(name, name)
        return name if name in self.shapes else None

    def bind_full(self, model: ModelFolder) -> dict:
        """output name -> the name to read in `model`; errors name the model and the tensor."""
        lookup, seen = {}, set()
        for n in model.names():
            c = self.canonical(n)
            if c is None:
                raise ModelLoadError(f"{model.name}: tensor {n} is not in the base {self.ref.name}")
            if c not in lookup or n == c:  # prefer the stored name where a model saved both aliases
                lookup[c] = n
            seen.add(c)
        for n in self.names:
            if n not in seen:
                raise ModelLoadError(f"{model.name}: tensor {n} is missing (the base {self.ref.name} has it)")
            shape, dtype = model.meta(lookup[n])
            if shape != self.shapes[n]:
                raise ModelLoadError(f"{model.name}: tensor {n} has shape {list(shape)}, "
                                     f"the base {self.ref.name} has {list(self.shapes[n])}")
            if is_float_dtype(dtype) != is_float_dtype(self.dtypes[n]):
                raise ModelLoadError(f"{model.name}: tensor {n} has dtype {dtype}, the base's is {self.dtypes[n]}")
        return lookup


def _check_architecture(ref: ModelFolder, src):
    arch, model_type = src.architecture()
    ref_arch, ref_type = ref.architecture()
    if isinstance(src, LoraAdapter):
        if arch and ref_arch and arch[0] not in ref_arch:
            raise ModelLoadError(f"{src.name}: an adapter for {arch[0]}, the base {ref.name} is {ref_arch[0]}")
        return
    if (arch, model_type) != (ref_arch, ref_type):
        raise ModelLoadError(f"{src.name}: architecture {'/'.join(arch) or '?'} ({model_type}) differs from "
                             f"the base {ref.name}'s {'/'.join(ref_arch) or '?'} ({ref_type})")
    tie, ref_tie = src.config.get("tie_word_embeddings"), ref.config.get("tie_word_embeddings")
    if tie is not None and ref_tie is not None and tie != ref_tie:
        raise ModelLoadError(f"{src.name}: tie_word_embeddings={tie}, the base {ref.name} has {ref_tie}")


def _out_dtype(cfg: MergeConfig, stored: torch.dtype) -> torch.dtype:
    return stored if cfg.dtype == "auto" or not stored.is_floating_point else DTYPES[cfg.dtype]


def _copy_metadata(src: Path, dst: Path, cfg: MergeConfig, log) -> list:
    copied = []
    for fname in COPIED:
        if (src / fname).is_file():
            shutil.copy2(src / fname, dst / fname)
            copied.append(fname)
    if cfg.dtype != "auto":
        config = json.loads((dst / "config.json").read_text())
        name = _DTYPE_NAMES[DTYPES[cfg.dtype]]
        for key in ("dtype", "torch_dtype"):
            if key in config or key == "dtype":
                config[key] = name
        (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if not any(f.startswith("tokenizer") for f in copied):
        log(f"note: {src} has no tokenizer files; the merged folder has none either")
    return copied


def run_merge(cfg: MergeConfig, log=print) -> dict:
    """Merge `cfg.models` (onto `cfg.base`) with `cfg.method` and write `cfg.output`: config.json,
    the base's tokenizer files, model.safetensors (or shards with an index) and merge.json. Returns
    merge.json's content."""
    t0 = time.time()
    if not cfg.models:
        raise ConfigError("merge: models is empty; pass --models DIR[,DIR...] (full model or LoRA adapter folders)")
    if cfg.method != "linear" and not cfg.base:
        raise ConfigError(f"merge: {cfg.method} needs --base (the model the deltas are taken from)")
    out = _check_output(cfg)
    base = open_input(cfg.base) if cfg.base else None
    if isinstance(base, LoraAdapter):
        raise ModelLoadError(f"{cfg.base}: is a LoRA adapter; the base must be a full model folder")
    inputs = [open_input(p) for p in cfg.models]
    if base is None and any(isinstance(s, LoraAdapter) for s in inputs):
        raise ConfigError("merge: LoRA adapters apply to a base model; pass --base")
    ref = base if base is not None else inputs[0]
    for src in inputs:
        if src is not ref:
            _check_architecture(ref, src)
    plan = _Plan(ref)
    lookups = []
    for src in inputs:
        if isinstance(src, LoraAdapter):
            src.bind(plan.shapes, plan.canonical)
            lookups.append(None)
        else:
            lookups.append(plan.bind_full(src))
    weights = cfg.model_weights()
    n_params = sum(torch.Size(s).numel() for s in plan.shapes.values())
    log(f"merging {len(inputs)} model(s) with {cfg.method} over {len(plan.names)} tensors "
        f"({n_params / 1e6:.2f}M parameters), weights {list(weights)}")

    stats = [{"entries": 0, "nonzero": 0, "kept": 0, "l1": 0.0} for _ in inputs]
    tmp = out.parent / f".{out.name}.merging-{os.getpid()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        writer = _ShardWriter(tmp, int(cfg.max_shard_gb * 1e9))
        for name in plan.names:
            stored = ref.tensor(name)
            if not stored.is_floating_point():
                writer.add(name, _check_same_integers(name, stored, inputs, lookups))
                continue
            work = torch.promote_types(stored.dtype, torch.float32)
            b = stored.to(work) if base is not None else None  # the reference is the base when there is one
            per_input = []
            for src, lookup, st in zip(inputs, lookups, stats):
                if lookup is None:  # LoRA: its delta (zero where it does not touch this tensor)
                    d = src.delta(name, b)
                    d = d if d is not None else torch.zeros_like(b)
                    per_input.append(b + d if cfg.method == "linear" else d)
                else:
                    t = src.tensor(lookup[name]).to(work)
                    d = t - b if b is not None else None
                    per_input.append(t if cfg.method == "linear" else d)
                if cfg.method == "linear" and d is not None:
                    _record(st, d, d, cfg.sparsity_threshold)
                del d
            merged, used = merge_tensor(cfg, name, b, per_input, weights)
            if used is not None:
                for st, raw, kept in zip(stats, per_input, used):
                    _record(st, raw, kept, cfg.sparsity_threshold)
            writer.add(name, merged.to(_out_dtype(cfg, stored.dtype)))
            del per_input, used, merged, b
        weight_files = writer.finish()
        copied = _copy_metadata(base.path if base is not None else ref.path, tmp, cfg, log)
        summary = {
            "method": cfg.method,
            "base": cfg.base or None,
            "models": [_model_entry(src, w, s, base is not None) for src, w, s in zip(inputs, weights, stats)],
            "tensors": len(plan.names),
            "parameters": n_params,
            "weight_files": weight_files,
            "copied_files": copied,
            "seconds": round(time.time() - t0, 3),
            "config": dataclasses.asdict(cfg),
        }
        text = json.dumps(summary, indent=2)
        summary = json.loads(text)  # what is returned is what merge.json says (tuples become lists)
        (tmp / "merge.json").write_text(text + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["output"] = str(out)
    log(f"wrote {out} in {summary['seconds']:.1f}s: " + "; ".join(
        f"{Path(m['path']).name} weight {m['weight']:g}" + (
            f", delta sparsity {m['sparsity']:.3f}, kept {m['kept_fraction']:.3f}" if m["sparsity"] is not None else "")
        for m in summary["models"]))
    return summary


def _record(st: dict, raw: torch.Tensor, kept: torch.Tensor, threshold: float):
    st["entries"] += raw.numel()
    st["nonzero"] += int((raw.abs() > threshold).sum())
    st["kept"] += int((kept != 0).sum())
    st["l1"] += float(raw.abs().sum())


def _check_same_integers(name, stored, inputs, lookups) -> torch.Tensor:
    # integer tensors (position ids, masks) are not merged: every full model must agree with the reference
    for src, lookup in zip(inputs, lookups):
        if lookup is not None and not torch.equal(src.tensor(lookup[name]), stored):
            raise ModelLoadError(f"{src.name}: integer tensor {name} differs from the base's; it cannot be averaged")
    return stored


def _model_entry(src, weight: float, s: dict, has_base: bool) -> dict:
    entry = {"path": str(src.path), "kind": src.kind, "weight": weight,
             "sparsity": None, "kept_fraction": None, "delta_l1": None}
    if has_base and s["entries"]:
        entry.update(sparsity=round(1 - s["nonzero"] / s["entries"], 6),
                     kept_fraction=round(s["kept"] / s["entries"], 6), delta_l1=s["l1"])
    if isinstance(src, LoraAdapter):
        entry["adapter_base"] = src.config.get("base_model_name_or_path")
    return entry


def _replace(tmp: Path, out: Path):
    """Move the finished folder into place: an existing (empty, or --overwrite) output is renamed aside
    first and deleted only once the new one is in place."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
