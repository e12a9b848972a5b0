"""The engine: optimiser, schedule, exact gradient accumulation, clipping, non-finite guards,
atomic checkpoints, signals, and metric logging, on `accelerate` (DDP, FSDP2 and DeepSpeed ZeRO-2/3
come from it; the FSDP-specific state-dict handling is in sharding.py, DeepSpeed's step and
checkpoints in zero.py).

It holds no method-specific code. A loop hands it the micro-batches of one optimizer step and a
`compute(micro_batch) -> LossOutput`; the engine makes the step equal to one big batch:
    loss = sum_i loss_i / sum_i weight_i   over every example of every micro-batch and process.
Each micro-batch backpropagates its unnormalised sum, and the gradients are divided by the global
weight once at the end, so accumulation and multi-process runs give the same update as one batch.
A weight-space regulariser (`--l1-delta`: `DeltaL1`) joins the step after that normalisation, once per
optimizer step, whatever the number of micro-batches or processes.
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
from ..models.loading import unwrap
from . import sharding, zero
from .config import TrainConfig


class TrainingStopped(AlignkitError):
    """Too many non-finite steps in a row; the message names the last good checkpoint."""


def check_supported(acc) -> None:
    """DDP, FSDP2 and DeepSpeed run; Megatron-LM is refused (FSDP and DeepSpeed set-ups are checked by
    `make_accelerator`)."""
    name = str(acc.distributed_type).split(".")[-1]
    if name == "MEGATRON_LM":
        raise ConfigError("Megatron-LM is not supported by alignkit's engine; see docs/distributed.md")
    if name == "FSDP" and not acc.is_fsdp2:
        raise ConfigError("FSDP version 1 is not supported: set `fsdp_version: 2`; see docs/distributed.md")


def make_accelerator(mixed_precision: str = "no", fsdp_ok: bool = False, lora: bool = False):
    """The run's Accelerator. Launched with several processes (torchrun, `accelerate launch
    --multi_gpu`) on a machine without CUDA, it runs DDP on CPU over gloo: accelerate only does
    that when told `cpu=True`, and its `--cpu` launcher starts a single process. An FSDP launch
    (`distributed_type: FSDP`) runs FSDP2, and a DeepSpeed launch ZeRO-2/3, where the loop allows
    sharded training (`fsdp_ok`; see sharding.py and zero.py), on CPUs too (gloo)."""
    from accelerate import Accelerator
    sharding.check_fsdp_request(fsdp_ok, lora)
    zero.check_deepspeed_request(fsdp_ok, lora)
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if zero.deepspeed_requested():  # accelerate's own DeepSpeed path; on CPUs over gloo
        acc = Accelerator(mixed_precision=mixed_precision, kwargs_handlers=zero.accelerator_kwargs())
        check_supported(acc)
        return acc
    on_cpu = launched and not torch.cuda.is_available()
    from accelerate.state import AcceleratorState
    earlier = AcceleratorState._shared_state.get("_mixed_precision")
    if not launched and earlier is not None and earlier != mixed_precision:
        # an earlier run in this process (the Python API, quickstart's stages) used another precision:
        # accelerate keeps one per process, so start its state again (the process group is untouched)
        AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision=mixed_precision, cpu=on_cpu)
    if on_cpu and sharding.fsdp_requested():
        sharding.enable_fsdp_on_cpu(acc, mixed_precision)
    check_supported(acc)
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


REPORTERS = {"tensorboard": ("torch.utils.tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_reporter(report_to: str) -> None:
    """ConfigError naming the extra to install when --report-to names a logger that is not installed."""
    if report_to not in REPORTERS:
        return
    try:
        if report_to == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (needs the tensorboard package)
        else:
            import wandb  # noqa: F401
    except ImportError:
        raise ConfigError(f"--report-to {report_to}: {REPORTERS[report_to][1]} is not installed; "
                          f"pip install 'alignkit[{report_to}]' (or --report-to none: metrics.jsonl only)")


class MetricLog:
    """metrics.jsonl in the output folder (+ TensorBoard / W&B when asked for; `check_reporter` refuses
    one that is not installed)."""

    def __init__(self, out_dir: Path, report_to: str = "none", enabled: bool = True, config: dict | None = None):
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.tb = self.wandb = None
        if not enabled:
            return
        check_reporter(report_to)
        if report_to == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(out_dir / "tensorboard"))
        elif report_to == "wandb":
            import wandb
            self.wandb = wandb.init(project="alignkit", config=config or {}, dir=str(out_dir))

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
            self.tb.flush()  # on disk as each row is, as metrics.jsonl (the writer's own flush is every 2 minutes)
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


class DeltaL1:
    """The L1 penalty on the weight delta, lambda * ||theta - theta_0||_1 over the trainable parameters
    (PAFT: Pentyala et al. 2024, arXiv 2406.17923, sec. 3: the preference run's objective is
    L_pref(theta) + lambda * ||theta - theta_0||_1, which keeps its delta sparse so that it merges with
    the SFT run's delta with little interference).

    The penalty depends on the weights only, not on the data, so it belongs to the optimizer step, not to a
    micro-batch: the engine normalises the data gradients to sum_i grad loss_i / sum_i w_i and then adds
    the penalty's (sub)gradient lambda * sign(theta - theta_0) (0 where theta = theta_0) exactly once, on
    every process alike (DDP keeps the parameters identical, so no reduction is needed). theta_0 is a copy
    of the trainable parameters when the engine is built, before a resumed run loads its checkpoint: the
    starting model's weights (under LoRA, the adapters' initial values). Memory: one more copy of the
    trainable weights."""

    def __init__(self, params: list, lam: float, threshold: float):
        self.lam, self.threshold = float(lam), float(threshold)
        self.pairs = [(p, p.detach().clone()) for p in params]

    @torch.no_grad()
    def add_grad(self) -> float:
        """grad += lambda * sign(theta - theta_0) for every parameter -> ||theta - theta_0||_1 (at the
        weights the gradient is taken at, before the update)."""
        norm = torch.zeros((), dtype=torch.float64)
        for p, p0 in self.pairs:
            d = p.detach() - p0
            norm += d.abs().sum().double().cpu()
            g = torch.sign(d).mul_(self.lam)
            if p.grad is None:
                p.grad = g.to(p.dtype)
            else:
                p.grad.add_(g)
        return float(norm)

    @torch.no_grad()
    def report(self) -> dict:
        """{l1_delta: ||theta - theta_0||_1, delta_sparsity: share of entries with |delta| <= threshold}."""
        norm, small, total = 0.0, 0, 0
        for p, p0 in self.pairs:
            d = (p.detach() - p0).abs()
            norm += float(d.sum())
            small += int((d <= self.threshold).sum())
            total += d.numel()
        return {"l1_delta": norm, "delta_sparsity": small / max(total, 1)}


class Engine:
    def __init__(self, model, cfg: TrainConfig, out_dir: str | Path, total_steps: int,
                 extra_params: list | None = None, accelerator=None):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.acc = accelerator or make_accelerator("no")
        check_supported(self.acc)
        self.sharded = sharding.is_fsdp(self.acc)
        self.deepspeed = zero.is_deepspeed(self.acc)
        # --dtype fp16: accelerate's GradScaler multiplies the loss by S before backward (precision.py)
        self.fp16 = getattr(self.acc, "scaler", None) is not None and not self.deepspeed
        self.total_steps = total_steps
        self.extra_params = list(extra_params or [])
        if self.deepspeed and self.extra_params:
            raise ConfigError("DeepSpeed runs losses without parameters outside the model (a value head) only: "
                              "DeepSpeed clips and steps the model's parameters alone; run this loss with DDP "
                              "or FSDP; see docs/distributed.md")
        params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                     betas=(cfg.adam_beta1, cfg.adam_beta2),
                                     **self._fused_kwargs(params + self.extra_params))
        warmup = cfg.warmup_steps or int(cfg.warmup_ratio * total_steps)
        if self.deepspeed:
            # the schedule acts on AdamW's param groups, which ZeRO keeps (with its flat partitions in them)
            zero.configure(self.acc, cfg)
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg.lr_scheduler, warmup, total_steps))
        self.model, self.opt = self.acc.prepare(model, self.opt)
        if self.extra_params:
            # FSDP swaps the model's parameters for shards inside prepare and maps the optimizer's by
            # identity: parameters outside the model (a value head) join after, in a group of their
            # own (in every mode, so that checkpoints resume across modes)
            self.opt.optimizer.add_param_group({"params": self.extra_params})
        if not self.deepspeed:
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt.optimizer,
                                                           lr_lambda(cfg.lr_scheduler, warmup, total_steps))
        # the parameters the optimizer steps (prepare may have replaced the module's own)
        self.params = [p for group in self.opt.param_groups for p in group["params"]]
        self.delta_l1: DeltaL1 | None = None
        if cfg.l1_delta > 0:
            if self.sharded or self.deepspeed:
                raise ConfigError("--l1-delta runs on one process or DDP only (FSDP and DeepSpeed shard the "
                                  "weights the penalty compares with their start)")
            extra = {id(p) for p in self.extra_params}  # a value head is not part of the model's delta
            self.delta_l1 = DeltaL1([p for p in self.params if id(p) not in extra], cfg.l1_delta,
                                    cfg.delta_threshold or cfg.learning_rate)
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


    def _keep_optimizer_kernel(self):
        """A loaded optimizer state brings the saving run's fused/foreach flags into the param groups;
        this run keeps its own (a checkpoint may come from FSDP, which does not fuse, or the reverse)."""
        defaults = self.opt.optimizer.defaults
        for group in self.opt.param_groups:
            group["fused"], group["foreach"] = defaults.get("fused"), defaults.get("foreach")
            if defaults.get("fused"):  # the fused kernel keeps `step` as a float tensor beside its parameter
                for p in group["params"]:
                    st = self.opt.state.get(p, {})
                    if torch.is_tensor(st.get("step")):
                        st["step"] = st["step"].to(device=p.device, dtype=torch.float32)

    def _fused_kwargs(self, params: list) -> dict:
        """{"fused": True} when torch's fused AdamW applies: every parameter a float tensor on CPU or
        CUDA, and no FSDP or DeepSpeed (they shard or wrap the optimizer themselves)."""
        if not self.cfg.fused_adamw or self.sharded or self.deepspeed or not params:
            return {}
        ok = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.bfloat16, torch.float16)
                 for p in params)
        return {"fused": True} if ok else {}
    def restore_signal_handlers(self):
        """Put back what was there before (the caller may be a long-lived process, e.g. pytest)."""
        for s, old in getattr(self, "_old_handlers", {}).items():
            signal.signal(s, old)
        self._old_handlers = {}

    # --- one optimizer step ------------------------------------------------------------------
    def reduce_step_stats(self, total_w, loss_sum, parts: list) -> tuple:
        """One all-reduce of this process's weight and loss sums, metric sums and counts, and stop
        flag -> (global weight, global loss sum, global metric means); sets `stop_requested` on every
        process at once (a signal may reach one process a step later than another)."""
        sums, counts = _metric_sums(parts)
        keys = sorted(sums)
        flag = float(self.signal_received or self.stop_requested)
        stats = torch.tensor([float(total_w), float(loss_sum), flag] + [sums[k] for k in keys]
                             + [float(counts[k]) for k in keys], dtype=torch.float64)
        stats = self.acc.reduce(stats.to(self.acc.device), reduction="sum").cpu().tolist()
        if stats[2] > 0:
            self.stop_requested = True
        n = len(keys)
        metrics = {k: s / max(c, 1) for k, s, c in zip(keys, stats[3: 3 + n], stats[3 + n:])}
        return stats[0], stats[1], metrics

    def count_nonfinite(self, metrics: dict) -> dict:
        """A skipped step: count it; stop after `max_nonfinite` in a row."""
        self.nonfinite_in_row += 1
        self.nonfinite_total += 1
        metrics["skipped_nonfinite"] = self.nonfinite_total
        if self.nonfinite_in_row >= self.cfg.max_nonfinite:
            where = self.last_checkpoint or "none written yet"
            raise TrainingStopped(
                f"stopped at step {self.step}: {self.nonfinite_in_row} non-finite losses or gradients in a row "
                f"(each was skipped); last good checkpoint: {where}. Lower the learning rate or check the data.")
        return metrics

    def optimizer_step(self, micro_batches: list, compute) -> dict:
        """Forward/backward every micro-batch, normalise by the global weight, clip, step.
        Returns the step's metrics (floats). A non-finite loss or gradient skips the update."""
        if self.deepspeed:
            return zero.optimizer_step(self, micro_batches, compute)
        model = self.model
        total_w = torch.zeros((), dtype=torch.float64)
        loss_sum = torch.zeros((), dtype=torch.float64)
        parts = []
        for i, mb in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            # FSDP reduce-scatters every micro-batch into the sharded gradients (its no_sync would keep
            # whole unsharded gradients between micro-batches); the sum is the same
            sync_each = last or self.acc.num_processes == 1 or self.sharded
            ctx = nullcontext() if sync_each else self.acc.no_sync(model)
            with ctx:
                out = compute(mb)
                w = out.weight if out.weight is not None else torch.ones_like(out.loss)
                total = out.loss.sum()
                self.acc.backward(total)
            total_w += w.detach().double().sum().cpu()
            loss_sum += total.detach().double().cpu()
            parts.append(({"loss": out.loss.detach(), **out.metrics}, len(out.loss)))
        # global normaliser over processes: DDP (and FSDP's reduce-scatter) averages gradients, so
        # scale by world / W_global (on FSDP's shards as on whole gradients). The same reduction
        # carries the metrics and the stop flag: every process logs the global means and stops
        # after the same step.
        w_global, loss_global, metrics = self.reduce_step_stats(total_w, loss_sum, parts)
        if self.fp16:  # divide the loss scale S out first: the normalisation, clipping and the L1 term see true gradients
            self.acc.unscale_gradients()
        if self.acc.num_processes > 1:
            # parameters outside the DDP/FSDP module (a value head) get no all-reduce: average
            # their gradients here the way DDP does for the module's own
            for p in self.extra_params:
                if p.grad is not None:
                    p.grad.copy_(self.acc.reduce(p.grad, reduction="mean"))
        scale = self.acc.num_processes / max(w_global, 1e-12)
        for p in self.params:
            if p.grad is not None:
                p.grad.mul_(scale)
        l1_norm = None
        if self.delta_l1 is not None:  # once per optimizer step, after the data gradients are normalised
            l1_norm = self.delta_l1.add_grad()
            metrics.update(l1_delta=l1_norm, l1_penalty=self.delta_l1.lam * l1_norm)
            if (self.step + 1) % max(1, self.cfg.log_every) == 0 or self.step + 1 >= self.total_steps:
                metrics["delta_sparsity"] = self.delta_l1.report()["delta_sparsity"]
        grad_norm = torch.tensor(0.0)
        if self.cfg.max_grad_norm > 0 and self.fp16:  # unscaled already: accelerate's clip would unscale twice
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        elif self.cfg.max_grad_norm > 0:
            grad_norm = self.acc.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        elif self.sharded:  # the norm over all shards; an infinite bound scales by 1
            grad_norm = self.acc.clip_grad_norm_(self.params, float("inf"))
        else:
            norms = [p.grad.detach().float().norm() for p in self.params if p.grad is not None]
            grad_norm = torch.stack(norms).norm() if norms else grad_norm
        grad_norm = sharding.full_tensor(grad_norm)
        loss_value = loss_global / max(w_global, 1e-12)
        metrics.update(loss=loss_value, grad_norm=float(grad_norm), lr=self.sched.get_last_lr()[0])
        if self.fp16 and math.isfinite(loss_value) and not math.isfinite(float(grad_norm)):
            # an fp16 overflow of the scaled gradients: the scaler skips this update and lowers S
            # (Micikevicius et al. 2018, sec. 3.2); not a failure, and no step is counted
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            metrics["fp16_overflow"] = 1.0
            return metrics
        if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))
                and (l1_norm is None or math.isfinite(l1_norm))):
            self.opt.zero_grad(set_to_none=True)
            return self.count_nonfinite(metrics)
        self.nonfinite_in_row = 0
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        return metrics

    # --- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, save_model_fn, extra_state: dict) -> Path | None:
        """Atomically write checkpoints/step-N (temporary name, then rename); keep the newest few.
        Called on every process; `save_model_fn(folder)` runs on the main one (under FSDP or
        DeepSpeed, pass it weights gathered beforehand with `trainable_state`). Under DeepSpeed every
        process also writes its ZeRO partitions into the temporary folder (step-N/deepspeed), which
        needs an output folder every process can write (one filesystem)."""
        self.acc.wait_for_everyone()
        # under FSDP the optimizer's moments are shards: gather them whole (every process takes part)
        opt_state = sharding.full_optimizer_state(self.opt) if self.sharded else None
        ckdir = self.out / "checkpoints"
        final = ckdir / f"step-{self.step:08d}"
        tmp = ckdir / f".tmp-step-{self.step:08d}"
        if self.acc.is_main_process:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        if self.deepspeed:  # ZeRO's optimizer partitions: DeepSpeed's format, every process writes its own
            zero.save_state(self, tmp)
        if self.acc.is_main_process:
            save_model_fn(tmp)
            optimizer = None if self.deepspeed else self.opt.state_dict() if opt_state is None else opt_state
            torch.save({"optimizer": optimizer,
                        "scheduler": self.sched.state_dict(), "rng": torch.get_rng_state(),
                        "extra_params": [p.detach().cpu() for p in self.extra_params]},
                       tmp / "trainer_state.pt")
            state = {"step": self.step, "nonfinite_total": self.nonfinite_total, **extra_state}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
            for f in tmp.rglob("*"):  # on disk before the rename makes the checkpoint visible
                if f.is_file():
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

    def trainable_state(self) -> dict:
        """{name: full CPU tensor} of the model's trainable parameters, on the main process ({} on
        the others). Under FSDP it gathers the shards, so every process must call it."""
        if self.sharded or self.deepspeed:
            names = [n for n, p in unwrap(self.model).named_parameters() if p.requires_grad]
            full = sharding.full_model_state(self.acc, self.model) or {}  # ZeRO-3: None off the main process
            return {n: full[n].contiguous() for n in names if n in full}
        if not self.acc.is_main_process:
            return {}
        return {n: p.detach().cpu().contiguous() for n, p in unwrap(self.model).named_parameters()
                if p.requires_grad}

    def full_model_state(self) -> dict | None:
        """Under FSDP or DeepSpeed: the whole model's weights gathered (collective; full on the main
        process); otherwise None (the model on the main process is whole already)."""
        return sharding.full_model_state(self.acc, self.model) if self.sharded or self.deepspeed else None

    def load_trainable_state(self, weights: dict) -> None:
        """Load full tensors of (some of) the model's parameters; under FSDP each process keeps its shard.
        Under DeepSpeed the weights come with DeepSpeed's own checkpoint (`load_trainer_state`)."""
        if self.deepspeed:
            return
        if self.sharded:
            sharding.load_full_weights(self.model, weights)
        else:
            unwrap(self.model).load_state_dict(weights, strict=False)

    @staticmethod
    def newest_checkpoint(out_dir: str | Path) -> Path | None:
        cks = sorted((Path(out_dir) / "checkpoints").glob("step-*"))
        cks = [c for c in cks if (c / "state.json").is_file()]
        return cks[-1] if cks else None

    def load_trainer_state(self, ckpt: Path) -> dict:
        # Our own checkpoint; weights_only=True refuses anything but tensors and plain containers.
        blob = torch.load(ckpt / "trainer_state.pt", weights_only=True)
        if self.deepspeed:
            zero.load_state(self, ckpt)  # weights and ZeRO optimizer partitions
        elif blob["optimizer"] is None:
            raise ConfigError(f"{ckpt} was written under DeepSpeed (its optimizer state is in DeepSpeed's format): "
                              "resume it under DeepSpeed with as many processes; see docs/distributed.md")
        elif self.sharded:
            sharding.load_full_optimizer_state(self.opt, blob["optimizer"])
        else:
            self.opt.load_state_dict(blob["optimizer"])
        if not self.deepspeed:
            self._keep_optimizer_kernel()
        self.sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"])
        for p, v in zip(self.extra_params, blob.get("extra_params", [])):
            p.data.copy_(v)
        state = json.loads((ckpt / "state.json").read_text())
        self.step = state["step"]
        self.nonfinite_total = state.get("nonfinite_total", 0)
        self.last_checkpoint = ckpt
        return state
