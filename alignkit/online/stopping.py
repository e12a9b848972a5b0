"""`--stop-when`: when to stop iterating, the survey's open problem, as rules checked after every round.

    --stop-when RULE[,RULE...]       any rule that fires stops the run after that round
    winrate[:T]      the held-out win rate of round t against round t-1 (one sample per held-out prompt
                     from each, judged by --stop-judge, default the run's judge; a tie counts 1/2) no longer
                     beats T (default 0.5) beyond its confidence interval: the interval's lower bound is <= T
    kl:B             the sequence KL of round t to the initial model, estimated from round t's own held-out
                     samples at temperature 1 (k1: mean of log pi_t(y|x) - log pi_0(y|x)), exceeds B nats
    plateau[:EPS[:N]]  the run's judge's mean reward of the held-out samples improved by less than EPS
                     (relative: (r_t - r_{t-1}) / |r_{t-1}|; default 0.01) in each of the last N rounds
                     (default 2); round 0 is the initial model
    max:N            N rounds were trained

The interval is the normal approximation around the mean of the per-prompt outcomes (1 win, 1/2 tie, 0
loss), mean +- z * sd / sqrt(n) with the outcomes' sample standard deviation and z for --stop-confidence
(two-sided; 0.95 -> 1.96). Everything here is pure: the figures come from `watch.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from ..errors import ConfigError

SYNTAX = "winrate[:T], kl:B, plateau[:EPS[:N]], max:N (comma-separated)"


@dataclass(frozen=True)
class StopRules:
    winrate: float | None = None  # stop when the win rate's lower bound is <= this
    kl: float | None = None  # stop when KL to the initial model exceeds this
    plateau: tuple | None = None  # (eps, n)
    max_rounds: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.winrate, self.kl, self.plateau, self.max_rounds))

    @property
    def watches(self) -> bool:
        """Does a rule need the held-out evaluation after each round?"""
        return any(v is not None for v in (self.winrate, self.kl, self.plateau))


def _num(rule: str, text: str, kind=float):
    try:
        v = kind(text)
    except ValueError:
        raise ConfigError(f"--stop-when {rule}: {text!r} is not a{'n integer' if kind is int else ' number'}; "
                          f"rules: {SYNTAX}") from None
    if not math.isfinite(v):
        raise ConfigError(f"--stop-when {rule}: {text!r} is not finite")
    return v


def parse_stop_when(text: str) -> StopRules:
    """'winrate,kl:5,plateau:0.01:2,max:6' -> StopRules ('' -> no rules). ':' or '=' separate arguments."""
    found: dict = {}
    for item in [s.strip() for s in (text or "").split(",") if s.strip()]:
        name, *args = [a.strip() for a in item.replace("=", ":").split(":")]
        name = name.lower()
        if name in found:
            raise ConfigError(f"--stop-when: rule {name!r} given twice")
        if name == "winrate":
            if len(args) > 1:
                raise ConfigError(f"--stop-when {item}: expected winrate or winrate:T")
            t = _num(item, args[0]) if args else 0.5
            if not 0 <= t < 1:
                raise ConfigError(f"--stop-when {item}: the threshold must be in [0, 1)")
            found[name] = t
        elif name == "kl":
            if len(args) != 1:
                raise ConfigError(f"--stop-when {item}: expected kl:B, a budget in nats (e.g. kl:5)")
            b = _num(item, args[0])
            if b < 0:
                raise ConfigError(f"--stop-when {item}: the KL budget must be >= 0")
            found[name] = b
        elif name == "plateau":
            if len(args) > 2:
                raise ConfigError(f"--stop-when {item}: expected plateau, plateau:EPS or plateau:EPS:N")
            eps = _num(item, args[0]) if args else 0.01
            n = _num(item, args[1], int) if len(args) > 1 else 2
            if n < 1:
                raise ConfigError(f"--stop-when {item}: N must be >= 1")
            found[name] = (eps, n)
        elif name == "max":
            if len(args) != 1:
                raise ConfigError(f"--stop-when {item}: expected max:N")
            n = _num(item, args[0], int)
            if n < 1:
                raise ConfigError(f"--stop-when {item}: N must be >= 1")
            found[name] = n
        else:
            raise ConfigError(f"--stop-when: unknown rule {name!r}; rules: {SYNTAX}")
    return StopRules(found.get("winrate"), found.get("kl"), found.get("plateau"), found.get("max"))


def outcome(p: float) -> float:
    """A judge's P(a > b) as a win (1), tie (1/2) or loss (0) of a."""
    return 1.0 if p > 0.5 else 0.0 if p < 0.5 else 0.5


def win_rate_interval(outcomes: list, confidence: float = 0.95) -> dict:
    """Mean of the outcomes (1/0.5/0) with its normal-approximation confidence interval."""
    n = len(outcomes)
    if n == 0:
        raise ValueError("no outcomes")
    if not 0 < confidence < 1:
        raise ConfigError(f"--stop-confidence must be in (0, 1), got {confidence}")
    mean = sum(outcomes) / n
    sd = math.sqrt(sum((o - mean) ** 2 for o in outcomes) / (n - 1)) if n > 1 else 0.0
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * sd / math.sqrt(n)
    return {"win_rate": mean, "low": mean - half, "high": mean + half, "n": n, "confidence": confidence,
            "wins": sum(o == 1.0 for o in outcomes), "ties": sum(o == 0.5 for o in outcomes),
            "losses": sum(o == 0.0 for o in outcomes)}


def relative_gain(new: float, old: float) -> float:
    return (new - old) / max(abs(old), 1e-12)


def decide(rules: StopRules, history: list) -> list:
    """The rules that fire after the last round of `history` (the held-out figures of rounds 0..t,
    round 0 the initial model: {"round", "win_rate": {...}, "kl", "judge_reward"}), each with its figures."""
    last = history[-1]
    t = last["round"]
    fired = []
    if rules.winrate is not None and last.get("win_rate"):
        w = last["win_rate"]
        if w["low"] <= rules.winrate:
            fired.append({"rule": "winrate", "threshold": rules.winrate, **w})
    if rules.kl is not None and last.get("kl") is not None and last["kl"] > rules.kl:
        fired.append({"rule": "kl", "kl": last["kl"], "budget": rules.kl})
    if rules.plateau is not None:
        eps, n = rules.plateau
        rewards = [h["judge_reward"] for h in history]
        gains = [relative_gain(rewards[i], rewards[i - 1]) for i in range(1, len(rewards))]
        if len(gains) >= n and all(g < eps for g in gains[-n:]):
            fired.append({"rule": "plateau", "eps": eps, "rounds": n, "gains": gains[-n:],
                          "judge_reward": rewards[-n - 1:]})
    if rules.max_rounds is not None and t >= rules.max_rounds:
        fired.append({"rule": "max", "rounds": t, "max": rules.max_rounds})
    return fired


def describe(fired: list) -> str:
    """One line per the log: which rules stopped the run and with what figures."""
    parts = []
    for f in fired:
        if f["rule"] == "winrate":
            parts.append(f"winrate: {f['win_rate']:.3f} against the previous round, {f['confidence']:.0%} interval "
                         f"[{f['low']:.3f}, {f['high']:.3f}] (n={f['n']}), lower bound <= {f['threshold']}")
        elif f["rule"] == "kl":
            parts.append(f"kl: {f['kl']:.3f} nats to the initial model > budget {f['budget']}")
        elif f["rule"] == "plateau":
            parts.append(f"plateau: relative gains {', '.join(f'{g:+.4f}' for g in f['gains'])} of the judge's "
                         f"held-out reward all < {f['eps']} for {f['rounds']} round(s)")
        else:
            parts.append(f"max: {f['rounds']} rounds")
    return "; ".join(parts)
