"""`alignkit quickstart`: the whole alignment loop on the bundled task, in minutes on a laptop CPU.

1. build or reuse the SFT'd base model (base.py, cached);
2. sample K responses per training prompt from it (on-policy, temperature 1);
3. a simulated pairwise labeler rates them against r* and labels its best-vs-worst pair (labelers.py);
4. DPO (Rafailov et al. 2023) from the SFT model on those pairs: `run_train("dpo", ...)`;
5. evaluate SFT and aligned models on held-out prompts under r* (eval/evaluate.py) and print a
   before/after table; with --output, the models and DIR/results.json stay.

On-policy pairs with clear r* differences are what make DPO move this model: the pairs live where the
SFT model puts its mass, so the implicit reward learns exactly the flaws it shows (harmful compliance,
wrong sums, rudeness, rambling, over-refusal).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import option
from ..data.convert import write_jsonl
from ..models.generate import SamplingConfig
from ..models.threads import set_threads
from .base import MAX_LENGTH, WorldConfig, build_base
from .candidates import sample_from_model
from .labelers import LabelerConfig, PairwiseLabeler
from .prompts import as_chat, sample_prompts


@dataclass(frozen=True)
class QuickstartConfig:
    train_prompts: int = option(600, ge=1)  # training-split prompts to sample responses for
    samples_per_prompt: int = option(4, ge=2)  # K responses per prompt; the labeler's best-vs-worst pair is kept
    max_new_tokens: int = option(48, ge=1)  # longest sampled response
    labeler_temperature: float = option(0.3, ge=0)  # Bradley-Terry temperature of the simulated labeler
    labeler_noise: float = option(0.0, ge=0, le=1)  # label flip rate
    beta: float = option(0.3, gt=0)  # DPO beta (0.1 with this learning rate over-optimises the tiny model: KL ~ 10, broken text)
    learning_rate: float = option(2e-4, gt=0)  # DPO learning rate (cosine schedule)
    epochs: float = option(2.0, gt=0)  # DPO passes over the pairs
    batch_size: int = option(16, ge=1)  # pairs per optimizer step
    eval_prompts: int = option(400, ge=1)  # held-out prompts for the before/after evaluation
    seed: int = 0  # prompts, sampling, labels, data order
    num_threads: int = option(0, ge=0)  # torch CPU threads of every stage; 0 = the cores free when each stage starts


MINI = QuickstartConfig(train_prompts=24, samples_per_prompt=2, max_new_tokens=16, epochs=1.0, batch_size=8,
                        eval_prompts=16)  # for smoke tests


def _stage(log, i: int, n: int, msg: str):
    log(f"[{i}/{n}] {msg}")


def run_quickstart(cfg: QuickstartConfig = QuickstartConfig(), world: WorldConfig = WorldConfig(),
                   output: str | None = None, cache_dir: str | None = None, progress: bool = True,
                   base_model: str | None = None, log=print) -> dict:
    """Run the loop; returns the results dict (also written to output/results.json). `base_model`
    starts from that SFT model instead of the world's own (built or cached)."""
    from ..synthetic.evaluate import evaluate_policy, format_table
    from ..registry import run_train

    t_start = time.time()
    timings, threads = {}, {}  # seconds and torch threads per stage
    keep = output is not None
    out = Path(output) if keep else Path(tempfile.mkdtemp(prefix="alignkit-quickstart-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        _stage(log, 1, 5, "base model (pre-trained + SFT on the world's corpus)")
        t = time.time()
        sft = Path(base_model) if base_model else build_base(world, cache_dir=cache_dir, log=log)
        timings["base_model"] = time.time() - t

        infos = sample_prompts(cfg.train_prompts, "train", seed=cfg.seed)
        k = cfg.samples_per_prompt
        _stage(log, 2, 5, f"sampling {k} responses for each of {len(infos)} training prompts from the SFT model")
        t = time.time()
        threads["sampling"] = set_threads(cfg.num_threads)  # 0: the cores free now (each stage chooses again)
        sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=1.0, top_p=1.0, batch_size=64)
        cands = sample_from_model(str(sft), infos, k, sampling, seed=cfg.seed, progress=progress)
        timings["sampling"] = time.time() - t

        _stage(log, 3, 5, "labelling best-vs-worst pairs with the simulated pairwise labeler (Bradley-Terry on r*)")
        labeler = PairwiseLabeler(LabelerConfig(temperature=cfg.labeler_temperature, noise=cfg.labeler_noise,
                                                seed=cfg.seed))
        pairs = [p for p in (labeler.label_best_vs_worst(as_chat(info.text), c) for info, c in zip(infos, cands))
                 if p is not None]
        if not pairs:
            from ..errors import AlignkitError
            raise AlignkitError("the labeler found no pair with a preference; raise --train-prompts")
        write_jsonl(pairs, out / "pairs.jsonl")
        log(f"      {len(pairs)} pairs from {len(infos)} prompts ({len(infos) - len(pairs)} had no preference) "
            f"-> {out / 'pairs.jsonl'}")

        _stage(log, 4, 5, f"DPO on {len(pairs)} pairs (beta={cfg.beta}, lr={cfg.learning_rate}, epochs={cfg.epochs})")
        t = time.time()
        summary = run_train("dpo", str(sft), pairs, str(out / "aligned"), overrides={
            "beta": cfg.beta, "learning_rate": cfg.learning_rate, "epochs": cfg.epochs,
            "batch_size": cfg.batch_size, "lr_scheduler": "cosine", "warmup_ratio": 0.1, "eval_fraction": 0.1,
            "max_length": MAX_LENGTH, "seed": cfg.seed, "progress": progress, "num_threads": cfg.num_threads,
            "overwrite": True}, log=lambda *a, **kw: None)  # the quickstart's own folder, rebuilt each time
        if summary.get("interrupted"):
            raise KeyboardInterrupt
        timings["dpo"] = time.time() - t
        threads["dpo"] = torch.get_num_threads()  # what the run chose

        _stage(log, 5, 5, f"evaluating SFT and aligned models on {cfg.eval_prompts} held-out prompts under r*")
        t = time.time()
        threads["evaluation"] = set_threads(cfg.num_threads)
        ev = evaluate_policy(str(out / "aligned"), baseline=str(sft), n_prompts=cfg.eval_prompts, seed=cfg.seed,
                             split="heldout", sampling=dataclasses.replace(sampling, batch_size=128),
                             keep_samples=8, log=lambda *a, **kw: None)
        timings["evaluation"] = time.time() - t
        timings["total"] = time.time() - t_start
        before = ev["baseline_metrics"]
        after = ev["policy"]
        results = {
            "before": before, "after": after, "win_rate": ev["win_rate"],
            "dpo": {"pairs": len(pairs), "steps": summary.get("steps"),
                    "eval_start": summary.get("eval_start"), "eval_end": summary.get("eval_end")},
            "config": dataclasses.asdict(cfg), "world": dataclasses.asdict(world),
            "base_model": str(sft), "aligned_model": str(out / "aligned") if keep else None,
            "timings_s": {k: round(v, 1) for k, v in timings.items()}, "threads": threads, "samples": ev.get("samples", []),
        }
        log("")
        log(format_table([("SFT (before)", before), ("DPO (after)", after)], ev["win_rate"]))
        log(f"\ndone in {timings['total']:.0f}s" + (f"; models and results.json in {out}" if keep else ""))
        if keep:
            (out / "results.json").write_text(json.dumps(results, indent=1))
        return results
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
