"""FSDP (fully sharded data parallel) under `accelerate launch`: the checks before a run starts and
the state-dict plumbing the engine needs when parameters, gradients and optimizer states are shards.

alignkit supports FSDP2 (`fsdp_version: 2` in the accelerate config; torch's `fully_shard`). Every
process holds a shard (a DTensor) of each parameter, of its gradient and of AdamW's moments:
- the engine's exact normalisation (multiply every gradient by world / global weight) is a scalar
  multiply, which acts on each shard the same way as on a whole gradient;
- clipping goes through `accelerator.clip_grad_norm_`, which reduces the norm over shards;
- saving gathers full tensors collectively on every process (`accelerator.get_state_dict`), and
  only the main process writes them; resuming loads the full tensors and keeps each process's shard.
  Optimizer states are saved gathered too, so a run can resume on another number of processes.

accelerate only selects FSDP when it finds GPUs; on a machine without CUDA it would silently run
DDP. alignkit then switches the accelerator state to FSDP itself (`enable_fsdp_on_cpu`), so the
same accelerate code paths (prepare, clip_grad_norm_, get_state_dict) run over gloo; that is how
tests/test_reliability_fsdp.py runs FSDP on 2 CPU processes.
"""
from __future__ import annotations

import os

import torch

from ..errors import ConfigError

DOC = "docs/distributed.md"


def env_flag(name: str) -> bool:
    """An environment variable `accelerate launch` sets to true (1, true or yes)."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def fsdp_requested() -> bool:
    """What `accelerate launch` sets for a config with `distributed_type: FSDP`."""
    return env_flag("ACCELERATE_USE_FSDP")


def check_fsdp_request(fsdp_ok: bool, lora: bool = False) -> None:
    """Refuse, before any work is done, the FSDP set-ups alignkit does not run."""
    if not fsdp_requested():
        return
    if not fsdp_ok:
        raise ConfigError("FSDP is supported for offline training (`alignkit train <loss>`) only; this command "
                          f"runs with DDP (configs/accelerate/ddp_gpu.yaml) or LoRA; see {DOC}")
    version = os.environ.get("FSDP_VERSION", "1")
    if version != "2":
        raise ConfigError(f"FSDP version {version} is not supported: set `fsdp_version: 2` in the accelerate config "
                          f"(torch's fully_shard; see configs/accelerate/fsdp_gpu.yaml and {DOC})")
    if env_flag("FSDP_CPU_RAM_EFFICIENT_LOADING"):
        raise ConfigError("set `fsdp_cpu_ram_efficient_loading: false` in the accelerate config: alignkit loads the "
                          "whole model on every process before sharding it (it may sample from it or compute "
                          f"reference log-probs first); see {DOC}")
    if lora:
        raise ConfigError(f"FSDP with LoRA (--lora-r) is not supported; LoRA runs with DDP (configs/accelerate/"
                          f"ddp_gpu.yaml): the frozen base weights need no gradients or optimizer state; see {DOC}")


def enable_fsdp_on_cpu(acc, mixed_precision: str) -> None:
    """Turn a CPU multi-process (gloo) accelerator into an FSDP one: the plugin is read from the same
    FSDP_* variables accelerate reads on GPUs; accelerate's own FSDP code paths do the rest."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    plugin = FullyShardedDataParallelPlugin()
    if mixed_precision != "no":
        plugin.set_mixed_precision(mixed_precision)
    # both shared states: accelerate re-copies PartialState's into AcceleratorState whenever one is made
    PartialState().distributed_type = DistributedType.FSDP
    acc.state.distributed_type = DistributedType.FSDP
    acc.state.fsdp_plugin = plugin


def is_fsdp(acc) -> bool:
    return str(acc.distributed_type).split(".")[-1] == "FSDP"


def _shard_like(full: torch.Tensor, like):
    """This process's shard of a full tensor, laid out as the DTensor `like` (no communication)."""
    from torch.distributed.tensor import distribute_tensor
    return distribute_tensor(full.to(like.device, like.dtype), like.device_mesh, like.placements, src_data_rank=None)


def full_tensor(t):
    """A DTensor gathered whole (collective: every process must call it); other tensors as they are."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def full_optimizer_state(opt) -> dict:
    """The optimizer's state_dict with every sharded state gathered whole, on CPU. Collective: every
    process walks the states in the same (parameter index) order."""
    sd = opt.state_dict()  # its per-parameter dicts are the optimizer's own: build new ones
    sd["state"] = {idx: {k: full_tensor(v).detach().cpu() if torch.is_tensor(v) else v for k, v in st.items()}
                   for idx, st in sd["state"].items()}
    return sd


def load_full_optimizer_state(opt, sd: dict) -> None:
    """Inverse of `full_optimizer_state`: keep this process's shard of each full state."""
    params = [p for group in opt.param_groups for p in group["params"]]
    for idx, st in sd["state"].items():
        p = params[int(idx)]
        if not hasattr(p, "device_mesh"):
            continue
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step" and v.shape == p.shape:  # AdamW's exp_avg, exp_avg_sq
                st[k] = _shard_like(v, p)
    opt.load_state_dict(sd)


def full_model_state(acc, model) -> dict:
    """Every weight gathered whole (collective); the full dict is on the main process, {} elsewhere."""
    return acc.get_state_dict(model)


def load_full_weights(model, weights: dict) -> None:
    """Load full tensors (some or all of the model's) into a sharded model: each process keeps its shard."""
    params = dict(model.named_parameters())
    unknown = [k for k in weights if k not in params]
    if unknown:
        raise ConfigError(f"the checkpoint holds weights this model does not have ({', '.join(unknown[:3])}): "
                          "--resume with the model the run started from")
    with torch.no_grad():
        for name, full in weights.items():
            p = params[name]
            p.copy_(_shard_like(full, p) if hasattr(p, "device_mesh") else full.to(p.device, p.dtype))
