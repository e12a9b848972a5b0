"""Prompt-only datasets (for sampling, RL and rejection sampling): any JSONL/JSON/CSV/Parquet file
whose rows have a `prompt` field (text or conversation), or any feedback file (its prompts are used)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError


def read_prompts(path: str, limit: int | None = None) -> list:
    p = Path(path)
    if not p.exists():
        raise DataError(str(path), None, None, "no such file")
    prompts = []
    if p.suffix == ".jsonl":
        with open(p, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as e:
                    raise DataError(str(path), n, None, f"invalid UTF-8: {e}")
                except json.JSONDecodeError as e:
                    raise DataError(str(path), n, None, f"malformed JSON: {e.msg} (column {e.colno})")
                if not isinstance(row, dict) or "prompt" not in row:
                    prompts = None
                    break
                if not isinstance(row["prompt"], (str, list)) or not row["prompt"]:
                    raise DataError(str(path), n, "prompt", "expected a non-empty string or list of messages")
                prompts.append(row["prompt"])
                if limit and len(prompts) >= limit:
                    break
        if prompts is not None:
            return prompts
    # any other file kind or a feedback dataset: take each record's prompt (deduplicated, in order)
    from .readers import read_records
    records, _ = read_records(str(path))
    seen, out = set(), []
    for r in records:
        key = repr(r.prompt)
        if key not in seen:
            seen.add(key)
            out.append(r.prompt)
    return out[:limit] if limit else out
