"""DPO as a whole process, side by side: `alignkit train dpo` (the command line, as a user runs it) vs
a TRL DPOTrainer script, from interpreter start-up to exit. Not part of the test suite.

    .venv/bin/python benchmarks/bench_process.py [--rounds 2] [--threads 1] [--steps 10] [--pairs 0]

Each run is a fresh process, timed from the outside (start-up, imports, loading, tokenization,
reference log-probs, evaluation, training, saving the model). Runs alternate between the sides:
  trl                TRL 1.16 DPOTrainer with its defaults (reference log-probs computed per batch,
                     no evaluation), then trainer.save_model()
  alignkit           `alignkit train dpo --eval-fraction 0`: the same pairs all trained on, no evaluation
  alignkit-default   `alignkit train dpo` with its defaults: 10% held out and evaluated at the start
                     and the end (what a user gets without flags)
Both: batch 8, max length 512, beta 0.1, learning rate 1e-5, fp32, the same model folder and pairs
(common.select_pairs: the token ids agree between the two tokenizations).
--steps N: N optimizer steps over all usable hh-rlhf pairs; --pairs M (with --steps 0): one epoch
over the first M pairs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LR, BETA = 1e-5, 0.1


def child_trl(a):
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    rows = [json.loads(line) for line in Path(a.data).read_text().splitlines()]
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    args = DPOConfig(output_dir=a.out, per_device_train_batch_size=8, max_steps=a.steps or -1,
                     num_train_epochs=1, learning_rate=LR, beta=BETA, max_length=512,
                     use_cpu=not torch.cuda.is_available(), save_strategy="no", report_to="none",
                     disable_tqdm=True, logging_steps=1, seed=0, dataloader_num_workers=0)
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    out = trainer.train()
    trainer.save_model(a.out)
    print("RESULT " + json.dumps({"steps": out.global_step, "threads": torch.get_num_threads()}), flush=True)


def alignkit_cmd(a, model: Path, data: Path, out: Path, default: bool) -> list:
    exe = Path(sys.executable).parent / "alignkit"
    cmd = [str(exe), "train", "dpo", "--model", str(model), "--data", str(data), "--output", str(out),
           "--batch-size", "8", "--max-length", "512", "--beta", str(BETA), "--learning-rate", str(LR),
           "--progress", "false", "--seed", "0"]
    cmd += ["--max-steps", str(a.steps)] if a.steps else ["--epochs", "1"]
    if a.threads:
        cmd += ["--num-threads", str(a.threads)]
    if not default:
        cmd += ["--eval-fraction", "0"]
    return cmd


def run_side(side: str, a, model: Path, data: Path) -> dict:
    import shutil
    out = common.WORK / f"process-{side}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join(x for x in (str(common.ROOT), os.environ.get("PYTHONPATH", "")) if x)}
    if side == "trl":
        cmd = [sys.executable, str(Path(__file__)), "--child", "--model", str(model), "--data", str(data),
               "--out", str(out), "--steps", str(a.steps), "--threads", str(a.threads)]
    else:
        cmd = alignkit_cmd(a, model, data, out, default=side == "alignkit-default")
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(common.ROOT), timeout=7200)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")
    res = {"process_s": wall, "load": (load0 + os.getloadavg()[0]) / 2}
    if side != "trl":
        s = json.loads((out / "summary.json").read_text())
        res.update(steps=s["steps"], train_examples=s["train_examples"], eval_examples=s["eval_examples"],
                   reference_logps=s.get("reference_logps"))
    else:
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                res.update(json.loads(line[7:]))
    return res


def main():
    import argparse
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads in each run (0 = the default)")
    p.add_argument("--steps", type=int, default=10, help="optimizer steps (0 = one epoch)")
    p.add_argument("--pairs", type=int, default=0, help="use the first M usable pairs (0 = all)")
    p.add_argument("--sides", default="trl,alignkit,alignkit-default")
    p.add_argument("--json", default="")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default="", help=argparse.SUPPRESS)
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child_trl(a)
    model = common.build_model()
    pairs, notes = common.select_pairs(model, a.pairs or None, 512)
    data = common.WORK / f"process_pairs_{len(pairs)}.jsonl"
    data.write_text("".join(json.dumps({"prompt": p_, "chosen": c, "rejected": r}) + "\n" for p_, c, r in pairs))
    sides = [s for s in a.sides.split(",") if s]
    what = f"{a.steps} steps" if a.steps else "one epoch"
    print(f"machine: {common.machine()}")
    print(f"DPO whole process, {what} on {len(pairs)} hh-rlhf pairs ({notes}), batch 8, max length 512, fp32, "
          f"threads {a.threads or 'default'}, {a.rounds} alternating rounds", flush=True)
    runs = {s: [] for s in sides}
    for r in range(a.rounds):
        for s in sides:
            res = run_side(s, a, model, data)
            runs[s].append(res)
            extra = f", {res['steps']} steps" if "steps" in res else ""
            print(f"round {r + 1} {s:16s}: {res['process_s']:.1f} s{extra}, load {res['load']:.1f}"
                  + (f", reference log-probs {res['reference_logps']}" if res.get("reference_logps") else ""),
                  flush=True)
    summary = {"benchmark": "dpo-process", "machine": common.machine(), "pairs": len(pairs), "steps": a.steps,
               "threads": a.threads, "notes": notes}
    print()
    for s in sides:
        summary[s] = {"process_s": common.median([x["process_s"] for x in runs[s]]),
                      "load": common.median([x["load"] for x in runs[s]]), "runs": runs[s]}
        print(f"{s:16s}: median {summary[s]['process_s']:.1f} s, load {summary[s]['load']:.1f}")
    if "trl" in summary:
        for s in sides:
            if s != "trl":
                ratio = summary["trl"]["process_s"] / summary[s]["process_s"]
                per_round = [t["process_s"] / k["process_s"] for t, k in zip(runs["trl"], runs[s])]
                summary[f"ratio_{s}"] = {"median": ratio, "per_round": per_round}
                print(f"TRL / {s}: {ratio:.2f}x (per round: {', '.join(f'{x:.2f}' for x in per_round)})")
    common.write_json(a.json, summary)
    return summary


if __name__ == "__main__":
    main()
