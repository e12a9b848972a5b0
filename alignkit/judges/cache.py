"""An on-disk cache of judge-server responses, so an interrupted labelling run resumes without paying
for a call twice.

The file is JSONL, one `{"key": ..., "response": {...}}` per answered request, appended (never
rewritten) as each answer arrives: a run killed at any moment loses at most the answer being written.
A line cut short by a kill is skipped when the file is read back, and the next append starts on a new
line so it cannot glue onto the torn one. Each line goes out in one `write` on a file opened for
appending, so processes sharing a cache interleave whole lines.

The key is the SHA-256 of the server's URL, the endpoint and the request body (model, messages or
prompt, sampling settings, seed): the same question to the same server is answered from the file;
anything that could change the answer is a different key.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from ..errors import ConfigError


def request_key(url: str, body: dict) -> str:
    blob = json.dumps({"url": url, "body": body}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.entries: dict = {}
        self.torn = 0  # lines that did not parse (a write cut short by a kill)
        if self.path.is_dir():
            raise ConfigError(f"cache {self.path}: is a folder; give a file path (e.g. judge-cache.jsonl)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        needs_newline = False
        if self.path.exists():
            raw = self.path.read_bytes()
            needs_newline = bool(raw) and not raw.endswith(b"\n")
            for line in raw.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.entries[row["key"]] = row["response"]
                except (ValueError, KeyError, TypeError):
                    self.torn += 1
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(f"cache {self.path}: cannot open for appending: {e.strerror or e}") from None
        if needs_newline:
            os.write(self.fd, b"\n")

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str):
        with self.lock:
            return self.entries.get(key)

    def put(self, key: str, response: dict) -> None:
        line = json.dumps({"key": key, "response": response}, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self.lock:
            if key in self.entries:
                return
            data = line.encode("utf-8")
            while data:  # a regular file takes it in one write; loop in case it does not
                data = data[os.write(self.fd, data):]
            self.entries[key] = response

    def close(self) -> None:
        with self.lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
