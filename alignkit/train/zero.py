"""DeepSpeed ZeRO (stages 2 and 3) under `accelerate launch`: the checks before a run starts, the
DeepSpeed config alignkit owns, and the engine's optimizer step and checkpoints on DeepSpeed's
public API (`DeepSpeedEngine.backward / step / get_global_grad_norm / save_checkpoint /
load_checkpoint`), without touching DeepSpeed's private state.

Exact normalisation. alignkit's step is loss = sum_i loss_i / sum_i weight_i over every example of
every micro-batch and process. DeepSpeed's `backward(L)` accumulates grad(L) / gradient_accumulation
_steps into ZeRO's partitioned buffers, averaged over the G processes; nothing may touch those
gradients between the last backward and the optimizer step, so the global weight W must be known
*before* the first backward. The step therefore runs every micro-batch's forward first (keeping
their graphs), all-reduces W (with the loss sum, the metrics and the stop flag), then backpropagates
    L_i = sum(loss_i) * grad_accum * G / W
for each micro-batch; the accumulated, averaged gradient is exactly sum_i grad(sum(loss_i)) / W.
Cost: the activations of all `--grad-accum` micro-batches are held at once (as one micro-batch of
batch_size x grad_accum examples would hold them); with --grad-accum 1 there is no extra memory.

Clipping is DeepSpeed's (`gradient_clipping` = --max-grad-norm, over the global norm). Non-finite:
a non-finite global loss skips the backwards entirely (every process sees the same all-reduced
loss); a non-finite gradient makes DeepSpeed's ZeRO step skip itself (its overflow check; the
learning-rate schedule does not advance), which the engine sees as a non-finite global gradient
norm. Both are counted like the engine's own skips.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager

import torch

from ..errors import ConfigError
from .sharding import env_flag

DOC = "docs/distributed.md"
DS_DIR = "deepspeed"  # DeepSpeed's own checkpoint, inside alignkit's step-N folder
DS_TAG = "state"


def deepspeed_requested() -> bool:
    """What `accelerate launch` sets for a config with `distributed_type: DEEPSPEED`."""
    return env_flag("ACCELERATE_USE_DEEPSPEED")


def check_deepspeed_request(ok: bool, lora: bool = False) -> None:
    """Refuse, before any work is done, the DeepSpeed set-ups alignkit does not run."""
    if not deepspeed_requested():
        return
    if not ok:
        raise ConfigError("DeepSpeed is supported for offline training (`alignkit train <loss>`) only; this command "
                          f"runs with DDP (configs/accelerate/ddp_gpu.yaml); see {DOC}")
    if lora:
        raise ConfigError(f"DeepSpeed with LoRA (--lora-r) is not supported; LoRA runs with DDP (configs/accelerate/"
                          f"ddp_gpu.yaml); see {DOC}")
    stage = int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))
    if stage not in (2, 3) and os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none") == "none":
        raise ConfigError(f"DeepSpeed ZeRO stage {stage} is not supported: set `zero_stage: 2` or `3`; see {DOC}")
    try:
        import deepspeed  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"the accelerate config asks for DeepSpeed, which is not installed ({e}): "
                          f"pip install 'alignkit[deepspeed]'; see {DOC}") from None


def accelerator_kwargs() -> list:
    """On a machine without CUDA, DeepSpeed's process group must be gloo (accelerate would ask for NCCL)."""
    if torch.cuda.is_available():
        return []
    from accelerate.utils import InitProcessGroupKwargs
    return [InitProcessGroupKwargs(backend="gloo")]


def is_deepspeed(acc) -> bool:
    return str(acc.distributed_type).split(".")[-1] == "DEEPSPEED"


@contextmanager
def whole_model_loading(acc):
    """Under ZeRO-3, accelerate registers its DeepSpeed config with transformers, which then builds
    every model it loads inside DeepSpeed's `zero.Init` (partitioned, unusable outside a DeepSpeed
    engine). alignkit loads whole models (the policy is partitioned by `prepare`; a reference model
    stays whole for its passes), so the registration is lifted while loading."""
    if not is_deepspeed(acc) or zero_stage(acc) != 3:
        yield
        return
    from transformers.integrations import unset_hf_deepspeed_config
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        acc.state.deepspeed_plugin.set_deepspeed_weakref()


def configure(acc, cfg) -> None:
    """The DeepSpeed config keys alignkit owns, set from the run config (whatever the accelerate config
    says): micro-batch, accumulation and clipping define the step; ZeRO-3 gathers whole weights to save."""
    plugin = acc.state.deepspeed_plugin
    ds = plugin.deepspeed_config
    stage = zero_stage(acc)
    if stage not in (2, 3):
        raise ConfigError(f"DeepSpeed ZeRO stage {stage} is not supported: set `zero_optimization.stage` to 2 or 3; "
                          f"see {DOC}")
    for key in ("optimizer", "scheduler"):
        if key in ds:
            raise ConfigError(f"remove `{key}` from the DeepSpeed config: alignkit builds AdamW and its learning-rate "
                              f"schedule from the run config; see {DOC}")
    ds["train_micro_batch_size_per_gpu"] = cfg.batch_size
    ds["gradient_accumulation_steps"] = cfg.grad_accum
    ds["train_batch_size"] = cfg.batch_size * cfg.grad_accum * acc.num_processes
    ds["gradient_clipping"] = float(cfg.max_grad_norm)  # 0 disables it, as --max-grad-norm 0 does
    ds.setdefault("zero_optimization", {})["stage3_gather_16bit_weights_on_model_save"] = True
    if ds.get("bf16", {}).get("enabled") is True or acc.mixed_precision == "bf16":
        ds.setdefault("bf16", {})["check_grad_overflow"] = True  # skip non-finite steps in bf16 too
    acc.gradient_accumulation_steps = cfg.grad_accum  # no mismatch warning from accelerate


def optimizer_step(eng, micro_batches: list, compute) -> dict:
    """The engine's `optimizer_step` under DeepSpeed (see the module docstring). Returns float metrics."""
    ds = eng.model  # accelerate's prepare returns the DeepSpeedEngine
    # ZeRO-3 frees each layer's gathered weights after its forward, so a second forward before the
    # first backward corrupts the first graph's gradients (measured: a wrong gradient norm); there the
    # micro-batches run forward+backward one by one and the gradients are rescaled once at the end
    stream = len(micro_batches) > 1 and zero_stage(eng.acc) == 3
    outs, parts = [], []
    total_w = torch.zeros((), dtype=torch.float64)
    loss_sum = torch.zeros((), dtype=torch.float64)
    gas_world = len(micro_batches) * eng.acc.num_processes
    for i, mb in enumerate(micro_batches):  # forwards first (W is needed before any backward) unless `stream`
        out = compute(mb)
        w = out.weight if out.weight is not None else torch.ones_like(out.loss)
        total = out.loss.sum()
        total_w += w.detach().double().sum().cpu()
        loss_sum += total.detach().double().cpu()
        parts.append(({"loss": out.loss.detach(), **out.metrics}, len(out.loss)))
        if stream:  # accumulates sum_i grad(sum(loss_i)) over micro-batches and processes
            ds.backward(total * gas_world)
            if i < len(micro_batches) - 1:
                ds.step()  # no-op before the boundary
        else:
            outs.append(total)
    w_global, loss_global, metrics = eng.reduce_step_stats(total_w, loss_sum, parts)
    loss_value = loss_global / max(w_global, 1e-12)
    metrics.update(loss=loss_value, lr=eng.sched.get_last_lr()[0])
    if stream:
        # before the boundary step: divide ZeRO-3's local fp32 gradient partitions by the global
        # weight (a non-finite loss poisons them, so that ZeRO's overflow check skips the step)
        _scale_local_grads(ds.module, 1.0 / max(w_global, 1e-12) if math.isfinite(loss_value) else float("nan"))
        ds.step()
    elif not math.isfinite(loss_value):  # on every process alike: no backward, DeepSpeed never sees it
        del outs
        metrics["grad_norm"] = float("nan")
        return eng.count_nonfinite(metrics)
    else:
        scale = gas_world / max(w_global, 1e-12)
        for i, total in enumerate(outs):
            ds.backward(total * scale)
            outs[i] = None  # free this micro-batch's graph
            ds.step()  # a no-op before the accumulation boundary (DeepSpeed counts the micro-batches)
    norm = ds.get_global_grad_norm()
    norm = float(norm) if norm is not None else float("nan")
    metrics["grad_norm"] = norm
    if not math.isfinite(norm):  # ZeRO's overflow check skipped the update (and the schedule)
        return eng.count_nonfinite(metrics)
    eng.nonfinite_in_row = 0
    eng.sched.step()  # alignkit's schedule on the wrapped AdamW's param groups (DeepSpeed holds none)
    eng.step += 1
    return metrics


def zero_stage(acc) -> int:
    return int(acc.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {}).get("stage", 0))


def _scale_local_grads(module, factor: float) -> None:
    """Multiply this process's ZeRO-3 gradient partitions by `factor` (DeepSpeed's public API for
    gradients between backward and step)."""
    from deepspeed.utils import safe_get_local_grad, safe_set_local_grad
    for p in module.parameters():
        if p.requires_grad:
            g = safe_get_local_grad(p)
            if g is not None:
                safe_set_local_grad(p, g * factor)


def save_state(eng, tmp) -> None:
    """DeepSpeed's own checkpoint (every process writes its ZeRO partitions) under tmp/deepspeed.
    Collective; the main process has created `tmp` and renames it afterwards."""
    eng.acc.wait_for_everyone()
    eng.model.save_checkpoint(str(tmp / DS_DIR), tag=DS_TAG)
    eng.acc.wait_for_everyone()


def load_state(eng, ckpt) -> None:
    """Weights, ZeRO optimizer partitions, from a checkpoint written under DeepSpeed with as many processes."""
    folder = ckpt / DS_DIR
    if not (folder / DS_TAG).is_dir():
        raise ConfigError(f"{ckpt} was not written under DeepSpeed: a DeepSpeed run resumes only its own checkpoints "
                          f"(resume this one without DeepSpeed, or start a new --output); see {DOC}")
    written = len(list((folder / DS_TAG).glob("*optim_states.pt")))
    if written != eng.acc.num_processes:
        raise ConfigError(f"{ckpt} was written by {written} DeepSpeed processes: resume it with as many "
                          f"(--num_processes {written}); see {DOC}")
    path, _ = eng.model.load_checkpoint(str(folder), tag=DS_TAG, load_optimizer_states=True,
                                        load_lr_scheduler_states=False)
    if path is None:
        raise ConfigError(f"DeepSpeed could not load the checkpoint in {folder}; see {DOC}")

