"""Helpers for the real-data runs (issue 7): load and split ../shared data, build a tiny model from
the data's own texts, score held-out responses with a saved model, and rank metrics (AUC, pairwise
ranking accuracy, Kendall tau). Tests that use it skip when ../shared is absent.

Held-out splits are by *prompt*: no held-out question or instruction is seen in training, so a
metric that improves measures what generalises across prompts, not memorised answers.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"
TRUTHFULQA = ("data", "truthfulqa", "finetune_truth.jsonl")
ALPACA_LISTS = ("data", "alpaca_eval", "listwise_5models_vs_gpt4turbo_ref.jsonl.gz")


def shared_file(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (../shared holds the real data; a user's clone has none)")
    return p


def split_by_prompt(records: list, n_eval_prompts: int, seed: int) -> tuple:
    """(train, held-out): whole prompts go to one side (seeded)."""
    prompts = sorted({r.prompt for r in records})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[:n_eval_prompts])
    return [r for r in records if r.prompt not in held], [r for r in records if r.prompt in held]


def balanced_sample(records: list, n: int, seed: int) -> list:
    """n records, half thumbs-up and half thumbs-down, in a seeded shuffled order."""
    rng = random.Random(seed)
    pos = [r for r in records if r.label]
    neg = [r for r in records if not r.label]
    out = rng.sample(pos, n // 2) + rng.sample(neg, n - n // 2)
    rng.shuffle(out)
    return out


def truthfulqa_binary(n_train: int, n_eval: int, seed: int = 0, n_eval_prompts: int = 150) -> tuple:
    """Balanced thumbs-up/down answers of TruthfulQA (the GPT-judge training labels):
    (train, held-out) with disjoint questions; exact duplicate (question, answer) rows dropped."""
    from alignkit.data.readers import read_records
    records, _ = read_records(shared_file(*TRUTHFULQA), shape="binary", on_bad_record="skip")
    seen, unique = set(), []
    for r in records:
        key = (r.prompt, r.completion)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    train, held = split_by_prompt(unique, n_eval_prompts, seed)
    return balanced_sample(train, n_train, seed), balanced_sample(held, n_eval, seed + 1)


def alpaca_lists(min_spread: float = 0.1, n_eval: int = 60, seed: int = 0) -> tuple:
    """The alpaca_eval five-response lists whose scores (the judge's P(beats the reference)) spread
    by more than `min_spread` (~240 of 803 prompts): (train, held-out) lists."""
    from alignkit.data.readers import read_records
    records, _ = read_records(shared_file(*ALPACA_LISTS), shape="listwise", on_bad_record="skip")
    clear = [r for r in records if max(r.scores) - min(r.scores) > min_spread]
    random.Random(seed).shuffle(clear)
    return clear[n_eval:], clear[:n_eval]


def texts_of(records: list) -> list:
    out = []
    for r in records:
        out.append(r.prompt if isinstance(r.prompt, str) else str(r.prompt))
        out += list(r.completions) if hasattr(r, "completions") else [r.completion]
    return out


def tiny_model(records: list, out_dir, vocab_size: int = 512, hidden: int = 64, layers: int = 2) -> Path:
    """A random tiny Llama with a BPE tokenizer trained on the records' own texts."""
    from alignkit.models.tiny import TinyLlamaConfig, make_tiny_model
    cfg = TinyLlamaConfig(hidden_size=hidden, num_layers=layers)
    return make_tiny_model(texts_of(records), out_dir, vocab_size=vocab_size, cfg=cfg)


@torch.no_grad()
def sequence_scores(model_dir, prompts: list, completions: list, max_length: int, batch_size: int = 32) -> tuple:
    """(summed, mean) completion log-probs (N,) of each (prompt, completion) under a saved model,
    tokenized and truncated exactly as `alignkit train` does (Encoder, EOS included)."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    from alignkit.train.forward import collate, sequence_logps
    model = load_causal_lm(str(model_dir), "fp32").eval()
    tok = load_tokenizer(str(model_dir))
    enc = Encoder(tok, max_length)
    seqs = []
    for p, c in zip(prompts, completions):
        e = enc.encode(p, c)
        seqs.append((e.prompt_ids, e.completion_ids))
    summed, mean = [], []
    for i in range(0, len(seqs), batch_size):
        lp, _ = sequence_logps(model, collate(seqs[i: i + batch_size], tok.pad_token_id))
        summed.append(lp.sum())
        mean.append(lp.mean())
    return torch.cat(summed), torch.cat(mean)


def implicit_rewards(policy_dir, ref_dir, prompts: list, completions: list, beta: float, max_length: int):
    """beta * (log pi(y|x) - log pi_ref(y|x)), summed log-probs (N,)."""
    pol, _ = sequence_scores(policy_dir, prompts, completions, max_length)
    ref, _ = sequence_scores(ref_dir, prompts, completions, max_length)
    return beta * (pol - ref)


def auc(scores, labels) -> float:
    """P(score of a random positive > score of a random negative), ties count half (Mann-Whitney U)."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.bool)
    pos, neg = s[y], s[~y]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


def reward_gap(scores, labels) -> float:
    """mean score of positives - mean score of negatives."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.bool)
    return float(s[y].mean() - s[~y].mean())


def list_pairs(labels: list, min_gap: float) -> list:
    """(better, worse) index pairs of a list whose label scores differ by more than min_gap."""
    k = len(labels)
    return [(i, j) for i in range(k) for j in range(k) if labels[i] - labels[j] > min_gap]


def ranking_accuracy(model_scores: list, label_scores: list, min_gap: float = 0.1) -> float:
    """Share of clearly ordered pairs (label gap > min_gap) the model orders the same way, over all
    lists; ties in the model's scores count half."""
    right = total = 0.0
    for s, y in zip(model_scores, label_scores):
        for i, j in list_pairs(list(y), min_gap):
            right += 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
            total += 1
    return right / max(total, 1)


def kendall_tau(model_scores: list, label_scores: list, min_gap: float = 0.1) -> float:
    """Mean over lists of (concordant - discordant) / pairs, counting only clearly ordered pairs."""
    taus = []
    for s, y in zip(model_scores, label_scores):
        pairs = list_pairs(list(y), min_gap)
        if pairs:
            c = sum(1 for i, j in pairs if s[i] > s[j])
            d = sum(1 for i, j in pairs if s[i] < s[j])
            taus.append((c - d) / len(pairs))
    return sum(taus) / max(len(taus), 1)


def flat_lists(lists: list) -> tuple:
    """(prompts, completions) of every response of every list, prompt-major."""
    prompts = [r.prompt for r in lists for _ in r.completions]
    comps = [c for r in lists for c in r.completions]
    return prompts, comps


def grouped(values, lists: list) -> list:
    """Per-response values (flat, prompt-major) -> one list per record."""
    out, k = [], 0
    for r in lists:
        out.append([float(v) for v in values[k: k + len(r.completions)]])
        k += len(r.completions)
    return out
