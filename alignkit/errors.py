"""User-facing errors. The CLI prints these as one line (no traceback) and exits with status 2."""
from __future__ import annotations


class AlignkitError(Exception):
    """Base class: a problem with the user's input, config or environment, not a bug."""


class DataError(AlignkitError):
    """A bad record. Names the file, the 1-based line (or row), and the field."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field, self.message = path, line, field, message
        where = str(path) + (f":{line}" if line is not None else "")
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")


class ConfigError(AlignkitError):
    """A wrong config key or value (from YAML or the command line)."""


class ModelLoadError(AlignkitError):
    """A model or tokenizer folder that is missing or unreadable."""
