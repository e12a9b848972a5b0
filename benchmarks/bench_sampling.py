"""Sampling, side by side: alignkit's decoder (alignkit/models/decode.py) against transformers'
`generate` on the same model, prompts and settings, in one process, alternating, after a warm-up call.
Not part of the test suite.

    .venv/bin/python benchmarks/bench_sampling.py [--rounds 3] [--threads 1] [--samples 1000] [--json F]

Throughput (tokens sampled / seconds inside the call), three shapes:
  hh        the benchmark's 5.26M Llama (common.build_model), 8 hh-rlhf prompts x 8 samples x 64 tokens
            (bench_rl.py's GRPO batch)
  stories   ../shared/models/stories260K, 8 story openings x 8 samples x 48 tokens
  bundled   the bundled task's shipped base model, 16 held-out prompts x 4 samples x 48 tokens
            (quickstart's shape)
Sides: `generate` (HFGenerator(fast=False): transformers' generate, KV cache, one left-padded batch),
`alignkit` (the default: shared prefill, grouped attention, inverse-CDF draws) and `exact` (the same
decoder with transformers' multinomial draw; its rows are compared token by token with generate's
for the same seed).

Distribution (--samples N, on the bundled task, where r* scores a sample): N samples from generate
and N from alignkit's default sampler (N/4 held-out prompts x 4, different seeds), and for
calibration N more from generate with a third seed: mean r*, mean length in tokens and EOS rate with
their standard errors, and each difference in units of its standard error.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STORIES = ["Once upon a time", "One day", "Once upon a time, there was a little girl", "Tom and his friend",
           "Lily was", "There was a big dog", "One sunny day", "Sam had a"]


def setting(name: str, a):
    """-> (model, tokenizer, prompt ids with repeats, max_new_tokens)."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    if name == "hh":
        from bench_rl import select_prompts
        path = common.build_model()
        prompts, _ = select_prompts(path, 8, 256)
        k, n_new = 8, 64
    elif name == "stories":
        path, prompts, k, n_new = common.SHARED / "models" / "stories260K", STORIES, 8, 48
    else:
        from alignkit.synthetic.base import build_base
        from alignkit.synthetic.prompts import as_chat, sample_prompts
        path = build_base(log=lambda *x: None)
        prompts = [as_chat(p.text) for p in sample_prompts(16, "heldout", seed=0)]
        k, n_new = 4, 48
    model, tok = load_causal_lm(str(path)), load_tokenizer(str(path))
    enc = Encoder(tok, 10**6)
    return model.eval(), tok, [enc.prompt_ids(p) for p in prompts for _ in range(k)], n_new


def throughput(a) -> dict:
    import torch
    from alignkit.models.generate import HFGenerator, SamplingConfig
    out = {}
    for name in a.settings:
        model, tok, ids, n_new = setting(name, a)
        cfg = SamplingConfig(max_new_tokens=n_new, temperature=1.0, top_p=1.0, batch_size=len(ids))
        gens = {"generate": HFGenerator(model, tok, fast=False), "alignkit": HFGenerator(model, tok),
                "exact": HFGenerator(model, tok, draw="multinomial")}
        for g in gens.values():  # warm-up: first-call allocations and lazy imports
            g.generate(ids[:2], SamplingConfig(max_new_tokens=4, batch_size=2), seed=0)
        runs = {s: [] for s in gens}
        identical = []
        for r in range(a.rounds):
            rows = {}
            for side, g in gens.items():
                load0 = os.getloadavg()[0]
                t = time.perf_counter()
                rows[side] = g.generate(ids, cfg, seed=100 + r)
                dt = time.perf_counter() - t
                n = sum(map(len, rows[side]))
                runs[side].append({"tokens_per_s": n / dt, "seconds": dt, "tokens": n,
                                   "load": (load0 + os.getloadavg()[0]) / 2})
                print(f"{name} round {r + 1} {side:9s}: {n / dt:8.1f} tokens/s ({n} tokens in {dt:.2f} s, "
                      f"load {runs[side][-1]['load']:.1f})", flush=True)
            identical.append(sum(x == y for x, y in zip(rows["exact"], rows["generate"])))
        res = {"sequences": len(ids), "max_new_tokens": n_new, "threads": torch.get_num_threads(),
               "identical_rows_exact_vs_generate": identical}
        for side, rs in runs.items():
            res[side] = {k: common.median([x[k] for x in rs]) for k in ("tokens_per_s", "seconds", "load")}
            res[side]["runs"] = [x["tokens_per_s"] for x in rs]
        res["ratio"] = res["alignkit"]["tokens_per_s"] / res["generate"]["tokens_per_s"]
        res["ratio_exact"] = res["exact"]["tokens_per_s"] / res["generate"]["tokens_per_s"]
        print(f"{name}: alignkit / generate {res['ratio']:.2f}x tokens/s, exact / generate {res['ratio_exact']:.2f}x "
              f"(medians); exact rows identical to generate's: {identical} of {len(ids)}", flush=True)
        out[name] = res
    return out


def _stats(xs: list) -> tuple:
    m = sum(xs) / len(xs)
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var / len(xs))


def distribution(a) -> dict:
    from alignkit.models.generate import HFGenerator, SamplingConfig
    from alignkit.synthetic.base import build_base
    from alignkit.synthetic.evaluate import load_policy, sample
    from alignkit.synthetic.metrics import true_reward_breakdown
    from alignkit.synthetic.prompts import as_chat, sample_prompts
    model, tok = load_policy(str(build_base(log=lambda *x: None)))
    infos = sample_prompts(a.samples // 4, "heldout", seed=1)
    prompts = [as_chat(p.text) for p in infos for _ in range(4)]
    texts = [p.text for p in infos for _ in range(4)]
    cfg = SamplingConfig(max_new_tokens=48, temperature=1.0, top_p=1.0, batch_size=64)
    eos = tok.eos_token_id
    res = {}
    for label, fast, seed in (("generate", False, 1), ("alignkit", True, 2), ("generate-again", False, 3)):
        import alignkit.synthetic.evaluate as ev
        real = ev.HFGenerator
        ev.HFGenerator = lambda m, t, f=fast: HFGenerator(m, t, fast=f)  # sample() builds its own generator
        try:
            _, c_ids, outs = sample(model, tok, prompts, cfg, seed)
        finally:
            ev.HFGenerator = real
        r = [true_reward_breakdown(p, o)["total"] for p, o in zip(texts, outs)]
        lens = [float(len(c)) for c in c_ids]
        ended = [float(bool(c) and c[-1] == eos) for c in c_ids]
        res[label] = {"n": len(r), "reward": _stats(r), "length": _stats(lens), "eos_rate": _stats(ended)}
        print(f"{label:14s}: n={len(r)} mean r* {res[label]['reward'][0]:.4f} +- {res[label]['reward'][1]:.4f}, "
              f"length {res[label]['length'][0]:.2f} +- {res[label]['length'][1]:.2f} tokens, EOS rate "
              f"{res[label]['eos_rate'][0]:.3f} +- {res[label]['eos_rate'][1]:.3f}", flush=True)
    for other in ("alignkit", "generate-again"):
        z = {}
        for k in ("reward", "length", "eos_rate"):
            (m1, s1), (m2, s2) = res["generate"][k], res[other][k]
            se = math.sqrt(s1 ** 2 + s2 ** 2)
            z[k] = (m2 - m1) / se if se > 0 else (0.0 if m1 == m2 else math.inf)
        res[f"z_{other}_vs_generate"] = z
        print(f"{other} - generate, in standard errors: " + ", ".join(f"{k} {v:+.2f}" for k, v in z.items()))
    return res


def flat_vs_grouped(a) -> dict:
    """The decoder's two attention forms against prompt length (FLAT_PROMPT_KV picks between
    them): 8 prompts x 8 samples x 32 tokens on the hh model and on stories260K, each form forced,
    best of the rounds."""
    from alignkit.models import decode
    out, real = {}, decode.FLAT_PROMPT_KV
    try:
        for name in ("hh", "stories"):
            out[name] = _flat_vs_grouped(a, name)
    finally:
        decode.FLAT_PROMPT_KV = real
    return out


def _flat_vs_grouped(a, name: str) -> dict:
    from alignkit.models import decode
    from alignkit.models.generate import HFGenerator, SamplingConfig
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    path = common.build_model() if name == "hh" else common.SHARED / "models" / "stories260K"
    model, tok = load_causal_lm(str(path)).eval(), load_tokenizer(str(path))
    cfg = SamplingConfig(max_new_tokens=32, temperature=1.0, batch_size=64)
    gen = HFGenerator(model, tok)
    out = {}
    for length in (8, 16, 24, 48, 96, 192):
        ids = [[1] + [10 + g] * (length - 1) for g in range(8) for _ in range(8)]  # 8 groups of 8
        best = {}
        for r in range(a.rounds):
            for form, limit in (("flat", 10**12), ("grouped", 0)):
                decode.FLAT_PROMPT_KV = limit
                t = time.perf_counter()
                gen.generate(ids, cfg, seed=r)
                best[form] = min(best.get(form, float("inf")), time.perf_counter() - t)
        out[length] = best
        print(f"{name} prompt {length:4d} tokens: flat {best['flat']:.2f} s, grouped {best['grouped']:.2f} s "
              f"(grouped / flat {best['grouped'] / best['flat']:.2f}; load {os.getloadavg()[0]:.1f})", flush=True)
    return out


def main():
    import argparse
    import torch
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    p.add_argument("--settings", default="hh,stories,bundled", help="throughput settings, comma-separated")
    p.add_argument("--samples", type=int, default=1000, help="distribution check: samples per sampler (0 = skip)")
    p.add_argument("--json", default="")
    p.add_argument("--flat-probe", action="store_true", help="only: the two attention forms against prompt length")
    a = p.parse_args()
    a.settings = [s for s in a.settings.split(",") if s]
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"machine: {common.machine()}", flush=True)
    if a.flat_probe:
        return flat_vs_grouped(a)
    summary = {"benchmark": "sampling", "machine": common.machine(), "rounds": a.rounds,
               "throughput": throughput(a)}
    if a.samples:
        summary["distribution"] = distribution(a)
    common.write_json(a.json, summary)
    return summary


if __name__ == "__main__":
    main()
