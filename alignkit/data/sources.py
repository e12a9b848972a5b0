"""Prompt sources that plug-ins register: the prompts an online method samples when no --data is given.

A task package (e.g. the bundled synthetic task) registers a `PromptSource` with its training and
held-out prompts and the judge spec of its ground truth; generic code asks `default_prompt_source()`
and never imports the task.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError


@dataclass(frozen=True)
class PromptSource:
    name: str
    prompts: Callable  # (n_train, n_heldout, seed) -> (training prompts, held-out prompts)
    description: str = ""  # how the log names it
    eval_judge: str = ""  # judge spec of the ground truth, reported at evaluation ("" = none)
    default_train_prompts: int = 1000  # training prompts when the run sets no max_prompts


SOURCES: dict = {}
_DEFAULT: list = []


def register_prompt_source(source: PromptSource, default: bool = False) -> None:
    SOURCES[source.name] = source
    if default:
        _DEFAULT[:] = [source.name]


def default_prompt_source() -> PromptSource:
    if not _DEFAULT:
        raise ConfigError("no --data given and no task plug-in provides default prompts; pass --data FILE")
    return SOURCES[_DEFAULT[0]]
