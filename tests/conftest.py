"""Shared fixtures: a tiny Llama + BPE tokenizer built from a config (no downloads), and the path to
../shared (real data), which tests skip without."""
from __future__ import annotations

import math
import os
import random
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tests run in parallel workers; one thread each is fastest on 2 cores
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (../shared holds the real data; a user's clone has none)")
    return p


WORDS = ("the cat sat on a mat and the dog ran to the park . what is two plus three ? five . "
         "please help me with my homework . sure , here is how . no , i cannot help with that .").split()


def synthetic_texts(n: int = 200, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from alignkit.models.tiny import TinyLlamaConfig, make_tiny_model
    out = tmp_path_factory.mktemp("tiny-model")
    return make_tiny_model(synthetic_texts(), out, vocab_size=300,
                           cfg=TinyLlamaConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))


def make_pairs(n: int = 40, seed: int = 0):
    """Pairwise records with a learnable preference: chosen says 'sure', rejected says 'no'."""
    from alignkit.data.records import Pairwise
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = " ".join(rng.choice(WORDS[:20]) for _ in range(rng.randint(3, 8)))
        out.append(Pairwise(f"question {i}: {q} ?", "sure , here is how . " + q,
                            "no , i cannot help with that . " + " ".join(rng.choice(WORDS) for _ in range(3))))
    return out


def make_demos(n: int = 40, seed: int = 0):
    from alignkit.data.records import Demonstration
    return [Demonstration(p.prompt, p.chosen) for p in make_pairs(n, seed)]


# ---- hand-computation helpers shared by the loss tests
def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def softplus(z: float) -> float:  # log(1 + e^z); -log sigma(z) = softplus(-z)
    return math.log1p(math.exp(z))


def equal_token_logps(sums, lengths, grad=False):
    """Logps rows of equal per-token log-probs with the given sequence sums and lengths (float64)."""
    from alignkit.losses.base import Logps
    t = max(lengths)
    tokens = torch.zeros(len(sums), t, dtype=torch.float64)
    mask = torch.zeros(len(sums), t, dtype=torch.float64)
    for i, (s, n) in enumerate(zip(sums, lengths)):
        tokens[i, :n] = s / n
        mask[i, :n] = 1
    if grad:
        tokens.requires_grad_(True)
    return Logps(tokens, mask)
