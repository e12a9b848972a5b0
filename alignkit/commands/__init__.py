"""The `alignkit` command line: one module per command group, listed in COMMANDS (static imports).

Every subcommand's options are frozen dataclass configs: each field is a flag documented by its
trailing comment (alignkit/config.py), checked in its `__post_init__`, and resolved from defaults <
`--config FILE.yaml` < flags (commands/common.py). `alignkit train` builds its parser from the method
registry (commands/train.py). alignkit/cli.py is the entry point: `main()` around `run`.

Importing this package loads the plug-ins (the bundled task's `truth` judge, `rule:truth` and prompts;
the LLM judge kinds), so every command sees them.
"""
from __future__ import annotations

from .. import plugins  # noqa: F401
from . import eval as evaluate
from . import constitution, label, leaderboard, merge, models, rewards, serve, synthetic, train
from . import generate
from .common import OneLineParser

# in the order `alignkit --help` lists them
COMMANDS = (train, models, synthetic, evaluate, generate, leaderboard, rewards, label, constitution, merge, serve)


def build_parser() -> tuple:
    """-> (the `alignkit` parser, its subparsers)."""
    p = OneLineParser(prog="alignkit", description=(
        "LLM alignment on Hugging Face models: reward models, feedback, RLHF and preference "
        "optimisation, with evaluation against a known ground truth."))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return p, sub


def run(argv: list) -> int:
    """Parse `argv` (without the program name) and run the command; returns its exit status."""
    if argv and argv[0] == "train":
        return train.cmd_train(argv[1:])
    p, _ = build_parser()
    args, extra = p.parse_known_args(argv)
    leaf = getattr(args, "command_parser", None) or p
    if extra:  # the subcommand's parser names the closest of its own options
        leaf.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        p.print_help()
        return 0 if not argv else 2
    return args.func(args) or 0
