"""The bundled task as an evaluation task of the leaderboard (registered by plugin.py).

Scoring is `evaluate_policy` (evaluate.py): the policy (and the leaderboard's baseline) sampled at
temperature 1 on held-out prompts, scored with the ground truth r*: mean r*, win rate against the
baseline (ties half), harmlessness, over-refusal, answer accuracy, KL(policy || its reference) from its
own samples (k1), mean length, and the per-token NLL of held-out demonstrations (what SFT taught).

Its training set-up (what `alignkit leaderboard --methods` trains on when no --model / --data is
given): the cached SFT model (base.py) as the start, its pre-trained checkpoint as the "base" start,
and `budget` training prompts with K responses each sampled from the SFT model and labelled
best-vs-worst by the simulated Bradley-Terry labeller on r* (labelers.py), as quickstart does.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..eval.tasks.base import Context, Metric, Subject, Task, TrainingSetup
from .base import MAX_LENGTH

WORLDS = ("default", "tiny")


@dataclass(frozen=True)
class BundledConfig:
    n_prompts: int = 200  # held-out prompts, balanced over the four families
    split: str = "heldout"  # heldout (never trained on) | train
    max_new_tokens: int = 48  # longest sampled response
    nll_demos: int = 100  # held-out demonstrations for demo_nll (0 = skip)
    samples_per_prompt: int = 4  # set-up: K responses per training prompt (the labeller's best-vs-worst pair is kept)
    labeler_temperature: float = 0.3  # set-up: Bradley-Terry temperature of the simulated labeller
    world: str = "default"  # set-up: the base model, default (cached, built once) | tiny (seconds; smoke tests)

    def __post_init__(self):
        if self.n_prompts < 1 or self.max_new_tokens < 1 or self.samples_per_prompt < 2 or self.nll_demos < 0:
            raise ValueError("n_prompts and max_new_tokens must be >= 1, samples_per_prompt >= 2, nll_demos >= 0")
        if self.split not in ("heldout", "train"):
            raise ValueError(f"split: {self.split!r} is not heldout or train")
        if self.world not in WORLDS:
            raise ValueError(f"world: {self.world!r} is not one of {', '.join(WORLDS)}")


def _items(cfg: BundledConfig, ctx: Context) -> list:
    """The prompts evaluate_policy draws for this seed (it draws them again, identically)."""
    from .prompts import sample_prompts
    return sample_prompts(cfg.n_prompts, cfg.split, seed=ctx.seed)


def _score(subject: Subject, items: list, cfg: BundledConfig, ctx: Context) -> dict:
    from .evaluate import EVAL_SAMPLING, evaluate_policy
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=cfg.max_new_tokens)
    ref = subject.ref or ctx.reference or ctx.baseline or None
    baseline = ctx.baseline if ctx.baseline and ctx.baseline != subject.path else None
    res = evaluate_policy(subject.path, baseline=baseline, ref=ref, n_prompts=len(items), seed=ctx.seed,
                          split=cfg.split, sampling=sampling, nll_demos=cfg.nll_demos, log=lambda *a, **k: None)
    pol = res["policy"]
    out = {k: pol.get(k) for k in ("mean_reward", "harmlessness", "over_refusal", "accuracy", "kl_to_ref",
                                    "length_tokens", "demo_nll")}
    if ref and str(ref) == str(subject.path):
        out["kl_to_ref"] = 0.0  # the subject is its own reference
    if res.get("win_rate"):
        out["win_rate"] = res["win_rate"]["win_rate"]
    elif ctx.baseline and ctx.baseline == subject.path:
        out["win_rate"] = 0.5  # the baseline against itself: every prompt a tie (same samples)
    out["n"] = res["n_prompts"]
    return out


def _setup(cfg: BundledConfig, budget: int, seed: int, log) -> TrainingSetup:
    from ..models.generate import SamplingConfig
    from .base import TINY_WORLD, WorldConfig, build_base
    from .candidates import sample_from_model
    from .labelers import LabelerConfig, PairwiseLabeler
    from .prompts import as_chat, sample_prompts
    sft = build_base(TINY_WORLD if cfg.world == "tiny" else WorldConfig(), log=log)
    infos = sample_prompts(budget, "train", seed=seed)
    sampling = SamplingConfig(max_new_tokens=cfg.max_new_tokens, temperature=1.0, top_p=1.0, batch_size=64)
    log(f"bundled task: sampling {cfg.samples_per_prompt} responses for each of {len(infos)} training prompts from {sft}")
    cands = sample_from_model(str(sft), infos, cfg.samples_per_prompt, sampling, seed=seed, progress=False)
    labeler = PairwiseLabeler(LabelerConfig(temperature=cfg.labeler_temperature, seed=seed))
    pairs = [p for p in (labeler.label_best_vs_worst(as_chat(i.text), c) for i, c in zip(infos, cands)) if p is not None]
    return TrainingSetup(
        model=str(sft), base=str(sft.parent / "pretrained"), pairs=tuple(pairs),
        prompts=tuple(as_chat(i.text) for i in infos),
        description=(f"the bundled task: {len(infos)} training prompts x {cfg.samples_per_prompt} responses sampled "
                     f"from the SFT model, labelled best-vs-worst by a Bradley-Terry labeller on r* (temperature "
                     f"{cfg.labeler_temperature}): {len(pairs)} pairs"),
        train_defaults=(("max_length", MAX_LENGTH),))


TASK = Task(
    name="bundled",
    description="the bundled task under its ground-truth reward r*: mean r*, win rate vs the baseline, harmlessness, "
                "over-refusal, accuracy, KL to the reference, length, held-out demonstration NLL",
    paper="alignkit's synthetic world (alignkit/synthetic); win rate and KL as in Rafailov et al. 2023, "
          "arXiv 2305.18290, sec. 6",
    config=BundledConfig,
    metrics=(Metric("mean_reward", "r*", True, chart=True), Metric("win_rate", "win rate vs baseline", True, chart=True),
             Metric("harmlessness", "harmless", True, chart=True), Metric("over_refusal", "over-refusal", False, chart=True),
             Metric("accuracy", "accuracy", True), Metric("kl_to_ref", "KL to ref", None),
             Metric("length_tokens", "length (tok)", None), Metric("demo_nll", "demo NLL", False)),
    primary="mean_reward",
    items=_items,
    score=_score,
    frontier=("mean_reward", "kl_to_ref"),
    setup=_setup,
)
