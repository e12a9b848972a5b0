"""`alignkit world unlearn`: NPO (Zhang et al. 2024, arXiv 2404.05868) on a forget set of the bundled
task, measuring what is forgotten and what is kept.

- Forget set: the SFT model's harmful compliances: K responses sampled at temperature 1 for each of
  `forget_prompts` harmful training prompts, keeping those that do not refuse (with source="corpus",
  the corpus's behaviour mix stands in for the model's samples). The same is drawn on held-out
  harmful prompts: a held-out forget set, never trained on.
- Training: `run_train("npo", sft, forget records, OUT/npo)` (the loss sees only the negatives).
- Forgetting: the mean summed log-likelihood log pi(y|x) of the forget set (training and held-out
  halves) under the SFT model and under the unlearned model.
- Retention: answer accuracy on held-out arithmetic prompts, sampled at temperature 1 with the same
  seed from both models (`retain_prompts` of them), and the mean per-token log-likelihood of correct
  arithmetic answers (the corpus's, a retain set never trained on).
- Also the full `evaluate_policy` against the SFT model (true reward, harmlessness, ...).
Writes OUT/unlearn.json and OUT/unlearn.md.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import option
from ..data.records import Demonstration
from .base import MAX_LENGTH
from .prompts import as_chat, sample_prompts
from .reward import answer_correct, is_refusal

NPO_DEFAULTS = {"learning_rate": 1e-4, "epochs": 1.0, "batch_size": 16, "lr_scheduler": "cosine",
                "warmup_ratio": 0.1, "eval_fraction": 0.1, "max_length": MAX_LENGTH}


@dataclass(frozen=True)
class UnlearnConfig:
    forget_prompts: int = option(300, ge=1)  # harmful training prompts whose compliances form the forget set
    heldout_prompts: int = option(100, ge=1)  # held-out harmful prompts for the held-out forget set
    samples_per_prompt: int = option(4, ge=1)  # K responses sampled per harmful prompt
    max_new_tokens: int = option(48, ge=1)  # longest sampled response
    retain_prompts: int = option(400, ge=1)  # held-out arithmetic prompts for the retained accuracy
    eval_prompts: int = option(400, ge=1)  # held-out prompts for evaluate_policy
    source: str = option("model", choices=("model", "corpus"))  # forget-set responses: model (the SFT model's samples) | corpus (behaviour mix)
    seed: int = 0  # prompts, sampling, data order
    train: dict = field(default_factory=dict)  # NPO run/method options over NPO_DEFAULTS


MINI_UNLEARN = UnlearnConfig(forget_prompts=48, heldout_prompts=16, max_new_tokens=16, retain_prompts=48,
                             eval_prompts=8, source="corpus", train={"learning_rate": 1e-3, "epochs": 2.0,
                                                                     "batch_size": 8})  # smoke tests


def _compliances(sft: Path, split: str, n: int, cfg: UnlearnConfig, progress: bool) -> list:
    """-> [Demonstration(prompt, harmful compliance)], deduplicated, from n harmful prompts of `split`."""
    infos = sample_prompts(n, split, seed=cfg.seed, families=("harmful",))
    if cfg.source == "corpus":
        from .candidates import sample_from_corpus
        cands = sample_from_corpus(infos, cfg.samples_per_prompt, seed=cfg.seed + (split == "heldout"))
    else:
        from ..models.generate import SamplingConfig
        from .candidates import sample_from_model
        sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=1.0, top_p=1.0, batch_size=64)
        cands = sample_from_model(str(sft), infos, cfg.samples_per_prompt, sampling, seed=cfg.seed,
                                  progress=progress, desc=f"sampling {split} harmful prompts")
    seen, out = set(), []
    for info, c in zip(infos, cands):
        for y in c:
            if y.strip() and not is_refusal(y) and (info.text, y) not in seen:
                seen.add((info.text, y))
                out.append(Demonstration(as_chat(info.text), y))
    return out


def retain_set(n: int, seed: int) -> list:
    """Correct answers to held-out arithmetic prompts, in the corpus's own phrasing (never trained on)."""
    from .corpus import ARITH_RIGHT
    rng = random.Random(f"retain|{seed}")
    return [Demonstration(as_chat(p.text), rng.choice(ARITH_RIGHT).format(q=p.request, s=p.answer))
            for p in sample_prompts(n, "heldout", seed=seed, families=("arithmetic",))]


def loglik(model_dir: str, records: list) -> dict:
    """Mean summed and mean per-token log pi(y|x) of demonstrations under a model."""
    from ..data.tokenize import Encoder
    from ..synthetic.evaluate import load_policy, logprob_sums
    model, tok = load_policy(model_dir)
    enc = Encoder.untruncated(tok)
    p_ids = [enc.prompt_ids(r.prompt) for r in records]
    c_ids = [enc.completion_ids(r.completion) for r in records]
    sums = logprob_sums(model, p_ids, c_ids, tok.pad_token_id)
    n_tok = sum(len(c) for c in c_ids)
    return {"n": len(records), "sum": sum(sums) / max(1, len(sums)), "per_token": sum(sums) / max(1, n_tok)}


def arithmetic_accuracy(model_dir: str, n: int, seed: int, max_new_tokens: int) -> float:
    """Share of n held-out arithmetic prompts answered with the right sum (temperature 1, seeded)."""
    from ..synthetic.evaluate import EVAL_SAMPLING, load_policy, sample
    infos = sample_prompts(n, "heldout", seed=seed, families=("arithmetic",))
    model, tok = load_policy(model_dir)
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=max_new_tokens, batch_size=128)
    texts = sample(model, tok, [as_chat(p.text) for p in infos], sampling, seed)[2]
    return sum(answer_correct(p, t) for p, t in zip(infos, texts)) / len(infos)


def run_unlearn(cfg: UnlearnConfig = UnlearnConfig(), output: str = "runs/unlearn", world=None,
                cache_dir: str | None = None, base_model: str | None = None, progress: bool = False,
                log=print) -> dict:
    from ..errors import AlignkitError, ConfigError
    from ..synthetic.evaluate import EVAL_SAMPLING, evaluate_policy
    from ..registry import run_train
    from .base import WorldConfig, build_base
    if cfg.source not in ("model", "corpus"):
        raise ConfigError(f"source must be model or corpus, got {cfg.source!r}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    sft = Path(base_model) if base_model else build_base(world or WorldConfig(), cache_dir=cache_dir, log=log)
    t0 = time.time()
    forget = _compliances(sft, "train", cfg.forget_prompts, cfg, progress)
    forget_ho = _compliances(sft, "heldout", cfg.heldout_prompts, cfg, progress)
    if not forget:
        raise AlignkitError("the SFT model complied with no harmful prompt: the forget set is empty")
    retain = retain_set(cfg.retain_prompts, cfg.seed)
    log(f"forget set: {len(forget)} harmful compliances (held-out: {len(forget_ho)})")
    overrides = {**NPO_DEFAULTS, **cfg.train, "seed": cfg.seed, "progress": progress}
    npo_dir = out / "npo"
    if npo_dir.exists():
        import shutil
        shutil.rmtree(npo_dir)
    summary = run_train("npo", str(sft), forget, str(npo_dir), overrides=overrides, log=lambda *a, **k: None)
    if summary.get("interrupted"):
        raise KeyboardInterrupt
    res = {"config": dataclasses.asdict(cfg), "train": overrides, "base_model": str(sft),
           "forget_records": len(forget), "heldout_forget_records": len(forget_ho), "steps": summary.get("steps"),
           "eval_start": summary.get("eval_start"), "eval_end": summary.get("eval_end")}
    for name, path in (("sft", str(sft)), ("npo", str(npo_dir))):
        res[name] = {"forget": loglik(path, forget), "forget_heldout": loglik(path, forget_ho) if forget_ho else None,
                     "retain": loglik(path, retain),
                     "arith_accuracy": arithmetic_accuracy(path, cfg.retain_prompts, cfg.seed, cfg.max_new_tokens)}
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=cfg.max_new_tokens, batch_size=128)
    ev = evaluate_policy(str(npo_dir), baseline=str(sft), n_prompts=cfg.eval_prompts, seed=cfg.seed,
                         split="heldout", sampling=sampling, log=lambda *a, **k: None)
    res["evaluate"] = {"sft": ev["baseline_metrics"], "npo": ev["policy"], "win_rate": ev["win_rate"]}
    res["accuracy_change"] = res["npo"]["arith_accuracy"] - res["sft"]["arith_accuracy"]
    res["seconds"] = round(time.time() - t0, 1)
    (out / "unlearn.json").write_text(json.dumps(res, indent=1))
    (out / "unlearn.md").write_text(markdown(res))
    log("\n" + markdown(res))
    return res


def markdown(res: dict) -> str:
    def ll(d):
        return "-" if d is None else f"{d['sum']:.2f} ({d['per_token']:.3f}/token, n={d['n']})"
    e = res["evaluate"]
    rows = [("forget set log-lik (trained on)", ll(res["sft"]["forget"]), ll(res["npo"]["forget"])),
            ("forget set log-lik (held-out prompts)", ll(res["sft"]["forget_heldout"]), ll(res["npo"]["forget_heldout"])),
            ("retain set log-lik (correct sums)", ll(res["sft"]["retain"]), ll(res["npo"]["retain"])),
            ("arithmetic accuracy (held-out, T=1)", f"{res['sft']['arith_accuracy']:.3f}", f"{res['npo']['arith_accuracy']:.3f}")]
    for label, key in (("true reward", "mean_reward"), ("harmlessness", "harmlessness"),
                       ("over-refusal", "over_refusal"), ("KL to SFT", "kl_to_ref"), ("length (tokens)", "length_tokens")):
        a, b = e["sft"].get(key), e["npo"].get(key)
        rows.append((f"{label} (evaluate_policy)", "-" if a is None else f"{a:.3f}", "-" if b is None else f"{b:.3f}"))
    lines = [f"NPO on {res['forget_records']} forget-set responses, {res['steps']} steps; accuracy change "
             f"{100 * res['accuracy_change']:+.1f} points; win rate vs SFT {e['win_rate']['win_rate']:.3f}.", "",
             "| metric | SFT | NPO |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines) + "\n"
