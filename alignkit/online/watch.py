"""The held-out figures an iterative run records after every round (and the stop rules read).

After round t (and once for the initial model, round 0) the policy pi_t answers each held-out prompt once
at temperature 1 / top_p 1 (exact draws from pi_t, so the KL estimate is unbiased), and:
- judge_reward: the run's judge's mean score of those answers (for self-rewarding, pi_t's own judge);
- win_rate: pi_t's answers against pi_{t-1}'s, per prompt, under --stop-judge (default the run's judge),
  with its confidence interval (stopping.win_rate_interval);
- kl: the k1 estimate of KL(pi_t || pi_0) from pi_t's answers, sum over tokens, mean over prompts;
- eval_reward / eval_win_rate: the same under --eval-judge when given (on the bundled task `truth`: r*).
The answers are kept in round-T/heldout.jsonl so a resumed run compares against them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .stopping import outcome, win_rate_interval


@dataclass
class Samples:
    texts: list
    prompt_ids: list
    completion_ids: list


def heldout_samples(model_path: str, prompts: list, max_new_tokens: int, seed: int,
                    trust_remote_code: bool = False) -> Samples:
    """One answer per prompt from the model at temperature 1, top_p 1."""
    from ..data.tokenize import Encoder
    from ..models.generate import HFGenerator, SamplingConfig
    from ..models.loading import load_causal_lm, load_tokenizer
    model = load_causal_lm(model_path, "fp32", trust_remote_code).eval()
    tok = load_tokenizer(model_path, trust_remote_code)
    enc = Encoder.untruncated(tok)
    p_ids = [enc.prompt_ids(p) for p in prompts]
    c_ids = HFGenerator(model, tok).generate(p_ids, SamplingConfig(max_new_tokens=max_new_tokens, temperature=1.0,
                                                                   top_p=1.0), seed=seed)
    texts = [tok.decode(c, skip_special_tokens=True) for c in c_ids]
    return Samples(texts, p_ids, [list(c) for c in c_ids])


@torch.no_grad()
def logprob_sums(model_path: str, prompt_ids: list, completion_ids: list, trust_remote_code: bool = False,
                 batch_size: int = 32) -> list:
    """sum_t log pi(y_t | x, y_<t) per (prompt, completion); an empty completion scores 0."""
    from ..models.loading import load_causal_lm, load_tokenizer
    from ..train.forward import collate, sequence_logps
    model = load_causal_lm(model_path, "fp32", trust_remote_code).eval()
    pad = load_tokenizer(model_path, trust_remote_code).pad_token_id
    out = [0.0] * len(prompt_ids)
    idx = [i for i, c in enumerate(completion_ids) if c]
    for s in range(0, len(idx), batch_size):
        chunk = idx[s: s + batch_size]
        lp, _ = sequence_logps(model, collate([(prompt_ids[i], completion_ids[i]) for i in chunk], pad))
        for i, v in zip(chunk, lp.sum().tolist()):
            out[i] = v
    return out


def estimate_kl(policy: str, initial: str, samples: Samples, trust_remote_code: bool = False) -> float:
    """k1 estimate of the sequence KL(policy || initial) from the policy's own temperature-1 samples."""
    pol = logprob_sums(policy, samples.prompt_ids, samples.completion_ids, trust_remote_code)
    ini = logprob_sums(initial, samples.prompt_ids, samples.completion_ids, trust_remote_code)
    return sum(a - b for a, b in zip(pol, ini)) / max(1, len(pol))


def _mean(xs: list) -> float:
    return sum(xs) / max(1, len(xs))


class Watch:
    """The held-out evaluation of each round (see the module's docstring)."""

    def __init__(self, prompts: list, initial: str, stop_judge, eval_judge, max_new_tokens: int, seed: int,
                 confidence: float, trust_remote_code: bool = False, log=print):
        self.prompts, self.initial = prompts, initial
        self.stop_judge, self.eval_judge = stop_judge, eval_judge  # None: the run's judge / not reported
        self.max_new_tokens, self.seed, self.confidence = max_new_tokens, seed, confidence
        self.trust, self.log = trust_remote_code, log
        self.previous: list | None = None  # the last evaluated round's answers

    def _win_rate(self, judge, texts: list) -> dict:
        p = judge.compare(self.prompts, texts, self.previous)
        return win_rate_interval([outcome(x) for x in p], self.confidence)

    def evaluate(self, t: int, model_path: str, run_judge, folder: Path) -> dict:
        """Round t's figures; keeps its answers in folder/heldout.jsonl (reused when already there)."""
        f = folder / "heldout.jsonl"
        s = heldout_samples(model_path, self.prompts, self.max_new_tokens, self.seed + 7919 * t, self.trust)
        entry = {"round": t, "prompts": len(self.prompts),
                 "judge_reward": _mean(run_judge.score(self.prompts, s.texts)),
                 "length_tokens": _mean([len(c) for c in s.completion_ids])}
        if self.eval_judge is not None:
            entry["eval_reward"] = _mean(self.eval_judge.score(self.prompts, s.texts))
        if t > 0:
            entry["win_rate"] = self._win_rate(self.stop_judge or run_judge, s.texts)
            if self.eval_judge is not None:
                entry["eval_win_rate"] = self._win_rate(self.eval_judge, s.texts)["win_rate"]
            entry["kl"] = estimate_kl(model_path, self.initial, s, self.trust)
        else:
            entry["kl"] = 0.0
        folder.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps({"text": x}) + "\n" for x in s.texts))
        self.previous = s.texts
        return entry

    def restore(self, folder: Path) -> None:
        """A resumed run: the answers of the last finished round."""
        self.previous = [json.loads(line)["text"] for line in (folder / "heldout.jsonl").read_text().splitlines()]

    @staticmethod
    def line(e: dict) -> str:
        parts = [f"held-out judge reward {e['judge_reward']:.4f}"]
        if "eval_reward" in e:
            parts.append(f"eval reward {e['eval_reward']:.4f}")
        if "win_rate" in e:
            w = e["win_rate"]
            parts.append(f"win rate vs previous {w['win_rate']:.3f} [{w['low']:.3f}, {w['high']:.3f}]")
        if e.get("round"):
            parts.append(f"KL to initial {e['kl']:.3f}")
        return ", ".join(parts)
