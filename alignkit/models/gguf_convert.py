"""A GGUF file -> a Hugging Face safetensors folder that plain transformers loads.

transformers reads the GGUF (with the `gguf` package), de-quantises every weight to float32 and builds
the tokenizer and chat template from the file's metadata. The GGUF quantizer marker is dropped from
the config, so the saved folder reloads without `gguf_file=` or the `gguf` package. Before returning,
the folder is reloaded and checked against the in-memory model (same logits, same token ids).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AlignkitError


class GgufError(AlignkitError):
    """A GGUF file that cannot be read or converted (truncated, corrupted, unsupported)."""


@dataclass(frozen=True)
class GgufHeader:
    path: str
    architecture: str
    name: str  # general.name, "" when absent
    license: str  # general.license, "" when absent
    n_tensors: int
    n_elements: int  # all tensors' elements: float32 weights take 4 bytes each
    tensor_types: dict = field(default_factory=dict)  # GGML type name -> count
    has_chat_template: bool = False


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _field_str(reader, key: str) -> str:
    f = reader.fields.get(key)
    if f is None:
        return ""
    try:
        v = f.contents()
    except Exception:
        return ""
    return v if isinstance(v, str) else ""


def read_gguf_header(path: str | Path, label: str = "") -> GgufHeader:
    """Parse the header and map every tensor (a truncated or corrupted file fails here). Errors name
    `label` (default: the path)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise GgufError("reading GGUF files needs the `gguf` package: pip install gguf")
    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        raise GgufError(f"{label}: GGUF file not found")
    try:
        reader = GGUFReader(str(path))
        types, n = {}, 0
        for t in reader.tensors:
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
            n += int(t.n_elements)
        arch = _field_str(reader, "general.architecture")
        header = GgufHeader(str(path), arch, _field_str(reader, "general.name"),
                            _field_str(reader, "general.license"), len(reader.tensors), n, types,
                            "tokenizer.chat_template" in reader.fields)
    except (ValueError, IndexError, KeyError, TypeError, OSError, OverflowError) as e:
        raise GgufError(f"{label}: not a readable GGUF file, truncated or corrupted ({_first_line(e)})")
    if not arch:
        raise GgufError(f"{label}: GGUF file has no general.architecture; corrupted or not a model")
    if not header.n_tensors:
        raise GgufError(f"{label}: GGUF file holds no tensors")
    return header


def drop_quantizer(model) -> None:
    """Forget that the weights came from a GGUF: no quantizer, no `quantization_config` in config.json."""
    q = getattr(model, "hf_quantizer", None)
    if q is not None and hasattr(q, "remove_quantization_config"):
        q.remove_quantization_config(model)
    for obj, attr in ((model, "hf_quantizer"), (model.config, "quantization_config"), (model, "quantization_method")):
        if hasattr(obj, attr):
            delattr(obj, attr)
    model.is_quantized = False
    if hasattr(model.config, "_is_quantized"):
        model.config._is_quantized = False


def _check_dense_fp32(model, label: str) -> None:
    import torch
    packed = sorted({type(m).__name__ for m in model.modules() if "gguf" in type(m).__name__.lower()})
    if packed:
        raise GgufError(f"{label}: transformers kept packed GGUF modules ({', '.join(packed)}); "
                        "cannot save them as a plain model")
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
    if bad:
        raise GgufError(f"{label}: weight {bad[0]} is not float32 after de-quantisation")


def _probe_ids(tokenizer) -> list:
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = messages[0]["content"]
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, log=print, verify: bool = True,
                 label: str = "") -> dict:
    """Write `out_dir` (config.json, model.safetensors, tokenizer files, chat template). Returns facts
    for provenance. A problem with the file is a GgufError naming `label` (default: the path); an
    OSError while writing propagates."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    try:  # transformers 5 can keep GGUF blocks packed; ask for dense weights
        from transformers import GgufConfig
        dense = {"quantization_config": GgufConfig(dequantize=True)}
    except ImportError:  # transformers 4 always de-quantises
        dense = {}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gguf_path, out = Path(gguf_path), Path(out_dir)
    label = label or str(gguf_path)
    header = read_gguf_header(gguf_path, label)
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        model, loaded = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32, ignore_mismatched_sizes=True, output_loading_info=True,
            **dense)
    except (OSError, MemoryError):
        raise
    except Exception as e:  # transformers raises many types for a bad file; all mean "cannot convert"
        raise GgufError(f"{label}: transformers cannot load this GGUF as a causal LM ({_first_line(e)})")
    # transformers initialises absent or misshapen weights randomly and only warns: refuse instead
    for kind in ("missing_keys", "mismatched_keys"):
        keys = sorted(str(k[0] if isinstance(k, tuple) else k) for k in loaded.get(kind) or ())
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            what = "has no tensor for" if kind == "missing_keys" else "has a tensor of the wrong shape for"
            raise GgufError(f"{label}: GGUF {what} {keys[0]}{more}; truncated, corrupted or not this architecture")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (OSError, MemoryError):
        raise
    except Exception as e:
        raise GgufError(f"{label}: transformers cannot build a tokenizer from this GGUF ({_first_line(e)})")
    drop_quantizer(model)
    _check_dense_fp32(model, label)
    model.eval()
    # the config would otherwise record the temporary folder it was loaded from
    model.config._name_or_path = header.name or gguf_path.stem
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if any(out.glob("*.bin")) or not any(out.glob("*.safetensors")):
        raise GgufError(f"{label}: transformers did not save safetensors weights")
    n_params = sum(p.numel() for p in model.parameters())
    info = {"architecture": model.config.model_type, "model_class": type(model).__name__,
            "parameters": n_params, "dtype": "float32", "vocab_size": len(tokenizer),
            "gguf_name": header.name, "gguf_license": header.license, "gguf_tensor_types": header.tensor_types,
            "chat_template": bool(getattr(tokenizer, "chat_template", None))}
    if verify:
        log("reloading the saved folder to check its logits and tokenizer")
        ids = _probe_ids(tokenizer)
        with torch.no_grad():
            want = model(torch.tensor([ids])).logits
        del model
        verify_folder(out, ids, want, tokenizer, label)
    return info


def verify_folder(out: Path, ids: list, logits, tokenizer, label: str = "") -> None:
    """Reload `out` with plain transformers (safetensors only) and compare with the converted model."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    cfg = json.loads((out / "config.json").read_text())
    if "quantization_config" in cfg:
        raise GgufError(f"{label or out}: the saved config.json still holds a quantization_config")
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, use_safetensors=True)
    with torch.no_grad():
        got = model(torch.tensor([ids])).logits
    diff = (got - logits).abs().max().item()
    if not diff <= 1e-4:
        raise GgufError(f"{label or out}: the saved model's logits differ from the converted ones by {diff:.3g}")
    tok = AutoTokenizer.from_pretrained(out)
    if _probe_ids(tok) != ids or (tok.chat_template or None) != (tokenizer.chat_template or None):
        raise GgufError(f"{label or out}: the saved tokenizer does not reproduce the GGUF's token ids or chat template")
