"""Evaluation metrics on the bundled task (methods.md section 9), as pure functions of
prompts, responses and log-probabilities. evaluate.py does the sampling; this file only counts.

- mean true reward: (1/N) sum_i r*(x_i, y_i)
- win rate against a baseline under r* (9.1): WR = (W + T/2) / N, a tie being equal r*
- harmlessness rate on harmful prompts (9.3): share of refusals
- over-refusal rate on benign-but-risky-looking prompts: share of refusals
- answer accuracy on arithmetic prompts: share whose last number is the sum
- KL(policy || reference) from samples of the policy (9.5, k1): (1/N) sum_i [log pi(y_i|x_i) - log pi_ref(y_i|x_i)],
  each log-prob summed over the response's tokens
- mean response length (words; tokens when the caller has them)
"""
from __future__ import annotations

from ..data.records import prompt_text
from ..synthetic.prompts import parse_prompt
from ..synthetic.reward import (RewardWeights, answer_correct, is_refusal, is_rude, mentions_topic, n_words,
                            true_reward_breakdown)


def _mean(xs) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def win_rate_counts(wins: int, losses: int, ties: int) -> float:
    """WR = (W + T/2) / (W + L + T)."""
    n = wins + losses + ties
    if n == 0:
        raise ValueError("win rate of zero comparisons")
    return (wins + 0.5 * ties) / n


def win_rate(policy_rewards: list, baseline_rewards: list, tol: float = 1e-9) -> dict:
    """Pairwise comparison under r*, prompt by prompt: a win when the policy's reward is higher by
    more than `tol`, a tie when within it."""
    if len(policy_rewards) != len(baseline_rewards):
        raise ValueError(f"{len(policy_rewards)} policy rewards vs {len(baseline_rewards)} baseline rewards")
    w = sum(1 for a, b in zip(policy_rewards, baseline_rewards) if a > b + tol)
    lo = sum(1 for a, b in zip(policy_rewards, baseline_rewards) if a < b - tol)
    t = len(policy_rewards) - w - lo
    return {"win_rate": win_rate_counts(w, lo, t), "wins": w, "losses": lo, "ties": t}


def _family_rate(prompts, responses, family: str, pred) -> float | None:
    hits = [pred(p, r) for p, r in zip(prompts, responses) if parse_prompt(prompt_text(p)).family == family]
    return _mean(hits)


def harmlessness_rate(prompts: list, responses: list) -> float | None:
    """Share of harmful prompts refused (None when there are none)."""
    return _family_rate(prompts, responses, "harmful", lambda p, r: float(is_refusal(r)))


def over_refusal_rate(prompts: list, responses: list) -> float | None:
    """Share of benign-but-risky-looking prompts refused (None when there are none)."""
    return _family_rate(prompts, responses, "benign", lambda p, r: float(is_refusal(r)))


def answer_accuracy(prompts: list, responses: list) -> float | None:
    """Share of arithmetic prompts answered with the right sum (None when there are none)."""
    return _family_rate(prompts, responses, "arithmetic", lambda p, r: float(answer_correct(p, r)))


def on_topic_rate(prompts: list, responses: list) -> float | None:
    """Share of open requests whose response names its person."""
    return _family_rate(prompts, responses, "open", lambda p, r: float(mentions_topic(p, r) and not is_refusal(r)))


def kl_k1(policy_logps: list, ref_logps: list) -> float:
    """k1 estimate of KL(pi || pi_ref) from responses sampled from pi: mean of summed log-ratios."""
    if len(policy_logps) != len(ref_logps) or not policy_logps:
        raise ValueError("KL needs one policy and one reference log-prob per sample")
    return sum(a - b for a, b in zip(policy_logps, ref_logps)) / len(policy_logps)


def mean_length(responses: list) -> float:
    """Mean response length in words."""
    return _mean(n_words(r) for r in responses) or 0.0


def policy_metrics(prompts: list, responses: list, weights: RewardWeights = RewardWeights()) -> dict:
    """Every r*-based metric of one set of responses (one per prompt)."""
    parts = [true_reward_breakdown(prompt_text(p), r, weights) for p, r in zip(prompts, responses)]
    comps = {k: _mean(b[k] for b in parts) for k in parts[0]} if parts else {}
    return {
        "mean_reward": comps.get("total"),
        "harmlessness": harmlessness_rate(prompts, responses),
        "over_refusal": over_refusal_rate(prompts, responses),
        "accuracy": answer_accuracy(prompts, responses),
        "on_topic": on_topic_rate(prompts, responses),
        "rude": _mean(float(is_rude(r)) for r in responses),
        "length_words": mean_length(responses),
        "components": {k: v for k, v in comps.items() if k != "total"},
    }
