"""Rule rewards: plain Python functions `(prompt, response) -> float`, by name or from a file.

    rule:NAME          a function registered here (RULES), e.g. rule:words, rule:truth
    rule:NAME=ARG      a parameterised rule (RULE_FACTORIES), e.g. rule:contains=please|thanks
    file:PATH.py:FN    FN from a Python file: a function (prompt, response) -> float, a Judge subclass
                       (instantiated with no arguments) or a Judge instance

The prompt reaches a rule as text (a conversation is joined by `prompt_text`). Register your own with
`@register_rule("name")`. Built-ins:
    words          number of words in the response
    chars          number of characters in the response
    positive       number of words from a positive-sentiment lexicon (happy, love, thank, ...)
    negative       number of words from a negative-sentiment lexicon (sad, hate, ...)
    sentiment      positive - negative (the controlled-sentiment reward of the DPO paper, Rafailov et al.
                   2023, arXiv 2305.18290, sec. 6 and App. C.1, with a word list in place of a classifier)
    truth          the bundled task's ground-truth r* (registered by its plug-in, alignkit/synthetic/plugin.py)
    contains=A|B   how many of the keywords A, B, ... the response contains (case-insensitive)
    max_words=N    -(number of words beyond N): a length penalty
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Callable

from ..data.records import prompt_text
from ..errors import ConfigError
from .judge import Judge

RULES: dict = {}  # name -> fn(prompt: str, response: str) -> float
RULE_FACTORIES: dict = {}  # name -> factory(arg: str) -> fn(prompt, response) -> float


def register_rule(name: str):
    def deco(fn: Callable) -> Callable:
        RULES[name] = fn
        return fn
    return deco


def register_rule_factory(name: str):
    def deco(factory: Callable) -> Callable:
        RULE_FACTORIES[name] = factory
        return factory
    return deco


POSITIVE = frozenset("""happy happily happier happiest glad joy joyful love loved loves lovely fun smile
smiled smiles smiling laugh laughed laughing kind nice good great best beautiful friend friends friendly
hug hugged wonderful excited fantastic thank thanked proud cheerful amazing""".split())
NEGATIVE = frozenset("""sad sadly angry mad cry cried crying scared afraid hurt bad worst ugly lonely upset
fear hate hated mean sorry broke broken lost""".split())


def _words(text: str) -> list:
    """Lower-cased words with surrounding punctuation stripped (as alignkit/rl/judges.py does, so
    rule:positive means the same everywhere)."""
    return [t.strip(".,!?;:\"'()") for t in text.lower().split()]


@register_rule("words")
def words(prompt: str, response: str) -> float:
    return float(len(response.split()))


@register_rule("chars")
def chars(prompt: str, response: str) -> float:
    return float(len(response))


@register_rule("positive")
def positive(prompt: str, response: str) -> float:
    return float(sum(w in POSITIVE for w in _words(response)))


@register_rule("negative")
def negative(prompt: str, response: str) -> float:
    return float(sum(w in NEGATIVE for w in _words(response)))


@register_rule("sentiment")
def sentiment(prompt: str, response: str) -> float:
    return positive(prompt, response) - negative(prompt, response)


@register_rule_factory("contains")
def contains(arg: str):
    keywords = [k.strip().lower() for k in arg.split("|") if k.strip()]
    if not keywords:
        raise ConfigError("rule:contains needs keywords: rule:contains=WORD|WORD")
    return lambda prompt, response: float(sum(k in response.lower() for k in keywords))


@register_rule_factory("max_words")
def max_words(arg: str):
    try:
        n = int(arg)
    except ValueError:
        raise ConfigError(f"rule:max_words needs a whole number, got {arg!r}") from None
    return lambda prompt, response: -float(max(0, len(response.split()) - n))


class RuleJudge(Judge):
    """A rule function as a Judge; the score of every response must be a finite number."""

    def __init__(self, name: str, fn: Callable):
        self.name, self.fn = name, fn

    def score(self, prompts: list, responses: list) -> list:
        out = []
        for p, r in zip(prompts, responses):
            v = self.fn(prompt_text(p), r)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{self.name} returned {v!r}, not a number") from None
            if not math.isfinite(v):
                raise ConfigError(f"{self.name} returned {v} for a response; rewards must be finite")
            out.append(v)
        return out


def rule_judge(spec: str) -> Judge:
    """'NAME' or 'NAME=ARG' -> RuleJudge."""
    name, eq, arg = spec.partition("=")
    name = name.strip()
    if eq:
        if name not in RULE_FACTORIES:
            raise ConfigError(f"unknown parameterised rule {name!r}; known: {', '.join(sorted(RULE_FACTORIES))}")
        return RuleJudge(f"rule:{spec}", RULE_FACTORIES[name](arg))
    if name not in RULES:
        hint = f" (it takes an argument: rule:{name}=...)" if name in RULE_FACTORIES else ""
        raise ConfigError(f"unknown rule {name!r}{hint}; known: {', '.join(sorted(RULES))}, "
                          f"{', '.join(k + '=...' for k in sorted(RULE_FACTORIES))}")
    return RuleJudge(f"rule:{name}", RULES[name])


def file_judge(spec: str) -> Judge:
    """'PATH.py:NAME' -> a Judge from a user's file (runs that file's code: use files you trust)."""
    path, sep, attr = spec.rpartition(":")
    if not sep or not path or not attr:
        raise ConfigError(f"file reward {spec!r}: expected file:PATH.py:FUNCTION")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"file reward: {path} not found")
    mod_spec = importlib.util.spec_from_file_location(f"alignkit_user_reward_{abs(hash(str(p.resolve())))}", p)
    if mod_spec is None or mod_spec.loader is None:
        raise ConfigError(f"file reward: cannot import {path} (a .py file is expected)")
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as e:  # the user's code: report it in one line
        raise ConfigError(f"file reward: importing {path} failed: {type(e).__name__}: {e}") from None
    if not hasattr(module, attr):
        names = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ConfigError(f"file reward: {path} has no {attr!r}; callables there: {', '.join(names) or 'none'}")
    obj = getattr(module, attr)
    if isinstance(obj, Judge):
        return obj
    if isinstance(obj, type) and issubclass(obj, Judge):
        return obj()
    if callable(obj):
        return RuleJudge(f"file:{spec}", obj)
    raise ConfigError(f"file reward: {path}:{attr} is not a function or a Judge")
