"""Dataclass configs: documented once, readable from YAML, overridable from the command line.

A field's documentation is its trailing comment in the source (`beta: float = 0.1  # why`), so the
help text lives next to the default it explains. `add_dataclass_args` turns every field into a flag
(`--max-length` and `--max_length` both work); `build_config` merges defaults < YAML < flags and
rejects unknown keys with the list of known ones. A field's `metadata` may say `repeat=True` (the
flag may be given several times, each value one item of the tuple) or `hidden=True` (a flag left out
of --help, e.g. a test-only switch).

A field's accepted values are declared beside its default with `option(default, ge=/gt=/le=/lt=,
choices=, aliases=)`: `build_config` checks every value it is given against them (an error is one
line naming the flag, `--batch-size must be >= 1, got 0`), `--help` prints them, and a choice field
gets argparse's choices. `aliases` are deprecated old names of the field, still accepted as YAML keys
and flags (hidden from --help). A check that spans fields stays in the class's `__post_init__`,
with `flag(name)` to name the flag.
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


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def option(default, *, ge=None, gt=None, le=None, lt=None, choices=None, aliases=(), **metadata):
    """A config field whose accepted values are declared with it: bounds (ge/gt/le/lt), or `choices`
    (for a tuple field, each item's). `aliases`: the field's deprecated former names."""
    meta = dict(metadata)
    meta.update({k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None})
    if choices is not None:
        meta["choices"] = tuple(choices)
    if aliases:
        meta["aliases"] = tuple(aliases)
    return dataclasses.field(default=default, metadata=meta)


def flag(name: str) -> str:
    """The command-line flag of a field: `eval_fraction` -> `--eval-fraction`."""
    return "--" + name.replace("_", "-")


def _shown(choice) -> str:
    return '""' if choice == "" else str(choice)


def accepted(f: dataclasses.Field) -> str:
    """The declared accepted values of a field in words ("" when none): `>= 1`, `in [0, 1)`,
    `one of linear, cosine, constant`."""
    m = f.metadata
    if "choices" in m:
        return "one of " + ", ".join(map(_shown, m["choices"]))
    low = next(((k, m[k]) for k in ("ge", "gt") if k in m), None)
    high = next(((k, m[k]) for k in ("le", "lt") if k in m), None)
    if low and high:
        return f"in {'[' if low[0] == 'ge' else '('}{low[1]}, {high[1]}{']' if high[0] == 'le' else ')'}"
    if low or high:
        k, v = low or high
        return f"{dict(_BOUNDS)[k]} {v}"
    return ""


def check_value(f: dataclasses.Field, value) -> str | None:
    """None when `value` is one the field accepts, else the one-line reason naming its flag."""
    m = f.metadata
    if value is None or not any(k in m for k in ("choices", "ge", "gt", "le", "lt")):
        return None
    items = value if isinstance(value, (tuple, list)) else (value,)
    if "choices" in m:
        bad = [v for v in items if v not in m["choices"]]
        if bad:
            return f"{flag(f.name)} must be {accepted(f)}, got {bad[0]!r}"
        return None
    ops = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}
    for v in items:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:  # NaN is in no range
            return f"{flag(f.name)} must be a number {accepted(f)}, got {v!r}"
        if not all(ops[k](v, m[k]) for k in ops if k in m):
            return f"{flag(f.name)} must be {accepted(f)}, got {v!r}"
    return None


def check_fields(cfg) -> None:
    """ValueError naming the flag of the first field of `cfg` outside its declaration: for a
    `__post_init__`, so that a config built in Python is checked as build_config checks one from flags."""
    for f in dataclasses.fields(cfg):
        problem = check_value(f, getattr(cfg, f.name))
        if problem:
            raise ValueError(problem)


def aliases_of(cls) -> dict:
    """{deprecated name: field name} of a config class."""
    return {a: f.name for f in dataclasses.fields(cls) for a in f.metadata.get("aliases", ())}


def keys_of(cls) -> set:
    """Every key a config class reads from YAML or overrides: its field names and their aliases."""
    return {f.name for f in dataclasses.fields(cls)} | set(aliases_of(cls))


def check_choice(name: str, value, choices) -> None:
    """ValueError naming the flag of `name` and the accepted values (for a `__post_init__`)."""
    if value not in choices:
        raise ValueError(f"{flag(name)} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_range(name: str, value, low=None, high=None) -> None:
    """ValueError naming the flag of `name` and the accepted range [low, high] (for a `__post_init__`)."""
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ValueError(f"{flag(name)} must be {rng}, got {value!r}")


def check_required(cfg, *names: str, hint: str = "") -> None:
    """ValueError naming the flag of the first of `names` that is empty (for a `__post_init__`)."""
    for n in names:
        if getattr(cfg, n) in (None, "", ()):
            raise ValueError(f"{flag(n)} is required{' (' + hint + ')' if hint else ''}")


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
        rule = accepted(f)
        help_text = f"{docs.get(f.name, '')} (default: {default!r}{'; ' + rule if rule and 'choices' not in f.metadata else ''})"
        help_text = help_text.replace("%", "%%")  # argparse %-formats help strings
        names = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            names.append(f"--{f.name}")
        kw = dict(dest=f.name, default=None, help=help_text, type=_converter(t))
        if t is bool:
            kw.update(nargs="?", const=True, metavar="BOOL")
        if "choices" in f.metadata and t in (int, float, str):  # --help shows {a,b,c}; build_config checks
            kw["metavar"] = "{" + ",".join(map(_shown, f.metadata["choices"])) + "}"
        if f.metadata.get("repeat"):  # --flag A --flag B -> (A, B); each value whole (no comma split)
            inner = (typing.get_args(t) or (str,))[0]
            kw.update(action="append", type=inner if inner in (int, float, str) else str)
        if f.metadata.get("hidden"):
            kw["help"] = argparse.SUPPRESS
        group.add_argument(*names, **kw)
        taken = parser._option_string_actions
        for old in f.metadata.get("aliases", ()):  # deprecated names: still read, not listed
            old_names = [n for n in dict.fromkeys((flag(old), f"--{old}")) if n not in taken]
            if old_names:
                group.add_argument(*old_names, **{**kw, "help": argparse.SUPPRESS})


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
        raise ConfigError(f"{where}: {flag(key)}: cannot read {value!r} as {getattr(t, '__name__', t)}: {e}")
    return value


def build_config(cls, *layers: dict, where: str = "config"):
    """Instantiate `cls` from dict layers (later layers win), each value checked against its field's
    declared range or choices (`option`). Unknown keys are an error; a deprecated alias names its field."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names, renamed = set(fields), aliases_of(cls)
    values = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            key = k.replace("-", "_")
            key = renamed.get(key, key)
            if key not in names:
                close = [n for n in sorted(names) if n.startswith(key[:3])]
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(f"{where}: unknown key {k!r}{hint}; known keys: {', '.join(sorted(names))}")
            if v is not None:
                values[key] = coerce(cls, key, v, where)
    for key, v in values.items():
        problem = check_value(fields[key], v)
        if problem:
            raise ConfigError(f"{where}: {problem}")
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
