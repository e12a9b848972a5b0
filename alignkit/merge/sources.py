"""Merge inputs read tensor by tensor: full Hugging Face model folders and PEFT LoRA adapters.

Weights are read with `safetensors.safe_open`, which maps the file and copies out one tensor per call,
so a merge holds one tensor per input at a time. Pickled weights (`.bin`, `.pt`) are refused, never
loaded. Every problem is a one-line `ModelLoadError` naming the folder (and the tensor).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from ..errors import ModelLoadError

INDEX = "model.safetensors.index.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def is_float_dtype(dtype: str) -> bool:
    # safetensors dtype codes: F16, BF16, F32, F64, F8_E4M3, ... vs I8, I64, U8, BOOL
    return dtype.startswith("F") or dtype.startswith("BF")


def _open(path: Path, owner: str):
    from safetensors import SafetensorError, safe_open
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as e:
        raise ModelLoadError(f"{owner}: cannot read {path.name}: {e}")


def _read_json(path: Path, owner: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{owner}: cannot read {path.name}: {e}")
    if not isinstance(data, dict):
        raise ModelLoadError(f"{owner}: {path.name} is not a JSON object")
    return data


def _refuse_pickle(p: Path, what: str):
    found = sorted(x.name for pat in PICKLED for x in p.glob(pat))
    hint = f" (found {', '.join(found[:3])}: alignkit refuses to unpickle weights; convert them with " \
           "save_pretrained(safe_serialization=True))" if found else ""
    raise ModelLoadError(f"{p}: no {what}{hint}")


class ModelFolder:
    """A full model folder: config.json plus model.safetensors, or shards listed in
    model.safetensors.index.json."""

    kind = "full"

    def __init__(self, path: str):
        p = Path(path)
        if not p.is_dir():
            raise ModelLoadError(f"{path}: model folder not found (merging reads local Hugging Face folders only)")
        self.path, self.name = p, str(path)
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{path}: no config.json here; expected a Hugging Face model folder")
        self.config = _read_json(p / "config.json", self.name)
        self._files: dict = {}  # tensor name -> shard path
        if (p / INDEX).is_file():
            weight_map = _read_json(p / INDEX, self.name).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ModelLoadError(f"{path}: {INDEX} has no weight_map")
            for shard in sorted(set(weight_map.values())):
                if not (p / shard).is_file():
                    raise ModelLoadError(f"{path}: shard {shard} listed in {INDEX} is missing")
            self._files = {k: p / v for k, v in weight_map.items()}
        else:
            # only the model's weights: a training run's folder also holds other safetensors files
            # (ref_logps.safetensors, value_head.safetensors) that are not model tensors
            shards = sorted(p.glob("model*.safetensors"))
            if not shards:
                _refuse_pickle(p, ".safetensors weights")
            for shard in shards:
                for k in _open(shard, self.name).keys():
                    if k in self._files:
                        raise ModelLoadError(f"{path}: tensor {k} is in both {self._files[k].name} and {shard.name}")
                    self._files[k] = shard
        self._handles: dict = {}
        self._meta: dict = {}

    def _handle(self, name: str):
        f = self._files[name]
        if f not in self._handles:
            self._handles[f] = _open(f, self.name)
        return self._handles[f]

    def names(self) -> list:
        return list(self._files)

    def meta(self, name: str) -> tuple:
        """(shape, safetensors dtype code) without reading the data."""
        if name not in self._meta:
            try:
                s = self._handle(name).get_slice(name)
            except Exception as e:  # a name in the index that its shard lacks
                raise ModelLoadError(f"{self.name}: tensor {name}: cannot read it from {self._files[name].name}: {e}")
            self._meta[name] = (tuple(s.get_shape()), s.get_dtype())
        return self._meta[name]

    def tensor(self, name: str) -> torch.Tensor:
        # A fresh handle per tensor: the copy outlives it and the mapping closes with it, so the input
        # files' pages do not pile up in this process's resident memory over a whole merge.
        return _open(self._files[name], self.name).get_tensor(name)

    def architecture(self) -> tuple:
        return tuple(self.config.get("architectures") or ()), self.config.get("model_type")


_LORA_KEY = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A|lora_B)\.weight$")
_LORA_EMB_KEY = re.compile(r"^(?P<module>.+)\.(?P<part>lora_embedding_A|lora_embedding_B)$")
_PREFIX = "base_model.model."
# adapter features whose delta is not (alpha/r) * B @ A on a base tensor: refused, not approximated
_UNSUPPORTED = {"use_dora": "DoRA", "use_qalora": "QA-LoRA", "lora_bias": "lora_bias",
                "layer_replication": "layer_replication", "target_parameters": "target_parameters",
                "trainable_token_indices": "trainable_token_indices"}


def _pattern_value(patterns: dict, module: str, default):
    """peft's rank_pattern / alpha_pattern lookup: a key matches a module whose name ends with it."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


class LoraAdapter:
    """A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors). Its delta on base
    tensor `M.weight` is scaling * B @ A for the adapted module M (Hu et al. 2021, arXiv 2106.09685,
    eq. 3: h = W0 x + (alpha/r) B A x), with scaling = alpha / r, or alpha / sqrt(r) under rsLoRA;
    transposed for Conv1D-style (fan_in_fan_out) and embedding layers, as peft's merge does. Tensors
    saved whole (modules_to_save, trained biases, an embedding's base_layer) replace the base's: their
    delta is value - base. Call `bind` with the base's tensor shapes before `delta`."""

    kind = "lora"

    def __init__(self, path: str):
        p = Path(path)
        self.path, self.name = p, str(path)
        self.config = _read_json(p / ADAPTER_CONFIG, self.name)
        peft_type = self.config.get("peft_type", "LORA")
        if peft_type != "LORA":
            raise ModelLoadError(f"{path}: a {peft_type} adapter; merging reads LoRA adapters only")
        for key, label in _UNSUPPORTED.items():
            if self.config.get(key):
                raise ModelLoadError(f"{path}: uses {label}, which merging does not support "
                                     "(merge it into its base with peft's merge_and_unload and pass that folder)")
        if not (p / ADAPTER_WEIGHTS).is_file():
            _refuse_pickle(p, ADAPTER_WEIGHTS)
        self._file = _open(p / ADAPTER_WEIGHTS, self.name)
        self.alpha = self.config.get("lora_alpha", 8)
        self.rslora = bool(self.config.get("use_rslora", False))
        self.fan_in_fan_out = bool(self.config.get("fan_in_fan_out", False))
        self._lora: dict = {}  # module -> {"A": key, "B": key, "embedding": bool}
        self._whole: dict = {}  # base tensor name -> adapter key
        for key in self._file.keys():
            rel = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
            m = _LORA_KEY.match(rel) or _LORA_EMB_KEY.match(rel)
            if m:
                part = m.group("part")
                entry = self._lora.setdefault(m.group("module"), {"embedding": part.startswith("lora_embedding")})
                entry[part[-1]] = key
            else:
                self._whole[rel.replace(".base_layer.", ".")] = key
        for module, entry in self._lora.items():
            if "A" not in entry or "B" not in entry:
                raise ModelLoadError(f"{path}: module {module} has only one of its lora_A / lora_B tensors")
        self._targets: dict = {}  # base tensor name -> [("lora", module) | ("whole", key)]

    def architecture(self) -> tuple:
        mapping = self.config.get("auto_mapping") or {}
        cls = mapping.get("base_model_class")
        return ((cls,) if cls else ()), None

    def _scaling(self, module: str, r: int) -> float:
        alpha = _pattern_value(self.config.get("alpha_pattern"), module, self.alpha)
        return alpha / math.sqrt(r) if self.rslora else alpha / r

    def bind(self, base_shapes: dict, canonical) -> None:
        """Map every adapter tensor onto a base tensor name and check shapes. `base_shapes`: name ->
        shape of the base's tensors; `canonical(name)`: the name a tied alias is stored under (or None
        when the base has no such tensor)."""
        for module, entry in self._lora.items():
            target = canonical(f"{module}.weight")
            if target is None:
                raise ModelLoadError(f"{self.name}: adapts module {module}, but the base has no tensor {module}.weight")
            a_shape = tuple(self._file.get_slice(entry["A"]).get_shape())
            b_shape = tuple(self._file.get_slice(entry["B"]).get_shape())
            if len(a_shape) != 2 or len(b_shape) != 2:
                raise ModelLoadError(f"{self.name}: module {module} is a convolution LoRA "
                                     f"(lora_A shape {list(a_shape)}); merging supports linear and embedding layers")
            rows, cols = b_shape[0], a_shape[1]
            if entry["embedding"] or self.fan_in_fan_out:
                rows, cols = cols, rows
            if a_shape[0] != b_shape[1] or (rows, cols) != tuple(base_shapes[target]):
                raise ModelLoadError(f"{self.name}: tensor {module}.weight: lora_B @ lora_A gives "
                                     f"{[rows, cols]}, the base's tensor has shape {list(base_shapes[target])}")
            self._targets.setdefault(target, []).append(("lora", module))
        for rel, key in self._whole.items():
            target = canonical(rel)
            if target is None:
                raise ModelLoadError(f"{self.name}: tensor {rel} is not in the base")
            shape = tuple(self._file.get_slice(key).get_shape())
            if shape != tuple(base_shapes[target]):
                raise ModelLoadError(f"{self.name}: tensor {rel} has shape {list(shape)}, "
                                     f"the base's has {list(base_shapes[target])}")
            self._targets.setdefault(target, []).append(("whole", key))

    def delta(self, name: str, base: torch.Tensor) -> torch.Tensor | None:
        """The adapter's delta on base tensor `name` in base's dtype (float32 upstream), or None where
        the adapter leaves it unchanged. Several contributions to one tensor (an embedding tied to the
        LM head, both adapted) add up, as merging them one after another into the base would."""
        parts = self._targets.get(name)
        if not parts:
            return None
        total = torch.zeros_like(base)
        for kind, ref in parts:
            if kind == "whole":
                total += self._file.get_tensor(ref).to(base.dtype) - base
                continue
            entry = self._lora[ref]
            a = self._file.get_tensor(entry["A"]).to(base.dtype)  # (r, in)
            b = self._file.get_tensor(entry["B"]).to(base.dtype)  # (out, r)
            d = (b @ a) * self._scaling(ref, a.shape[0])
            total += d.T if (entry["embedding"] or self.fan_in_fan_out) else d
        return total


def open_input(path: str):
    """A merge input: a LoRA adapter when the folder has adapter_config.json, else a full model."""
    p = Path(path)
    if not p.is_dir():
        raise ModelLoadError(f"{path}: model folder not found (merging reads local Hugging Face folders only)")
    if (p / ADAPTER_CONFIG).is_file():
        return LoraAdapter(path)
    return ModelFolder(path)


def tied_groups(folder: ModelFolder) -> list:
    """Names that share one parameter in the model (an input embedding tied to the LM head). Found by
    building the architecture on the meta device (no memory, no weights) and grouping
    `named_parameters(remove_duplicate=False)` by identity. An architecture transformers cannot build
    without remote code gives no groups: its tensor names must then match exactly."""
    import warnings
    from transformers import AutoConfig, AutoModelForCausalLM
    from ..models.loading import quiet_transformers
    quiet_transformers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = AutoConfig.from_pretrained(str(folder.path))
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config)
    except Exception:  # unknown or remote-code architecture: fall back to exact names
        return []
    groups: dict = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(param), []).append(name)
    return [names for names in groups.values() if len(names) > 1]
