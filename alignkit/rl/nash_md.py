"""Nash-MD: Nash learning from human feedback by mirror descent (Munos et al. 2023, "Nash Learning from
Human Feedback", arXiv 2312.00886), in its practical online policy-gradient form (the paper's
Nash-MD-PG; TRL's experimental `NashMDTrainer`, present up to TRL 1.13, is the reference
implementation this follows).

The objective is a game, not a reward: find a policy preferred to any other under a preference model
P(y > y' | x), regularised towards pi_ref. Nash-MD's mirror-descent step plays the current policy
against the *geometric mixture* of itself and the reference,

    pi_mix(y | x)  proportional to  pi(y | x)^(1 - b) * pi_ref(y | x)^b        (b = mixture_coef),

computed token by token from both models' logits while sampling (models/generate.py
`GeometricMixtureGenerator`). Each iteration, per prompt: y ~ pi, y' ~ pi_mix, P = judge.compare(x, y, y')
(any judge: a pairwise LLM judge, an intransitive annotator population, or a scoring judge read as
Bradley-Terry, sigma(s_y - s_y')), and one optimizer step on (TRL's loss, `_compute_losses`)

    L_i = tau * sum_t sg(log pi(y_t) - log pi_ref(y_t)) * log pi(y_t)  -  (P_i - 1/2) * sum_t log pi(y_t)

averaged over the batch: REINFORCE on the preference with 1/2 as its control variate (a tie's value,
the game's value at equilibrium), plus a REINFORCE estimate of the gradient of tau * KL(pi || pi_ref)
(each token's log-ratio times that token's score; the cross-token terms of the exact sequence-level
estimator are dropped, as in TRL). tau is `--beta`.

Theme: "RL". The update is a policy gradient on fresh samples of the current policy in the online
loop (rollout, judge, one on-policy step), the machinery of REINFORCE and RLOO, with the KL in the
loss; the preference model takes the reward's place. The offline/iterated optimisation recipes (DPO's
family, SPPO, iterative DPO) instead fit a loss to a dataset of judged pairs; Nash-MD never builds one.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch

from ..config import check_fields, option, to_dict
from ..losses.base import LossOutput
from ..train.run import Job, Run


@dataclass(frozen=True)
class NashMDConfig:
    reward: str = ""  # the preference model: any judge spec, P(y > y') = its compare (a scoring judge: sigma(s_y - s_y')); required
    eval_reward: str = ""  # scoring judge reported as true_reward at evaluation; "" = the prompt source's (truth on the bundled task)
    beta: float = option(0.1, ge=0)  # tau: weight of the KL(pi || pi_ref) term (TRL's beta)
    mixture_coef: float = option(0.5, ge=0, le=1)  # b: y' is sampled from pi^(1-b) * pi_ref^b, token by token (TRL: 0.5; 0 = self-play against pi)
    iterations: int = option(0, ge=0)  # rollout-and-update rounds (one optimizer step each); 0 = --max-steps if set, else --epochs over the prompts
    prompts_per_step: int = option(8, ge=1)  # prompts per iteration
    samples_per_prompt: int = option(1, ge=1, aliases=("num_samples",))  # pairs (y ~ pi, y' ~ pi_mix) per prompt
    temperature: float = option(1.0, gt=0)  # sampling temperature of y, y' and evaluation (log-probs are always at 1)
    top_p: float = option(1.0, gt=0, le=1)  # nucleus sampling mass
    max_new_tokens: int = option(64, ge=1)  # longest completion
    generation_batch_size: int = option(64, ge=1)  # prompts per generate call
    share_prompts: bool = True  # score and update each prompt once for its samples (packed rows)
    eval_samples: int = option(4, ge=1)  # completions per held-out prompt at evaluation (policy and reference each)
    max_prompts: int = option(0, ge=0)  # use only the first N prompts; 0 = all (bundled task without --data: 1000)
    log_completions_every: int = option(10, ge=0)  # every N iterations (and the first) append the batch's completions, the mixture's and P(y > y') to completions.jsonl in the output folder and print one to the log; 0 = never

    def __post_init__(self):  # built in Python too, the declared ranges and choices hold
        check_fields(self)



def nash_md_loss(logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor, preference: torch.Tensor,
                 beta: float) -> LossOutput:
    """Nash-MD's policy-gradient loss (Munos et al. 2023, arXiv 2312.00886; TRL NashMDTrainer
    `_compute_losses`), per sequence i, on y_i ~ pi judged against y'_i ~ pi_mix:

        L_i = beta * sum_t sg(l_t - l_ref_t) * l_t  -  (P_i - 1/2) * sum_t l_t

    logps (N, T) per-token log pi (with grad), ref_logps (N, T), mask (N, T), preference (N,) P(y_i > y'_i).
    Weight 1 per sequence: the engine's sum(loss) / sum(weight) is TRL's batch mean."""
    m = mask.to(logps.dtype)
    lp = (logps * m).sum(-1)  # (N,) log pi(y)
    log_ratio = ((logps - ref_logps) * m).detach()  # (N, T) no gradient through the KL's weight
    kl_term = (log_ratio * logps * m).sum(-1)  # (N,)
    p = preference.to(logps.dtype)
    score = (p - 0.5) * lp  # (N,)
    loss = beta * kl_term - score
    metrics = {"nash/score": score.detach(), "kl": log_ratio.sum(-1), "preference": p.detach(),
               "logps/policy": lp.detach(), "nash/kl_term": kl_term.detach()}
    return LossOutput(loss, metrics, weight=torch.ones_like(loss))


@torch.no_grad()
def reference_logps(reference, seqs: list, pad_id: int, batch_size: int, share_prompts: bool) -> tuple:
    """(B, T) per-token log pi_ref of (prompt, completion) rows (completions right-aligned, as the
    rollout layout) and (B, T) completion masks. Under LoRA the reference is the adapter-disabled policy."""
    from ..train.forward import collate
    from ..train.refcache import reference_mode
    from .forward import token_forward
    tc = max(len(c) for _, c in seqs)
    out, mask = torch.zeros(len(seqs), tc), torch.zeros(len(seqs), tc)
    device = next(reference.parameters()).device
    for i in range(0, len(seqs), batch_size):
        sb = collate(seqs[i: i + batch_size], pad_id, share_prefix=share_prompts).to(device)
        with reference_mode(reference) as ref:
            lp = token_forward(ref, sb).logps
        n, w = lp.shape
        out[i: i + n, tc - w:] = lp.cpu()
        mask[i: i + n, tc - w:] = sb.comp_mask.cpu()
    return out, mask


def _never_empty(comps: list, eos) -> list:
    return [c or [eos] for c in comps]


def _sampling(mcfg, batch: int):
    from ..models.generate import SamplingConfig
    return SamplingConfig(max_new_tokens=mcfg.max_new_tokens, temperature=mcfg.temperature, top_p=mcfg.top_p,
                          batch_size=batch)


@torch.no_grad()
def evaluate_nash(model, reference, tok, prompts: list, prompt_ids: list, judge, true_judge, mcfg, seed: int,
                  batch_size: int) -> dict:
    """Held-out: eval_samples completions per prompt from the policy and from the reference (same seed);
    `preference_vs_ref` = mean P(policy's > reference's) under the judge, the KL (k1, summed log-ratio
    on the policy's samples), lengths, and with a scoring evaluation judge its mean as true_reward."""
    from ..models.generate import GeometricMixtureGenerator
    from ..rl.length import length_stats
    from .rollout import score_forward
    k = mcfg.eval_samples
    flat_ids = [p for p in prompt_ids for _ in range(k)]
    flat = [p for p in prompts for _ in range(k)]
    sampling = _sampling(mcfg, mcfg.generation_batch_size)
    eos = tok.eos_token_id
    # coef 0 / 1: plain sampling of the policy / of the reference (its adapter-disabled base under LoRA)
    ys = _never_empty(GeometricMixtureGenerator(model, reference, tok, 0.0).generate(flat_ids, sampling, seed), eos)
    yr = _never_empty(GeometricMixtureGenerator(model, reference, tok, 1.0).generate(flat_ids, sampling, seed), eos)
    ts, tr = tok.batch_decode(ys, skip_special_tokens=True), tok.batch_decode(yr, skip_special_tokens=True)
    pref = judge.compare(flat, ts, tr)
    fw = score_forward(model, reference, None, list(zip(flat_ids, ys)), tok.pad_token_id, batch_size,
                       mcfg.share_prompts)
    kl = ((fw["old_logps"] - fw["ref_logps"]) * fw["mask"]).sum(-1)
    ended = torch.tensor([eos is not None and c[-1] == eos for c in ys])
    out = {"preference_vs_ref": sum(pref) / len(pref), "kl": kl.mean().item(),
           **length_stats(fw["mask"].sum(-1), ended)}
    if true_judge is not None:
        out["true_reward"] = sum(true_judge.score(flat, ts)) / len(ts)
        out["true_reward_ref"] = sum(true_judge.score(flat, tr)) / len(tr)
    return out


def run_nash_md(job: Job) -> dict:
    """`alignkit train nash-md`: the online loop of Nash-MD on the run skeleton (train/run.py)."""
    from ..models.generate import GeometricMixtureGenerator
    from ..models.loading import save_model
    from ..train.forward import collate
    from ..train.steps import evaluate_and_log, micro_batch_indices
    from .forward import token_forward
    from .logs import CompletionLog
    from .trainer import _eta, start_online
    cfg, mcfg, model_path, data = job.cfg, job.method_cfg, job.model, job.data
    run = Run(cfg, job.output, job.log, record=job.record())
    acc, log, out = run.acc, run.log, run.out
    st = start_online(run, mcfg, model_path, data)  # the reference: the adapter-disabled policy or a frozen copy
    judge, true_judge, model, tok, reference = st.judge, st.true_judge, st.model, st.tok, st.reference
    train_prompts, eval_prompts, train_ids, eval_ids = st.train_prompts, st.eval_prompts, st.train_ids, st.eval_ids

    world, rank = acc.num_processes, acc.process_index
    iterations = mcfg.iterations or cfg.max_steps or max(
        1, math.ceil(cfg.epochs * len(train_prompts) / (mcfg.prompts_per_step * world)))
    engine = run.engine(model, iterations)
    model = engine.model
    mlog = run.mlog
    pad, eos = tok.pad_token_id, tok.eos_token_id
    iteration, samples = 0, 0

    def restore(state: dict) -> int:
        nonlocal iteration, samples
        iteration, samples = state["iteration"], state["samples"]
        return iteration

    # the Python API may pass a Judge object as the reward: config.yaml records its name
    written = {k: (v if isinstance(v, (str, int, float, bool)) else getattr(v, "name", type(v).__name__))
               for k, v in dataclasses.asdict(mcfg).items()}
    logged_start = run.resume({"method": "nash-md", "model": model_path, "train": to_dict(cfg),
                               "nash_md": written}, restore, unit="iteration")

    def evaluate():
        return evaluate_nash(model, reference, tok, eval_prompts, eval_ids, judge, true_judge, mcfg,
                             cfg.seed + 99991, cfg.batch_size)

    eval_start = logged_start
    if iteration == 0 and eval_prompts:
        eval_start = evaluate_and_log(0, evaluate, mlog, log, _fmt, unit="iteration")
    engine.install_signal_handlers()
    sampling = _sampling(mcfg, mcfg.generation_batch_size)
    policy_gen = GeometricMixtureGenerator(model, reference, tok, 0.0)
    mix_gen = GeometricMixtureGenerator(model, reference, tok, mcfg.mixture_coef)
    last = {}
    completions = CompletionLog(out, mcfg.log_completions_every, iteration, log, acc.is_main_process)
    loop_t0, loop_start = time.time(), iteration
    while iteration < iterations:
        idx = micro_batch_indices(iteration, len(train_prompts), mcfg.prompts_per_step, world, rank, cfg.seed)
        k = mcfg.samples_per_prompt
        flat_ids = [train_ids[i] for i in idx for _ in range(k)]
        flat = [train_prompts[i] for i in idx for _ in range(k)]
        t0 = time.time()
        seed = cfg.seed * 1000003 + iteration
        ys = _never_empty(policy_gen.generate(flat_ids, sampling, seed=seed), eos)
        ym = _never_empty(mix_gen.generate(flat_ids, sampling, seed=seed + 500009), eos)
        t1 = time.time()
        ts, tm = tok.batch_decode(ys, skip_special_tokens=True), tok.batch_decode(ym, skip_special_tokens=True)
        pref = torch.tensor(judge.compare(flat, ts, tm), dtype=torch.float32)  # (B,) P(y > y')
        t2 = time.time()
        seqs = list(zip(flat_ids, ys))
        ref_lp, _ = reference_logps(reference, seqs, pad, cfg.batch_size, mcfg.share_prompts)

        def compute(rows):
            sb = collate([seqs[i] for i in rows], pad, share_prefix=mcfg.share_prompts).to(acc.device)
            lp = token_forward(model, sb).logps
            tc = lp.shape[1]
            ref = ref_lp[rows][:, ref_lp.shape[1] - tc:].to(acc.device)
            return nash_md_loss(lp, ref, sb.comp_mask, pref[rows].to(acc.device), mcfg.beta)

        micro = [list(range(i, min(i + cfg.batch_size, len(seqs)))) for i in range(0, len(seqs), cfg.batch_size)]
        step = engine.optimizer_step(micro, compute)
        samples += len(seqs) * world
        iteration += 1
        ended = [c[-1] == eos for c in ys]
        ended_mix = [c[-1] == eos for c in ym]
        last = {"iteration": iteration, "samples": samples, **step,
                "length/policy": sum(map(len, ys)) / len(ys), "length/mixture": sum(map(len, ym)) / len(ym),
                "eos_rate": sum(ended) / len(ended), "eos_rate/mixture": sum(ended_mix) / len(ended_mix),
                "mixture_coef": mcfg.mixture_coef, "beta": mcfg.beta,
                "time/rollout": t1 - t0, "time/judge": t2 - t1, "time/update": time.time() - t2}
        if iteration % cfg.log_every == 0 or iteration == iterations:
            mlog.write(iteration, "train", last)
        log(f"iteration {iteration}/{iterations} ({_eta(loop_t0, iteration - loop_start, iterations - iteration)}): "
            f"{_fmt(last)}")
        completions.write(iteration, flat, ts, pref.tolist(), [{"mixture_completion": m} for m in tm], "preference")
        if cfg.eval_every and iteration % cfg.eval_every == 0 and iteration < iterations and eval_prompts:
            evaluate_and_log(iteration, evaluate, mlog, log, _fmt, unit="iteration")
        if (cfg.save_every and iteration % cfg.save_every == 0) or engine.stop_requested:
            run.save_checkpoint({"iteration": iteration, "samples": samples})
        if engine.stop_requested:
            log(f"stopped at iteration {iteration}/{iterations}; checkpoint {engine.last_checkpoint}; "
                "rerun with --resume to continue")
            return run.interrupted("iteration", iteration)

    eval_end = evaluate_and_log(iteration, evaluate, mlog, log, _fmt, unit="iteration") if eval_prompts else {}
    summary = {"method": "nash-md", "iterations": iteration, "steps": engine.step, "samples": samples,
               "mixture_coef": mcfg.mixture_coef, "beta": mcfg.beta, "skipped_nonfinite": engine.nonfinite_total,
               "eval_start": eval_start, "eval_end": eval_end, "train_last": last}
    return run.finish(summary, lambda: save_model(model, tok, out, adapter_only=cfg.save_adapter_only))


def _fmt(m: dict) -> str:
    keys = (("preference", "preference"), ("preference_vs_ref", "vs_ref"), ("true_reward", "true_reward"), ("kl", "kl"),
            ("length/policy", "length"), ("length/mean", "length"), ("loss", "loss"))
    return " ".join(f"{name}={m[k]:.3f}" for k, name in keys if k in m)
