"""Few-shot exemplars for LLM judges (RLAIF, Lee et al. 2023, arXiv 2309.00267, sec. 2.1: a few
labelled examples between the preamble and the sample), read from a JSONL file.

    pairwise  {"prompt": ..., "chosen": "...", "rejected": "...", "rationale": "..." (optional)}
    pointwise {"prompt": ..., "completion": "...", "score": 4, "rationale": "..." (optional)}

The prompt is text or a conversation, as in the training data. Pairwise exemplars alternate which
side is shown first (the first exemplar shows the chosen response first, the second shows it second,
...) so the examples themselves teach no position bias. The rationale is used with chain of thought.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass(frozen=True)
class Exemplar:
    prompt: object  # text or a list of messages
    responses: tuple  # (first shown, second shown) for pairwise; (response,) for pointwise
    answer: str  # the label a judge should give: "1"/"2", or the score as written ("4")
    rationale: str = ""


def context_text(prompt) -> str:
    """The conversation a response answers, as one readable text for a judging prompt."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in prompt)


def _text(row: dict, key: str, path: str, line: int, optional: bool = False) -> str:
    value = row.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str) or (not optional and not value.strip()):
        raise DataError(path, line, key, "expected a non-empty string" if not optional else "expected a string")
    return value


def read_exemplars(path: str, kind: str, labels: tuple) -> tuple:
    """Exemplars from `path` for a `kind` ("pairwise" | "pointwise") judge whose template has `labels`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(str(path), None, None, "exemplars file not found")
    out = []
    with open(p, encoding="utf-8") as f:
        for line, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                raise DataError(str(path), line, None, f"malformed JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(str(path), line, None, "expected a JSON object")
            prompt = row.get("prompt")
            conversation = isinstance(prompt, list) and prompt and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt)
            if not (isinstance(prompt, str) and prompt.strip()) and not conversation:
                raise DataError(str(path), line, "prompt", "expected a non-empty string or a list of messages")
            rationale = _text(row, "rationale", str(path), line, optional=True)
            if kind == "pairwise":
                chosen, rejected = _text(row, "chosen", str(path), line), _text(row, "rejected", str(path), line)
                if len(out) % 2 == 0:
                    out.append(Exemplar(prompt, (chosen, rejected), labels[0], rationale))
                else:
                    out.append(Exemplar(prompt, (rejected, chosen), labels[1], rationale))
            else:
                score = row.get("score")
                if isinstance(score, bool) or not isinstance(score, (int, float)):
                    raise DataError(str(path), line, "score", "expected a number")
                allowed = [float(x) for x in labels]
                if float(score) not in allowed:
                    raise DataError(str(path), line, "score",
                                    f"expected one of the template's scores {' '.join(labels)}, got {score}")
                answer = labels[allowed.index(float(score))]
                out.append(Exemplar(prompt, (_text(row, "completion", str(path), line),), answer, rationale))
    if not out:
        raise DataError(str(path), None, None, "the exemplars file has no rows")
    return tuple(out)
