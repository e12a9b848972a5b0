"""Checks on one row of feedback data, with messages that name the field.

Two kinds of helpers:
- field readers (`as_text`, `as_prompt`, `as_completion`, `as_number`, `as_label`, `as_list`) take a
  raw row (a dict from JSON, CSV, Parquet or `datasets`) and return a typed value, or raise;
- `check_record` checks a finished record: no empty text, no text over `max_chars`, chosen differs
  from rejected, a listwise record has >= 2 completions and one score each.

They raise `RecordError(field, message)`. The reader knows the file and line, and turns it into
`alignkit.errors.DataError(path, line, field, message)`, or skips the record (on_bad_record="skip").
"""
from __future__ import annotations

import json
import math

from alignkit.data.records import Listwise, Pairwise, prompt_text


class RecordError(Exception):
    """A bad row. `field` is the row's field at fault (None when the whole row is)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class TextRow(dict):
    """A row whose cells all arrived as text (CSV): numbers, labels and lists are parsed from it,
    and an empty cell in an optional column counts as absent."""


TRUE_LABELS = {"true", "yes", "1", "up", "thumbs_up", "thumbs up", "thumbsup", "👍"}
FALSE_LABELS = {"false", "no", "0", "down", "thumbs_down", "thumbs down", "thumbsdown", "👎"}


def type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def get(row: dict, name: str, where: str | None = None):
    """row[name], or a 'missing field' error (naming `where`, default `name`)."""
    if name not in row:
        raise RecordError(where or name, "missing field")
    return row[name]


# ---- values ----------------------------------------------------------------------------------
def text_value(value, where: str) -> str:
    if not isinstance(value, str):
        raise RecordError(where, f"expected a string, got {type_name(value)}")
    return value


def messages_value(value, where: str) -> list:
    """A conversation: a list of {"role": str, "content": str} messages (TRL "conversational")."""
    if not isinstance(value, (list, tuple)):
        raise RecordError(where, f"expected a list of messages, got {type_name(value)}")
    out = []
    for i, m in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(m, dict):
            raise RecordError(at, f"expected a message {{role, content}}, got {type_name(m)}")
        out.append({"role": text_value(get(m, "role", f"{at}.role"), f"{at}.role"),
                    "content": text_value(get(m, "content", f"{at}.content"), f"{at}.content")})
    return out


def one_assistant(messages: list, where: str) -> str:
    """The content of a completion given as messages: exactly one assistant message."""
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise RecordError(where, f"expected one assistant message, got roles {roles}")
    return messages[0]["content"]


def completion_value(value, where: str) -> str:
    """A completion: a string, or (conversational) a list holding one assistant message."""
    if isinstance(value, (list, tuple)):
        return one_assistant(messages_value(value, where), where)
    return text_value(value, where)


def number_value(value, where: str, from_text: bool = False) -> float:
    if from_text and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RecordError(where, f"expected a number, got {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(where, f"expected a number, got {type_name(value)}")
    if not math.isfinite(value):
        raise RecordError(where, f"expected a finite number, got {value}")
    return float(value)


# ---- fields of a row -------------------------------------------------------------------------
def as_text(row: dict, name: str) -> str:
    return text_value(get(row, name), name)


def as_prompt(row: dict, name: str = "prompt"):
    """A prompt: plain text (TRL "standard") or a list of messages (TRL "conversational")."""
    value = get(row, name)
    if isinstance(value, (list, tuple)):
        return messages_value(value, name)
    return text_value(value, name)


def as_completion(row: dict, name: str) -> str:
    return completion_value(get(row, name), name)


def as_number(row: dict, name: str, optional: bool = False) -> float | None:
    from_text = isinstance(row, TextRow)
    if optional and (row.get(name) is None or (from_text and row.get(name) == "")):
        return None
    return number_value(get(row, name), name, from_text)


def as_label(row: dict, name: str = "label") -> bool:
    """A thumbs up/down: a boolean, 1/0, or a word (true/false, yes/no, up/down, thumbs_up/down)."""
    value = get(row, name)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_LABELS:
            return True
        if word in FALSE_LABELS:
            return False
    shown = repr(value[:40]) if isinstance(value, str) else type_name(value)
    raise RecordError(name, f"expected a label (true/false, yes/no, 1/0, thumbs up/down), got {shown}")


def as_list(row: dict, name: str) -> list:
    """A list; in a CSV cell, written as JSON (`["a", "b"]`)."""
    value = get(row, name)
    if isinstance(row, TextRow) and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise RecordError(name, f"expected a JSON list in this cell ({e.msg})") from None
    if not isinstance(value, (list, tuple)):
        raise RecordError(name, f"expected a list, got {type_name(value)}")
    return list(value)


# ---- a finished record -----------------------------------------------------------------------
def check_text(text: str, where: str, max_chars: int) -> None:
    if not text.strip():
        raise RecordError(where, "empty text")
    check_length(text, where, max_chars)


def check_length(text: str, where: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise RecordError(where, f"text of {len(text):,} characters is longer than max_chars={max_chars:,}")


def check_record(record, names: dict, max_chars: int, allow_empty_prompt: bool = False) -> None:
    """Raise RecordError if `record` is unfit for training. `names` maps a record attribute to the
    row field it came from (e.g. {"prompt": "messages"}), so the message names the user's field."""
    def name(attr):
        return names.get(attr, attr)

    prompt = prompt_text(record.prompt)
    if allow_empty_prompt:
        check_length(prompt, name("prompt"), max_chars)
    else:
        check_text(prompt, name("prompt"), max_chars)
    for attr in ("completion", "chosen", "rejected"):
        if hasattr(record, attr):
            check_text(getattr(record, attr), name(attr), max_chars)
    if isinstance(record, Pairwise) and record.chosen == record.rejected:
        raise RecordError(name("rejected"), "chosen and rejected are identical")
    if isinstance(record, Listwise):
        if len(record.completions) < 2:
            raise RecordError(name("completions"), f"a listwise record needs >= 2 completions, got {len(record.completions)}")
        if len(record.scores) != len(record.completions):
            raise RecordError(name("scores"), f"{len(record.scores)} scores for {len(record.completions)} completions")
        for i, text in enumerate(record.completions):
            check_text(text, f"{name('completions')}[{i}]", max_chars)
