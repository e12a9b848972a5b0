"""Shared set-up for the side-by-side benchmarks (not part of the test suite).

One model folder and one tokenized data set serve both trainers, so the two sides see the same
weights, the same token ids and the same batches:

- a byte-level BPE tokenizer (vocab 8192) trained on the hh-rlhf text and a ~5.2M-parameter Llama
  built from a config (hidden 256, 4 layers, 4 heads, MLP 688, tied embeddings);
- hh-rlhf pairs as (prompt, chosen, rejected) text. The prompt starts with the BOS token written as
  text, so alignkit's Encoder (which adds BOS when missing) and TRL (which tokenizes the text as
  given) build the same ids; pairs whose ids would differ between the two tokenizations, or that
  would need truncation at max_length (TRL and alignkit truncate differently), are left out and
  counted, so both sides train on identical sequences;
- the order of the examples: alignkit's seeded order (`micro_batch_indices`), written out so that
  TRL, with its sequential sampler, sees the same batches step by step.

Each trainer runs in a fresh subprocess (`run_child`), so its peak RSS is its own.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# a machine without ../shared beside the checkout (a lent GPU machine) points these at copies
HH = Path(os.environ.get("ALIGNKIT_BENCH_HH", SHARED / "data" / "hh-rlhf" / "harmless-base-sample.jsonl"))
WORK = Path(os.environ.get("ALIGNKIT_BENCH_WORK", ROOT / "runs" / "bench"))
VOCAB = 8192
MODEL_CFG = dict(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=688, max_position_embeddings=1024)
# another shape for the benchmark model (JSON of TinyLlamaConfig fields; gpu_check.sh builds a 0.48B one)
MODEL_CFG = {**MODEL_CFG, **json.loads(os.environ.get("ALIGNKIT_BENCH_MODEL") or "{}")}


def hh_pairs(limit: int | None = None) -> list:
    """hh-rlhf rows -> [(prompt, chosen, rejected)] with alignkit's HH reader (prompt up to the last
    shared '\\n\\nAssistant:', completions without their leading space)."""
    from alignkit.data.readers import read_records
    recs, _ = read_records(HH, shape="pairwise", on_bad_record="skip", limit=limit)
    return [(r.prompt, r.chosen, r.rejected) for r in recs]


def build_model(work: Path = WORK) -> Path:
    """Tokenizer + model folder, built once and reused by every run."""
    from alignkit.models.tiny import TinyLlamaConfig, build_tiny_llama, train_tokenizer
    out = work / "model"
    if (out / "model.safetensors").is_file():
        return _cache_on(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = [t for p, c, r in hh_pairs() for t in (p, c, r)]
    tok = train_tokenizer(texts, VOCAB)
    model = build_tiny_llama(tok, TinyLlamaConfig(**MODEL_CFG), seed=0)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return _cache_on(out)


def _cache_on(model_dir: Path) -> Path:
    """`use_cache: true` in the folder's configs, as in a released model: TRL's samplers read it from
    there (alignkit's asks for the KV cache itself). Training forwards pass use_cache=False on both
    sides, so only sampling sees the difference."""
    for name in ("config.json", "generation_config.json"):
        f = model_dir / name
        if f.is_file():
            cfg = json.loads(f.read_text())
            if cfg.get("use_cache") is not True:
                cfg["use_cache"] = True
                f.write_text(json.dumps(cfg, indent=2) + "\n")
    return model_dir


def trl_ids(tok, prompt: str, completion: str) -> tuple:
    """TRL 1.x's text tokenization (DPOTrainer._prepare_dataset): prompt alone and prompt+completion
    +EOS, the completion starting where the two diverge."""
    p = tok(prompt)["input_ids"]
    pc = tok(prompt + completion + tok.eos_token)["input_ids"]
    n = 0
    while n < min(len(p), len(pc)) and p[n] == pc[n]:
        n += 1
    return pc[:n], pc[n:]


def select_pairs(model_dir: Path, n: int | None, max_length: int, seed: int = 0) -> tuple:
    """-> (pairs, notes). The first n pairs (None: all) whose token ids agree between TRL and alignkit
    and fit in max_length."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_tokenizer
    tok = load_tokenizer(str(model_dir))
    enc = Encoder(tok, max_length)
    bos = tok.bos_token
    kept, too_long, differ, seen = [], 0, 0, 0
    for prompt, chosen, rejected in hh_pairs():
        seen += 1
        prompt = bos + prompt
        ok = True
        for comp in (chosen, rejected):
            e = enc.encode(prompt, comp)
            tp, tc = trl_ids(tok, prompt, comp)
            if e is None or e.truncated or len(tp) + len(tc) > max_length:
                too_long += 1
                ok = False
                break
            if (e.prompt_ids, e.completion_ids) != (tp, tc):
                differ += 1
                ok = False
                break
        if ok:
            kept.append((prompt, chosen, rejected))
        if len(kept) == n:
            break
    if n is not None and len(kept) < n:
        raise SystemExit(f"only {len(kept)} usable pairs (wanted {n})")
    notes = {"pairs_read": seen, "left_out_too_long": too_long, "left_out_tokenization_differs": differ}
    return kept, notes


def alignkit_order(n: int, batch_size: int, steps: int, seed: int) -> list:
    """The example indices alignkit visits in its first `steps` steps (one process, no accumulation)."""
    from alignkit.train.steps import micro_batch_indices
    return [i for m in range(steps) for i in micro_batch_indices(m, n, batch_size, 1, 0, seed)]


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: Path, args: list, env_extra: dict | None = None, timeout: int = 1800) -> dict:
    """Run `python script args` in a fresh process; it prints one JSON line starting 'RESULT '.
    Adds `process_s`: the child's whole wall time, interpreter start-up to exit, as a user waits."""
    import time
    path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH", "")) if x)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "TQDM_DISABLE": "1", "PYTHONPATH": path, **(env_extra or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(ROOT))
    process_s = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[len("RESULT "):]), "process_s": process_s}
    raise RuntimeError(f"{script.name} {' '.join(args)} failed (exit {proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")


def matmul_peak(dtype: str = "fp32", n: int = 1024, reps: int = 20) -> float:
    """This machine's measured matmul rate (FLOP/s) at torch's current thread count (on the GPU when
    there is one): the best of `reps` (n x n) @ (n x n) products (2 n^3 FLOPs each), fp32 or bf16."""
    import time
    import torch
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    cuda = torch.cuda.is_available()
    if cuda:
        n = max(n, 8192)  # a GPU needs a large product to reach its rate
    dev = "cuda" if cuda else "cpu"
    a, b = torch.randn(n, n, device=dev).to(dt), torch.randn(n, n, device=dev).to(dt)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.mm(a, b)
    sync()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def matmul_params(model_dir: Path) -> int:
    """Weights that take part in a matmul per token (every Linear of the blocks, and the LM head; not
    the embedding lookup, norms or attention scores) from the model's config: the N of the usual
    6 N tokens estimate of training FLOPs (2 N per token forward, 4 N backward)."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    hd = cfg.get("head_dim") or h // heads
    per_layer = h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * cfg["intermediate_size"]
    return cfg["num_hidden_layers"] * per_layer + h * cfg["vocab_size"]


def trl_peft_config(a):
    """The peft LoraConfig TRL gets for --lora-r: alignkit's defaults (TrainConfig's alpha, dropout and
    target modules, as `alignkit train --lora-r` applies them), so both sides train the same adapters.
    None: full fine-tuning."""
    if not a.lora_r:
        return None
    from peft import LoraConfig
    from alignkit.train.config import TrainConfig
    c = TrainConfig()
    return LoraConfig(r=a.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                      target_modules=list(c.lora_target_modules), task_type="CAUSAL_LM")


def step_median(times: list) -> float:
    """Median wall seconds of the optimizer steps after the first (warm-up): times are the (wall, CPU)
    clock points at the end of each step."""
    return median([b[0] - a[0] for a, b in zip(times, times[1:])])


def write_json(path: str | None, summary: dict) -> None:
    """The benchmark's summary as JSON at `path` (nothing when no --json was given)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(summary, indent=1))


def median(xs: list) -> float:
    return statistics.median(xs)


def machine() -> str:
    import platform
    import torch
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f"{torch.cuda.get_device_name(0)}, " if torch.cuda.is_available() else ""
    return (f"{gpu}{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


# --- the side-by-side harness ------------------------------------------------------------------------
def parser(doc: str):
    import argparse
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (TRL, alignkit, TRL, ...)")
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="torch threads in each run (0 = torch's default)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast on both sides")
    p.add_argument("--only", choices=["trl", "alignkit"], default=None, help="run one side only")
    p.add_argument("--json", default="", help="also write the figures to this file")
    p.add_argument("--ablate", action="append", default=[], metavar="KEY=VALUE",
                   help="also run alignkit with this config override (repeatable), as a third side "
                        "'ablated' in the same alternating rounds, e.g. --ablate fused_adamw=false")
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)  # child: overrides
    p.add_argument("--child", choices=["trl", "alignkit"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", default="", metavar="DIR",
                   help="model folder for both sides (default: the 5.26M hh benchmark model, build_model)")
    p.add_argument("--lora-r", type=int, default=0,
                   help="LoRA rank on both sides (0 = full fine-tuning); alpha 16, no dropout, adapters on "
                        "q/k/v/o/gate/up/down (alignkit's default targets; TRL gets the same peft LoraConfig)")
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    return p


def clock_engine() -> list:
    """Record (wall, CPU) time at the end of every alignkit optimizer step: the same clock point as
    TRL's `on_step_end` callback. Returns the list that fills up."""
    import time
    from alignkit.train.engine import Engine
    times, step = [], Engine.optimizer_step

    def clocked(self, micro_batches, compute):
        out = step(self, micro_batches, compute)
        times.append((time.perf_counter(), time.process_time()))
        return out
    Engine.optimizer_step = clocked
    return times


def child_overrides(a) -> dict:
    """The child's --set KEY=VALUE overrides, values parsed as YAML (false, 1e-4, ...)."""
    import yaml
    out = {}
    for item in a.set:
        key, _, value = item.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


def child(a, run):
    """In the child process: run one trainer, print its figures as one RESULT line."""
    import shutil
    import torch
    shutil.rmtree(a.out, ignore_errors=True)
    if a.threads:
        torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    res = run(a)
    t = res.pop("times")
    items = (len(t) - 1) * a.batch_size
    res["per_s"] = items / (t[-1][0] - t[0][0])
    res["per_cpu_s"] = items / (t[-1][1] - t[0][1])  # CPU seconds of this process, all threads
    res["step_median_s"] = step_median(t)
    res["peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available():
        res["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    res["load"] = (load0 + os.getloadavg()[0]) / 2
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res), flush=True)


def benchmark_sides(a) -> list:
    """The sides of a run: TRL and alignkit (or --only one), plus "ablated" with --ablate."""
    sides = [a.only] if a.only else ["trl", "alignkit"]
    if a.ablate:
        sides.append("ablated")
        print(f"ablated: alignkit with {' '.join(a.ablate)}")
    return sides


def side_args(a, side: str) -> list:
    """The child's --child flag, and for the ablated side its --set overrides."""
    if side == "ablated":
        return ["--child", "alignkit", *[x for kv in a.ablate for x in ("--set", kv)]]
    return ["--child", side]


def pair_tokens(model_dir: Path, pairs: list, max_length: int) -> float:
    """Mean tokens per pair as both sides' models see them: (prompt + chosen) + (prompt + rejected)."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_tokenizer
    enc = Encoder(load_tokenizer(str(model_dir)), max_length)
    n = 0
    for p, c, r in pairs:
        for comp in (c, r):
            e = enc.encode(p, comp)
            n += len(e.prompt_ids) + len(e.completion_ids)
    return n / len(pairs)


def utilisation(summary: dict, sides: list, model_dir: Path, pairs: list, a, lm_head: bool = True):
    """Achieved model FLOP/s (6 N per token of each pair's two sequences, forward and backward: the
    same useful work on both sides, whatever each computes) next to this machine's measured matmul
    peak at the runs' thread count and dtype; printed and added to the summary."""
    import torch
    tokens = pair_tokens(model_dir, pairs, a.max_length)
    n = matmul_params(model_dir)
    if not lm_head:  # a reward model scores with a scalar head instead of the LM head
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
        n -= cfg["hidden_size"] * cfg["vocab_size"]
    before = torch.get_num_threads()
    if a.threads:
        torch.set_num_threads(a.threads)
    peak = matmul_peak(a.dtype)
    torch.set_num_threads(before)
    summary["flops"] = {"tokens_per_pair": tokens, "matmul_params": n, "peak_flops_per_s": peak,
                        "dtype": a.dtype, "threads": a.threads or before}
    print(f"utilisation: {tokens:.0f} tokens per pair, N = {n / 1e6:.2f}M matmul weights, measured {a.dtype} "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s ({a.threads or before} threads)")
    for s in sides:
        f = 6 * n * tokens * summary[s]["per_s"]
        summary[s]["flops_per_s"], summary[s]["mfu"] = f, f / peak
        print(f"{s:8s}: {f / 1e9:.2f} GFLOP/s of model work = {100 * f / peak:.1f}% of the matmul peak")


def compare(script: Path, a, name: str, unit: str = "pairs"):
    """Alternate TRL and alignkit runs of `script` (fresh processes), print and return the medians."""
    model = Path(a.model) if a.model else build_model()
    n = a.steps * a.batch_size
    kept, notes = select_pairs(model, n, a.max_length)
    order = alignkit_order(n, a.batch_size, a.steps, seed=0)
    data = WORK / f"{name}_pairs.json"
    data.write_text(json.dumps(kept))  # alignkit reads these and shuffles them itself...
    trl_data = WORK / f"{name}_pairs_trl_order.json"
    trl_data.write_text(json.dumps([kept[i] for i in order]))  # ...TRL reads them in that order, sequentially
    print(f"machine: {machine()}")
    print(f"model: {model} ({matmul_params(model) / 1e6:.2f}M matmul weights), data: {n} hh-rlhf pairs ({notes})")
    print(f"batch {a.batch_size}, max length {a.max_length}, {a.steps} steps, {a.rounds} alternating rounds, "
          f"{a.dtype}, {f'LoRA r {a.lora_r}' if a.lora_r else 'full fine-tuning'}, threads {a.threads or 'torch default'}")
    print("timed: end of step 1 -> end of step N (forward, backward, optimizer, logging); not timed: imports, "
          "loading, tokenization, reference pass, step 1", flush=True)
    sides = benchmark_sides(a)
    runs = {s: [] for s in sides}
    for r in range(a.rounds):
        for s in sides:
            args = [*side_args(a, s), "--model", str(model), "--data", str(trl_data if s == "trl" else data),
                    "--out", str(WORK / f"{name}-{s}"), "--steps", str(a.steps), "--batch-size", str(a.batch_size),
                    "--max-length", str(a.max_length), "--threads", str(a.threads), "--dtype", a.dtype,
                    "--lora-r", str(a.lora_r)]
            res = run_child(script, args)
            runs[s].append(res)
            lo = res["losses"]
            gpu = f", GPU {res['peak_gpu_mb']:.0f} MiB" if "peak_gpu_mb" in res else ""
            print(f"round {r + 1} {s:8s}: {res['per_s']:.2f} {unit}/s, step {res['step_median_s']:.2f} s "
                  f"({res['per_cpu_s']:.2f} {unit} per CPU-second, "
                  f"load {res['load']:.1f}), peak RSS {res['peak_rss_mb']:.0f} MiB{gpu}, loss step0={lo[0]:.6f} "
                  f"step1={lo[1]:.6f} step2={lo[2]:.6f}", flush=True)
    summary = {"benchmark": name, "machine": machine(), "model": str(model), "notes": notes, "steps": a.steps,
               "batch_size": a.batch_size, "max_length": a.max_length, "dtype": a.dtype, "threads": a.threads,
               "lora_r": a.lora_r}
    for s in sides:
        keys = [k for k in ("per_s", "per_cpu_s", "step_median_s", "peak_rss_mb", "peak_gpu_mb", "load", "process_s")
                if k in runs[s][0]]
        summary[s] = {k: median([x[k] for x in runs[s]]) for k in keys}
        summary[s].update(losses=runs[s][0]["losses"], runs=[x["per_s"] for x in runs[s]])
    print()
    for s in sides:
        m = summary[s]
        gpu = f", peak GPU memory {m['peak_gpu_mb']:.0f} MiB" if "peak_gpu_mb" in m else ""
        print(f"{s:8s}: median {m['per_s']:.2f} {unit}/s, step {m['step_median_s']:.2f} s "
              f"({m['per_cpu_s']:.2f} per CPU-second), "
              f"peak RSS {m['peak_rss_mb']:.0f} MiB{gpu}, load average {m['load']:.1f}, whole process "
              f"{m['process_s']:.1f} s")
    utilisation(summary, sides, model, kept, a, lm_head=name != "rm")
    if "ablated" in summary and "alignkit" in summary:
        k, b = summary["alignkit"], summary["ablated"]
        summary["ablation"] = {"overrides": a.ablate, "ratio": k["per_s"] / b["per_s"],
                               "loss_diff_max": max(abs(x - y) for x, y in zip(k["losses"], b["losses"]))}
        print(f"alignkit / ablated ({' '.join(a.ablate)}): {summary['ablation']['ratio']:.2f}x {unit}/s (above 1: "
              f"alignkit is faster); largest "
              f"|loss diff| over the steps {summary['ablation']['loss_diff_max']:.1e}")
    if "trl" in summary and "alignkit" in summary:
        t, k = summary["trl"], summary["alignkit"]
        summary["ratio"] = k["per_s"] / t["per_s"]
        summary["step_ratio"] = t["step_median_s"] / k["step_median_s"]
        summary["cpu_ratio"] = k["per_cpu_s"] / t["per_cpu_s"]
        summary["rss_ratio"] = k["peak_rss_mb"] / t["peak_rss_mb"]
        diffs = [abs(x - y) for x, y in zip(t["losses"], k["losses"])]
        summary["loss_diff_step0"], summary["loss_diff_max"] = diffs[0], max(diffs)
        print(f"alignkit / TRL: {summary['ratio']:.2f}x {unit}/s wall ({summary['cpu_ratio']:.2f}x per CPU-second; "
              f"median step {summary['step_ratio']:.2f}x shorter), "
              f"peak RSS {k['peak_rss_mb']:.0f} vs {t['peak_rss_mb']:.0f} MiB ({summary['rss_ratio']:.2f}x)")
        print(f"step-0 loss: TRL {t['losses'][0]:.6f}, alignkit {k['losses'][0]:.6f} (|diff| {diffs[0]:.1e}); "
              f"largest |diff| over all {len(diffs)} steps, after updates too: {max(diffs):.1e}")
        print("step-0 loss agrees to 1e-4" if diffs[0] < 1e-4 else "STEP-0 LOSS DIFFERS")
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))
    return summary
