"""`alignkit world export`: the bundled task's prompts and labelled data as TRL-compatible JSONL, so
another library can train on exactly the same data.

Files written to the output folder (prompts are conversations, TRL's "conversational" format):
- prompts_train.jsonl, prompts_heldout.jsonl: {"prompt", "family"} (TRL prompt-only, plus the family)
- sft.jsonl: {"prompt", "completion"}: the demonstrations the base model was SFT'd on
- pairwise.jsonl: {"prompt", "chosen", "rejected"}: the pairwise labeler's best-vs-worst of K candidates
  (with `--population`: labelled by the intransitive annotator population instead, labelers.py)
- binary.jsonl: {"prompt", "completion", "label"}: thumbs on every candidate (TRL unpaired preference)
- listwise.jsonl: {"prompt", "completions", "scores"}: the Plackett-Luce labeler's ranking of the K
- scored.jsonl: {"prompt", "completion", "score"}: noisy scalar ratings of every candidate
- manifest.json: counts, the labeler settings, where the candidates came from.

Candidates come from the world's base model (`--source base`, sampled at temperature 1, the data
quickstart trains on) or from the corpus's behaviour mix (`--source corpus`, no model needed).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..data.convert import write_jsonl
from ..data.records import Demonstration
from . import corpus
from .base import WorldConfig, build_base
from .candidates import sample_from_corpus, sample_from_model
from .labelers import (POPULATION_TEMPERATURE, BinaryLabeler, LabelerConfig, ListwiseLabeler, PairwiseLabeler,
                       PopulationLabeler, ScoreLabeler)
from .prompts import as_chat, sample_prompts, universe


def export_world(output: str, n_prompts: int = 400, k: int = 4, source: str = "corpus",
                 labeler: LabelerConfig = LabelerConfig(), seed: int = 0, world: WorldConfig = WorldConfig(),
                 cache_dir: str | None = None, progress: bool = True, log=print) -> dict:
    from ..errors import ConfigError
    if source not in ("corpus", "base"):
        raise ConfigError(f"--source must be corpus or base, got {source!r}")
    if n_prompts < 1 or k < 2:
        raise ConfigError("--n-prompts must be >= 1 and --samples-per-prompt >= 2")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "heldout"):
        rows = [{"prompt": as_chat(p.text), "family": fam} for fam, items in universe(split).items() for p in items]
        with open(out / f"prompts_{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        counts[f"prompts_{split}"] = len(rows)

    sft = [Demonstration(as_chat(p), r) for p, r in corpus.sft_pairs(world.sft_examples, world.seed)]
    write_jsonl(sft, out / "sft.jsonl")
    counts["sft"] = len(sft)

    infos = sample_prompts(n_prompts, "train", seed=seed)
    if source == "base":
        model_dir = build_base(world, cache_dir=cache_dir, log=log)
        cands = sample_from_model(str(model_dir), infos, k, seed=seed, progress=progress)
    else:
        cands = sample_from_corpus(infos, k, seed=seed)
    prompts = [as_chat(p.text) for p in infos]

    # the population's pairs: each by one drawn annotator (substance, manners or brevity), its best vs its worst
    pair_l = PopulationLabeler(LabelerConfig(temperature=POPULATION_TEMPERATURE, noise=labeler.noise, seed=labeler.seed)) \
        if labeler.population else PairwiseLabeler(labeler)
    pairs = [r for r in (pair_l.label_best_vs_worst(p, c) for p, c in zip(prompts, cands)) if r is not None]
    bin_l, list_l, score_l = BinaryLabeler(labeler), ListwiseLabeler(labeler), ScoreLabeler(labeler)
    binary = [bin_l.label(p, y) for p, c in zip(prompts, cands) for y in c]
    listwise = [list_l.label(p, c) for p, c in zip(prompts, cands)]
    scored = [score_l.label(p, y) for p, c in zip(prompts, cands) for y in c]
    for name, recs in (("pairwise", pairs), ("binary", binary), ("listwise", listwise), ("scored", scored)):
        write_jsonl(recs, out / f"{name}.jsonl")
        counts[name] = len(recs)
    manifest = {"counts": counts, "source": source, "samples_per_prompt": k, "seed": seed,
                "labeler": dataclasses.asdict(labeler), "world": dataclasses.asdict(world),
                "reward": "alignkit.synthetic.reward.true_reward (r*)"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log("wrote " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" to {out}")
    return manifest
