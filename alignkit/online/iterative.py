"""Iterative (online) preference optimisation: sample -> judge -> train, round after round.

Each round samples K responses per prompt from the *current* policy, lets a judge score them
(a reward model `rm:DIR`, the bundled task's `truth`, a rule, an implicit reward...: RLAIF when the
judge is a model), pairs each prompt's best against its worst answer, and trains a registered
pairwise loss on those pairs from the current model. Offline DPO learns from one fixed set of
pairs sampled from the SFT model; here the pairs follow the policy as it moves, so they keep
covering what the policy now writes (Xiong et al. 2024, "Iterative Preference Learning from Human
Feedback", arXiv 2312.11456: best-vs-worst of the current policy's samples under a reward model,
reference = the initial model; Xu et al. 2023, arXiv 2312.16682). Rosset et al. 2024's DNO in
practice (arXiv 2404.03715) is this flow with reference = the previous round and large-margin pairs
only (--min-gap); Yuan et al. 2024's self-rewarding loop is it with the policy as its own judge and
reference = the previous round.

With a listwise loss (SPPO, Wu et al. 2024, arXiv 2405.00675) the round keeps the best and the worst
sample with their win rates against the policy, estimated from the judge's scores of the K samples;
SPPO's reference is the round's policy pi_t (--reference previous).
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..data.convert import write_jsonl
from ..data.records import Listwise, Pairwise
from ..errors import ConfigError
from ..rewards.judge import sigmoid
from ..train.run import Job, load_split


@dataclass(frozen=True)
class IterativeConfig:
    reward: str = ""  # judge spec that scores each prompt's samples (rm:DIR, truth, rule:NAME, implicit:...); required
    loss: str = "dpo"  # the loss each round trains: any pairwise one (dpo, ipo, simpo, ...) or sppo (win rates); its own flags follow (e.g. --beta, --eta)
    iterations: int = 3  # rounds of sample -> judge -> train
    prompts_per_iteration: int = 0  # fresh prompts each round (a seeded shuffle of the data); 0 = every prompt every round
    samples_per_prompt: int = 4  # K responses per prompt from the current policy (best vs worst make the pair)
    sample_temperature: float = 1.0  # sampling temperature of the responses
    max_new_tokens: int = 64  # longest response in tokens
    reference: str = "initial"  # initial | previous: round t's reference (initial: Xiong et al.; previous: Yuan et al.)
    min_gap: float = 0.0  # keep a prompt only if its best and worst scores differ by at least this (DNO's large-margin pairs)
    # --resume reuses the rounds an interrupted run finished (their round.json) and restarts the one it was in


def _extremes(responses: list, scores: list, min_gap: float) -> tuple | None:
    """(best index, worst index), or None when they tie, are the same text, or differ by less than min_gap."""
    hi = max(range(len(scores)), key=lambda i: scores[i])
    lo = min(range(len(scores)), key=lambda i: scores[i])
    if scores[hi] == scores[lo] or responses[hi] == responses[lo] or scores[hi] - scores[lo] < min_gap:
        return None
    return hi, lo


def best_vs_worst(prompt, responses: list, scores: list, source: str, min_gap: float = 0.0) -> Pairwise | None:
    """The highest- against the lowest-scored response."""
    ends = _extremes(responses, scores, min_gap)
    return None if ends is None else Pairwise(prompt, responses[ends[0]], responses[ends[1]], source=source)


def win_rates(scores: list) -> list:
    """Each response's win rate against the policy, estimated from its K samples (SPPO, Wu et al. 2024):
    P(y_i > pi) = (1/K) sum_j sigma(s_i - s_j), j = i included (it adds 1/2), under a Bradley-Terry
    reading of the judge's scores."""
    k = len(scores)
    return [sum(sigmoid(si - sj) for sj in scores) / k for si in scores]


def best_vs_worst_win_rates(prompt, responses: list, scores: list, source: str,
                            min_gap: float = 0.0) -> Listwise | None:
    """The best and the worst response with their win rates (SPPO's pair), as a two-response list."""
    ends = _extremes(responses, scores, min_gap)
    if ends is None:
        return None
    (hi, lo), p = ends, win_rates(scores)
    return Listwise(prompt, (responses[hi], responses[lo]), (p[hi], p[lo]), source=source)


# what one prompt's judged samples become, for each feedback shape a round can train
RECORDS = {"pairwise": best_vs_worst, "listwise": best_vs_worst_win_rates}


def round_prompts(prompts: list, n: int, t: int) -> list:
    """Round t's prompts (0-based): the next n, wrapping around; all when n is 0."""
    if not n or n >= len(prompts):
        return list(prompts)
    start = (t * n) % len(prompts)
    return [prompts[(start + i) % len(prompts)] for i in range(n)]


def run_iterative(job: Job) -> dict:
    from ..data.prompts import read_prompts
    from ..models.generate import SamplingConfig, generate_texts
    from ..models.loading import load_causal_lm, load_tokenizer
    from ..rewards.specs import judge_from_spec
    from ..train.offline import train_offline
    cfg, icfg, model_path, data, log = job.cfg, job.method_cfg, job.model, job.data, job.log
    spec, loss_cfg = job.inner
    if not icfg.reward:
        raise ConfigError("iterative-dpo needs --reward SPEC (the judge that scores the samples), e.g. rm:DIR or truth")
    if spec.feedback == "listwise" and icfg.reference != "previous":
        log("note: the win rates are against the round's own policy pi_t; SPPO's reference is that policy "
            "(--reference previous)")
    if icfg.reference not in ("initial", "previous"):
        raise ConfigError(f"--reference must be initial or previous, got {icfg.reference!r}")
    if icfg.iterations < 1 or icfg.samples_per_prompt < 2:
        raise ConfigError("iterations must be >= 1 and samples_per_prompt >= 2")
    judge = judge_from_spec(icfg.reward)
    prompts = data if isinstance(data, list) else read_prompts(str(data))
    prompts = [getattr(p, "prompt", p) for p in prompts]
    if not prompts:
        raise ConfigError(f"{data}: no prompts")
    random.Random(cfg.seed).shuffle(prompts)  # rounds take fresh prompts from a seeded shuffle, not file order
    out = Path(job.output)
    out.mkdir(parents=True, exist_ok=True)
    current, rounds = model_path, []
    for t in range(icfg.iterations):
        rdir = out / f"round-{t + 1}"
        if cfg.resume and (rdir / "round.json").is_file():  # a finished round of an interrupted run
            rounds.append(json.loads((rdir / "round.json").read_text()))
            log(f"iterative round {t + 1}: done before, reusing {rdir}")
            current = str(rdir)
            continue
        batch = round_prompts(prompts, icfg.prompts_per_iteration, t)
        flat = [p for p in batch for _ in range(icfg.samples_per_prompt)]
        model = load_causal_lm(current, "fp32", cfg.trust_remote_code)
        tok = load_tokenizer(current, cfg.trust_remote_code)
        texts = generate_texts(model, tok, flat, SamplingConfig(max_new_tokens=icfg.max_new_tokens,
                                                                temperature=icfg.sample_temperature), seed=cfg.seed + t)
        del model
        scores = judge.score(flat, texts)
        k = icfg.samples_per_prompt
        make = RECORDS[spec.feedback]
        pairs = [pr for i, p in enumerate(batch)
                 if (pr := make(p, texts[i * k:(i + 1) * k], scores[i * k:(i + 1) * k], f"round{t + 1}:{i}",
                                icfg.min_gap))]
        ref = model_path if icfg.reference == "initial" else current
        stat = {"round": t + 1, "prompts": len(batch), "pairs": len(pairs),
                "mean_reward_samples": sum(scores) / len(scores), "policy": current, "reference": ref}
        log(f"iterative round {t + 1}/{icfg.iterations}: {len(flat)} samples of {current}, mean judge reward "
            f"{stat['mean_reward_samples']:.4f}, {len(pairs)} pairs")
        if not pairs:
            raise ConfigError(f"round {t + 1}: no prompt's samples differ enough under the judge (ties, or "
                              "gaps below min_gap); raise samples_per_prompt or sample_temperature, or lower min_gap")
        write_jsonl(pairs, rdir / "pairs.jsonl")  # TRL format, as `world export` writes
        # round 1 (and "previous"): the policy before its first step is the reference, no second copy
        round_cfg = dataclasses.replace(cfg, ref="" if ref == current else ref, ref_cache="memory", resume=False)
        train, ev = load_split(pairs, round_cfg, spec.feedback, log)
        s = train_offline(spec, loss_cfg, round_cfg, current, train, ev, str(rdir), log)
        if s.get("interrupted"):
            return s
        stat.update({"eval_start": s.get("eval_start", {}), "eval_end": s.get("eval_end", {})})
        (rdir / "round.json").write_text(json.dumps(stat, indent=1))
        rounds.append(stat)
        current = str(rdir)
    for f in Path(current).iterdir():  # the last round's model is the result
        if f.is_file() and f.name not in ("pairs.jsonl", "round.json"):
            shutil.copy2(f, out / f.name)
    summary = {"method": "iterative-dpo", "loss": spec.name, "reward": icfg.reward, "reference": icfg.reference,
               "rounds": rounds}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

