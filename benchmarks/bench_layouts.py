"""Where alignkit's DPO speed comes from, and the CPU defaults: one DPO micro-batch's forward + backward
(the policy's per-token log-probs, summed) in each batch layout, dtype and thread count, on the same
hh-rlhf batches and 5.2M-parameter model as bench_dpo.py. Not part of the test suite.

    .venv/bin/python benchmarks/bench_layouts.py [--batches 4] [--repeats 3] [--threads 1]

Layouts:
  plain        one left-padded row per sequence, LM head on the completion columns only (logits_to_keep)
  shared       prefix sharing only: one row per pair [prompt, chosen, rejected], rows padded
  padfree      padding-free only: every sequence its own segment, packed into rows of ~512 tokens
  packed-N     both (what alignkit trains with): shared prompts, packed into rows of ~N tokens
Each configuration runs every batch once per repeat, configurations interleaved; the figure is the
median over repeats of the summed time, relative to `packed-512` fp32 at --threads. The last two
rows run at the other thread count (1 when --threads is torch's default, else torch's default).
On a machine shared with other jobs, use --threads 1: two threads then mostly wait on each other
and the layout rows measure that instead.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="threads of the layout rows (0 = torch's default)")
    p.add_argument("--json", default="")
    a = p.parse_args()

    import torch
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    from alignkit.train import packing
    from alignkit.train.forward import collate, sequence_logps

    model_dir = common.build_model()
    pairs, _ = common.select_pairs(model_dir, a.batches * a.batch_size, a.max_length)
    model = load_causal_lm(str(model_dir))
    tok = load_tokenizer(str(model_dir))
    enc = Encoder(tok, a.max_length)
    batches = []
    for b in range(a.batches):
        seqs = []
        for prompt, chosen, rejected in pairs[b * a.batch_size:(b + 1) * a.batch_size]:
            for comp in (chosen, rejected):
                e = enc.encode(prompt, comp)
                seqs.append((e.prompt_ids, e.completion_ids))
        batches.append(seqs)

    own_segments = lambda seqs: [(list(p), [i]) for i, (p, _) in enumerate(seqs)]  # noqa: E731

    def layout(name: str, seqs: list):
        pad = tok.pad_token_id
        if name == "plain":
            return collate(seqs, pad)
        if name == "shared":
            return collate(seqs, pad, share_prefix=True, row_tokens=1)
        if name == "padfree":
            saved, packing.segments = packing.segments, own_segments
            try:
                return collate(seqs, pad, share_prefix=True, row_tokens=512)
            finally:
                packing.segments = saved
        return collate(seqs, pad, share_prefix=True, row_tokens=int(name.split("-")[1]))

    def step(batch, dtype: str):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
        with ctx:
            lp, _ = sequence_logps(model, batch)
        lp.sum().sum().backward()
        model.zero_grad(set_to_none=True)

    default_threads = torch.get_num_threads()
    base = a.threads or default_threads
    other = 1 if base != 1 else default_threads
    configs = [(lay, "fp32", base) for lay in ("plain", "shared", "padfree", "packed-512", "packed-1024", "packed-2048")]
    configs += [("packed-512", "bf16", base), ("plain", "bf16", base)]
    if other != base:
        configs += [("packed-512", "fp32", other), ("plain", "fp32", other)]
    prepared = {c: [layout(c[0], s) for s in batches] for c in configs}
    tokens = {c: sum(b.input_ids.numel() for b in prepared[c]) for c in configs}
    times = {c: [] for c in configs}
    load0 = os.getloadavg()[0]
    for c in configs:  # warm-up
        torch.set_num_threads(c[2])
        step(prepared[c][0], c[1])
    for _ in range(a.repeats):
        for c in configs:
            torch.set_num_threads(c[2])
            t = time.perf_counter()
            for b in prepared[c]:
                step(b, c[1])
            times[c].append(time.perf_counter() - t)
    torch.set_num_threads(default_threads)

    load = (load0 + os.getloadavg()[0]) / 2
    real = sum(len(p) + len(c) for s in batches for p, c in s)
    print(f"machine: {common.machine()}")
    print(f"{a.batches} DPO micro-batches of {a.batch_size} hh-rlhf pairs ({real} sequence tokens without sharing); "
          f"forward + backward of the policy log-probs; median of {a.repeats} interleaved repeats; load average {load:.1f}")
    print(f"{'layout':12s} {'dtype':5s} {'threads':7s} {'columns':>8s} {'s/batch':>8s} {'relative':>8s}")
    rows = []
    for c in configs:
        med = statistics.median(times[c]) / a.batches
        ref = statistics.median(times[("packed-512", "fp32", base)]) / a.batches
        threads = c[2]
        rows.append({"layout": c[0], "dtype": c[1], "threads": threads, "columns": tokens[c],
                     "s_per_batch": med, "relative": med / ref})
        print(f"{c[0]:12s} {c[1]:5s} {threads:7d} {tokens[c]:8d} {med:8.3f} {med / ref:8.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": common.machine(), "load": load, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
