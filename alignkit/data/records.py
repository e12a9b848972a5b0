"""Feedback records: the five shapes of human or AI feedback the survey names.

A prompt is either plain text or a conversation (a list of {"role", "content"} messages, the
TRL "conversational" format). A completion is always the assistant's text. Records are plain frozen
dataclasses so that readers, labelers and judges all produce the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

Message = dict  # {"role": "user" | "assistant" | "system", "content": str}
Prompt = Union[str, list]  # str or list[Message]

FEEDBACK_SHAPES = ("demonstration", "pairwise", "binary", "listwise", "scored", "negative")


@dataclass(frozen=True)
class Demonstration:
    """A prompt and a good response (SFT data)."""
    prompt: Prompt
    completion: str
    source: str = ""  # "file:line" where the record came from, for error messages


@dataclass(frozen=True)
class Pairwise:
    """y_w preferred to y_l for the same prompt. `margin` is an optional preference strength
    (e.g. Llama 2's rating margin); `weight` an optional soft label P(chosen > rejected)."""
    prompt: Prompt
    chosen: str
    rejected: str
    margin: float = 0.0
    weight: float = 1.0
    source: str = ""


@dataclass(frozen=True)
class Binary:
    """Thumbs up (label=True) or down (label=False) on a single response (KTO/BCO data)."""
    prompt: Prompt
    completion: str
    label: bool
    source: str = ""


@dataclass(frozen=True)
class Listwise:
    """Several responses to one prompt with a score each; a higher score is better.
    A pure ranking is expressed as scores (K-1, ..., 0)."""
    prompt: Prompt
    completions: tuple
    scores: tuple
    source: str = ""

    def ranked(self) -> list:
        """Completions sorted best first (stable for ties)."""
        order = sorted(range(len(self.completions)), key=lambda i: -self.scores[i])
        return [self.completions[i] for i in order]


@dataclass(frozen=True)
class Scored:
    """One response with a scalar rating (pointwise reward models, DRO)."""
    prompt: Prompt
    completion: str
    score: float
    source: str = ""


RECORD_TYPES = {
    "demonstration": Demonstration,
    "pairwise": Pairwise,
    "binary": Binary,
    "listwise": Listwise,
    "scored": Scored,
}


def shape_of(record) -> str:
    for name, cls in RECORD_TYPES.items():
        if isinstance(record, cls):
            return name
    raise TypeError(f"not a feedback record: {type(record).__name__}")


def prompt_text(prompt: Prompt) -> str:
    """A readable one-string view of a prompt (for judges, logs and rule rewards)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m.get("content", "") for m in prompt if m.get("role") != "assistant")


@dataclass
class ReadReport:
    """What a reader did: records kept, bad records skipped (with their messages)."""
    path: str
    kept: int = 0
    skipped: int = 0
    errors: list = field(default_factory=list)

    def summary(self) -> str:
        s = f"{self.path}: {self.kept} records"
        if self.skipped:
            s += f", {self.skipped} bad records skipped"
        return s
