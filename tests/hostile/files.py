"""Hostile data files and model folders, written into a test's tmp_path on demand.

Nothing hostile is committed: the 50 MB line, the invalid UTF-8 and the booby-trapped pickle are
generated here. Each `Hostile` case says which file it writes and the one-line error it must get:
`error: FILE:LINE: field 'FIELD': MESSAGE` (without the field part when the whole row is at fault).
"""
from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

GOOD = {"prompt": "what is two plus three ?", "chosen": "five .", "rejected": "no , i cannot help with that ."}
GOOD_DEMO = {"prompt": "what is two plus three ?", "completion": "five ."}


def write_lines(path: Path, rows: list) -> Path:
    """rows: dicts (written as JSON), str (written as they are) or bytes (raw), one per line."""
    with open(path, "wb") as f:
        for row in rows:
            if isinstance(row, dict):
                row = json.dumps(row)
            f.write((row.encode() if isinstance(row, str) else row) + b"\n")
    return path


@dataclass(frozen=True)
class Hostile:
    name: str
    rows: tuple  # what write_lines writes
    line: int  # 1-based line the error must name
    field: str | None  # field it must name (None: the whole row)
    message: str  # what it must say
    method: str = "dpo"

    def write(self, folder: Path) -> Path:
        return write_lines(folder / f"{self.name}.jsonl", list(self.rows))

    def expected(self, path: Path) -> str:
        what = f" field {self.field!r}:" if self.field else ""
        return f"error: {path}:{self.line}:{what} {self.message}"


CASES = [
    Hostile("malformed_json", (GOOD, '{"prompt": "q", "chosen": "a", ', GOOD), 2, None, "malformed JSON"),
    Hostile("not_an_object", (GOOD, '["prompt", "chosen", "rejected"]'), 2, None, "not a JSON object: got a list"),
    Hostile("wrong_type", (GOOD, GOOD, dict(GOOD, chosen=5)), 3, "chosen", "expected a string, got a number"),
    Hostile("null_value", (GOOD, dict(GOOD, rejected=None)), 2, "rejected", "expected a string, got null"),
    Hostile("wrong_type_margin", (dict(GOOD, margin="big"),), 1, "margin", "expected a number, got a string"),
    Hostile("missing_field", (GOOD, {"prompt": "q", "chosen": "a"}), 2, "rejected", "missing field"),
    Hostile("empty_text", (GOOD, dict(GOOD, chosen="  \n ")), 2, "chosen", "empty text"),
    Hostile("empty_prompt", (dict(GOOD, prompt=""), GOOD), 1, "prompt", "empty text"),
    Hostile("chosen_equals_rejected", (GOOD, dict(GOOD, rejected=GOOD["chosen"])), 2, "rejected",
            "chosen and rejected are identical"),
    Hostile("invalid_utf8", (GOOD, b'{"prompt": "caf\xe9 \xff", "chosen": "a", "rejected": "b"}'), 2, None,
            "invalid UTF-8 at byte"),
    Hostile("sft_wrong_type", (GOOD_DEMO, dict(GOOD_DEMO, completion=7)), 2, "completion",
            "expected a string, got a number", "sft"),
    Hostile("sft_missing_field", (GOOD_DEMO, {"prompt": "q"}), 2, "completion", "missing field", "sft"),
    Hostile("sft_empty_text", (GOOD_DEMO, GOOD_DEMO, dict(GOOD_DEMO, completion="")), 3, "completion",
            "empty text", "sft"),
    Hostile("sft_invalid_utf8", (b'{"prompt": "q \xc3\x28", "completion": "a"}',), 1, None,
            "invalid UTF-8 at byte", "sft"),
]


def huge_line_file(path: Path, megabytes: int = 50) -> Path:
    """One good record, then one whose prompt is `megabytes` MB on a single line."""
    with open(path, "w") as f:
        f.write(json.dumps(GOOD) + "\n")
        f.write('{"prompt": "')
        chunk = "a" * 2**20
        for _ in range(megabytes):
            f.write(chunk)
        f.write('", "chosen": "x", "rejected": "y"}\n')
    return path


class _Trap:
    """Unpickling this writes a marker file: proof that a loader ran pickle.load on it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, ("unpickled",))


def pickle_trap(path: Path, marker: Path) -> Path:
    with open(path, "wb") as f:
        pickle.dump(_Trap(str(marker)), f)
    return path


def pickled_model_folder(src: Path, dst: Path, marker: Path, keep_safetensors: bool) -> Path:
    """A copy of the model folder `src` with a booby-trapped pytorch_model.bin, with or without
    its model.safetensors."""
    shutil.copytree(src, dst)
    if not keep_safetensors:
        (dst / "model.safetensors").unlink()
    pickle_trap(dst / "pytorch_model.bin", marker)
    return dst
