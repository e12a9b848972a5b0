"""The run skeleton every trainer shares: resolve the configs, start, load, LoRA, engine, metrics,
resume, save, summary.

`alignkit train NAME` resolves a `Job` (the method, its run config and method config, and for a
composite recipe its inner loss) and calls `job.method.run(job)`. Each trainer (the offline loop,
reward models, online RL) builds a `Run`, which owns the parts that do not depend on the method:

    run = Run(job.cfg, job.output, job.log)          # output folder, accelerator, threads, seed
    model = run.lora(load(...))                       # --lora-r
    engine = run.engine(model, total_steps)           # optimiser, scheduler, checkpoints, metrics.jsonl
    first_eval = run.resume(run_config, restore_extra)  # --resume, config.yaml
    ... steps ...
    run.save_checkpoint(extra_state)                  # trainable weights + trainer state
    return run.finish(summary, save_model)            # final model and summary.json on the main process
"""
from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..config import build_config, keys_of, to_dict
from ..errors import ConfigError
from ..method import Method
from ..models.threads import set_threads
from .config import TrainConfig
from .engine import Engine, MetricLog, check_reporter, make_accelerator
from .precision import autocast_dtype, check_device, enable_checkpointing, mixed_precision
from .record import check_output, check_resumable, run_record, stage_record, write_run_config


@dataclass
class Job:
    """A resolved `alignkit train` call."""
    method: Method
    cfg: TrainConfig
    method_cfg: object  # the method's own config dataclass
    model: str  # the starting model's folder
    data: object  # a path, a list of records or prompts, or None (a plug-in's default data, e.g. RL prompts)
    output: str
    log: Callable = print
    inner: Optional[tuple] = None  # (Method, its config): a composite recipe's inner loss

    recorded: dict | None = dataclasses.field(default=None, repr=False)  # record()'s result, computed once

    def record(self) -> dict:
        """The run's config.yaml (train/record.py): method, model, data, output, every setting, the
        data's fingerprint."""
        if self.recorded is None:
            self.recorded = run_record(self.method.name, self.model, self.data, self.output, self.cfg,
                                       self.method_cfg, self.inner[1] if self.inner else None)
        return self.recorded

    def write_record(self):
        """config.yaml in the output folder (the main process): a recipe without a Run of its own
        (rounds, stages) writes it when it makes the folder; a Run given the record writes it itself."""
        import os
        if os.environ.get("RANK", "0") == "0":
            write_run_config(self.output, self.record())


def start_job(job: Job) -> dict:
    """Before a method runs: check its output folder (train/record.py: a finished run, checkpoints or
    unrelated files are refused unless --overwrite; --resume compares the stored config.yaml). Nothing
    is written yet: a run that fails on its data leaves the folder as it was. -> the record."""
    rec = job.record()
    check_output(job.output, job.cfg, rec, job.log)
    return rec


def split_layers(method_cfg_cls, yaml_dict: dict, overrides: dict, inner_cfg_cls=None) -> tuple:
    """Route each key to the run config, the method's config or its inner loss's config; unknown keys
    are errors naming the known ones. -> (TrainConfig, method config, inner config or None)."""
    classes = [TrainConfig, method_cfg_cls] + ([inner_cfg_cls] if inner_cfg_cls else [])
    keys = [keys_of(c) for c in classes]  # field names and their deprecated aliases
    layers = [[] for _ in classes]
    for where, layer in (("config file", yaml_dict), ("command line", overrides)):
        routed = [{} for _ in classes]
        for k, v in (layer or {}).items():
            key = k.replace("-", "_")
            # the method's own field wins over a run field of the same name; an inner loss's field
            # only takes keys that neither the run nor the recipe declares
            for i in (1, 0, 2)[: len(classes)]:
                if key in keys[i]:
                    routed[i][key] = v
                    break
            else:
                known = sorted(set().union(*keys))
                raise ConfigError(f"{where}: unknown key {k!r}; known keys: {', '.join(known)}")
        for i, r in enumerate(routed):
            layers[i].append(r)
    names = ("train config", "method config", "inner loss config")
    built = [build_config(c, *lay, where=names[i]) for i, (c, lay) in enumerate(zip(classes, layers))]
    return built[0], built[1], (built[2] if inner_cfg_cls else None)


def load_split(data, cfg: TrainConfig, shape: str, log=print) -> tuple:
    """-> (train records, eval records) from a path or name (data/readers.py: files, hub-style folders,
    the Hugging Face cache), a list of records or dicts, or a datasets.Dataset; --columns renames
    fields first, and data of a shape the method accepts instead (pairwise for binary) is converted
    with a note."""
    if shape == "negative":  # negatives come as demonstrations, thumbs-down or pairwise rejected sides
        shape = None
    from ..data.convert import split_records
    from ..data.readers import read_for_shape

    def read(what):
        records, report, note = read_for_shape(what, cfg.data_format or shape, cfg.on_bad_record,
                                               cfg.max_chars, cfg.columns)
        if isinstance(what, (str, Path)) or report.skipped:
            log(report.summary())
        if note:
            log(f"note: {note}")
        return records
    records = read(data)
    if cfg.max_examples:
        records = records[: cfg.max_examples]
    if cfg.eval_data:
        train, held_out = records, read(cfg.eval_data)
    elif cfg.eval_fraction > 0 and len(records) > 1:
        train, held_out = split_records(records, cfg.eval_fraction, cfg.seed)
    else:
        train, held_out = records, []
    return train, held_out[: cfg.max_eval_examples] if cfg.max_eval_examples else held_out


def _silent(*args, **kwargs):
    """The log of processes other than the main one."""


def logged_eval(out: Path, step: int) -> dict:
    """The eval row of `step` in out/metrics.jsonl ({} when there is none): a resumed run keeps the
    step-0 evaluation it logged before it was interrupted."""
    f = out / "metrics.jsonl"
    if f.is_file():
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step") == step and row.get("split") == "eval":
                return {k: v for k, v in row.items() if k not in ("step", "split", "time")}
    return {}


class Run:
    """One training run's output folder, accelerator, engine and metrics log."""

    def __init__(self, cfg: TrainConfig, output: str, log=print, fsdp_ok: bool = False, record: dict | None = None):
        """Checks the output folder (train/record.py: a finished run, an earlier run's checkpoints or
        unrelated files are refused unless --overwrite; a job's --resume was compared with the stored
        config.yaml by start_job), makes the accelerator, silences the log of processes other than
        the main one, sets the thread count (--num-threads, else the cores free now) and seeds torch.
        `record`: the job's record (Job.record), written as config.yaml; None for a stage a recipe
        runs (its record is then built from the trainer's run config)."""
        self.cfg = cfg
        check_device(cfg)  # --dtype fp16, --load-in-4bit: CUDA only (precision.py)
        check_reporter(cfg.report_to)  # --report-to: its logger installed
        out = Path(output)
        check_output(out, cfg, None, log)
        check_resumable(out, cfg)
        self.record = record
        self.precision = mixed_precision(cfg)
        self.acc = make_accelerator(self.precision, fsdp_ok=fsdp_ok, lora=cfg.lora_r > 0)
        self.log = log if self.acc.is_main_process else _silent
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.threads = set_threads(cfg.num_threads)  # 0: the cores free now (models/threads.py)
        torch.manual_seed(cfg.seed)
        self.engine_: Engine | None = None
        self.mlog: MetricLog | None = None

    @property
    def is_main(self) -> bool:
        return self.acc.is_main_process

    def autocast(self):
        """The run's mixed precision for forwards outside the prepared policy (a reference model, RL
        sampling): bf16 (or fp16) autocast under --dtype bf16/--bf16 (fp16), as the prepared policy's own
        forward; else nothing."""
        dtype = autocast_dtype(self.cfg)
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.acc.device.type, dtype=dtype)

    def lora(self, model, apply: Callable | None = None):
        """The model as the run trains it: with --gradient-checkpointing, activations recomputed in the
        backward pass; with --lora-r > 0, LoRA adapters (apply: the adapter function for this kind of
        model; causal LMs by default), on a 4-bit base prepared for k-bit training (--load-in-4bit)."""
        if self.cfg.load_in_4bit:  # QLoRA: norms in fp32, input grads on (peft's k-bit preparation)
            from peft import prepare_model_for_kbit_training
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=self.cfg.gradient_checkpointing)
        elif self.cfg.gradient_checkpointing:
            enable_checkpointing(model, lora=self.cfg.lora_r > 0)
        if self.cfg.lora_r <= 0:
            return model
        from ..models.loading import LoraSettings, apply_lora
        c = self.cfg
        return (apply or apply_lora)(model, LoraSettings(c.lora_r, c.lora_alpha, c.lora_dropout,
                                                         tuple(c.lora_target_modules)))

    def engine(self, model, total: int, extra_params=()) -> Engine:
        """The optimiser/scheduler/checkpoint engine for `total` optimizer steps, and metrics.jsonl."""
        self.engine_ = Engine(model, self.cfg, self.out, total, extra_params=list(extra_params), accelerator=self.acc)
        self.mlog = MetricLog(self.out, self.cfg.report_to, self.is_main, to_dict(self.cfg))
        return self.engine_

    def newest_checkpoint(self) -> Path | None:
        return Engine.newest_checkpoint(self.out) if self.cfg.resume else None

    def save_checkpoint(self, extra_state: dict | None = None):
        """A resumable checkpoint: the trainable weights (gathered whole under FSDP; every process
        takes part) and the engine's state plus `extra_state`."""
        from safetensors.torch import save_file
        params = self.engine_.trainable_state()
        self.engine_.save_checkpoint(lambda folder: save_file(params, str(folder / "trainable.safetensors")),
                                     extra_state or {})

    def resume(self, run_config: dict, restore_extra: Callable | None = None, unit: str = "step",
               checkpoint: Path | None = None) -> dict:
        """The run's history: with a checkpoint (--resume), load its weights and trainer state,
        hand the state to restore_extra(state) -> the step (or RL iteration, `unit`) reached, and cut
        the metrics log back to it; without one, a fresh metrics log. Writes config.yaml. Returns the
        evaluation a resumed run logged at 0 ({} if fresh). config.yaml is the Run's record, else
        `run_config` (method, model, config sections) flattened (train/record.py)."""
        ckpt = checkpoint if checkpoint is not None else self.newest_checkpoint()
        first_eval = {}
        if ckpt is not None:
            from safetensors.torch import load_file
            self.engine_.load_trainable_state(load_file(str(ckpt / "trainable.safetensors")))
            state = self.engine_.load_trainer_state(ckpt)
            step = restore_extra(state) if restore_extra else self.engine_.step
            self.mlog.truncate_after(step)
            self.log(f"resumed from {ckpt} at {unit} {step}")
            first_eval = logged_eval(self.out, 0)
        else:
            if self.cfg.resume:
                self.log(f"--resume: no checkpoint in {self.out / 'checkpoints'}; starting from the beginning")
            if self.is_main:
                (self.out / "metrics.jsonl").unlink(missing_ok=True)
        if self.is_main:
            write_run_config(self.out, self.record if self.record is not None else stage_record(run_config, self.out))
        return first_eval

    def interrupted(self, unit: str = "step", reached: int | None = None) -> dict:
        e = self.engine_
        return {"interrupted": True, unit: e.step if reached is None else reached, "checkpoint": str(e.last_checkpoint)}

    def finish(self, summary: dict, save: Callable | None = None) -> dict:
        """save() the final model on the main process, write summary.json, wait for every process."""
        if self.is_main:
            if save is not None:
                save()
            (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        self.acc.wait_for_everyone()
        return summary
