"""RSO (Liu et al. 2024, arXiv 2309.06657): sample N responses per prompt from the SFT policy,
rejection-sample m of them toward the optimal policy pi_r (rejection_sampling.py), let the judge
order tournament pairs of the accepted ones, then train a pairwise loss (RSO's own normalised
sigmoid/hinge loss by default: `--loss rso-norm`, or any pairwise loss) on those pairs.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..data.convert import write_jsonl
from ..data.records import Pairwise
from ..errors import ConfigError
from ..train.run import Job, load_split
from .rejection_sampling import rejection_sample, tournament_pairs


@dataclass(frozen=True)
class RSORecipeConfig:
    reward: str = ""  # judge spec that scores candidates (e.g. rm:DIR, rule:NAME, truth); required
    loss: str = "rso-norm"  # the pairwise loss trained on the sampled pairs (its own flags follow; default RSO's)
    samples_per_prompt: int = option(16, ge=1, aliases=("num_candidates",))  # N responses sampled per prompt from the SFT policy (paper: 64)
    num_accepted: int = option(8, ge=1)  # m responses kept by rejection sampling (paper: 8)
    rs_beta: float = option(0.5, ge=0)  # rejection-sampling temperature: inf = uniform, 0 = best-of-N (paper: 0.5)
    temperature: float = option(0.7, ge=0, aliases=("sample_temperature",))  # sampling temperature of the candidates (paper: 0.7)
    max_new_tokens: int = option(64, ge=1)  # longest candidate in tokens
    max_prompts: int = option(0, ge=0)  # use the first N prompts; 0 = all


def run_rso(job: Job) -> dict:
    """RSO: sample N from pi_SFT, rejection-sample m toward pi_r, pair by the judge, then the loss."""
    from ..data.prompts import read_prompts
    from ..data.tokenize import is_conversational, use_chat_template
    from ..models.generate import SamplingConfig, generate_texts
    from ..models.loading import load_causal_lm, load_tokenizer
    from ..rewards.specs import judge_from_spec
    from ..train.offline import train_offline
    cfg, rcfg, log = job.cfg, job.method_cfg, job.log
    spec, loss_cfg = job.inner
    if not rcfg.reward:
        raise ConfigError("rso needs --reward SPEC (the judge that ranks candidates)")
    judge = judge_from_spec(rcfg.reward)
    prompts = job.data if isinstance(job.data, list) else read_prompts(str(job.data), columns=cfg.columns)
    prompts = [getattr(p, "prompt", p) for p in prompts]
    if rcfg.max_prompts:
        prompts = prompts[: rcfg.max_prompts]
    model = load_causal_lm(job.model, "fp32", cfg.trust_remote_code)
    tok = load_tokenizer(job.model, cfg.trust_remote_code)
    use_chat_template(tok, cfg.chat_template, is_conversational(prompts))  # as train_offline renders them
    flat = [p for p in prompts for _ in range(rcfg.samples_per_prompt)]
    log(f"rso: sampling {len(flat)} candidates ({rcfg.samples_per_prompt} per prompt)")
    texts = generate_texts(model, tok, flat, SamplingConfig(max_new_tokens=rcfg.max_new_tokens,
                                                            temperature=rcfg.temperature), seed=cfg.seed)
    del model
    rng = random.Random(cfg.seed)
    pairs, accepted_reward, all_reward = [], [], []
    for i, prompt in enumerate(prompts):
        cands = texts[i * rcfg.samples_per_prompt:(i + 1) * rcfg.samples_per_prompt]
        rewards = judge.score([prompt] * len(cands), cands)
        keep = rejection_sample(rewards, rcfg.num_accepted, rcfg.rs_beta, rng)
        all_reward += rewards
        accepted_reward += [rewards[k] for k in keep]
        for c, r, _ in tournament_pairs([cands[k] for k in keep], judge, prompt):
            pairs.append(Pairwise(prompt, c, r, source=f"rso:{i}"))
    stats = {"candidates": len(all_reward), "pairs": len(pairs),
             "mean_reward_candidates": sum(all_reward) / max(len(all_reward), 1),
             "mean_reward_accepted": sum(accepted_reward) / max(len(accepted_reward), 1)}
    log(f"rso: {stats}")
    if not pairs:
        raise ConfigError("rso: the judge ranked no pair (all candidates tied); raise --samples-per-prompt or --temperature")
    job.write_record()  # config.yaml first: the folder is this run's (the offline loop rewrites it)
    write_jsonl(pairs, Path(job.output) / "rso_pairs.jsonl")
    train, ev = load_split(pairs, cfg, "pairwise", log)
    summary = train_offline(spec, loss_cfg, cfg, job.model, train, ev, job.output, log, record=job.record())
    summary["rso"] = stats
    (Path(job.output) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
