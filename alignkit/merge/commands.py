"""`alignkit merge`: merge full models and LoRA adapters into one Hugging Face model folder."""
from __future__ import annotations

import dataclasses

from .config import METHODS, MergeConfig


def cmd_merge(args) -> int:
    from ..config import build_config, read_yaml
    from .run import run_merge
    names = {f.name for f in dataclasses.fields(MergeConfig)}
    flags = {k: v for k, v in vars(args).items() if k in names and v is not None}
    layers = [read_yaml(args.config)] if args.config else []
    cfg = build_config(MergeConfig, *layers, flags, where=args.config or "merge")
    run_merge(cfg)
    return 0


def register(sub):
    from ..config import add_dataclass_args
    p = sub.add_parser(
        "merge", help="merge models or LoRA adapters: task arithmetic, TIES, DARE, linear average",
        description=("Merge fine-tuned models (full folders or PEFT LoRA adapters) of one architecture into a "
                     "Hugging Face model folder, streaming tensor by tensor. Methods: " + ", ".join(METHODS) +
                     ". Every field is a flag (dashes or underscores); --config FILE.yaml gives defaults; flags win."),
        epilog=("example: alignkit merge --method ties --base BASE --models sft,dpo --weights 1,0.5 "
                "--density 0.2 --output merged"))
    p.add_argument("--config", help="YAML file of merge fields (defaults for this run)")
    add_dataclass_args(p, MergeConfig, "merge options")
    p.set_defaults(func=cmd_merge)
