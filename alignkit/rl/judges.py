"""Reward sources for RL: a judge spec string (or a Judge) -> a `Judge` (alignkit/rewards/judge.py).

The spec grammar belongs to `alignkit.rewards.specs.judge_from_spec`: reward models (rm:DIR), rule
rewards (rule:positive, rule:words, rule:truth, file:PATH.py:FN), the bundled task's r* (truth),
implicit rewards, weighted sums and LLM judges. RL only insists that a reward is given.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..rewards.judge import Judge


def judge_for(spec) -> Judge:
    if isinstance(spec, Judge):
        return spec
    if not spec:
        raise ConfigError("RL needs a reward: pass --reward SPEC (e.g. rule:positive, rm:DIR, truth)")
    from ..rewards.specs import judge_from_spec
    return judge_from_spec(str(spec))
