"""Iterative (online) preference optimisation: sample -> judge -> train, round after round.

Each round samples K responses per prompt from the *current* policy, lets a judge score them
(a reward model `rm:DIR`, the bundled task's `truth`, a rule, an implicit reward...: RLAIF when the
judge is a model), pairs each prompt's best against its worst answer, and trains a registered
pairwise loss on those pairs from the current model. Offline DPO learns from one fixed set of
pairs sampled from the SFT model; here the pairs follow the policy as it moves, so they keep
covering what the policy now writes (Xiong et al. 2024, "Iterative Preference Learning from Human
Feedback", arXiv 2312.11456: best-vs-worst of the current policy's samples under a reward model,
reference = the initial model; Xu et al. 2023, arXiv 2312.16682; Yuan et al. 2024's self-rewarding
loop is the same flow with the policy as its own judge and reference = the previous round).
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..data.records import Pairwise
from ..errors import ConfigError
from ..losses.registry import LOSSES
from ..train.api import Recipe, load_split, register_recipe


@dataclass(frozen=True)
class IterativeConfig:
    reward: str = ""  # judge spec that scores each prompt's samples (rm:DIR, truth, rule:NAME, implicit:...); required
    loss: str = "dpo"  # the registered pairwise loss each round trains (dpo, ipo, simpo, ...)
    beta: float = 0.0  # that loss's beta when it has one; 0 = the loss's default
    iterations: int = 3  # rounds of sample -> judge -> train
    prompts_per_iteration: int = 0  # fresh prompts each round (a seeded shuffle of the data); 0 = every prompt every round
    samples_per_prompt: int = 4  # K responses per prompt from the current policy (best vs worst make the pair)
    sample_temperature: float = 1.0  # sampling temperature of the responses
    max_new_tokens: int = 64  # longest response in tokens
    reference: str = "initial"  # initial | previous: round t's reference (initial: Xiong et al.; previous: Yuan et al.)
    # --resume reuses the rounds an interrupted run finished (their round.json) and restarts the one it was in


def best_vs_worst(prompt, responses: list, scores: list, source: str) -> Pairwise | None:
    """The highest- against the lowest-scored response (None when they tie or are the same text)."""
    hi = max(range(len(scores)), key=lambda i: scores[i])
    lo = min(range(len(scores)), key=lambda i: scores[i])
    if scores[hi] == scores[lo] or responses[hi] == responses[lo]:
        return None
    return Pairwise(prompt, responses[hi], responses[lo], source=source)


def round_prompts(prompts: list, n: int, t: int) -> list:
    """Round t's prompts (0-based): the next n, wrapping around; all when n is 0."""
    if not n or n >= len(prompts):
        return list(prompts)
    start = (t * n) % len(prompts)
    return [prompts[(start + i) % len(prompts)] for i in range(n)]


def run_iterative(cfg, icfg: IterativeConfig, model_path: str, data, output: str, log=print) -> dict:
    from ..data.prompts import read_prompts
    from ..models.generate import SamplingConfig, generate_texts
    from ..models.loading import load_causal_lm, load_tokenizer
    from ..rewards.specs import judge_from_spec
    from ..train.offline import train_offline
    if not icfg.reward:
        raise ConfigError("iterative-dpo needs --reward SPEC (the judge that scores the samples), e.g. rm:DIR or truth")
    spec = LOSSES.get(icfg.loss)
    if spec is None or spec.feedback != "pairwise":
        pairwise = sorted(k for k, v in LOSSES.items() if v.feedback == "pairwise")
        raise ConfigError(f"--loss {icfg.loss!r} is not a pairwise loss; one of: {', '.join(pairwise)}")
    if icfg.reference not in ("initial", "previous"):
        raise ConfigError(f"--reference must be initial or previous, got {icfg.reference!r}")
    if icfg.iterations < 1 or icfg.samples_per_prompt < 2:
        raise ConfigError("iterations must be >= 1 and samples_per_prompt >= 2")
    fields = {f.name for f in dataclasses.fields(spec.config)}
    loss_cfg = spec.config(**({"beta": icfg.beta} if icfg.beta and "beta" in fields else {}))
    judge = judge_from_spec(icfg.reward)
    prompts = data if isinstance(data, list) else read_prompts(str(data))
    prompts = [getattr(p, "prompt", p) for p in prompts]
    if not prompts:
        raise ConfigError(f"{data}: no prompts")
    random.Random(cfg.seed).shuffle(prompts)  # rounds take fresh prompts from a seeded shuffle, not file order
    out = Path(output)
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
        model, tok = load_causal_lm(current), load_tokenizer(current)
        texts = generate_texts(model, tok, flat, SamplingConfig(max_new_tokens=icfg.max_new_tokens,
                                                                temperature=icfg.sample_temperature), seed=cfg.seed + t)
        del model
        scores = judge.score(flat, texts)
        k = icfg.samples_per_prompt
        pairs = [pr for i, p in enumerate(batch)
                 if (pr := best_vs_worst(p, texts[i * k:(i + 1) * k], scores[i * k:(i + 1) * k], f"round{t + 1}:{i}"))]
        ref = model_path if icfg.reference == "initial" else current
        stat = {"round": t + 1, "prompts": len(batch), "pairs": len(pairs),
                "mean_reward_samples": sum(scores) / len(scores), "policy": current, "reference": ref}
        log(f"iterative round {t + 1}/{icfg.iterations}: {len(flat)} samples of {current}, mean judge reward "
            f"{stat['mean_reward_samples']:.4f}, {len(pairs)} pairs")
        if not pairs:
            raise ConfigError(f"round {t + 1}: the judge tied every prompt's samples; raise samples_per_prompt or "
                              "sample_temperature")
        rdir.mkdir(parents=True, exist_ok=True)
        with open(rdir / "pairs.jsonl", "w") as f:
            for p in pairs:
                f.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n")
        # round 1 (and "previous"): the policy before its first step is the reference, no second copy
        round_cfg = dataclasses.replace(cfg, ref="" if ref == current else ref, ref_cache="memory", resume=False)
        train, ev = load_split(pairs, round_cfg, "pairwise", log)
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
    summary = {"method": "iterative-dpo", "loss": icfg.loss, "reference": icfg.reference, "rounds": rounds}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


register_recipe(Recipe("iterative-dpo", run_iterative, IterativeConfig, "online", "Xiong et al. 2024, arXiv 2312.11456",
                       reference=True, description="rounds of sampling the current policy, judging, and a pairwise loss"))
