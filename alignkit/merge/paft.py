"""PAFT (Pentyala et al. 2024, "PAFT: A Parallel Training Paradigm for Effective LLM Fine-Tuning",
arXiv 2406.17923): SFT and preference alignment trained in parallel from one pre-trained base, then
merged, instead of one after the other (which costs an "alignment tax": the preference stage erodes
what SFT taught).

From theta_pre (sec. 3):
    delta_sft = argmin L_sft(theta_pre + delta)  [+ lambda_sft * ||delta||_1]     on the demonstrations
    delta_pref = argmin L_xpo(theta_pre + delta) [+ lambda_pref * ||delta||_1]    on the preference pairs
    theta_merge = f(theta_pre, delta_sft, delta_pref)                            (TIES, task arithmetic, DARE, ...)
The paper (sec. 3.2-3.3) finds the DPO delta naturally sparse and the SFT delta dense, and puts the L1
penalty on the SFT run so that the two deltas interfere less when merged (the premise of TIES and DARE:
sparse deltas collide less). Both penalties are flags here: `--sft-l1-delta` (the paper's) and
`--pref-l1-delta` (the preference run's); the run option `--l1-delta` is refused, as it would not say
which run it means. The penalty is the engine's `DeltaL1` (alignkit/train/engine.py), added once per
optimizer step.

`alignkit train paft --model BASE --data PAIRS --sft-data DEMOS --output OUT [--loss dpo ...]`:
1. OUT/sft: `train_offline` with the sft loss on --sft-data;
2. OUT/pref: `train_offline` with the inner pairwise --loss on --data, reference = BASE;
3. OUT: `run_merge` of both deltas onto BASE (a Hugging Face model folder, with merge.json), and
   summary.json: each run's held-out metrics and seconds, the deltas' L1 norms and sparsity.
The two runs are independent (the paper runs them on separate devices at once); here they run one after
the other, and the summary gives both the sum of their times and the longer one (the parallel wall
clock). With --resume a stage whose summary.json is there is reused, an interrupted one resumes from its
checkpoints (--save-every), and the merge is redone (it is cheap and deterministic).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import ConfigError
from ..method import Method
from ..train.run import Job, load_split
from .config import METHODS as MERGE_METHODS
from .config import MergeConfig


@dataclass(frozen=True)
class PAFTConfig:
    loss: str = "dpo"  # the preference run's pairwise loss (its own flags follow, e.g. --beta)
    sft_data: str = ""  # demonstrations file of the SFT run (required; .jsonl/.json/.parquet/.csv)
    sft_eval_data: str = ""  # held-out demonstrations for the SFT run; "" = split eval_fraction off sft_data
    sft_learning_rate: float = option(0.0, ge=0)  # the SFT run's peak learning rate; 0 = --learning-rate
    sft_epochs: float = option(0.0, ge=0)  # the SFT run's passes over sft_data; 0 = --epochs
    sft_l1_delta: float = option(0.0, ge=0)  # lambda of the L1 penalty on the SFT run's delta from the base (the paper's place for it, sec. 3.3); 0 = off
    pref_l1_delta: float = option(0.0, ge=0)  # lambda of the L1 penalty on the preference run's delta from the base; 0 = off
    merge: str = option("ties", choices=MERGE_METHODS)  # how the two deltas are merged onto the base: task_arithmetic | ties | dare_ties | dare_linear | linear
    sft_weight: float = option(1.0, ge=0)  # the SFT delta's weight in the merge
    pref_weight: float = option(1.0, ge=0)  # the preference delta's weight in the merge
    merge_scale: float = option(1.0, gt=0)  # lambda multiplying the merged delta (all merges but linear, where it must be 1)
    density: float = option(0.5, gt=0, le=1)  # ties, dare_ties: share of each delta tensor kept, largest |value| first (1 = no trim)
    drop_rate: float = option(0.5, ge=0, lt=1)  # dare_*: probability of dropping each delta entry (survivors scaled by 1/(1-p))

    def __post_init__(self):
        if self.merge not in MERGE_METHODS:
            raise ValueError(f"merge: {self.merge!r} is not one of {', '.join(MERGE_METHODS)}")
        for name in ("sft_learning_rate", "sft_epochs", "sft_l1_delta", "pref_l1_delta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: {getattr(self, name)} must be >= 0")
        if self.merge == "linear" and self.merge_scale != 1.0:
            raise ValueError("--merge-scale: a linear merge averages whole models, so it must be 1")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density: {self.density} must be in (0, 1]")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate: {self.drop_rate} must be in [0, 1)")


def _finished(folder: Path) -> dict | None:
    """A stage's summary when it finished (summary.json without `interrupted`), else None."""
    f = folder / "summary.json"
    if not f.is_file():
        return None
    s = json.loads(f.read_text())
    return None if s.get("interrupted") else s


def _stage(name: str, folder: Path, cfg, train, log) -> tuple:
    """-> (summary, seconds, reused): reuse a finished stage under --resume, retrain it under
    --overwrite, else train it."""
    done = _finished(folder)
    if done is not None and not cfg.overwrite:
        if not cfg.resume:
            raise ConfigError(f"{folder} holds a finished {name} run; pass --resume to reuse it, --overwrite "
                              "to retrain it, or choose another --output")
        log(f"paft: reusing the finished {name} run in {folder}")
        return done, done.get("paft_seconds", 0.0), True
    t = time.time()
    summary = train()
    seconds = round(time.time() - t, 1)
    if not summary.get("interrupted"):
        summary["paft_seconds"] = seconds
        # the reference log-prob cache serves only a resume of this (finished) run; beside the model it
        # would read as a second weights file to the merge, which takes every *.safetensors of a folder
        (folder / "ref_logps.safetensors").unlink(missing_ok=True)
        (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary, seconds, False


def _place_merged(staging: Path, out: Path):
    """Move the merged model's files from the staging folder to the output's top level (replacing the
    previous merge's); the stage folders stay beside them."""
    for f in staging.iterdir():
        dst = out / f.name
        if dst.is_dir():
            shutil.rmtree(dst)
        f.replace(dst)
    staging.rmdir()


def run_paft(job: Job) -> dict:
    from ..losses.registry import get_loss
    from ..train.offline import train_offline
    from .run import run_merge

    cfg, pcfg, log = job.cfg, job.method_cfg, job.log
    spec, loss_cfg = job.inner
    if not pcfg.sft_data:
        raise ConfigError("paft needs --sft-data FILE (the demonstrations of the SFT run); --data holds the pairs")
    if job.data is None:
        raise ConfigError("paft needs --data FILE (the preference pairs of the preference run)")
    if cfg.l1_delta:
        raise ConfigError("paft: --l1-delta does not say which run it is for; pass --sft-l1-delta "
                          "(the paper's choice) and/or --pref-l1-delta")
    out = Path(job.output)
    out.mkdir(parents=True, exist_ok=True)
    job.write_record()  # config.yaml: the run's record, that --resume compares and --config repeats
    sft_dir, pref_dir = out / "sft", out / "pref"

    sft_spec = get_loss("sft")
    sft_cfg = dataclasses.replace(cfg, l1_delta=pcfg.sft_l1_delta, eval_data=pcfg.sft_eval_data,
                                  learning_rate=pcfg.sft_learning_rate or cfg.learning_rate,
                                  epochs=pcfg.sft_epochs or cfg.epochs)
    pref_cfg = dataclasses.replace(cfg, l1_delta=pcfg.pref_l1_delta)

    def train_sft():
        log(f"paft 1/3: SFT on {pcfg.sft_data} -> {sft_dir}")
        tr, ev = load_split(pcfg.sft_data, sft_cfg, "demonstration", log)
        return train_offline(sft_spec, sft_spec.config(), sft_cfg, job.model, tr, ev, str(sft_dir), log)

    def train_pref():
        log(f"paft 2/3: {spec.name} on the preference data -> {pref_dir}")
        tr, ev = load_split(job.data, pref_cfg, "pairwise", log)
        return train_offline(spec, loss_cfg, pref_cfg, job.model, tr, ev, str(pref_dir), log)

    stages = {}
    for name, folder, train in (("sft", sft_dir, train_sft), ("pref", pref_dir, train_pref)):
        s, seconds, reused = _stage(name, folder, cfg, train, log)
        if s.get("interrupted"):
            return {**s, "stage": name}
        stages[name] = {"seconds": seconds, "reused": reused, "steps": s.get("steps"),
                        "eval_start": s.get("eval_start"), "eval_end": s.get("eval_end"),
                        "delta": s.get("delta")}

    log(f"paft 3/3: {pcfg.merge} merge of both deltas onto {job.model} -> {out}")
    staging = out / ".merged"
    mcfg = MergeConfig(method=pcfg.merge, base=job.model, models=(str(sft_dir), str(pref_dir)),
                       weights=(pcfg.sft_weight, pcfg.pref_weight), scale=pcfg.merge_scale,
                       density=pcfg.density, drop_rate=pcfg.drop_rate, seed=cfg.seed, output=str(staging),
                       overwrite=True, sparsity_threshold=cfg.delta_threshold or cfg.learning_rate)
    t = time.time()
    merged = run_merge(mcfg, log=log)
    _place_merged(staging, out)
    merge_seconds = round(time.time() - t, 1)
    train_seconds = [stages["sft"]["seconds"], stages["pref"]["seconds"]]
    summary = {
        "method": "paft", "loss": spec.name, "base": job.model, "merge": pcfg.merge,
        "stages": stages,
        "deltas": {n: {k: m[k] for k in ("sparsity", "kept_fraction", "delta_l1")}
                   for n, m in zip(("sft", "pref"), merged["models"])},
        "sparsity_threshold": mcfg.sparsity_threshold,
        "seconds": {"sft": train_seconds[0], "pref": train_seconds[1], "merge": merge_seconds,
                    "sequential_total": round(sum(train_seconds) + merge_seconds, 1),
                    "parallel_wall_clock": round(max(train_seconds) + merge_seconds, 1)},
        "config": dataclasses.asdict(pcfg),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    log(f"paft: merged model in {out}; delta sparsity (|delta| <= {mcfg.sparsity_threshold:g}): "
        f"sft {summary['deltas']['sft']['sparsity']:.3f}, pref {summary['deltas']['pref']['sparsity']:.3f}")
    return summary


PAFT_METHODS = [
    Method("paft", None, PAFTConfig, "pairwise", "Pentyala et al. 2024, arXiv 2406.17923", run=run_paft,
           theme="optimization", inner_feedback=("pairwise",),
           description="SFT and a pairwise loss trained in parallel from one base (L1 on a delta), then merged"),
]
