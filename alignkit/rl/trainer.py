"""The online loop: prompts -> rollouts -> scores (a judge) -> advantages -> policy updates.

One loop for every online RL method. A method is an `RLMethod`: an advantage estimator (which also
places the KL penalty in the reward when the method puts it there) plus a policy loss (which holds
the KL when the method puts it in the loss), and two capability flags (a value function; a greedy
baseline). Nothing here branches on a method's name.

Each iteration: take `prompts_per_step` prompts (a seeded pass over the data, a pure function of
the iteration, so --resume sees the same prompts), sample `samples_per_prompt` completions for each, score
them, compute advantages once, then run `ppo_epochs` passes over the batch, each split into
`num_minibatches` optimizer steps of micro-batches of `batch_size` rows on the Engine. One row of
metrics.jsonl per iteration (`step` = iteration); a reward-vs-KL plot beside it at the end.
"""
from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import to_dict
from ..data.sources import default_prompt_source
from ..errors import ConfigError
from ..models.context import check_max_length, check_new_tokens
from ..models.loading import load_causal_lm, load_tokenizer, save_model, unwrap
from ..train.config import MAX_LENGTH_DEFAULT, TrainConfig
from ..train.forward import collate
from ..train.precision import quantization_config
from ..train.run import Run
from ..train.steps import evaluate_and_log, micro_batch_indices
from .evaluate import evaluate_heldout, rollout_stats
from .forward import token_forward
from .judges import judge_for
from .kl import ESTIMATORS, sequence_kl
from .logs import CompletionLog
from .plots import plot_reward_vs_kl
from .policy_losses import AdaptiveKLController, FixedKLController
from .rollout import _place, collect_rollout, make_generator, packs
from .types import Advantages, PolicyInput, RLMethod, Rollout
from .value import make_value_function


@dataclass
class RLMicroBatch:
    rows: list  # rollout row indices


def read_prompt_data(data, cfg: TrainConfig, mcfg, log) -> tuple:
    """-> (train prompts, eval prompts). data: a path (any file with a `prompt` field, or any
    feedback file), a list of prompts or records, or None: the registered default prompt source (a
    task plug-in's training-split prompts, and held-out prompts for evaluation)."""
    from ..data.formats import parse_columns
    from ..data.prompts import read_prompts
    if data is None:
        source = default_prompt_source()
        n = mcfg.max_prompts or source.default_train_prompts
        n_eval = max(1, round(cfg.eval_fraction * n)) if cfg.eval_fraction > 0 else 0
        train, held = source.prompts(n, n_eval, cfg.seed)
        log(f"prompts: {source.description}, {len(train)} for training, {len(held)} held out")
        return train, held
    if isinstance(data, (str, Path)):
        prompts = read_prompts(str(data), columns=cfg.columns)
    else:  # prompts, records, or rows (dicts, a datasets.Dataset) with a prompt field
        prompts = [p[(parse_columns(cfg.columns) or {}).get("prompt", "prompt")] if isinstance(p, dict)
                   else getattr(p, "prompt", p) for p in data]
    if mcfg.max_prompts:
        prompts = prompts[: mcfg.max_prompts]
    if not prompts:
        raise ConfigError("no prompts to train on")
    if cfg.eval_data:
        return prompts, read_prompts(cfg.eval_data, columns=cfg.columns)
    n_eval = round(cfg.eval_fraction * len(prompts)) if len(prompts) > 1 else 0
    if cfg.eval_fraction > 0 and len(prompts) > 1:
        n_eval = min(max(n_eval, 1), len(prompts) - 1)
    order = list(range(len(prompts)))
    random.Random(cfg.seed).shuffle(order)
    held = set(order[:n_eval])
    log(f"prompts: {len(prompts) - n_eval} for training, {n_eval} held out")
    return [p for i, p in enumerate(prompts) if i not in held], [p for i, p in enumerate(prompts) if i in held]


def _check(method: RLMethod, mcfg):
    if mcfg.samples_per_prompt < method.min_samples:
        raise ConfigError(f"{method.name} needs --samples-per-prompt >= {method.min_samples} "
                          f"(got {mcfg.samples_per_prompt})")
    if mcfg.kl_estimator not in ESTIMATORS:
        raise ConfigError(f"--kl-estimator must be one of {', '.join(ESTIMATORS)}, got {mcfg.kl_estimator!r}")
    if mcfg.ppo_epochs < 1 or mcfg.num_minibatches < 1 or mcfg.prompts_per_step < 1:
        raise ConfigError("--ppo-epochs, --num-minibatches and --prompts-per-step must be >= 1")
    if mcfg.prompts_per_step * mcfg.samples_per_prompt < mcfg.num_minibatches:
        raise ConfigError("--num-minibatches exceeds the rollout batch (--prompts-per-step x --samples-per-prompt)")


class RLObjective:
    """compute(micro-batch) -> LossOutput for the engine: RL rows of the current rollout, or the
    micro-batches of the method's auxiliary objective (PPO-ptx), which run after the step's RL rows."""

    def __init__(self, method, mcfg, model, value_fn, pad_id, kl_ctl, auxiliary=None):
        self.method, self.mcfg, self.model, self.value_fn = method, mcfg, model, value_fn
        self.pad_id, self.kl_ctl, self.auxiliary = pad_id, kl_ctl, auxiliary
        self.rollout: Rollout | None = None
        self.adv: Advantages | None = None
        self.step_weight = 0.0  # RL weight seen so far in the current optimizer step
        self.lazy = False  # the rollout has no old log-probs: its one update's forward supplies them

    def begin(self, rollout: Rollout, adv: Advantages, lazy: bool):
        """A new rollout batch. lazy: it gets exactly one update, which runs before the weights move,
        so that forward's log-probs (detached) are pi_old's (as TRL does with num_iterations=1); they
        and the entropies are recorded into the rollout for its metrics."""
        self.rollout, self.adv, self.lazy = rollout, adv, lazy
        if lazy:
            rollout.old_logps = torch.zeros_like(rollout.mask)
            rollout.entropy = torch.zeros_like(rollout.mask)

    def compute(self, mb):
        if self.auxiliary is not None and self.auxiliary.owns(mb):
            return self.auxiliary.loss(self.model, mb, self.pad_id, self.step_weight)
        ro, adv = self.rollout, self.adv
        device = next(self.model.parameters()).device
        shared = self.value_fn is not None and self.value_fn.uses_policy_hidden
        # packed: each group's prompt once, no padding (policy, value model and hidden states alike), when
        # that is the cheaper layout for these rows' shapes
        seqs = [ro.seqs[i] for i in mb.rows]
        sb = collate(seqs, self.pad_id, share_prefix=packs(self.model, seqs, self.mcfg.share_prompts)).to(device)
        tc = sb.comp_ids.shape[1]

        def rows(x):  # (B, T) rollout tensor -> this micro-batch's (N, tc) (completions are right-aligned)
            return None if x is None else x[mb.rows][:, x.shape[1] - tc:].to(device)

        fw = token_forward(self.model, sb, want_hidden=shared, want_entropy=self.lazy)
        values = self.value_fn(sb, fw.hidden) if self.value_fn is not None else None
        if self.lazy:
            old = fw.logps.detach()
            _place(ro.old_logps, mb.rows, old)
            _place(ro.entropy, mb.rows, fw.entropy)
        else:
            old = rows(ro.old_logps)
        inp = PolicyInput(fw.logps, old, sb.comp_mask, rows(adv.advantages),
                          ref_logps=rows(ro.ref_logps), returns=rows(adv.returns), values=values,
                          old_values=rows(ro.values), max_new_tokens=self.mcfg.max_new_tokens)
        out = self.method.loss(inp, self.mcfg, self.kl_ctl.value)
        self.step_weight += float(out.weight.detach().sum())
        return out


def _mean_metrics(rows: list) -> dict:
    keys = {k for r in rows for k in r if isinstance(r[k], (int, float))}
    return {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in sorted(keys)}


@dataclass
class OnlineStart:
    """What every online trainer starts from."""
    judge: object  # scores the rollouts
    true_judge: object  # reported at evaluation only (None when there is none)
    train_prompts: list
    eval_prompts: list
    train_ids: list  # prompt token ids, cut to the room left for max_new_tokens
    eval_ids: list
    model: object  # the policy (LoRA applied, dropout off)
    tok: object
    reference: object  # None (reference-free), the policy itself under LoRA (adapter disabled), or a frozen copy
    encoder: object


def start_online(run: Run, mcfg, model_path: str, data, judge=None, reference_free: bool = False) -> OnlineStart:
    """The judges, prompts, policy and reference of an online run (RL methods and Nash-MD alike).
    `judge` (a Judge) overrides mcfg.reward."""
    from ..data.tokenize import Encoder, is_conversational, use_chat_template
    cfg, acc, log = run.cfg, run.acc, run.log
    judge = judge_for(judge if judge is not None else mcfg.reward)
    # on a plug-in's default prompts, evaluation also reports its ground truth (the bundled task's r*)
    eval_spec = mcfg.eval_reward or (default_prompt_source().eval_judge if data is None else "")
    true_judge = judge_for(eval_spec) if eval_spec else None
    train_prompts, eval_prompts = read_prompt_data(data, cfg, mcfg, log)

    if cfg.gradient_checkpointing:  # transformers checkpoints only modules in training mode
        raise ConfigError("--gradient-checkpointing is for the offline and reward-model trainers: RL keeps its "
                          "policy in eval mode (no dropout), where transformers does not checkpoint")
    model = load_causal_lm(model_path, "fp32", cfg.trust_remote_code, quantization=quantization_config(cfg))
    tok = load_tokenizer(model_path, cfg.trust_remote_code)
    note = use_chat_template(tok, cfg.chat_template, is_conversational(train_prompts + eval_prompts))
    if note:
        log(f"note: {note}")
    cfg = dataclasses.replace(cfg, max_length=check_max_length(model.config, cfg.max_length, model_path,
                                                               MAX_LENGTH_DEFAULT, log))
    check_new_tokens(mcfg.max_new_tokens, cfg.max_length)
    model = run.lora(model)
    if not cfg.load_in_4bit:  # a 4-bit model loads onto its CUDA device
        model.to(acc.device)
    model.eval()  # dropout off for the whole run (it biases the log-prob ratios; Huang et al. 2024, arXiv 2403.17031); gradients still flow
    encoder = Encoder(tok, cfg.max_length, cfg.max_prompt_length or None)
    budget = max(1, cfg.max_length - mcfg.max_new_tokens)

    def ids_of(prompts):
        return [encoder.prompt_ids(p)[-budget:] for p in prompts]

    # the reference: none (reference-free), the adapter-disabled policy (LoRA), or a frozen copy
    if reference_free:
        reference = None
    elif cfg.lora_r > 0 and not cfg.ref:
        reference = model
    else:
        reference = load_causal_lm(cfg.ref or model_path, "fp32", cfg.trust_remote_code).to(acc.device).eval()
        reference.requires_grad_(False)
    return OnlineStart(judge, true_judge, train_prompts, eval_prompts, ids_of(train_prompts), ids_of(eval_prompts),
                       model, tok, reference, encoder)


def train_rl(method: RLMethod, cfg: TrainConfig, mcfg, model_path: str, data, output: str, log=print,
             judge=None, record: dict | None = None) -> dict:
    """Train `model_path` online with `method`; save an HF model, metrics.jsonl and reward_vs_kl.png
    in `output`. `judge` (a Judge) overrides mcfg.reward (the Python API's way to pass any scorer)."""
    _check(method, mcfg)
    run = Run(cfg, output, log, record=record)  # record: the job's config.yaml (Job.record)
    acc, log, out = run.acc, run.log, run.out
    st = start_online(run, mcfg, model_path, data, judge, reference_free=mcfg.reference_free)
    judge, true_judge, model, tok, reference, encoder = st.judge, st.true_judge, st.model, st.tok, st.reference, st.encoder
    train_prompts, eval_prompts, train_ids, eval_ids = st.train_prompts, st.eval_prompts, st.train_ids, st.eval_ids
    value_fn = None
    if method.needs_value:
        value_fn = make_value_function(mcfg.value_model, model_path, unwrap(model).config.hidden_size,
                                       cfg.trust_remote_code).to(acc.device)
    kl_ctl = (AdaptiveKLController(mcfg.kl_coef, mcfg.kl_target, mcfg.kl_horizon) if mcfg.adaptive_kl
              else FixedKLController(mcfg.kl_coef))
    if reference is None:
        kl_ctl = FixedKLController(0.0)
    auxiliary = method.auxiliary(mcfg, encoder, log) if method.auxiliary else None

    world, rank = acc.num_processes, acc.process_index
    per_iter = mcfg.ppo_epochs * mcfg.num_minibatches
    iterations = mcfg.iterations or cfg.max_steps or max(
        1, math.ceil(cfg.epochs * len(train_prompts) / (mcfg.prompts_per_step * world)))
    engine = run.engine(model, iterations * per_iter, extra_params=value_fn.parameters() if value_fn is not None else ())
    model = engine.model
    mlog = run.mlog
    generator = make_generator(mcfg.generator, model, tok, model_path)
    objective = RLObjective(method, mcfg, model, value_fn, tok.pad_token_id, kl_ctl, auxiliary)
    est_state: dict = {}
    iteration, samples = 0, 0

    def restore(state: dict) -> int:
        nonlocal iteration, samples, est_state
        iteration, samples = state["iteration"], state["samples"]
        kl_ctl.load_state_dict(state["kl"])
        est_state = state["estimator_state"]
        return iteration

    logged_start = run.resume({"method": method.name, "model": model_path, "train": to_dict(cfg),
                               "rl": dataclasses.asdict(mcfg)}, restore, unit="iteration")

    def evaluate():
        generator.sync(model)
        with run.autocast():  # --bf16: sampling and the reference under the policy's autocast
            return evaluate_heldout(model, reference, tok, generator, eval_prompts, eval_ids, judge, true_judge,
                                   mcfg, cfg.seed + 99991, cfg.batch_size)

    eval_start = logged_start
    if iteration == 0 and eval_prompts and "start" in cfg.eval_at:
        eval_start = evaluate_and_log(0, evaluate, mlog, log, _fmt, unit="iteration")
    engine.install_signal_handlers()
    last = {}
    # one update per rollout batch, and advantages that never read pi_old's log-probs: no separate
    # no-grad policy pass; the update's own forward gives them (it runs before the weights move)
    lazy_old = (mcfg.ppo_epochs == 1 and mcfg.num_minibatches == 1 and not method.needs_value
                and (method.kl_in_loss or reference is None))
    completions = CompletionLog(out, mcfg.log_completions_every, iteration, log, acc.is_main_process)
    loop_t0, loop_start = time.time(), iteration
    while iteration < iterations:
        idx = micro_batch_indices(iteration, len(train_prompts), mcfg.prompts_per_step, world, rank, cfg.seed)
        t0 = time.time()
        generator.sync(model)
        with run.autocast():  # --bf16: sampling and the reference under the policy's autocast
            ro = collect_rollout(model, reference, value_fn, tok, generator, [train_prompts[i] for i in idx],
                                 [train_ids[i] for i in idx], judge, mcfg, seed=cfg.seed * 1000003 + iteration,
                                 batch_size=cfg.batch_size, greedy_baseline=method.greedy_baseline,
                                 policy_pass=not lazy_old)
        adv = method.advantages(ro, mcfg, kl_ctl.value, est_state)
        objective.begin(ro, adv, lazy_old)
        samples += len(ro) * world
        kl_coef_used = kl_ctl.value
        t1 = time.time()
        step_rows = []
        for epoch in range(mcfg.ppo_epochs):
            g = torch.Generator().manual_seed(cfg.seed * 7919 + iteration * 101 + epoch)
            perm = torch.randperm(len(ro), generator=g).tolist()
            for part in range(mcfg.num_minibatches):
                mini = perm[part * len(ro) // mcfg.num_minibatches:(part + 1) * len(ro) // mcfg.num_minibatches]
                # prompt-major within the step, so micro-batches hold whole groups and share their prompts;
                # the step's gradient is normalised over all its rows, whatever their split
                mini = sorted(mini)
                micro = [RLMicroBatch(mini[i: i + cfg.batch_size]) for i in range(0, len(mini), cfg.batch_size)]
                if auxiliary is not None:
                    micro += auxiliary.micro_batches(engine.step, cfg.batch_size, cfg.seed)
                objective.step_weight = 0.0
                step_rows.append(engine.optimizer_step(micro, objective.compute))
        # the batch's statistics (pi_old's log-probs and entropies: from the rollout, or lazily from the update)
        row = {"iteration": iteration + 1, "samples": samples, "kl_coef": kl_coef_used, **rollout_stats(ro),
               **adv.metrics, "advantage_std": adv.advantages[ro.mask > 0].std().item() if ro.mask.sum() > 1 else 0.0}
        if ro.ref_logps is not None and mcfg.kl_estimator != "k1":
            row[f"kl_{mcfg.kl_estimator}"] = sequence_kl(ro.old_logps, ro.ref_logps, ro.mask, mcfg.kl_estimator).mean().item()
        kl_ctl.update(row.get(f"kl_{mcfg.kl_estimator}", row.get("kl", 0.0)), len(ro) * world)
        iteration += 1
        last = {**row, **_mean_metrics(step_rows), "time/rollout": t1 - t0, "time/update": time.time() - t1}
        if iteration % cfg.log_every == 0 or iteration == iterations:
            mlog.write(iteration, "train", last)
        log(f"iteration {iteration}/{iterations} ({_eta(loop_t0, iteration - loop_start, iterations - iteration)}): "
            f"{_fmt(last)}")
        completions.write(iteration, ro.prompts, ro.texts, ro.judge_scores.tolist())
        if cfg.eval_every and iteration % cfg.eval_every == 0 and iteration < iterations and eval_prompts:
            evaluate_and_log(iteration, evaluate, mlog, log, _fmt, unit="iteration")
        if (cfg.save_every and iteration % cfg.save_every == 0) or engine.stop_requested:
            run.save_checkpoint({"iteration": iteration, "samples": samples,
                                 "kl": kl_ctl.state_dict(), "estimator_state": est_state})
        if engine.stop_requested:
            log(f"stopped at iteration {iteration}/{iterations}; checkpoint {engine.last_checkpoint}; "
                "rerun with --resume to continue")
            return run.interrupted("iteration", iteration)

    eval_end = (evaluate_and_log(iteration, evaluate, mlog, log, _fmt, unit="iteration")
                if eval_prompts and "end" in cfg.eval_at else {})
    summary = {"method": method.name, "iterations": iteration, "steps": engine.step, "samples": samples,
               "skipped_nonfinite": engine.nonfinite_total, "eval_start": eval_start, "eval_end": eval_end,
               "train_last": last}

    def save():
        save_model(model, tok, out, adapter_only=cfg.save_adapter_only)
        if value_fn is not None:
            from safetensors.torch import save_file
            save_file({k: v.detach().cpu().contiguous() for k, v in value_fn.state_dict().items()},
                      str(out / "value.safetensors"))
        summary["plot"] = str(plot_reward_vs_kl(out / "metrics.jsonl", out / "reward_vs_kl.png", method.name))
    return run.finish(summary, save)


def _eta(t0: float, done: int, left: int) -> str:
    """'elapsed H:MM:SS, ETA H:MM:SS' of a loop that did `done` iterations since t0 and has `left` to go."""
    from ..train.progress import clock
    spent = time.time() - t0
    return f"elapsed {clock(spent)}, ETA {clock(spent / done * left) if done else '?'}"


def _fmt(m: dict, keys=("reward", "true_reward", "kl", "length/mean", "eos_rate", "loss")) -> str:
    return " ".join(f"{k.split('/')[0]}={m[k]:.3f}" for k in keys if k in m)
