"""Prompt-only datasets (for sampling, RL and rejection sampling): any JSONL/JSON/CSV/Parquet file
whose rows have a `prompt` field (text or conversation), or any feedback file (its prompts are used),
also as a hub-style folder or a dataset name in the local Hugging Face cache (readers.read_records);
`columns` ("prompt=question") renames fields first."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from .formats import parse_columns, rename_columns
from .validate import RecordError


def read_prompts(path: str, limit: int | None = None, columns=None) -> list:
    p = Path(path)
    prompts = []
    mapping = parse_columns(columns)
    if p.suffix == ".jsonl" and p.is_file():
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
                if isinstance(row, dict) and mapping:
                    try:
                        row = rename_columns(row, mapping)
                    except RecordError as e:
                        raise DataError(str(path), n, e.field, e.message) from None
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
    records, _ = read_records(str(path), columns=columns)
    seen, out = set(), []
    for r in records:
        key = repr(r.prompt)
        if key not in seen:
            seen.add(key)
            out.append(r.prompt)
    return out[:limit] if limit else out
