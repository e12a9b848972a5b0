"""A JSONL output written in chunks that a killed run resumes: the same file as an uninterrupted run.

`alignkit label` and `alignkit constitution revise|prefs` process their items in chunks. After each
chunk its rows are appended to OUTPUT (flushed and fsync'd) and one line to OUTPUT's
`.progress.jsonl`: how many items are done, the byte length of OUTPUT after the chunk, and the
chunk's statistics. The progress file starts with the run's fingerprint (its settings and a hash of
its input). A restarted run
- refuses an OUTPUT that is no run of the command, or a run with other settings (unless overwrite);
- cuts OUTPUT back to the length the last progress line records (rows of a chunk a kill cut short);
- goes on with the next chunk.
Items must be split into chunks the same way on every run (fixed chunk size) and each chunk's rows
must depend only on its items and their indices (seeds drawn from the item index, not from a random
stream that runs across chunks): then the resumed file is byte for byte the uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import ConfigError


def side_paths(output: str) -> dict:
    """OUTPUT's companions: .report.json, .progress.jsonl, .cache.jsonl (and .samples.jsonl)."""
    out = Path(output)
    stem = out.with_suffix("") if out.suffix else out
    return {name: Path(f"{stem}.{name}.{ext}") for name, ext in
            (("report", "json"), ("progress", "jsonl"), ("cache", "jsonl"), ("samples", "jsonl"))}


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes ("" for a folder or a missing file)."""
    h = hashlib.sha256()
    p = Path(path)
    if not p.is_file():
        return ""
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def append_bytes(path: Path, data: bytes) -> int:
    """Append, flush and fsync; -> the file's length after."""
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def read_progress(path: Path) -> tuple:
    """(fingerprint or None, [chunk lines]) from a progress file; a torn last line is ignored."""
    head, chunks = None, []
    if not path.exists():
        return head, chunks
    for raw in path.read_bytes().split(b"\n"):
        try:
            row = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        if "config" in row:
            head = row["config"]
        elif "done" in row:
            chunks.append(row)
    return head, chunks


class ResumableOutput:
    """OUTPUT opened for a run of `command` with `fingerprint` (a JSON-able dict of its settings)."""

    def __init__(self, output: str, fingerprint: dict, command: str, overwrite: bool = False,
                 example: str = "out.jsonl"):
        self.path = Path(output)
        self.side = side_paths(output)
        self.progress = self.side["progress"]
        if self.path.is_dir():
            raise ConfigError(f"--output {self.path}: is a folder; give a file such as {example}")
        fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back (tuples -> lists)
        if overwrite:
            for p in (self.path, self.progress, self.side["report"]):
                p.unlink(missing_ok=True)
        head, chunks = read_progress(self.progress)
        if self.path.exists() and not (head is not None and not chunks):  # nothing done yet: start over
            if head is None:
                raise ConfigError(f"--output {self.path}: exists and is not a run of {command} "
                                  f"(no {self.progress.name}); remove it, choose another --output, or pass --overwrite")
            if head != fingerprint:
                diff = [k for k in fingerprint if head.get(k) != fingerprint[k]] or ["settings"]
                raise ConfigError(f"--output {self.path}: holds a run with other settings ({', '.join(diff)} differ); "
                                  "pass --overwrite to start over, or choose another --output")
            offset = chunks[-1]["offset"] if chunks else 0
            if self.path.stat().st_size < offset:
                raise ConfigError(f"--output {self.path}: shorter than {self.progress.name} records ({offset} bytes); "
                                  "it was edited: pass --overwrite to start over")
            with open(self.path, "r+b") as f:
                f.truncate(offset)  # rows of a chunk a kill cut short
        else:
            chunks = []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the progress file first: a kill between the two leaves no output, which starts over
            self.progress.write_text(json.dumps({"config": fingerprint}) + "\n")
            self.path.write_bytes(b"")
        self.chunks = chunks

    @property
    def done(self) -> int:
        """Items finished by earlier runs (and this one so far)."""
        return self.chunks[-1]["done"] if self.chunks else 0

    def append(self, rows: list, done: int, stats: dict, usage: dict | None = None) -> None:
        """One finished chunk: its rows (dicts), the items done after it, its statistics."""
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        offset = append_bytes(self.path, lines.encode("utf-8"))
        row = {"done": done, "offset": offset, "rows": len(rows), "stats": dict(stats), "usage": dict(usage or {})}
        append_bytes(self.progress, (json.dumps(row) + "\n").encode())
        self.chunks.append(row)

    def totals(self) -> tuple:
        """(summed statistics, summed usage, rows) over every chunk written."""
        stats, usage = {}, {}
        for c in self.chunks:
            for src, dst in ((c["stats"], stats), (c.get("usage", {}), usage)):
                for k, v in src.items():
                    if isinstance(v, (int, float)):
                        dst[k] = dst.get(k, 0) + v
        return stats, usage, sum(c["rows"] for c in self.chunks)
