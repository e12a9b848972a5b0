"""What every command shares: a one-line-error parser, flags generated from frozen dataclass configs,
and configs resolved from defaults < --config FILE.yaml < flags.

A command declares its options as one or more frozen dataclasses (alignkit/config.py: each field is a
flag, its trailing comment the help, its default printed by --help; ranges and choices declared with
`option(...)` and checked by build_config, checks across fields in `__post_init__`), and `add_command` wires them:

    add_command(sub, "score", cmd_score, ScoreConfig, help="...")

`cmd_score(cfg)` then receives the resolved ScoreConfig. A field named in `positional` is a positional
argument instead of a flag (e.g. `alignkit eval curves RUN...`).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
from dataclasses import dataclass

from ..config import (add_dataclass_args, build_config, check_choice, check_range, check_required, field_docs,
                      read_yaml)
from ..errors import ConfigError


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line (with the closest option for a misspelt one), not a usage dump."""

    def error(self, message):
        bad = message.partition("unrecognized arguments: ")[2].split()
        if bad and bad[0].startswith("--"):
            flags = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            close = difflib.get_close_matches(bad[0].split("=")[0], flags, n=1)
            message = f"unknown option {bad[0]}" + (f" (did you mean {close[0]}?)" if close else "")
        self.exit(2, f"error: {message}; `{self.prog} --help` lists the options\n")


@dataclass(frozen=True)
class Options:
    """A config class shown as one group of flags."""
    cls: type
    title: str = ""  # the group's heading in --help (default: the class name)
    skip: tuple = ()  # fields the command sets itself: neither flags nor YAML keys


def _options(groups) -> list:
    return [g if isinstance(g, Options) else Options(g) for g in groups]


def _names(groups: list) -> list:
    """Each group's fields; a name declared by two groups belongs to the first."""
    seen, out = set(), []
    for g in groups:
        mine = [f.name for f in dataclasses.fields(g.cls) if f.name not in g.skip and f.name not in seen]
        seen |= set(mine)
        out.append(mine)
    return out


def add_options(p: argparse.ArgumentParser, *groups, positional: dict | None = None, config_file: bool = True,
                title: str = "options"):
    """`--config FILE.yaml` and one flag per field of every group (an untitled group is headed `title`);
    `positional` maps a field name to the argparse keywords of a positional argument (e.g.
    {"runs": {"nargs": "+"}})."""
    groups = _options(groups)
    positional = positional or {}
    if config_file:
        p.add_argument("--config", metavar="FILE.yaml", help="YAML file of these options (field: value); "
                                                             "flags win over it")
    for name, kw in positional.items():
        cls = next(g.cls for g in groups if name in {f.name for f in dataclasses.fields(g.cls)})
        p.add_argument(name, help=field_docs(cls).get(name), **kw)
    for g, names in zip(groups, _names(groups)):
        skip = set(g.skip) | set(positional) | ({f.name for f in dataclasses.fields(g.cls)} - set(names))
        add_dataclass_args(p, g.cls, g.title or title, skip=skip)


def resolve(args: argparse.Namespace, *groups, where: str, base=None) -> tuple:
    """One config per group from defaults < `base(cls, configs built so far)` < the --config YAML < flags.
    A YAML key no group declares is an error naming the known ones."""
    groups = _options(groups)
    names = _names(groups)
    yaml_dict = read_yaml(args.config) if getattr(args, "config", None) else {}
    known = {n for ns in names for n in ns}
    for k in yaml_dict:
        if str(k).replace("-", "_") not in known:
            raise ConfigError(f"{args.config}: unknown key {k!r}; known keys: {', '.join(sorted(known))}")
    flags = vars(args)
    built = []
    for g, mine in zip(groups, names):
        from_yaml = {k: v for k, v in yaml_dict.items() if str(k).replace("-", "_") in mine}
        from_flags = {n: flags[n] for n in mine if flags.get(n) is not None}
        layers = [base(g.cls, tuple(built)) if base else {}, from_yaml, from_flags]
        built.append(build_config(g.cls, *layers, where=where))
    return tuple(built)


def add_command(sub, name: str, run, *groups, positional: dict | None = None, base=None,
                aliases=(), **parser_kw) -> argparse.ArgumentParser:
    """A subcommand whose options are `groups` (config classes or Options); `run(*configs)` does the work
    and returns the exit status."""
    p = sub.add_parser(name, aliases=list(aliases), **parser_kw)
    add_options(p, *groups, positional=positional, title=f"{name} options")
    where = p.prog.replace(" [-h]", "")

    def func(args):
        return run(*resolve(args, *groups, where=where, base=base))
    p.set_defaults(func=func, command_parser=p)
    return p


def add_group(sub, name: str, aliases=(), **parser_kw) -> tuple:
    """A command that only holds subcommands (`alignkit rewards ...`): bare, it prints its help and
    exits 2. -> (its parser, its subparsers)."""
    p = sub.add_parser(name, aliases=list(aliases), **parser_kw)
    inner = p.add_subparsers(dest=f"{name}_command", metavar="COMMAND")

    def bare(args):
        p.print_help()
        return 2
    p.set_defaults(func=bare, command_parser=p)
    return p, inner


def required(cfg, *names: str, hint: str = ""):
    """ValueError naming the flag of the first of `names` that is empty (for a config's __post_init__)."""
    check_required(cfg, *names, hint=hint)


def one_of(cfg, name: str, choices: tuple):
    """ValueError naming the flag and the accepted values (prefer `option(..., choices=...)` on the field)."""
    check_choice(name, getattr(cfg, name), choices)


def at_least(cfg, name: str, low, high=None):
    """ValueError naming the flag and the accepted range [low, high] (prefer `option(..., ge=...)`)."""
    check_range(name, getattr(cfg, name), low, high)
