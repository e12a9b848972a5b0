"""`alignkit train METHOD` and `alignkit methods`.

    alignkit train METHOD --model DIR --data FILE --output DIR [--config FILE.yaml] [--FIELD VALUE ...]
    alignkit train --config RUN/config.yaml --output NEW [--FIELD VALUE ...]   # repeat a run
    alignkit methods [--json]

`train`'s flags depend on the method (its config class, and for a composite recipe its inner loss's),
so it builds its own parser from the argv: the run's TrainConfig, the method's config and the inner
loss's config, all from the registry (alignkit/registry.py).
"""
from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import dataclass

from ..config import add_dataclass_args, build_config
from ..errors import AlignkitError
from .common import OneLineParser, add_command, required


@dataclass(frozen=True)
class TrainPaths:
    model: str = ""  # Hugging Face model folder to start from, or a model name in the local Hugging Face cache (gpt2, org/name[@rev]; never downloaded)
    data: str = ""  # training data: .jsonl/.json/.parquet/.csv, a save_to_disk folder, a hub-style folder of shards or a dataset name in the local Hugging Face cache (NAME[:SPLIT], default split train) (online methods: prompts; none: the default prompt source)
    output: str = ""  # output folder (model, tokenizer, config.yaml, metrics.jsonl)

    def __post_init__(self):
        required(self, "model", "output")


@dataclass(frozen=True)
class MethodsConfig:
    json: bool = False  # print a JSON list of objects instead of a table


def train_parser(method: str | None, argv: list = ()) -> argparse.ArgumentParser:
    from ..registry import METHODS
    from ..train.config import TrainConfig
    p = OneLineParser(
        prog=f"alignkit train {method or 'METHOD'}",
        description=("Train a model with an alignment method. Every config field is a flag "
                     "(dashes or underscores); --config FILE.yaml gives defaults; flags win."),
        epilog=(METHODS[method].notes or None) if method in METHODS else textwrap.fill(
            "methods: " + ", ".join(sorted(METHODS)), 100, break_on_hyphens=False),
        formatter_class=argparse.RawDescriptionHelpFormatter)  # the notes' own lines (a table of metrics)
    p.add_argument("method", nargs="?", help="the method (see `alignkit methods`)")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="YAML file of config fields (defaults for this run); a run's own config.yaml also names its "
                        "method, model, data and output, so `alignkit train --config RUN/config.yaml --output NEW` "
                        "repeats that run")
    add_dataclass_args(p, TrainPaths, "input and output")
    add_dataclass_args(p, TrainConfig, "run options")
    if method in METHODS:
        m = METHODS[method]
        add_dataclass_args(p, m.config, f"{method} options ({m.paper})")
        if m.inner_feedback:  # a composite method: its inner loss's own flags
            from ..losses.registry import get_loss
            from ..registry import inner_loss_name
            from ..train.record import read_config_file
            known = argparse.ArgumentParser(add_help=False)
            known.add_argument("--loss")
            known.add_argument("--config")
            pre, _ = known.parse_known_args(argv)
            yaml_dict = read_config_file(pre.config)[1] if pre.config else {}
            inner = get_loss(inner_loss_name(m, yaml_dict, {"loss": pre.loss}), m.inner_feedback)
            taken = {a.dest for a in p._actions}
            add_dataclass_args(p, inner.config, f"--loss {inner.name} options ({inner.paper})", skip=taken)
    return p


def cmd_train(argv: list) -> int:
    """`alignkit train ...` (argv without "train")."""
    method = argv[0] if argv and not argv[0].startswith("-") else None
    from ..api import run_train
    from ..registry import METHODS
    from ..train.record import read_config_file
    if method is not None and method not in METHODS:
        raise AlignkitError(f"unknown method {method!r}; `alignkit methods` lists them")
    # a run's own config.yaml names its method, model, data and output: `alignkit train --config
    # RUN/config.yaml` repeats that run (flags still win; a positional method must be the file's)
    known = argparse.ArgumentParser(add_help=False)
    known.add_argument("--config")
    pre, _ = known.parse_known_args(argv)
    meta = read_config_file(pre.config)[0] if pre.config else {}  # with --help: that method's options
    if meta.get("method") and method is not None and meta["method"] != method:
        raise AlignkitError(f"{pre.config}: its method is {meta['method']!r}, not {method!r}; drop the method "
                            "to repeat that run, or use a config file without `method:`")
    method = method or meta.get("method")
    if method is not None and method not in METHODS:
        raise AlignkitError(f"{pre.config}: unknown method {method!r}; `alignkit methods` lists them")
    p = train_parser(method, argv)
    args = p.parse_args(argv)
    if method is None:
        p.print_help()
        return 2
    path_fields = ("model", "data", "output")
    given = {k: getattr(args, k) or meta.get(k) for k in path_fields}
    paths = build_config(TrainPaths, given, where=f"alignkit train {method}")
    fixed = {"method", "config", *path_fields}
    overrides = {k: v for k, v in vars(args).items() if k not in fixed and v is not None}
    summary = run_train(method, paths.model, paths.data or None, paths.output, overrides, args.config)
    return 130 if summary.get("interrupted") else 0


def cmd_methods(cfg: MethodsConfig) -> int:
    from ..registry import method_rows
    rows = method_rows()
    if cfg.json:
        print(json.dumps(rows, indent=1))
        return 0
    cols = [("name", 12), ("theme", 13), ("feedback", 14), ("reference", 9), ("paper", 60)]
    print("  ".join(h.ljust(w) for h, w in cols))
    print("  ".join("-" * w for _, w in cols))
    for r in rows:
        vals = [r["name"], r["theme"], r["feedback"], "yes" if r["reference"] else "no", r["paper"]]
        print("  ".join(str(v).ljust(w) for v, (_, w) in zip(vals, cols)))
    print(f"\n{len(rows)} methods. `alignkit train NAME --help` shows each one's options.")
    return 0


def register(sub):
    # listed for --help only: main() hands `alignkit train ...` to cmd_train, whose flags depend on the method
    sub.add_parser("train", help="train a model with one method (alignkit train METHOD --help)", add_help=False)
    add_command(sub, "methods", cmd_methods, MethodsConfig,
                help="list the methods: theme, feedback shape, reference model, paper")
