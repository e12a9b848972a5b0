"""Loading policies, references and tokenizers from local Hugging Face folders.

A model argument is a folder, or a hub name (`gpt2`, `org/name[@rev]`) found in the local Hugging Face
cache (data/hub.py: HF_HUB_CACHE / HF_HOME, models--org--name/snapshots/<rev>); nothing is downloaded.

Weights load through safetensors only (`use_safetensors=True`): a folder with nothing but a pickled
`pytorch_model.bin` is refused rather than unpickled. `trust_remote_code` stays off unless asked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.hub import looks_like_repo_id, missing_model_message, resolve_model
from ..errors import ModelLoadError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
          "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def quiet_transformers():
    """No download attempts and no per-load progress bars: alignkit reads local folders only."""
    import os
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:
        pass


def check_model_folder(path: str) -> Path:
    """The local folder of a model argument (a hub name resolves to its cached snapshot)."""
    quiet_transformers()
    p = Path(resolve_model(str(path)))
    if not p.exists():
        raise ModelLoadError(missing_model_message(str(path)))
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"{path}: no config.json here; expected a Hugging Face model folder")
    return p


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer
    quiet_transformers()
    local = resolve_model(str(path))
    if not Path(local).is_dir():
        raise ModelLoadError(f"{path}: tokenizer folder not found (alignkit loads local folders only)"
                             if not looks_like_repo_id(str(path)) else missing_model_message(str(path)))
    try:
        tok = AutoTokenizer.from_pretrained(local, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: cannot load a tokenizer: {e}")
    if tok.pad_token_id is None:
        # Padding positions are masked out everywhere, so any id works; EOS is the usual choice.
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def load_causal_lm(path: str, dtype: str = "fp32", trust_remote_code: bool = False, quantization=None):
    """A causal LM from a local folder (or cached hub name). `quantization`: a transformers
    BitsAndBytesConfig (train/precision.py, --load-in-4bit); the model then loads onto the current CUDA
    device, where its 4-bit weights stay."""
    from transformers import AutoModelForCausalLM
    p = check_model_folder(path)
    if not any(p.glob("*.safetensors")):
        raise ModelLoadError(f"{path}: no .safetensors weights; alignkit refuses to unpickle .bin files "
                             "(convert them with transformers' save_pretrained(safe_serialization=True))")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(p), dtype=DTYPES[dtype], use_safetensors=True, trust_remote_code=trust_remote_code,
            **({} if quantization is None else {"quantization_config": quantization,
                                                "device_map": {"": torch.cuda.current_device()}}))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: cannot load a causal LM: {e}")
    model.config.use_cache = False  # training default; generation turns it back on
    return model


@dataclass(frozen=True)
class LoraSettings:
    r: int = 0
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def apply_lora(model, lora: LoraSettings, task_type: str = "CAUSAL_LM"):
    """Wrap with a peft LoRA adapter (r > 0). The base weights are frozen. task_type "SEQ_CLS" (reward
    models) makes peft train the new head too (`score`/`classifier` are its modules_to_save)."""
    from peft import LoraConfig, get_peft_model
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    targets = [t for t in lora.target_modules if t in names]
    if not targets:
        raise ModelLoadError(f"none of the LoRA target modules {lora.target_modules} exist in this model; "
                             f"pass --lora-target-modules with some of: {', '.join(sorted(names)[:30])}")
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                     target_modules=targets, task_type=task_type)
    return get_peft_model(model, cfg)


def unwrap(model):
    """The plain transformers model (peft merged view not applied)."""
    return getattr(model, "module", model)


def save_model(model, tokenizer, out_dir: str | Path, adapter_only: bool = False, state_dict: dict | None = None):
    """HF-format save. Under LoRA the adapter is merged into a copy unless `adapter_only`.
    `state_dict`: the full weights when the model's own are shards (FSDP; gathered by the caller with
    `Engine.full_model_state`; FSDP runs full fine-tuning, never LoRA); written in place of the
    model's parameters."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = unwrap(model)
    if state_dict is not None:
        # gathered tensors no longer share storage: alias tied weights again (an embedding shared with
        # lm_head) so that save_pretrained writes one of them, as it does for the unsharded model
        first = {}
        for name, p in m.named_parameters(remove_duplicate=False):
            if name in state_dict:
                state_dict[name] = state_dict[first.setdefault(id(p), name)]
        m.save_pretrained(out, state_dict=state_dict, safe_serialization=True)
    else:
        if hasattr(m, "peft_config") and not adapter_only:
            import copy
            m = copy.deepcopy(m).merge_and_unload()
        m.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
