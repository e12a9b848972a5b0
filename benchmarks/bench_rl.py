"""GRPO rollouts, side by side: TRL's GRPOTrainer vs alignkit's GRPO loop (alignkit/rl/loop.py) on the
same model folder, prompts, group size, completion length and optimizer steps. Not part of the test suite.

    .venv/bin/python benchmarks/bench_rl.py [--rounds 3] [--steps 3] [--threads 1] [--prompts-per-step 8] [--group 8]
        [--model DIR] [--lora-r 8] [--dtype bf16]

Each iteration (= one optimizer step on both sides): 8 hh-rlhf prompts x G = 8 sampled completions of
at most 64 new tokens (temperature 1, top-p 1, no top-k), scored by the same rule reward (distinct
words), reference log-probs for the k3 KL (beta 0.04), then one optimizer step over the 64 rows in
micro-batches of 16 (TRL: per_device_train_batch_size 16 x gradient_accumulation_steps 4, one
generation per step). Both sample with transformers' `generate` and the KV cache (alignkit's vLLM
backend needs a GPU). Both see the same prompt token ids in the same order; fp32 (or bf16 autocast
with --dtype bf16; LoRA adapters with --lora-r), no gradient checkpointing, AdamW at the same learning
rate.

Threads: 1 by default, on both sides. Sampling is many small operations (one token for 64 rows at a
time); on this 2-core machine shared with other jobs, 2 threads made them wait on each other: 33 new
tokens for 64 prompts took 6-23 s on 2 threads and 2.9 s on 1 (same process, alternating, load ~3.6),
and a first 3-step round ran TRL at 80 s a step on 2 threads (load 5.8), 30 s on 1 (load 3.9). `--threads 0`
gives torch's default.

Figures, over steps 2..N (the window between the end of step 1 and the end of the last step):
  generation tokens/s   completion tokens sampled / time inside the sampling call
  rollout tokens/s      completion tokens sampled / wall time of the window (sampling, scoring,
                        reference and policy passes, update)
  step time             window / (N - 1)
Losses are not compared: the two sides draw different samples (their samplers consume the RNG
differently), so their rewards and losses differ from the first step.

--generation-only: instead, alignkit's batched KV-cache sampling (HFGenerator, one left-padded batch)
against a naive loop that samples one prompt at a time, on the same prompts and model.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LR = 1e-6
BETA = 0.04


def reward(text: str) -> float:
    """The hh task's rule reward on both sides: distinct words, capped (a deterministic, cheap scorer)."""
    return min(len(set(text.split())), 32) / 32


# --task stories: the real pretrained TinyStories model with short story openings (issue 21's regime)
STORIES = ["Once upon a time", "One day", "Once upon a time, there was a little girl", "Tom and his friend",
           "Lily was", "There was a big dog", "One sunny day", "Sam had a", "Once upon a time, in a small town",
           "The cat", "Mia and her mom", "A little bird", "Once there was a boy", "Ben wanted to", "The sun was",
           "Sue found a"]


def task_reward(task: str):
    """text -> reward for both sides: distinct words (hh), alignkit's rule:positive (stories)."""
    if task == "stories":
        from alignkit.rewards.rules import positive
        return lambda text: positive("", text)
    return reward


def task_model(task: str) -> Path:
    return common.SHARED / "models" / "stories260K" if task == "stories" else common.build_model()


def select_prompts(model_dir: Path, n: int, max_prompt: int) -> tuple:
    """-> (n hh-rlhf prompts, BOS written as text, whose ids are the same for TRL's tokenization and
    alignkit's Encoder and at most max_prompt tokens long; notes)."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_tokenizer
    tok = load_tokenizer(str(model_dir))
    enc = Encoder(tok, 10**6)
    kept, too_long, differ, seen = [], 0, 0, set()
    for prompt, _, _ in common.hh_pairs():
        prompt = tok.bos_token + prompt
        if prompt in seen:
            continue
        seen.add(prompt)
        ids = enc.prompt_ids(prompt)
        if len(ids) > max_prompt:
            too_long += 1
        elif ids != tok(prompt)["input_ids"]:
            differ += 1
        else:
            kept.append(prompt)
        if len(kept) == n:
            break
    if len(kept) < n:
        raise SystemExit(f"only {len(kept)} usable prompts (wanted {n})")
    return kept, {"distinct_prompts_read": len(seen), "left_out_too_long": too_long,
                  "left_out_tokenization_differs": differ}


class GenClock:
    """Records (start, end, completion tokens) of every sampling call."""

    def __init__(self):
        self.calls = []

    def wrap(self, fn, count):
        def timed(*args, **kw):
            t = time.perf_counter()
            out = fn(*args, **kw)
            self.calls.append((t, time.perf_counter(), count(out)))
            return out
        return timed

    def after(self, t0: float) -> tuple:
        """(tokens, seconds) of the calls that started after t0."""
        calls = [c for c in self.calls if c[0] >= t0]
        return sum(c[2] for c in calls), sum(c[1] - c[0] for c in calls)


def child_trl(a) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    prompts = json.loads(Path(a.data).read_text())
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    rows = a.prompts_per_step * a.group
    args = GRPOConfig(
        output_dir=a.out, per_device_train_batch_size=a.micro_batch, gradient_accumulation_steps=rows // a.micro_batch,
        num_generations=a.group, max_completion_length=a.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
        beta=BETA, epsilon=0.2, loss_type="grpo", num_iterations=1, shuffle_dataset=False, max_steps=a.steps,
        learning_rate=LR, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        bf16=a.dtype == "bf16", fp16=False, gradient_checkpointing=False, use_cpu=not torch.cuda.is_available(),
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, seed=0, dataloader_num_workers=0)
    times, clock = [], GenClock()

    score = task_reward(a.task)

    def rule_reward(completions, **kw):
        return [score(c) for c in completions]

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append((time.perf_counter(), time.process_time()))

    trainer = GRPOTrainer(model=model, args=args, reward_funcs=rule_reward,
                          train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
                          processing_class=tok, callbacks=[Clock()], peft_config=common.trl_peft_config(a))
    trainer._generate_single_turn = clock.wrap(trainer._generate_single_turn, lambda out: sum(map(len, out[0])))
    trainer.train()
    return {"times": times, "clock": clock}


def child_alignkit(a) -> dict:
    from alignkit.rewards.judge import Judge
    from alignkit.rl import rollout
    from alignkit.rl.trainer import train_rl
    from alignkit.rl.methods import GRPO, GRPOConfig
    from alignkit.train.config import TrainConfig

    score_fn = task_reward(a.task)

    class RuleJudge(Judge):
        name = "rule"

        def score(self, prompts, responses):
            return [score_fn(r) for r in responses]

    prompts = json.loads(Path(a.data).read_text())
    times, clock = common.clock_engine(), GenClock()
    rollout.HFBackend.generate = clock.wrap(rollout.HFBackend.generate, lambda out: sum(map(len, out)))
    rollout.VLLMBackend.generate = clock.wrap(rollout.VLLMBackend.generate, lambda out: sum(map(len, out)))
    cfg = TrainConfig(batch_size=a.micro_batch, max_steps=a.steps, learning_rate=LR, lr_scheduler="linear",
                      warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, max_length=a.max_length, dtype=a.dtype,
                      seed=0, eval_fraction=0.0, progress=False, num_threads=a.threads, lora_r=a.lora_r)
    mcfg = GRPOConfig(samples_per_prompt=a.group, prompts_per_step=a.prompts_per_step, max_new_tokens=a.max_new_tokens,
                      temperature=1.0, top_p=1.0, kl_coef=BETA, kl_estimator="k3", loss_type="sequence",
                      generator="hf", generation_batch_size=a.prompts_per_step * a.group, clip_range=0.2)
    sets = common.child_overrides(a)  # --ablate: TrainConfig or GRPOConfig fields
    cfg = dataclasses.replace(cfg, **{k: v for k, v in sets.items() if k in TrainConfig.__dataclass_fields__})
    mcfg = dataclasses.replace(mcfg, **{k: v for k, v in sets.items() if k not in TrainConfig.__dataclass_fields__})
    train_rl(GRPO, cfg, mcfg, a.model, prompts, a.out, log=lambda *x: None, judge=RuleJudge())
    return {"times": times, "clock": clock}


def rl_utilisation(summary: dict, sides: list, model: Path, prompts: list, a):
    """Achieved model FLOP/s of a GRPO step: per row of prompt + completion tokens, 2 N sampling
    (prefill and decode), 2 N the reference pass, 6 N the update (forward and backward); no separate
    old-log-prob pass on either side. The same useful work on both sides; next to the measured peak."""
    import torch
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_tokenizer
    enc = Encoder(load_tokenizer(str(model)), 10**6)
    prompt_tokens = sum(len(enc.prompt_ids(p)) for p in prompts) / len(prompts)
    n = common.matmul_params(model)
    before = torch.get_num_threads()
    if a.threads:
        torch.set_num_threads(a.threads)
    peak = common.matmul_peak(a.dtype)
    torch.set_num_threads(before)
    rows = a.prompts_per_step * a.group
    summary["flops"] = {"matmul_params": n, "prompt_tokens": prompt_tokens, "peak_flops_per_s": peak, "dtype": a.dtype}
    print(f"utilisation: N = {n / 1e6:.3f}M matmul weights, {prompt_tokens:.1f} prompt tokens, measured {a.dtype} "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s")
    for s in sides:
        m = summary[s]
        f = 10 * n * rows * (prompt_tokens + m["mean_completion"]) / m["step_s"]
        m["flops_per_s"], m["mfu"] = f, f / peak
        print(f"{s:8s}: {f / 1e9:.3f} GFLOP/s of model work = {100 * f / peak:.2f}% of the matmul peak")


def child(a):
    import shutil
    import torch
    shutil.rmtree(a.out, ignore_errors=True)
    if a.threads:
        torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    res = (child_trl if a.child == "trl" else child_alignkit)(a)
    t, clock = res["times"], res["clock"]
    window = t[-1][0] - t[0][0]
    tokens, gen_s = clock.after(t[0][0])
    out = {"step_s": window / (len(t) - 1), "step_median_s": common.step_median(t), "gen_tokens_per_s": tokens / gen_s, "rollout_tokens_per_s": tokens / window,
           "gen_share": gen_s / window, "mean_completion": tokens / ((len(t) - 1) * a.prompts_per_step * a.group),
           "cpu_step_s": (t[-1][1] - t[0][1]) / (len(t) - 1), "peak_rss_mb": common.peak_rss_mb(),
           "load": (load0 + os.getloadavg()[0]) / 2, "threads": torch.get_num_threads()}
    print("RESULT " + json.dumps(out), flush=True)


# --- generation only: batched KV cache vs one prompt at a time ---------------------------------------
def generation_only(a, prompts: list):
    import torch
    from alignkit.data.tokenize import Encoder
    from alignkit.models.generate import HFGenerator, SamplingConfig
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    model_dir = common.build_model()
    if a.threads:
        torch.set_num_threads(a.threads)
    model, tok = load_causal_lm(str(model_dir)), load_tokenizer(str(model_dir))
    enc = Encoder(tok, 10**6)
    ids = [enc.prompt_ids(p) for p in prompts for _ in range(a.group)]
    gen = HFGenerator(model, tok)
    runs = {"batched": [], "per-prompt": []}
    for r in range(a.rounds):
        for kind in runs:
            cfg = SamplingConfig(max_new_tokens=a.max_new_tokens, temperature=1.0,
                                 batch_size=len(ids) if kind == "batched" else 1)
            load0 = os.getloadavg()[0]
            t = time.perf_counter()
            out = gen.generate(ids, cfg, seed=r)
            dt = time.perf_counter() - t
            n = sum(map(len, out))
            runs[kind].append({"tokens_per_s": n / dt, "seconds": dt, "tokens": n,
                               "load": (load0 + os.getloadavg()[0]) / 2})
            print(f"round {r + 1} {kind:10s}: {n / dt:8.1f} tokens/s ({n} tokens in {dt:.1f} s, "
                  f"load {runs[kind][-1]['load']:.1f})", flush=True)
    summary = {"benchmark": "generation", "machine": common.machine(), "sequences": len(ids),
               "max_new_tokens": a.max_new_tokens}
    for kind, rs in runs.items():
        summary[kind] = {k: common.median([x[k] for x in rs]) for k in ("tokens_per_s", "seconds", "load")}
    summary["ratio"] = summary["batched"]["tokens_per_s"] / summary["per-prompt"]["tokens_per_s"]
    print(f"batched / per-prompt: {summary['ratio']:.2f}x tokens/s (medians)")
    return summary


def main():
    p = common.parser(__doc__)
    p.set_defaults(steps=3, threads=1)
    p.add_argument("--prompts-per-step", type=int, default=8)
    p.add_argument("--group", type=int, default=8, help="completions per prompt (G)")
    p.add_argument("--micro-batch", type=int, default=16, help="rows per forward/backward")
    p.add_argument("--max-new-tokens", type=int, default=0, help="completion length (0 = the task's: hh 64, stories 48)")
    p.add_argument("--task", choices=["hh", "stories"], default="hh",
                   help="hh: the 5.26M benchmark model on hh-rlhf prompts; stories: ../shared/models/stories260K "
                        "on short story openings, rule:positive reward")
    p.add_argument("--max-prompt", type=int, default=256, help="longest prompt used, in tokens")
    p.add_argument("--generation-only", action="store_true", help="batched vs per-prompt sampling instead")
    a = p.parse_args()
    a.max_new_tokens = a.max_new_tokens or (48 if a.task == "stories" else 64)
    if a.child:
        return child(a)
    model = Path(a.model) if a.model else task_model(a.task)
    n = a.steps * a.prompts_per_step
    if a.task == "stories":
        prompts, notes = [STORIES[i % len(STORIES)] for i in range(n)], {"story_openings": len(STORIES)}
    else:
        prompts, notes = select_prompts(model, n, a.max_prompt)
    if a.generation_only:
        print(f"machine: {common.machine()}")
        print(f"{a.prompts_per_step} prompts x {a.group} samples, {a.max_new_tokens} new tokens, {a.rounds} rounds")
        summary = generation_only(a, prompts[:a.prompts_per_step])
        if a.json:
            Path(a.json).write_text(json.dumps(summary, indent=1))
        return summary
    order = common.alignkit_order(n, a.prompts_per_step, a.steps, seed=0)
    data = common.WORK / "rl_prompts.json"
    data.write_text(json.dumps(prompts))  # alignkit shuffles them itself...
    trl_data = common.WORK / "rl_prompts_trl_order.json"
    trl_data.write_text(json.dumps([prompts[i] for i in order]))  # ...TRL reads them in that order
    rows = a.prompts_per_step * a.group
    print(f"machine: {common.machine()}")
    print(f"model: {model}, {n} {'story' if a.task == 'stories' else 'hh-rlhf'} prompts ({notes})")
    print(f"GRPO: {a.prompts_per_step} prompts x G={a.group} = {rows} completions of <= {a.max_new_tokens} tokens per "
          f"step, micro-batch {a.micro_batch}, {a.steps} steps, {a.rounds} alternating rounds, {a.dtype}, "
          f"{f'LoRA r {a.lora_r}' if a.lora_r else 'full fine-tuning'}, "
          f"threads {a.threads or 'torch default'}")
    print("timed: end of step 1 -> end of step N; not timed: imports, loading, step 1", flush=True)
    sides = common.benchmark_sides(a)
    runs = {s: [] for s in sides}
    for r in range(a.rounds):
        for s in sides:
            args = [*common.side_args(a, s), "--model", str(model), "--data", str(trl_data if s == "trl" else data),
                    "--out", str(common.WORK / f"rl-{s}"), "--steps", str(a.steps), "--threads", str(a.threads),
                    "--max-length", str(a.max_length), "--prompts-per-step", str(a.prompts_per_step),
                    "--group", str(a.group), "--micro-batch", str(a.micro_batch),
                    "--max-new-tokens", str(a.max_new_tokens), "--task", a.task, "--dtype", a.dtype,
                    "--lora-r", str(a.lora_r)]
            res = common.run_child(Path(__file__), args)
            runs[s].append(res)
            print(f"round {r + 1} {s:8s}: step {res['step_s']:.2f} s (median {res['step_median_s']:.2f}), generation {res['gen_tokens_per_s']:.0f} "
                  f"tokens/s ({100 * res['gen_share']:.0f}% of the step), rollout {res['rollout_tokens_per_s']:.0f} "
                  f"tokens/s, mean completion {res['mean_completion']:.1f} tokens, peak RSS "
                  f"{res['peak_rss_mb']:.0f} MiB, load {res['load']:.1f}", flush=True)
    keys = ("step_s", "step_median_s", "cpu_step_s", "gen_tokens_per_s", "rollout_tokens_per_s", "gen_share", "mean_completion",
            "peak_rss_mb", "load", "process_s")
    summary = {"benchmark": "grpo", "machine": common.machine(), "model": str(model), "dtype": a.dtype,
               "lora_r": a.lora_r, "notes": notes, "steps": a.steps,
               "prompts_per_step": a.prompts_per_step, "group": a.group, "micro_batch": a.micro_batch,
               "max_new_tokens": a.max_new_tokens, "threads": a.threads}
    print()
    for s in sides:
        summary[s] = {k: common.median([x[k] for x in runs[s]]) for k in keys}
        summary[s]["runs"] = [x["step_s"] for x in runs[s]]
        m = summary[s]
        print(f"{s:8s}: median step {m['step_s']:.2f} s, generation {m['gen_tokens_per_s']:.0f} tokens/s, rollout "
              f"{m['rollout_tokens_per_s']:.0f} tokens/s, peak RSS {m['peak_rss_mb']:.0f} MiB, load {m['load']:.1f}, "
              f"whole process {m['process_s']:.1f} s ({a.steps} steps)")
    rl_utilisation(summary, sides, model, prompts, a)
    if "ablated" in summary and "alignkit" in summary:
        k, b = summary["alignkit"], summary["ablated"]
        summary["ablation"] = {"overrides": a.ablate, "step_ratio": b["step_s"] / k["step_s"],
                               "update_ratio": (b["step_s"] * (1 - b["gen_share"])) / (k["step_s"] * (1 - k["gen_share"]))}
        print(f"ablated ({' '.join(a.ablate)}) / alignkit: step time {summary['ablation']['step_ratio']:.2f}, the "
              f"non-sampling part of the step {summary['ablation']['update_ratio']:.2f} (above 1: alignkit is faster)")
    if "trl" in summary and "alignkit" in summary:
        t, k = summary["trl"], summary["alignkit"]
        summary["ratio_rollout_tokens"] = k["rollout_tokens_per_s"] / t["rollout_tokens_per_s"]
        summary["ratio_gen_tokens"] = k["gen_tokens_per_s"] / t["gen_tokens_per_s"]
        summary["ratio_step"] = t["step_s"] / k["step_s"]
        summary["ratio_step_median"] = t["step_median_s"] / k["step_median_s"]
        summary["ratio_rss"] = k["peak_rss_mb"] / t["peak_rss_mb"]
        print(f"alignkit / TRL: rollout tokens/s {summary['ratio_rollout_tokens']:.2f}x, generation tokens/s "
              f"{summary['ratio_gen_tokens']:.2f}x, step time {summary['ratio_step']:.2f}x faster (median step "
              f"{summary['ratio_step_median']:.2f}x), peak RSS "
              f"{summary['ratio_rss']:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
