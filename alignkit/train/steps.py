"""The step loop that every offline trainer shares (preference losses, SFT, reward models).

The run around it (start, load, engine, resume, save) is alignkit/train/run.py.

A trainer builds its examples, its `Engine` and an objective (`compute(micro_batch) -> LossOutput`);
`run_steps` then drives optimizer steps over seeded micro-batches until `total`, logging, evaluating
and checkpointing on the run config's schedule, and stopping cleanly on SIGINT/SIGTERM. It returns
the last step's metrics and whether the run was interrupted; the trainer saves its own model.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> tuple:
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    return tuple(torch.randperm(n, generator=g).tolist())


def micro_batch_indices(m: int, n: int, bs: int, world: int, rank: int, seed: int) -> list:
    """Example indices of global micro-batch `m` for process `rank`. Epoch e visits a seeded
    permutation; micro-batch m is a pure function of (m, seed), so a resumed run sees the same data."""
    per_epoch = max(1, n // (bs * world))
    epoch, pos = divmod(m, per_epoch)
    perm = _epoch_permutation(n, seed, epoch)
    start = pos * bs * world + rank * bs
    return [perm[(start + j) % n] for j in range(bs)]


def visited_batches(n: int, cfg, total: int, world: int) -> list:
    """The micro-batches (every process's, in order) that optimizer steps 1..total run, each as its
    example indices not visited before: what a run needs reference log-probs for, grouped as training
    groups them (so a reference pass up front has the training forward's float rounding under bf16)."""
    seen: set = set()
    batches = []
    for m in range(total * cfg.grad_accum):
        for rank in range(world):
            new = [i for i in micro_batch_indices(m, n, cfg.batch_size, world, rank, cfg.seed) if i not in seen]
            seen.update(new)
            if new:
                batches.append(new)
        if len(seen) == n:
            break
    return batches


def visited_indices(n: int, cfg, total: int, world: int) -> set:
    """The example indices that optimizer steps 1..total visit."""
    return {i for b in visited_batches(n, cfg, total, world) for i in b}


def total_steps(cfg, n_examples: int, world: int) -> int:
    """Optimizer steps of the run: --max-steps, else epochs over the examples at the global batch."""
    import math
    per_epoch = max(1, n_examples // (cfg.batch_size * world))
    return cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch / cfg.grad_accum))


def fmt_metrics(metrics: dict, keys=("loss", "rewards/accuracy", "rewards/margin", "nll")) -> str:
    """The few numbers worth a glance in a progress bar or a log line."""
    return " ".join(f"{k.split('/')[-1]}={metrics[k]:.4f}" for k in keys if k in metrics)


def evaluate_and_log(step: int, evaluate: Callable, mlog, log=print, fmt: Callable = None, unit: str = "step") -> dict:
    """evaluate() -> metrics, written as the eval row of `step` in metrics.jsonl and logged; {} when
    nothing is held out (then nothing is written)."""
    ev = evaluate()
    if ev:
        mlog.write(step, "eval", ev)
        log(f"eval @ {unit} {step}: {(fmt or fmt_metrics)(ev)}")
    return ev


def run_steps(engine, examples: list, cfg, total: int, compute: Callable, evaluate: Callable,
              save_checkpoint: Callable, mlog, log=print, desc: str = "train", fmt: Callable = None) -> tuple:
    """Optimizer steps from `engine.step` to `total` -> (last step's metrics, interrupted).

    compute(micro_batch) is the objective; evaluate() -> metrics dict ({} when nothing is held out);
    save_checkpoint() writes a resumable checkpoint; fmt(metrics) is the progress bar's short text (a
    bar on a terminal, plain periodic lines with the rate and ETA otherwise: train/progress.py).
    Micro-batch m of process `rank` is a pure function of (m, seed) (`micro_batch_indices`), so a resumed run sees exactly the same data.
    """
    from .progress import Progress
    fmt = fmt or fmt_metrics
    acc = engine.acc
    world, rank = acc.num_processes, acc.process_index
    engine.install_signal_handlers()
    bar = Progress(total, engine.step, desc, enabled=cfg.progress and acc.is_main_process, unit="step")
    last, interrupted = {}, False
    try:
        while engine.step < total:
            m0 = engine.step * cfg.grad_accum
            micro = [[examples[i] for i in micro_batch_indices(m0 + j, len(examples), cfg.batch_size, world, rank,
                                                              cfg.seed)] for j in range(cfg.grad_accum)]
            last = engine.optimizer_step(micro, compute)
            if engine.step % cfg.log_every == 0 or engine.step == total:
                mlog.write(engine.step, "train", last)
            bar.set_postfix_str(fmt(last), refresh=False)  # before update: a plain line shows this step's metrics
            bar.update(engine.step - bar.n)
            if cfg.eval_every and engine.step % cfg.eval_every == 0 and engine.step < total:
                evaluate_and_log(engine.step, evaluate, mlog, log, fmt)
            if (cfg.save_every and engine.step % cfg.save_every == 0) or engine.stop_requested:
                save_checkpoint()
            if engine.stop_requested:
                interrupted = True
                break
    finally:
        engine.restore_signal_handlers()
        bar.close()
    if interrupted:
        log(f"stopped at step {engine.step}/{total}; checkpoint {engine.last_checkpoint}; "
            "rerun with --resume to continue")
    return last, interrupted
