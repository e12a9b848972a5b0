"""The run's numeric formats: mixed precision (--dtype / --bf16) and a 4-bit base model (--load-in-4bit).

- bf16: autocast to bf16 for the forwards; fp32 master weights, optimizer state and losses. Runs
  wherever torch has bf16 kernels (CPU and CUDA).
- fp16: autocast to fp16 with a dynamic loss scaler (Micikevicius et al. 2018, "Mixed Precision
  Training", arXiv 1710.03740, sec. 3.2: the loss is multiplied by S before the backward pass so that
  small gradients survive in fp16, the gradients are divided by S before the update, and a step whose
  gradients overflow is skipped while S is lowered). accelerate's `mixed_precision="fp16"` brings
  torch's GradScaler; the engine unscales before it normalises and clips (engine.py). CUDA only: torch's
  CPU autocast has no fp16 matmul fast path, and the scaler is a CUDA feature.
- 4-bit (QLoRA: Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs", arXiv 2305.14314,
  sec. 3): the frozen base weights are stored as 4-bit NormalFloat with double quantization, matmuls
  run in the compute dtype (bf16), and only LoRA adapters train. Loaded through transformers'
  BitsAndBytesConfig; needs CUDA and bitsandbytes (`pip install bitsandbytes`), and --lora-r > 0
  (TrainConfig refuses it without).

`check_device` refuses what this machine cannot run, in one line, before any model is loaded.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError
from . import sharding, zero
from .config import TrainConfig


def mixed_precision(cfg: TrainConfig) -> str:
    """accelerate's mixed_precision for the run: "no", "bf16" or "fp16"."""
    if cfg.dtype == "fp16":
        return "fp16"
    return "bf16" if (cfg.bf16 or cfg.dtype == "bf16") else "no"


def autocast_dtype(cfg: TrainConfig):
    """The autocast dtype of forwards outside the prepared model (reference, sampling), or None."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision(cfg))


def _has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def check_device(cfg: TrainConfig, cuda_available: Callable[[], bool] = torch.cuda.is_available,
                 has_bitsandbytes: Callable[[], bool] = _has_bitsandbytes, sharded: bool | None = None) -> None:
    """ConfigError (one line naming the flag) for a precision this machine or launch cannot run:
    fp16 and 4-bit need CUDA; 4-bit needs bitsandbytes; fp16's loss scaler runs on one process or
    DDP, not under FSDP or DeepSpeed (`sharded`; None: as the launch asks), which bring their own."""
    if sharded is None:
        sharded = sharding.fsdp_requested() or zero.deepspeed_requested()
    if cfg.dtype == "fp16":
        if not cuda_available():
            raise ConfigError("--dtype fp16 needs CUDA (no CUDA device here); use --dtype bf16 or fp32 on CPU")
        if sharded:
            raise ConfigError("--dtype fp16 runs on one process or DDP; under FSDP or DeepSpeed use --dtype bf16")
    if cfg.load_in_4bit:
        if not cuda_available():
            raise ConfigError("--load-in-4bit needs CUDA (bitsandbytes' 4-bit kernels; no CUDA device here); "
                              "drop it, or use --lora-r alone on CPU")
        if not has_bitsandbytes():
            raise ConfigError("--load-in-4bit needs bitsandbytes: pip install bitsandbytes")
        if sharded:
            raise ConfigError("--load-in-4bit runs on one process or DDP, not under FSDP or DeepSpeed")


def quantization_config(cfg: TrainConfig):
    """transformers' BitsAndBytesConfig of QLoRA's 4-bit base (NF4, double quantization, bf16 compute;
    arXiv 2305.14314 sec. 3), or None without --load-in-4bit."""
    if not cfg.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def enable_checkpointing(model, lora: bool = False) -> None:
    """--gradient-checkpointing: keep only each block's input in the forward pass and recompute the block
    in the backward pass (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost", arXiv
    1604.06174): activation memory per block instead of per layer, for about one more forward; the
    gradients are the same. transformers' non-reentrant checkpointing; the KV cache is off while
    training (it would be dropped by the recomputation anyway). Under LoRA the frozen embeddings give
    no gradient, so their output is made to require one (`enable_input_require_grads`), as checkpointed
    blocks need a differentiable input."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(f"--gradient-checkpointing: {type(model).__name__} does not support gradient checkpointing")
    model.config.use_cache = False
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2's name for it
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora:
        model.enable_input_require_grads()
