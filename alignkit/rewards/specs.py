"""Judge specs: one string names any reward, for every command that takes --reward / --against.

    SPEC   := TERM ("+" TERM)*                    a weighted sum of judges' scores
    TERM   := [WEIGHT "*"] SOURCE
    SOURCE := rm:DIR                               a reward model folder (RewardModelJudge)
            | implicit:POLICY_DIR[,REF_DIR][,beta=B]   a DPO-family policy's implicit reward
            | rule:NAME | rule:NAME=ARG            a rule reward (alignkit/rewards/rules.py)
            | file:PATH.py:FUNCTION                a function (prompt, response) -> float from a file
            | truth                                the bundled task's ground truth r* (its plug-in registers it)
            | KIND:ARG                             a kind registered with `register_judge_kind`
                                                   (e.g. LLM judges from the AI-feedback subsystem)

Examples: "rm:runs/rm", "0.7*rule:sentiment+0.3*rm:runs/rm", "implicit:runs/dpo,runs/sft,beta=0.1".
A "+" splits terms only where a new term starts (a weight or a known kind follows it), so folder names
may contain "+". A single unweighted term is that judge itself; a weighted sum is a `WeightedJudge`.
"""
from __future__ import annotations

import re
from typing import Callable

from ..errors import ConfigError
from .judge import Judge, WeightedJudge

KINDS: dict = {}  # kind -> factory(arg: str) -> Judge
NO_ARG: set = set()  # kinds written without an argument (e.g. truth)


def register_judge_kind(kind: str, factory: Callable, takes_arg: bool = True) -> None:
    """Add a SOURCE kind, e.g. register_judge_kind("llm", lambda arg: MyLLMJudge(arg))."""
    KINDS[kind] = factory
    if not takes_arg:
        NO_ARG.add(kind)


def _rm(arg: str) -> Judge:
    from .scoring import RewardModelJudge
    if not arg:
        raise ConfigError("rm: needs a folder: rm:DIR")
    return RewardModelJudge(arg)


def _implicit(arg: str) -> Judge:
    from .implicit import ImplicitRewardJudge
    parts = [p.strip() for p in arg.split(",") if p.strip()]
    beta = None
    dirs = []
    for p in parts:
        if p.startswith("beta="):
            try:
                beta = float(p[5:])
            except ValueError:
                raise ConfigError(f"implicit:{arg}: beta must be a number, got {p[5:]!r}") from None
        else:
            dirs.append(p)
    if not 1 <= len(dirs) <= 2:
        raise ConfigError(f"implicit:{arg}: expected implicit:POLICY_DIR[,REF_DIR][,beta=B]")
    return ImplicitRewardJudge(dirs[0], dirs[1] if len(dirs) > 1 else None, beta)


def _rule(arg: str) -> Judge:
    from .rules import rule_judge
    return rule_judge(arg)


def _file(arg: str) -> Judge:
    from .rules import file_judge
    return file_judge(arg)


register_judge_kind("rm", _rm)
register_judge_kind("implicit", _implicit)
register_judge_kind("rule", _rule)
register_judge_kind("file", _file)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WEIGHTED = re.compile(rf"^\s*({_NUMBER})\s*\*\s*(.+?)\s*$", re.S)


def _term_start(text: str) -> bool:
    """Does `text` begin a term: [WEIGHT*]KIND followed by ':' or the end?"""
    m = _WEIGHTED.match(text)
    body = (m.group(2) if m else text).strip()
    kind, colon, _ = body.partition(":")
    return kind in KINDS and (bool(colon) or body == kind)


def split_terms(spec: str) -> list:
    pieces = spec.split("+")
    terms = [pieces[0]]
    for piece in pieces[1:]:
        if _term_start(piece):
            terms.append(piece)
        else:  # a "+" inside a path or a number's exponent: glue it back
            terms[-1] += "+" + piece
    return [t.strip() for t in terms]


def parse_term(term: str) -> tuple:
    """'0.3*rm:DIR' -> (0.3, 'rm', 'DIR'); 'truth' -> (1.0, 'truth', '')."""
    m = _WEIGHTED.match(term)
    weight, body = (float(m.group(1)), m.group(2)) if m else (None, term.strip())
    kind, _, arg = body.partition(":")
    if kind not in KINDS:
        raise ConfigError(f"reward spec {term!r}: unknown kind {kind!r}; expected one of "
                          f"{', '.join(k + ':...' if k not in NO_ARG else k for k in KINDS)}")
    return weight, kind, arg.strip()


def judge_from_spec(spec) -> Judge:
    """A Judge from a spec string (a Judge instance passes through)."""
    if isinstance(spec, Judge):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("empty reward spec; e.g. rm:DIR, rule:words, truth, 0.5*rule:a+0.5*rm:DIR")
    parsed = [parse_term(t) for t in split_terms(spec.strip())]
    parts = [(1.0 if w is None else w, KINDS[kind](arg)) for w, kind, arg in parsed]
    if len(parts) == 1 and parsed[0][0] is None:
        return parts[0][1]
    return WeightedJudge(parts)
