"""`alignkit label`: AI-labelled preference data (alignkit/judges/label.py).

    alignkit label --judge SPEC --data FILE --output FILE [--mode pairwise|pointwise|rank] [--config FILE.yaml]

SPEC is any judge spec; the LLM judges are llm-pair:BACKEND[,...] (RLAIF's pairwise judge),
llm-score:BACKEND[,...] (the additive 0-5 rubric) and llm-cai:BACKEND[,...] (the pairwise judge under
a constitution's principles), BACKEND hf:DIR or http(s)://HOST:PORT/v1 (alignkit/judges/specs.py lists
their options); a task plug-in may add its own (the bundled task: task-judge, task-cai).
"""
from __future__ import annotations

import dataclasses


def cmd_label(args) -> int:
    from ..config import build_config, read_yaml
    from .label import LabelConfig, run_label
    names = {f.name for f in dataclasses.fields(LabelConfig)}
    flags = {k: v for k, v in vars(args).items() if k in names and v is not None}
    cfg = build_config(LabelConfig, read_yaml(args.config) if args.config else {}, flags, where="label")
    run_label(cfg)
    return 0


def register(sub):
    from ..config import add_dataclass_args
    from .label import LabelConfig
    p = sub.add_parser("label", help="AI feedback: label responses with a judge into pairwise, binary or listwise data",
                       description="Turn prompts with two or more responses into training data labelled by a judge "
                                   "(RLAIF): pairwise pairs with the judge's probability, thumbs from pointwise "
                                   "scores, "
                                   "or listwise scores. Resumable: rerun the same command after an interruption. "
                                   "Every field is a flag; --config FILE.yaml gives defaults; flags win.")
    p.add_argument("--config", help="YAML file of label fields")
    add_dataclass_args(p, LabelConfig, "label options")
    p.set_defaults(func=cmd_label)
