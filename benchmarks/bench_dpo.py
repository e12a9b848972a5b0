"""DPO, side by side: TRL's DPOTrainer vs `alignkit train dpo` on the same model folder, pairs, batch
size, max length and steps. Not part of the test suite.

    .venv/bin/python benchmarks/bench_dpo.py [--rounds 3] [--steps 12] [--batch-size 8]

Each run is a fresh subprocess (its own peak RSS); runs alternate TRL, alignkit, TRL, ... so that
drift of the machine hits both. Both sides: fp32, no gradient checkpointing, AdamW at the same
learning rate, linear decay, clipping at 1.0, beta 0.1, reference log-probs precomputed before
training (TRL `precompute_ref_log_probs=True`, alignkit's reference cache).

What is timed: the wall time from the end of optimizer step 1 to the end of the last step (steps
2..N), i.e. forward, backward, optimizer and per-step logging. Not timed, on both sides: imports,
model loading, tokenization, the reference pass, and the first step (warm-up).
pairs/s = (N - 1) * batch size / that time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LR = 1e-5
BETA = 0.1


def child_trl(a) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    if a.threads:
        torch.set_num_threads(a.threads)
    pairs = json.loads(Path(a.data).read_text())
    ds = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs])
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    out = Path(a.out)
    args = DPOConfig(
        output_dir=str(out), per_device_train_batch_size=a.batch_size, max_steps=a.steps,
        learning_rate=LR, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        beta=BETA, max_length=a.max_length, bf16=a.dtype == "bf16", fp16=False, gradient_checkpointing=False,
        precompute_ref_log_probs=True, train_sampling_strategy="sequential", use_cpu=True,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
        dataloader_num_workers=0)
    times, losses = [], []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append((time.perf_counter(), time.process_time()))

    class Recording(DPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            losses.append((loss[0] if isinstance(loss, tuple) else loss).detach().item())
            return loss

    trainer = Recording(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()])
    # the tokenized data must be alignkit's, id for id (common.select_pairs checked the rule; this checks TRL)
    from alignkit.data.tokenize import Encoder
    enc = Encoder(tok, a.max_length)
    row = trainer.train_dataset[0]
    e = enc.encode(pairs[0][0], pairs[0][1])
    assert (row["prompt_ids"], row["chosen_ids"]) == (e.prompt_ids, e.completion_ids), "token ids differ"
    trainer.train()
    hist = [h for h in trainer.state.log_history if "rewards/margins" in h]
    return {"times": times, "losses": losses, "margins": [h["rewards/margins"] for h in hist],
            "threads": torch.get_num_threads()}


def child_alignkit(a) -> dict:
    import torch
    from alignkit.data.records import Pairwise
    from alignkit.train.api import run_train

    from alignkit.train.engine import Engine

    pairs = json.loads(Path(a.data).read_text())
    records = [Pairwise(p, c, r) for p, c, r in pairs]
    times = []
    step = Engine.optimizer_step

    def clocked(self, micro_batches, compute):  # the same clock point as TRL's on_step_end
        out = step(self, micro_batches, compute)
        times.append((time.perf_counter(), time.process_time()))
        return out
    Engine.optimizer_step = clocked
    overrides = dict(batch_size=a.batch_size, max_steps=a.steps, learning_rate=LR, lr_scheduler="linear",
                     warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=BETA, max_length=a.max_length,
                     dtype=a.dtype, seed=0, eval_fraction=0.0, progress=False, ref_cache="memory",
                     num_threads=a.threads)
    run_train("dpo", a.model, records, a.out, overrides, log=lambda *x: None)
    rows = [json.loads(line) for line in (Path(a.out) / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "train"]
    return {"times": times, "losses": [r["loss"] for r in rows],
            "margins": [r["rewards/margin"] for r in rows], "threads": torch.get_num_threads()}


def child(a):
    import shutil
    shutil.rmtree(a.out, ignore_errors=True)
    load0 = os.getloadavg()[0]
    res = child_trl(a) if a.child == "trl" else child_alignkit(a)
    t = res.pop("times")
    pairs = (len(t) - 1) * a.batch_size
    res["pairs_per_s"] = pairs / (t[-1][0] - t[0][0])
    res["pairs_per_cpu_s"] = pairs / (t[-1][1] - t[0][1])  # CPU seconds of this process, all threads
    res["peak_rss_mb"] = common.peak_rss_mb()
    res["load"] = (load0 + os.getloadavg()[0]) / 2
    print("RESULT " + json.dumps(res), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="torch threads in each run (0 = torch's default)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast on both sides")
    p.add_argument("--only", choices=["trl", "alignkit"], default=None, help="run one side only")
    p.add_argument("--json", default="", help="also write the figures to this file")
    p.add_argument("--child", choices=["trl", "alignkit"], default=None)
    p.add_argument("--model", default="")
    p.add_argument("--data", default="")
    p.add_argument("--out", default="")
    a = p.parse_args()
    if a.child:
        return child(a)

    model = common.build_model()
    n = a.steps * a.batch_size
    kept, notes = common.select_pairs(model, n, a.max_length)
    order = common.alignkit_order(n, a.batch_size, a.steps, seed=0)
    data = common.WORK / "dpo_pairs.json"
    data.write_text(json.dumps(kept))  # alignkit reads these and shuffles them itself...
    trl_data = common.WORK / "dpo_pairs_trl_order.json"
    trl_data.write_text(json.dumps([kept[i] for i in order]))  # ...TRL reads them in that order
    print(f"machine: {common.machine()}")
    print(f"model: {model} (5.26M parameters), data: {n} hh-rlhf pairs ({notes})")
    print(f"batch {a.batch_size}, max length {a.max_length}, {a.steps} steps, {a.rounds} alternating rounds, "
          f"{a.dtype}, threads {a.threads or 'torch default'}")
    print("timed: end of step 1 -> end of step N (forward+backward+optimizer+logging); not timed: "
          "imports, loading, tokenization, reference pass, step 1")
    sides = [a.only] if a.only else ["trl", "alignkit"]
    results = {s: [] for s in sides}
    for r in range(a.rounds):
        for s in sides:
            args = ["--child", s, "--model", str(model), "--data", str(trl_data if s == "trl" else data),
                    "--out", str(common.WORK / f"dpo-{s}"), "--steps", str(a.steps),
                    "--batch-size", str(a.batch_size), "--max-length", str(a.max_length),
                    "--threads", str(a.threads), "--dtype", a.dtype]
            res = common.run_child(Path(__file__), args)
            results[s].append(res)
            print(f"round {r + 1} {s:8s}: {res['pairs_per_s']:.2f} pairs/s ({res['pairs_per_cpu_s']:.2f} per CPU-s, "
                  f"load {res['load']:.1f}), peak RSS {res['peak_rss_mb']:.0f} MiB, "
                  f"loss step0={res['losses'][0]:.6f} step1={res['losses'][1]:.6f} step2={res['losses'][2]:.6f}",
                  flush=True)
    summary = {"machine": common.machine(), "notes": notes, "steps": a.steps, "batch_size": a.batch_size,
               "max_length": a.max_length}
    for s in sides:
        summary[s] = {"pairs_per_s": common.median([x["pairs_per_s"] for x in results[s]]),
                      "pairs_per_cpu_s": common.median([x["pairs_per_cpu_s"] for x in results[s]]),
                      "load": common.median([x["load"] for x in results[s]]),
                      "peak_rss_mb": common.median([x["peak_rss_mb"] for x in results[s]]),
                      "losses": results[s][0]["losses"], "runs": [x["pairs_per_s"] for x in results[s]]}
    print()
    for s in sides:
        print(f"{s:8s}: median {summary[s]['pairs_per_s']:.2f} pairs/s ({summary[s]['pairs_per_cpu_s']:.2f} per "
              f"CPU-second), peak RSS {summary[s]['peak_rss_mb']:.0f} MiB, load average {summary[s]['load']:.1f}")
    if len(sides) == 2:
        ratio = summary["alignkit"]["pairs_per_s"] / summary["trl"]["pairs_per_s"]
        lt, la = summary["trl"]["losses"], summary["alignkit"]["losses"]
        diffs = [abs(x - y) for x, y in zip(lt, la)]
        summary.update(ratio=ratio, loss_diff_step0=diffs[0], loss_diff_max=max(diffs))
        cpu_ratio = summary["alignkit"]["pairs_per_cpu_s"] / summary["trl"]["pairs_per_cpu_s"]
        summary["cpu_ratio"] = cpu_ratio
        print(f"alignkit / TRL throughput: {ratio:.2f}x wall ({cpu_ratio:.2f}x per CPU-second)")
        print(f"step-0 loss: TRL {lt[0]:.6f}, alignkit {la[0]:.6f} (|diff| {diffs[0]:.1e}); "
              f"largest |diff| over all {len(diffs)} steps (after updates): {max(diffs):.1e}")
        ok = diffs[0] < 1e-4 and not any(math.isnan(d) for d in diffs)
        print("step-0 loss agrees to 1e-4" if ok else "STEP-0 LOSS DIFFERS")
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
