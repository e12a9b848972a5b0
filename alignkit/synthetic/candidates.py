"""Candidate responses for the labelers: K per prompt, either sampled on-policy from a model (what
quickstart does with the SFT model) or drawn from the world's behaviour mix (no model needed)."""
from __future__ import annotations

import random

from ..models.generate import SamplingConfig
from ..train.progress import Progress
from .corpus import SFT_RATES, BehaviourRates, respond
from .prompts import as_chat

SAMPLING = SamplingConfig(max_new_tokens=48, temperature=1.0, top_p=1.0, batch_size=64)


def sample_from_model(model_dir: str, infos: list, k: int, sampling: SamplingConfig = SAMPLING, seed: int = 0,
                      progress: bool = True, desc: str = "sampling") -> list:
    """-> one list of k response texts per prompt, sampled from the model at `model_dir`."""
    from ..synthetic.evaluate import load_policy, sample
    model, tok = load_policy(model_dir)
    prompts = [as_chat(p.text) for p in infos for _ in range(k)]
    texts = []
    chunk = sampling.batch_size * 4
    with Progress(len(prompts), desc=desc, enabled=progress, unit="response", leave=False) as bar:
        for i in range(0, len(prompts), chunk):
            texts += sample(model, tok, prompts[i: i + chunk], sampling, seed + i)[2]
            bar.update(len(prompts[i: i + chunk]))
    return [texts[j * k: (j + 1) * k] for j in range(len(infos))]


def sample_from_corpus(infos: list, k: int, seed: int = 0, rates: BehaviourRates = SFT_RATES) -> list:
    """-> k draws per prompt from the behaviour mix the base model was SFT'd on."""
    rng = random.Random(f"candidates|{seed}")
    return [[respond(p, rng, rates)[0] for _ in range(k)] for p in infos]

