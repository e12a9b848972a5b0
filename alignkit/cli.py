"""The `alignkit` command line.

    alignkit train METHOD --model DIR --data FILE --output DIR [--config FILE.yaml] [--FIELD VALUE ...]
    alignkit methods [--json]
    alignkit <subsystem command> ...   (quickstart, world, eval, rewards, ... registered below)

User errors (bad data, config, missing model) print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from .errors import AlignkitError

# Subsystems that add commands: each module has `register(subparsers)`.
COMMAND_MODULES = ("alignkit.models.commands", "alignkit.synthetic.commands", "alignkit.eval.commands",
                   "alignkit.rewards.commands", "alignkit.serve")



def _quiet_libraries():
    from .models.loading import quiet_transformers
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    quiet_transformers()  # also sets HF_HUB_OFFLINE: alignkit never downloads at run time


def cmd_methods(args):
    from .registry import method_rows
    rows = method_rows()
    if args.json:
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


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line (with the closest option for a misspelt one), not a usage dump."""

    def error(self, message):
        import difflib
        bad = message.partition("unrecognized arguments: ")[2].split()
        if bad and bad[0].startswith("--"):
            flags = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            close = difflib.get_close_matches(bad[0].split("=")[0], flags, n=1)
            message = f"unknown option {bad[0]}" + (f" (did you mean {close[0]}?)" if close else "")
        self.exit(2, f"error: {message}; `{self.prog} --help` lists the options\n")


def train_parser(method: str | None, argv: list = ()) -> argparse.ArgumentParser:
    from .config import add_dataclass_args
    from .registry import METHODS
    from .train.config import TrainConfig
    p = OneLineParser(
        prog=f"alignkit train {method or 'METHOD'}",
        description=("Train a model with an alignment method. Every config field is a flag "
                     "(dashes or underscores); --config FILE.yaml gives defaults; flags win."),
        epilog=None if method else "methods: " + ", ".join(sorted(METHODS)))
    p.add_argument("method", nargs="?", help="the method (see `alignkit methods`)")
    p.add_argument("--model", required=method is not None, help="local Hugging Face model folder to start from")
    p.add_argument("--data", required=False, help="training data: .jsonl/.json/.parquet/.csv or a save_to_disk folder")
    p.add_argument("--output", required=method is not None, help="output folder (model, tokenizer, config.yaml, metrics.jsonl)")
    p.add_argument("--config", help="YAML file of config fields (defaults for this run)")
    add_dataclass_args(p, TrainConfig, "run options")
    if method in METHODS:
        m = METHODS[method]
        add_dataclass_args(p, m.config, f"{method} options ({m.paper})")
        if m.inner_feedback:  # a composite method: its inner loss's own flags
            from .registry import inner_loss_name
            from .config import read_yaml
            from .losses.registry import get_loss
            known = argparse.ArgumentParser(add_help=False)
            known.add_argument("--loss")
            known.add_argument("--config")
            pre, _ = known.parse_known_args(argv)
            yaml_dict = read_yaml(pre.config) if pre.config else {}
            inner = get_loss(inner_loss_name(m, yaml_dict, {"loss": pre.loss}), m.inner_feedback)
            taken = {a.dest for a in p._actions}
            add_dataclass_args(p, inner.config, f"--loss {inner.name} options ({inner.paper})", skip=taken)
    return p


def cmd_train(argv: list) -> int:
    method = argv[0] if argv and not argv[0].startswith("-") else None
    from .api import run_train
    from .registry import METHODS
    if method is not None and method not in METHODS:
        raise AlignkitError(f"unknown method {method!r}; `alignkit methods` lists them")
    p = train_parser(method, argv)
    args = p.parse_args(argv)
    if method is None:
        p.print_help()
        return 2
    fixed = {"method", "model", "data", "output", "config"}
    overrides = {k: v for k, v in vars(args).items() if k not in fixed and v is not None}
    summary = run_train(method, args.model, args.data, args.output, overrides, args.config)
    if summary.get("interrupted"):
        return 130
    return 0


def build_parser() -> tuple:
    p = argparse.ArgumentParser(prog="alignkit", description=(
        "LLM alignment on Hugging Face models: reward models, feedback, RLHF and preference "
        "optimisation, with evaluation against a known ground truth."))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train a model with one method (alignkit train METHOD --help)", add_help=False)
    m = sub.add_parser("methods", help="list the methods: theme, feedback shape, reference model, paper")
    m.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    m.set_defaults(func=cmd_methods)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return p, sub


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    try:
        if argv and argv[0] == "train":
            return cmd_train(argv[1:])
        p, _ = build_parser()
        args = p.parse_args(argv)
        if not getattr(args, "func", None):
            p.print_help()
            return 0 if not argv else 2
        return args.func(args) or 0
    except AlignkitError as e:
        one_line = " ".join(part.strip() for part in str(e).splitlines() if part.strip())
        print(f"error: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _close_process_group()


def _close_process_group():
    """Under a multi-process launch, tear the process group down before the interpreter exits: left to
    exit, its communication threads can be destroyed mid-flight ("terminate called without an active
    exception", SIGABRT after a run that finished). Every trainer ends with a barrier, so no rank is in
    a collective here."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
