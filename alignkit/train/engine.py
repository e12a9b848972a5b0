"""The engine: optimiser, schedule, exact gradient accumulation, clipping, non-finite guards,
atomic checkpoints, signals, and metric logging, on `accelerate` (so DDP/FSDP/DeepSpeed come from it).

It holds no method-specific code. A loop hands it the micro-batches of one optimizer step and a
`compute(micro_batch) -> LossOutput`; the engine makes the step equal to one big batch:
    loss = sum_i loss_i / sum_i weight_i   over every example of every micro-batch and process.
Each micro-batch backpropagates its unnormalised sum, and the gradients are divided by the global
weight once at the end, so accumulation and multi-process runs give the same update as one batch.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from ..errors import AlignkitError, ConfigError
from .config import TrainConfig


class TrainingStopped(AlignkitError):
    """Too many non-finite steps in a row; the message names the last good checkpoint."""


SHARDED_UNSUPPORTED = (
    "{what} is not supported by alignkit's engine yet: it normalises each step's gradients by the global "
    "batch weight after backward and saves checkpoints from the main process, which {what}'s sharded "
    "gradients, parameters and optimizer states do not allow. Use DDP (configs/accelerate/ddp_gpu.yaml), "
    "with LoRA (--lora-r) for models that do not fit one device; see docs/distributed.md")


def check_supported(distributed_type) -> None:
    name = str(distributed_type).split(".")[-1]
    if name in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
        raise ConfigError(SHARDED_UNSUPPORTED.format(what={"FSDP": "FSDP", "DEEPSPEED": "DeepSpeed"}.get(name, name)))


def make_accelerator(mixed_precision: str = "no"):
    """The run's Accelerator. Launched with several processes (torchrun, `accelerate launch
    --multi_gpu`) on a machine without CUDA, it runs DDP on CPU over gloo: accelerate only does
    that when told `cpu=True`, and its `--cpu` launcher starts a single process."""
    from accelerate import Accelerator
    for var, what in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(var, "").lower() in ("1", "true"):  # before accelerate (silently) falls back on CPU
            raise ConfigError(SHARDED_UNSUPPORTED.format(what=what))
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    acc = Accelerator(mixed_precision=mixed_precision, cpu=launched and not torch.cuda.is_available())
    check_supported(acc.distributed_type)
    return acc


def lr_lambda(kind: str, warmup: int, total: int):
    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        progress = min(max(progress, 0.0), 1.0)
        if kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0 - progress  # linear decay to 0 at the last step
    return f


class MetricLog:
    """metrics.jsonl in the output folder (+ TensorBoard / W&B when asked for and installed)."""

    def __init__(self, out_dir: Path, report_to: str = "none", enabled: bool = True, config: dict | None = None):
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.tb = self.wandb = None
        if not enabled:
            return
        if report_to == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:
                print("note: tensorboard is not installed; logging to metrics.jsonl only")
        elif report_to == "wandb":
            try:
                import wandb
                self.wandb = wandb.init(project="alignkit", config=config or {}, dir=str(out_dir))
            except ImportError:
                print("note: wandb is not installed; logging to metrics.jsonl only")

    def truncate_after(self, step: int):
        """On resume: drop rows logged after the checkpoint's step (a killed run logged them and
        the resumed run logs them again) and a half-written last line."""
        if not self.enabled or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", 0) <= step:
                keep.append(line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, self.path)

    def write(self, step: int, split: str, metrics: dict):
        if not self.enabled:
            return
        row = {"step": step, "split": split, "time": round(time.time(), 3), **metrics}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{split}/{k}", v, step)
        if self.wandb is not None:
            self.wandb.log({f"{split}/{k}": v for k, v in metrics.items()}, step=step)


def _metric_sums(parts: list) -> tuple:
    """parts: list of (metrics dict of tensors, n examples) -> (sums, counts) per metric; the mean
    is sums / counts, weighted by example counts."""
    sums, counts = {}, {}
    for metrics, n in parts:
        for k, v in metrics.items():
            v = v.detach().float()
            if v.ndim == 0:
                sums[k] = sums.get(k, 0.0) + v.item() * n
                counts[k] = counts.get(k, 0) + n
            else:
                sums[k] = sums.get(k, 0.0) + v.sum().item()
                counts[k] = counts.get(k, 0) + v.numel()
    return sums, counts


class Engine:
    def __init__(self, model, cfg: TrainConfig, out_dir: str | Path, total_steps: int,
                 extra_params: list | None = None, accelerator=None):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.acc = accelerator or make_accelerator("no")
        check_supported(self.acc.distributed_type)
        self.total_steps = total_steps
        self.extra_params = list(extra_params or [])
        params = [p for p in model.parameters() if p.requires_grad] + self.extra_params
        self.opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                     betas=(cfg.adam_beta1, cfg.adam_beta2))
        warmup = cfg.warmup_steps or int(cfg.warmup_ratio * total_steps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg.lr_scheduler, warmup, total_steps))
        self.model, self.opt = self.acc.prepare(model, self.opt)
        # the parameters the optimizer steps (prepare may have replaced the module's own)
        self.params = [p for group in self.opt.param_groups for p in group["params"]]
        self.step = 0
        self.nonfinite_in_row = 0
        self.nonfinite_total = 0
        self.stop_requested = False  # set by optimizer_step on every process at once
        self.signal_received = False  # this process got SIGINT/SIGTERM
        self.last_checkpoint: Path | None = None

    # --- signals -----------------------------------------------------------------------------
    def install_signal_handlers(self):
        """SIGINT/SIGTERM finish the current step, save a checkpoint, and exit cleanly."""
        def handler(signum, frame):
            if self.signal_received:  # second signal: give up immediately
                raise KeyboardInterrupt
            self.signal_received = True
            print(f"\nsignal {signum}: saving a checkpoint after this step, then stopping")
        self._old_handlers = {}
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old_handlers[s] = signal.signal(s, handler)
            except ValueError:  # not in the main thread
                pass

    def restore_signal_handlers(self):
        """Put back what was there before (the caller may be a long-lived process, e.g. pytest)."""
        for s, old in getattr(self, "_old_handlers", {}).items():
            signal.signal(s, old)
        self._old_handlers = {}

    # --- one optimizer step ------------------------------------------------------------------
    def optimizer_step(self, micro_batches: list, compute) -> dict:
        """Forward/backward every micro-batch, normalise by the global weight, clip, step.
        Returns the step's metrics (floats). A non-finite loss or gradient skips the update."""
        model = self.model
        total_w = torch.zeros((), dtype=torch.float64)
        loss_sum = torch.zeros((), dtype=torch.float64)
        parts = []
        for i, mb in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            ctx = self.acc.no_sync(model) if (not last and self.acc.num_processes > 1) else nullcontext()
            with ctx:
                out = compute(mb)
                w = out.weight if out.weight is not None else torch.ones_like(out.loss)
                total = out.loss.sum()
                self.acc.backward(total)
            total_w += w.detach().double().sum().cpu()
            loss_sum += total.detach().double().cpu()
            parts.append(({"loss": out.loss.detach(), **out.metrics}, len(out.loss)))
        # global normaliser over processes: DDP averages gradients, so scale by world / W_global.
        # The same reduction carries the metrics' sums and counts, and the stop flag, so that every
        # process logs the global means and stops after the same step (a signal may reach one
        # process a step later than another).
        sums, counts = _metric_sums(parts)
        keys = sorted(sums)
        flag = float(self.signal_received or self.stop_requested)
        stats = torch.tensor([total_w.item(), loss_sum.item(), flag] + [sums[k] for k in keys]
                             + [float(counts[k]) for k in keys], dtype=torch.float64)
        stats = self.acc.reduce(stats.to(self.acc.device), reduction="sum").cpu().tolist()
        w_global, loss_global = stats[0], stats[1]
        if stats[2] > 0:
            self.stop_requested = True
        n = len(keys)
        metrics = {k: s / max(c, 1) for k, s, c in zip(keys, stats[3: 3 + n], stats[3 + n:])}
        if self.acc.num_processes > 1:
            # parameters outside the DDP module (a value head) get no all-reduce from DDP: average
            # their gradients here the way DDP does for the module's own
            for p in self.extra_params:
                if p.grad is not None:
                    p.grad.copy_(self.acc.reduce(p.grad, reduction="mean"))
        scale = self.acc.num_processes / max(w_global, 1e-12)
        for p in self.params:
            if p.grad is not None:
                p.grad.mul_(scale)
        grad_norm = torch.tensor(0.0)
        if self.cfg.max_grad_norm > 0:
            grad_norm = self.acc.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        else:
            norms = [p.grad.detach().float().norm() for p in self.params if p.grad is not None]
            grad_norm = torch.stack(norms).norm() if norms else grad_norm
        loss_value = loss_global / max(w_global, 1e-12)
        metrics.update(loss=loss_value, grad_norm=float(grad_norm), lr=self.sched.get_last_lr()[0])
        if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))):
            self.opt.zero_grad(set_to_none=True)
            self.nonfinite_in_row += 1
            self.nonfinite_total += 1
            metrics["skipped_nonfinite"] = self.nonfinite_total
            if self.nonfinite_in_row >= self.cfg.max_nonfinite:
                where = self.last_checkpoint or "none written yet"
                raise TrainingStopped(
                    f"stopped at step {self.step}: {self.nonfinite_in_row} non-finite losses or gradients in a row "
                    f"(each was skipped); last good checkpoint: {where}. Lower the learning rate or check the data.")
            return metrics
        self.nonfinite_in_row = 0
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        return metrics

    # --- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, save_model_fn, extra_state: dict) -> Path | None:
        """Atomically write checkpoints/step-N (temporary name, then rename); keep the newest few."""
        self.acc.wait_for_everyone()
        ckdir = self.out / "checkpoints"
        final = ckdir / f"step-{self.step:08d}"
        if self.acc.is_main_process:
            tmp = ckdir / f".tmp-step-{self.step:08d}"
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            save_model_fn(tmp)
            torch.save({"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                        "rng": torch.get_rng_state(),
                        "extra_params": [p.detach().cpu() for p in self.extra_params]},
                       tmp / "trainer_state.pt")
            state = {"step": self.step, "nonfinite_total": self.nonfinite_total, **extra_state}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            for f in tmp.iterdir():  # on disk before the rename makes the checkpoint visible
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for stale in ckdir.glob(".tmp-step-*"):  # left by a run killed while saving
                shutil.rmtree(stale, ignore_errors=True)
            if self.cfg.keep_checkpoints > 0:  # 0 keeps them all
                for old in sorted(ckdir.glob("step-*"))[: -self.cfg.keep_checkpoints]:
                    shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        self.last_checkpoint = final
        return final

    @staticmethod
    def newest_checkpoint(out_dir: str | Path) -> Path | None:
        cks = sorted((Path(out_dir) / "checkpoints").glob("step-*"))
        cks = [c for c in cks if (c / "state.json").is_file()]
        return cks[-1] if cks else None

    def load_trainer_state(self, ckpt: Path) -> dict:
        # Our own checkpoint; weights_only=True refuses anything but tensors and plain containers.
        blob = torch.load(ckpt / "trainer_state.pt", weights_only=True)
        self.opt.load_state_dict(blob["optimizer"])
        self.sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        for p, v in zip(self.extra_params, blob.get("extra_params", [])):
            p.data.copy_(v)
        state = json.loads((ckpt / "state.json").read_text())
        self.step = state["step"]
        self.nonfinite_total = state.get("nonfinite_total", 0)
        self.last_checkpoint = ckpt
        return state
