"""Prompt-only datasets (for sampling, RL and rejection sampling): any JSONL/JSON/CSV/Parquet file
whose rows have a `prompt` field (text or conversation), or any feedback file (its prompts are used),
also as a hub-style folder or a dataset name in the local Hugging Face cache (readers.read_records);
`columns` ("prompt=question") renames fields first."""
from __future__ import annotations

from ..errors import DataError
from .formats import parse_columns, rename_columns
from .validate import RecordError


def read_prompts(path: str, limit: int | None = None, columns=None) -> list:
    from .readers import data_sources
    prompts = []
    mapping = parse_columns(columns)
    for name, rows in data_sources(path):  # a file, or each shard of a hub-style folder or cached dataset
        for n, row in rows:
            if isinstance(row, RecordError):
                raise DataError(name, n, row.field, row.message)
            if mapping:
                try:
                    row = rename_columns(row, mapping)
                except RecordError as e:
                    raise DataError(name, n, e.field, e.message) from None
            if "prompt" not in row:
                prompts = None
                break
            if not isinstance(row["prompt"], (str, list)) or not row["prompt"]:
                raise DataError(name, n, "prompt", "expected a non-empty string or list of messages")
            prompts.append(row["prompt"])
            if limit and len(prompts) >= limit:
                return prompts
        if prompts is None:
            break
    if prompts:
        return prompts
    # a feedback dataset without a prompt field (HH dialogues, messages): each record's prompt (deduplicated, in order)
    from .readers import read_records
    records, _ = read_records(str(path), columns=columns)
    seen, out = set(), []
    for r in records:
        key = repr(r.prompt)
        if key not in seen:
            seen.add(key)
            out.append(r.prompt)
    return out[:limit] if limit else out
