"""The synthetic task as a plug-in of the public interfaces (loaded by alignkit/plugins.py).

It registers, through the generic registries only:
- the judge kind `truth` (its ground-truth reward r* as a Judge) and the rule `rule:truth`;
- its prompts as the default prompt source of online methods run without --data, with `truth` as
  the judge reported at evaluation;
- its evaluation (r*, win rate, harmlessness, ...) and training set-up as the leaderboard task `bundled`
  (leaderboard_task.py);
- the judge kinds `task-judge[:OPTIONS]` and `task-cai[:OPTIONS]`: its trained judge LM (judge_lm.py,
  built once and cached) as an llm-pair judge and as an llm-cai judge under the task's constitution.
"""
from __future__ import annotations

from ..data.sources import PromptSource, register_prompt_source
from ..errors import ConfigError
from ..eval.tasks import register_task
from ..rewards.rules import register_rule
from ..rewards.specs import register_judge_kind
from .leaderboard_task import TASK as BUNDLED_TASK
from .prompts import as_chat, sample_prompts
from .reward import TruthJudge, true_reward

TRAIN_PROMPTS = 1000  # training-split prompts an online method samples when no --data is given


def _truth_judge(arg: str) -> TruthJudge:
    if arg:
        raise ConfigError(f"truth takes no argument (got truth:{arg})")
    return TruthJudge()


def _population_judge(arg: str):
    from .labelers import PopulationJudge
    if arg and not arg.lstrip("-").isdigit():
        raise ConfigError(f"population takes an integer seed (sampled votes) or nothing (probabilities), got {arg!r}")
    return PopulationJudge(int(arg) if arg else None)


def _prompts(n_train: int, n_heldout: int, seed: int) -> tuple:
    train = [as_chat(p.text) for p in sample_prompts(n_train, "train", seed)]
    held = [as_chat(p.text) for p in sample_prompts(n_heldout, "heldout", seed)] if n_heldout else []
    return train, held


def _task_judge(kind: str):
    def factory(arg: str):
        from .judge_lm import task_judge
        return task_judge(kind, arg)
    return factory


register_judge_kind("truth", _truth_judge, takes_arg=False)
register_judge_kind("population", _population_judge)  # intransitive annotators: population or population:SEED
register_judge_kind("task-judge", _task_judge("pair"))
register_judge_kind("task-cai", _task_judge("cai"))
register_rule("truth")(lambda prompt, response: float(true_reward(prompt, response)))
register_prompt_source(PromptSource("synthetic", _prompts, "the bundled task", eval_judge="truth",
                                    default_train_prompts=TRAIN_PROMPTS), default=True)
register_task(BUNDLED_TASK)
