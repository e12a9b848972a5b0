"""Reward sources for RL: a judge spec string -> a `Judge` (alignkit/rewards/judge.py).

`alignkit.rewards.specs.judge_from_spec` owns the spec grammar (reward models, rule rewards, the
bundled task's r*, weighted sums, LLM judges); RL delegates every spec to it. On top of it, a few
rule rewards that RL's controlled-generation setting needs are built in here ("rule:NAME" with NAME
in BUILTIN_RULES), so that a run on a story model does not depend on anything else:
    rule:positive  count of positive-sentiment words (happy, love, smile, ...) in the completion
    rule:negative  count of negative-sentiment words (sad, angry, cry, ...)
    rule:words     number of words in the completion
The lexicon reward is the DPO paper's controlled-sentiment setting (methods.md 9.5) in miniature,
with a word list in place of the sentiment classifier.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..rewards.judge import Judge

POSITIVE = frozenset("""happy happily happier happiest glad joy joyful love loved loves lovely fun smile
smiled smiles smiling laugh laughed laughing kind nice good great best beautiful friend friends
friendly hug hugged wonderful excited fantastic thank thanked proud cheerful amazing""".split())
NEGATIVE = frozenset("""sad sadly angry mad cry cried crying scared afraid hurt bad worst ugly lonely
upset fear hate hated mean sorry broke broken lost""".split())


def _words(text: str) -> list:
    return [t.strip(".,!?;:\"'()") for t in text.lower().split()]


class LexiconJudge(Judge):
    """Score = number of words of the completion that are in the lexicon."""

    def __init__(self, name: str, words: frozenset):
        self.name, self.words = name, words

    def score(self, prompts: list, responses: list) -> list:
        return [float(sum(w in self.words for w in _words(r))) for r in responses]


class WordCountJudge(Judge):
    name = "rule:words"

    def score(self, prompts: list, responses: list) -> list:
        return [float(len(r.split())) for r in responses]


BUILTIN_RULES = {
    "positive": lambda: LexiconJudge("rule:positive", POSITIVE),
    "negative": lambda: LexiconJudge("rule:negative", NEGATIVE),
    "words": WordCountJudge,
}


def judge_for(spec) -> Judge:
    """A Judge instance passes through; a string is resolved as described in the module doc."""
    if isinstance(spec, Judge):
        return spec
    if not spec:
        raise ConfigError("RL needs a reward: pass --reward SPEC (e.g. rule:positive, rm:DIR, truth)")
    kind, _, name = str(spec).partition(":")
    if kind == "rule" and name in BUILTIN_RULES:
        return BUILTIN_RULES[name]()
    try:
        from ..rewards.specs import judge_from_spec
    except ModuleNotFoundError as e:
        if e.name != "alignkit.rewards.specs":
            raise
        raise ConfigError(f"reward {spec!r}: this build resolves only the built-in rules "
                          f"({', '.join('rule:' + n for n in BUILTIN_RULES)}); reward models, r* ('truth') and "
                          "other rules come from alignkit.rewards.specs, which is not installed")
    return judge_from_spec(spec)
