"""The `alignkit` entry point (`alignkit.cli:main`); the commands are alignkit/commands/.

    alignkit train METHOD --model DIR --data FILE --output DIR [--config FILE.yaml] [--FIELD VALUE ...]
    alignkit methods [--json]
    alignkit COMMAND ...   (models, synthetic/world, quickstart, eval, rewards, label, merge, serve, ...)

User errors (bad data, config, missing model) print one line and exit with status 2; an interrupted
run exits with 130.
"""
from __future__ import annotations

import os
import sys

from .commands import build_parser, run
from .commands.common import OneLineParser
from .commands.train import cmd_train, train_parser
from .errors import AlignkitError

__all__ = ["main", "build_parser", "OneLineParser", "cmd_train", "train_parser"]


def _quiet_libraries():
    from .models.loading import quiet_transformers
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    quiet_transformers()  # also sets HF_HUB_OFFLINE: alignkit never downloads at run time


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    try:
        return run(argv)
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
