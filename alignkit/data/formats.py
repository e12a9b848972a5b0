"""Row formats: which keys a row of feedback data has, and how it becomes a record.

Follows TRL's dataset conventions (https://huggingface.co/docs/trl/dataset_formats): "standard"
rows hold strings, "conversational" rows hold lists of {role, content} messages, and a completion
given as messages is one assistant message. Formats, in the order they are tried:

  pairwise            prompt/chosen/rejected (+ optional margin, weight, score_chosen/score_rejected)
  hh                  chosen/rejected, whole "\\n\\nHuman: ...\\n\\nAssistant: ..." dialogues (Anthropic HH)
  implicit_pairwise   chosen/rejected sharing their beginning, which is the prompt
  alpaca_eval         prompt/responses, responses [{model, text, p_beats_reference}] best first
  listwise            prompt/completions/scores (or responses instead of completions, ranking
                      instead of scores: the rank of each completion, lower is better)
  binary              prompt/completion/label
  truthfulqa          prompt "Q: ...\\nA: ...\\nTrue:", completion " yes" | " no" (GPT-judge files)
  scored              prompt/completion/score
  prompt_completion   prompt/completion (demonstration)
  messages            messages: a conversation; its last message is the assistant's demonstration
  text                text: a pre-training corpus (prompt "")

A parser returns (record, names): `names` maps record attributes to the row field they came from
when those differ (e.g. HH's prompt comes from "chosen"), so validation messages name the user's field.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Callable

from alignkit.data.records import Binary, Demonstration, Listwise, Pairwise, Scored
from alignkit.data.validate import (RecordError, as_completion, as_label, as_list, as_number,
                                    as_prompt, as_text, check_record, completion_value, get,
                                    messages_value, number_value, one_assistant, text_value,
                                    type_name)

HH_TURN = "\n\nAssistant:"


@dataclass(frozen=True)
class Format:
    name: str
    shape: str  # the record shape it gives (see records.FEEDBACK_SHAPES)
    keys: str  # what its rows hold, for "unknown format" messages
    match: Callable[[dict], bool]
    parse: Callable[[dict], tuple]  # row -> (record, {record attribute: row field})


# ---- pairwise --------------------------------------------------------------------------------
def _pair_extras(row: dict) -> tuple:
    """(margin, weight): `margin`, else TRL's score_chosen - score_rejected, else 0; `weight` (1)."""
    margin = as_number(row, "margin", optional=True)
    if margin is None:
        high = as_number(row, "score_chosen", optional=True)
        low = as_number(row, "score_rejected", optional=True)
        if (high is None) != (low is None):
            given, missing = ("score_chosen", "score_rejected") if low is None else ("score_rejected", "score_chosen")
            raise RecordError(missing, f"missing field ({given} is given)")
        if high is not None and low > high:
            raise RecordError("score_rejected", f"higher than score_chosen ({low} > {high})")
        margin = 0.0 if high is None else high - low
    weight = as_number(row, "weight", optional=True)
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise RecordError("weight", f"expected a probability in [0, 1], got {weight}")
    return margin, 1.0 if weight is None else weight


def _pairwise(row):
    return Pairwise(as_prompt(row), as_completion(row, "chosen"), as_completion(row, "rejected"),
                    *_pair_extras(row)), {}


def _is_hh(row) -> bool:
    c, r = row.get("chosen"), row.get("rejected")
    return isinstance(c, str) and isinstance(r, str) and HH_TURN in c and HH_TURN in r


def _hh(row):
    """Anthropic HH: the prompt is the shared text up to and including the last shared
    "\\n\\nAssistant:"; each completion is the rest, its leading space stripped."""
    chosen, rejected = as_text(row, "chosen"), as_text(row, "rejected")
    shared = os.path.commonprefix([chosen, rejected])
    end = shared.rfind(HH_TURN)
    if end < 0:
        raise RecordError("chosen", "chosen and rejected share no '\\n\\nAssistant:' turn")
    end += len(HH_TURN)
    record = Pairwise(chosen[:end], chosen[end:].lstrip(" "), rejected[end:].lstrip(" "), *_pair_extras(row))
    return record, {"prompt": "chosen"}


def _implicit(row):
    """TRL's implicit prompt: the prompt is what chosen and rejected share. For text the cut goes
    back to the last whitespace (TRL cuts mid-word), and that space starts the completions; for
    conversations it is the shared messages, and each side then holds one assistant message."""
    chosen, rejected = get(row, "chosen"), get(row, "rejected")
    if isinstance(chosen, (list, tuple)) or isinstance(rejected, (list, tuple)):
        cm, rm = messages_value(chosen, "chosen"), messages_value(rejected, "rejected")
        n = 0
        while n < min(len(cm), len(rm)) and cm[n] == rm[n]:
            n += 1
        prompt, chosen, rejected = cm[:n], one_assistant(cm[n:], "chosen"), one_assistant(rm[n:], "rejected")
    else:
        chosen, rejected = text_value(chosen, "chosen"), text_value(rejected, "rejected")
        shared = os.path.commonprefix([chosen, rejected])
        cut = max((i for i, ch in enumerate(shared) if ch.isspace()), default=0)
        prompt, chosen, rejected = chosen[:cut], chosen[cut:], rejected[cut:]
    if not prompt or not str(prompt).strip():
        raise RecordError("chosen", "chosen and rejected share no prompt (give a 'prompt' field)")
    return Pairwise(prompt, chosen, rejected, *_pair_extras(row)), {"prompt": "chosen"}


# ---- listwise --------------------------------------------------------------------------------
def _is_listwise(row) -> bool:
    return "prompt" in row and ("completions" in row or "responses" in row) and ("scores" in row or "ranking" in row)


def _listwise(row):
    ckey = "completions" if "completions" in row else "responses"
    skey = "scores" if "scores" in row else "ranking"
    completions = tuple(completion_value(c, f"{ckey}[{i}]") for i, c in enumerate(as_list(row, ckey)))
    values = [number_value(v, f"{skey}[{i}]") for i, v in enumerate(as_list(row, skey))]
    scores = values if skey == "scores" else [max(values, default=0.0) - v for v in values]
    return Listwise(as_prompt(row), completions, tuple(scores)), {"completions": ckey, "scores": skey}


def _is_alpaca_eval(row) -> bool:
    resp = row.get("responses")
    return ("prompt" in row and "scores" not in row and "ranking" not in row
            and isinstance(resp, list) and bool(resp) and isinstance(resp[0], dict))


def _alpaca_eval(row):
    """alpaca_eval listwise: responses best first, each {model, text, p_beats_reference}. The
    judge's probability of beating the reference is the score; without it, the order is."""
    texts, probs = [], []
    for i, item in enumerate(as_list(row, "responses")):
        at = f"responses[{i}]"
        if not isinstance(item, dict):
            raise RecordError(at, f"expected an object with 'text', got {type_name(item)}")
        texts.append(text_value(get(item, "text", f"{at}.text"), f"{at}.text"))
        p = item.get("p_beats_reference")
        probs.append(None if p is None else number_value(p, f"{at}.p_beats_reference"))
    if all(p is not None for p in probs):
        scores = probs
    else:
        scores = [float(len(texts) - 1 - i) for i in range(len(texts))]
    return (Listwise(as_prompt(row), tuple(texts), tuple(scores)),
            {"completions": "responses", "scores": "responses"})


# ---- single completions ----------------------------------------------------------------------
def _binary(row):
    return Binary(as_prompt(row), as_completion(row, "completion"), as_label(row)), {}


def _is_truthfulqa(row) -> bool:
    prompt = row.get("prompt")
    return (set(row) == {"prompt", "completion"} and row["completion"] in (" yes", " no")
            and isinstance(prompt, str) and prompt.endswith("True:"))


def _truthfulqa(row):
    """TruthfulQA GPT-judge rows: the question is the prompt, the answer the completion, and
    the judge's " yes" (the answer is true) the label."""
    question, sep, answer = as_text(row, "prompt").partition("\nA: ")
    if not sep:
        raise RecordError("prompt", "no '\\nA: ' between question and answer")
    record = Binary(question.removeprefix("Q: "), answer.removesuffix("\nTrue:"), row["completion"] == " yes")
    return record, {"completion": "prompt", "label": "completion"}


def _scored(row):
    return Scored(as_prompt(row), as_completion(row, "completion"), as_number(row, "score")), {}


def _prompt_completion(row):
    return Demonstration(as_prompt(row), as_completion(row, "completion")), {}


def _messages(row):
    """A whole conversation: the prompt is every message before the last, which must be the
    assistant's, and whose content is the completion."""
    msgs = messages_value(get(row, "messages"), "messages")
    if not msgs or msgs[-1]["role"] != "assistant":
        last = msgs[-1]["role"] if msgs else "none"
        raise RecordError("messages", f"the last message must be the assistant's, got role {last!r}")
    return Demonstration(msgs[:-1], msgs[-1]["content"]), {"prompt": "messages", "completion": "messages"}


def _text(row):
    return Demonstration("", as_text(row, "text")), {"completion": "text"}


def _has(*keys, without=()):
    return lambda row: all(k in row for k in keys) and not any(k in row for k in without)


FORMATS = [
    Format("pairwise", "pairwise", "prompt/chosen/rejected", _has("prompt", "chosen", "rejected"), _pairwise),
    Format("hh", "pairwise", "chosen/rejected as HH dialogues", _is_hh, _hh),
    Format("implicit_pairwise", "pairwise", "chosen/rejected", _has("chosen", "rejected"), _implicit),
    Format("alpaca_eval", "listwise", "prompt/responses[{text, p_beats_reference}]", _is_alpaca_eval, _alpaca_eval),
    Format("listwise", "listwise", "prompt/completions/scores (or responses/ranking)", _is_listwise, _listwise),
    Format("binary", "binary", "prompt/completion/label", _has("prompt", "completion", "label"), _binary),
    Format("truthfulqa", "binary", "prompt 'Q: ...\\nA: ...\\nTrue:'/completion ' yes'|' no'", _is_truthfulqa, _truthfulqa),
    Format("scored", "scored", "prompt/completion/score", _has("prompt", "completion", "score"), _scored),
    Format("prompt_completion", "demonstration", "prompt/completion",
           _has("prompt", "completion", without=("label", "score")), _prompt_completion),
    Format("messages", "demonstration", "messages", _has("messages"), _messages),
    Format("text", "demonstration", "text", _has("text"), _text),
]


def detect(row: dict, shape: str | None = None, locked: bool = False) -> Format:
    """The first format whose keys the row has. A forced `shape` keeps that shape's formats (and,
    for "demonstration", the pairwise ones: their chosen side is a demonstration). `locked`: the
    shape is the one the file's first record had, so nothing is converted."""
    allowed = [f for f in FORMATS if shape in (None, f.shape)
               or (shape == "demonstration" and f.shape == "pairwise" and not locked)]
    for fmt in allowed:
        if fmt.match(row):
            return fmt
    what = f"not a {shape} record" if shape else "unknown format"
    expected = "; ".join(f.keys for f in allowed)
    why = f" (the file's first record is {shape})" if locked else ""
    missing = _one_key_short(row, allowed)
    if missing:  # the row is one field short of a format: name that field
        raise RecordError(missing, f"missing field ({what}{why}: found keys {sorted(row)}, expected {expected})")
    raise RecordError(None, f"{what}{why}: found keys {sorted(row)}, expected {expected}")


def _one_key_short(row: dict, formats: list) -> str | None:
    """The one key the row lacks to be the first of `formats` whose keys are plain names."""
    for fmt in formats:
        keys = re.match(r"[a-z_]+(?:/[a-z_]+)+", fmt.keys)
        lacking = [k for k in keys.group(0).split("/") if k not in row] if keys else []
        if len(lacking) == 1:
            return lacking[0]
    return None


# ---- --columns: other field names mapped to the ones above ---------------------------------------
FIELDS = ("prompt", "chosen", "rejected", "completion", "label", "score", "completions", "scores",
          "responses", "ranking", "messages", "text", "margin", "weight", "score_chosen", "score_rejected")


def parse_columns(spec) -> dict:
    """"prompt=question,chosen=good" (or a dict) -> {"prompt": "question", "chosen": "good"}: the field
    each format reads (left) and the data's own name for it (right). Raises ConfigError naming --columns."""
    from alignkit.errors import ConfigError
    if not spec:
        return {}
    if isinstance(spec, dict):
        pairs = list(spec.items())
    else:
        pairs = []
        for item in str(spec).split(","):
            if not item.strip():
                continue
            target, sep, source = item.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise ConfigError(f"--columns: {item.strip()!r} is not FIELD=COLUMN (e.g. prompt=question,chosen=good)")
            pairs.append((target, source))
    out = {}
    for target, source in pairs:
        target, source = str(target).strip(), str(source).strip()
        if target not in FIELDS:
            raise ConfigError(f"--columns: unknown field {target!r} (in {target}={source}); the fields alignkit "
                              f"reads: {', '.join(FIELDS)}")
        if target in out:
            raise ConfigError(f"--columns: {target!r} is mapped twice")
        out[target] = source
    return out


def rename_columns(row: dict, mapping: dict) -> dict:
    """The row with each mapped column under its TRL name (the mapped name wins over a column that
    already has it). A row lacking a mapped column is a RecordError naming that column."""
    for target, source in mapping.items():
        if source not in row:
            raise RecordError(source, f"missing column (--columns maps it to {target!r}; the row has "
                                      f"{', '.join(sorted(map(str, row)))})")
    taken = set(mapping.values()) | set(mapping)
    out = type(row)((k, v) for k, v in row.items() if k not in taken)
    for target, source in mapping.items():
        out[target] = row[source]
    return out


def parse_row(row: dict, shape: str | None, max_chars: int, source: str, locked: bool = False):
    """One raw row -> a checked record with `source` set. Raises RecordError."""
    fmt = detect(row, shape, locked)
    record, names = fmt.parse(row)
    if shape == "demonstration" and isinstance(record, Pairwise):
        names = {"prompt": names.get("prompt", "prompt"), "completion": names.get("chosen", "chosen")}
        record = Demonstration(record.prompt, record.chosen)
    check_record(record, names, max_chars, allow_empty_prompt=fmt.name == "text")
    return replace(record, source=source)
