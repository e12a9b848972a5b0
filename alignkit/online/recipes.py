"""Recipes that chain sampling, judging and the offline loop: RSO and sDPO.

Each is a data flow of its own, built from the shared pieces (the generator, a Judge, the offline
loop with a registered loss); none adds a branch to a loop.
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..data.convert import write_jsonl
from ..data.records import Pairwise
from ..errors import ConfigError
from ..losses.registry import get_loss
from ..train.api import Recipe, load_split, register_recipe
from .rejection_sampling import rejection_sample, tournament_pairs


@dataclass(frozen=True)
class RSORecipeConfig:
    reward: str = ""  # judge spec that scores candidates (e.g. rm:DIR, rule:NAME, truth); required
    num_candidates: int = 16  # N responses sampled per prompt from the SFT policy (paper: 64)
    num_accepted: int = 8  # m responses kept by rejection sampling (paper: 8)
    rs_beta: float = 0.5  # rejection-sampling temperature: inf = uniform, 0 = best-of-N (paper: 0.5)
    sample_temperature: float = 0.7  # sampling temperature of the candidates (paper: 0.7)
    max_new_tokens: int = 64  # longest candidate in tokens
    max_prompts: int = 0  # use the first N prompts; 0 = all
    loss: str = "sigmoid_norm"  # sigmoid_norm | hinge_norm (RSO's loss choices)
    gamma: float = 0.05  # loss temperature on the log-ratio margin (paper: 0.05)


def run_rso(cfg, rcfg: RSORecipeConfig, model_path: str, data, output: str, log=print) -> dict:
    """RSO: sample N from pi_SFT, rejection-sample m toward pi_r, pair by the judge, then the RSO loss."""
    from ..data.prompts import read_prompts
    from ..models.generate import SamplingConfig, generate_texts
    from ..models.loading import load_causal_lm, load_tokenizer
    from ..rewards.specs import judge_from_spec
    if not rcfg.reward:
        raise ConfigError("rso needs --reward SPEC (the judge that ranks candidates)")
    judge = judge_from_spec(rcfg.reward)
    prompts = data if isinstance(data, list) else read_prompts(str(data))
    prompts = [getattr(p, "prompt", p) for p in prompts]
    if rcfg.max_prompts:
        prompts = prompts[: rcfg.max_prompts]
    model, tok = load_causal_lm(model_path), load_tokenizer(model_path)
    flat = [p for p in prompts for _ in range(rcfg.num_candidates)]
    log(f"rso: sampling {len(flat)} candidates ({rcfg.num_candidates} per prompt)")
    texts = generate_texts(model, tok, flat, SamplingConfig(max_new_tokens=rcfg.max_new_tokens,
                                                            temperature=rcfg.sample_temperature), seed=cfg.seed)
    del model
    rng = random.Random(cfg.seed)
    pairs, accepted_reward, all_reward = [], [], []
    for i, prompt in enumerate(prompts):
        cands = texts[i * rcfg.num_candidates:(i + 1) * rcfg.num_candidates]
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
        raise ConfigError("rso: the judge ranked no pair (all candidates tied); raise num_candidates or temperature")
    write_jsonl(pairs, Path(output) / "rso_pairs.jsonl")
    from ..train.offline import train_offline
    spec = get_loss("rso")
    loss_cfg = spec.config(**{k: getattr(rcfg, k) for k in ("loss", "gamma")
                              if k in {f.name for f in dataclasses.fields(spec.config)}})
    train, ev = load_split(pairs, cfg, "pairwise", log)
    summary = train_offline(spec, loss_cfg, cfg, model_path, train, ev, output, log)
    summary["rso"] = stats
    (Path(output) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


@dataclass(frozen=True)
class SDPOConfig:
    beta: float = 0.1  # DPO temperature in every stage
    stages: int = 2  # number of data chunks, used one after another (paper: 2, easy to hard)
    order: str = "as_is"  # as_is | random: chunk the data in file order (pre-sort it easy->hard) or shuffled


def run_sdpo(cfg, scfg: SDPOConfig, model_path: str, data, output: str, log=print) -> dict:
    """sDPO (Kim et al. 2024, arXiv 2403.19270): split the preference data into T chunks; stage t
    starts from M_{t-1} and uses M_{t-1} as its reference (M_0 = the SFT model), running DPO on D_t."""
    from ..train.offline import train_offline
    if scfg.stages < 1:
        raise ConfigError("sdpo: stages must be >= 1")
    train, ev = load_split(data, cfg, "pairwise", log)
    if scfg.order == "random":
        train = list(train)
        random.Random(cfg.seed).shuffle(train)
    n = len(train)
    chunks = [train[i * n // scfg.stages:(i + 1) * n // scfg.stages] for i in range(scfg.stages)]
    spec = get_loss("dpo")
    current = model_path
    out = Path(output)
    stages = []
    for t, chunk in enumerate(chunks, 1):
        stage_dir = out / f"stage-{t}"
        log(f"sdpo stage {t}/{scfg.stages}: {len(chunk)} pairs, reference = {current}")
        stage_cfg = dataclasses.replace(cfg, ref=current, ref_cache="memory", resume=False)
        s = train_offline(spec, spec.config(beta=scfg.beta), stage_cfg, current, chunk, ev, str(stage_dir), log)
        stages.append({"stage": t, "pairs": len(chunk), "eval_start": s["eval_start"], "eval_end": s["eval_end"]})
        current = str(stage_dir)
    for f in Path(current).iterdir():  # the last stage's model is the result
        if f.is_file():
            shutil.copy2(f, out / f.name)
    summary = {"method": "sdpo", "stages": stages}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


register_recipe(Recipe("rso", run_rso, RSORecipeConfig, "pairwise", "Liu et al. 2024, arXiv 2309.06657",
                       reference=True, description="statistical rejection sampling of pairs with a judge, then RSO's loss"))
register_recipe(Recipe("sdpo", run_sdpo, SDPOConfig, "pairwise", "Kim et al. 2024, arXiv 2403.19270",
                       reference=True, description="stepwise DPO: data in stages, reference = previous stage's model"))
