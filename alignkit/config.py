"""Dataclass configs: documented once, readable from YAML, overridable from the command line.

A field's documentation is its trailing comment in the source (`beta: float = 0.1  # why`), so the
help text lives next to the default it explains. `add_dataclass_args` turns every field into a flag
(`--max-length` and `--max_length` both work); `build_config` merges defaults < YAML < flags and
rejects unknown keys with the list of known ones. A field's `metadata` may say `repeat=True` (the
flag may be given several times, each value one item of the tuple) or `hidden=True` (a flag left out
of --help, e.g. a test-only switch).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import ConfigError

_FIELD_RE = re.compile(r"^\s*(\w+)\s*:\s*[^=#]+(?:=[^#]*)?#\s*(.+)$")


@lru_cache(maxsize=None)
def field_docs(cls) -> dict:
    """name -> trailing comment, for every field of a dataclass (and its bases)."""
    docs = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in src.splitlines():
            m = _FIELD_RE.match(line)
            if m:
                docs[m.group(1)] = m.group(2).strip()
    return docs


def _field_type(cls, f: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    t = hints.get(f.name, str)
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):  # Optional[X] or X | None -> X
        args = [a for a in typing.get_args(t) if a is not type(None)]
        t = args[0] if args else str
    return t


def _parse_bool(s: str) -> bool:
    v = str(s).strip().lower()
    if v in ("1", "true", "yes", "y", "on"):
        return True
    if v in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _converter(t):
    if t is bool:
        return _parse_bool
    if t in (int, float, str):
        return t
    if typing.get_origin(t) in (tuple, list):
        inner = (typing.get_args(t) or (str,))[0]
        inner = inner if inner in (int, float, str) else str
        return lambda s: tuple(inner(x) for x in str(s).split(",") if x != "")
    return str


def add_dataclass_args(parser: argparse.ArgumentParser, cls, title: str | None = None, skip=()):
    """One flag per field; defaults are left as None so that we can tell what the user set."""
    group = parser.add_argument_group(title or cls.__name__)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        t = _field_type(cls, f)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = f"{docs.get(f.name, '')} (default: {default!r})"
        names = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            names.append(f"--{f.name}")
        kw = dict(dest=f.name, default=None, help=help_text, type=_converter(t))
        if t is bool:
            kw.update(nargs="?", const=True, metavar="BOOL")
        if f.metadata.get("repeat"):  # --flag A --flag B -> (A, B); each value whole (no comma split)
            inner = (typing.get_args(t) or (str,))[0]
            kw.update(action="append", type=inner if inner in (int, float, str) else str)
        if f.metadata.get("hidden"):
            kw["help"] = argparse.SUPPRESS
        group.add_argument(*names, **kw)


def coerce(cls, key: str, value, where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    t = _field_type(cls, fields[key])
    if value is None:
        return None
    try:
        if t is bool and not isinstance(value, bool):
            return _parse_bool(value)
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if typing.get_origin(t) in (tuple, list) and isinstance(value, (list, tuple)):
            return tuple(value)
        if t in (int, float, str) and not isinstance(value, t):
            return _converter(t)(value)
        if typing.get_origin(t) in (tuple, list) and isinstance(value, str):
            return _converter(t)(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
        raise ConfigError(f"{where}: field {key!r}: cannot read {value!r} as {getattr(t, '__name__', t)}: {e}")
    return value


def build_config(cls, *layers: dict, where: str = "config"):
    """Instantiate `cls` from dict layers (later layers win). Unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            key = k.replace("-", "_")
            if key not in names:
                close = [n for n in sorted(names) if n.startswith(key[:3])]
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(f"{where}: unknown key {k!r}{hint}; known keys: {', '.join(sorted(names))}")
            if v is not None:
                values[key] = coerce(cls, key, v, where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}")


def parse_scalar(raw: str):
    """A KEY=VALUE option's value: an int, a float, true/false, else the text itself (a config field's
    own type converts it later)."""
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.strip().lower(), raw)


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of field: value at the top level")
    return data


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
