"""Commands of the bundled task: `alignkit quickstart`, `alignkit world base`, `alignkit world export`."""
from __future__ import annotations

import argparse


def cmd_quickstart(args) -> int:
    import dataclasses
    from .base import TINY_WORLD, WorldConfig
    from .quickstart import MINI, QuickstartConfig, run_quickstart
    over = {k: getattr(args, k) for k in ("train_prompts", "samples_per_prompt", "beta", "learning_rate",
                                          "epochs", "eval_prompts") if getattr(args, k) is not None}
    cfg = dataclasses.replace(MINI if args.mini else QuickstartConfig(), **over, seed=args.seed)
    world = TINY_WORLD if args.mini else WorldConfig()
    run_quickstart(cfg, world, output=args.output, cache_dir=args.cache_dir, progress=not args.no_progress,
                   base_model=args.base_model)
    return 0


def cmd_base(args) -> int:
    import shutil
    from .base import TINY_WORLD, WorldConfig, build_base
    world = TINY_WORLD if args.mini else WorldConfig()
    path = build_base(world, cache_dir=args.cache_dir, force=args.force)
    if args.output:
        shutil.copytree(path, args.output, dirs_exist_ok=True)
        print(f"copied the base model to {args.output}")
    else:
        print(path)
    return 0


def cmd_export(args) -> int:
    from .base import TINY_WORLD, WorldConfig
    from .export import export_world
    from .labelers import LabelerConfig
    labeler = LabelerConfig(temperature=args.temperature, noise=args.noise, length_bias=args.length_bias,
                            position_bias=args.position_bias, score_noise=args.score_noise, seed=args.seed)
    export_world(args.output, n_prompts=args.n_prompts, k=args.samples_per_prompt, source=args.source,
                 labeler=labeler, seed=args.seed, world=TINY_WORLD if args.mini else WorldConfig(),
                 cache_dir=args.cache_dir)
    return 0


def _cache_args(p):
    p.add_argument("--cache-dir", help="where the base model is cached (default $ALIGNKIT_CACHE or ~/.cache/alignkit)")
    p.add_argument("--mini", action="store_true", help=argparse.SUPPRESS)  # a seconds-long miniature, for tests


def register(sub):
    q = sub.add_parser(
        "quickstart", help="the whole loop on the bundled task: base model, sampling, labels, DPO, before/after table",
        description="Build (or reuse) the bundled task's SFT'd tiny Llama, sample responses on training prompts, "
                    "label best-vs-worst pairs with a simulated labeler on the ground-truth reward r*, align with "
                    "DPO, and compare SFT and aligned models on held-out prompts under r*: mean reward, win rate, "
                    "harmlessness, over-refusal, accuracy, KL, length. About 5-10 minutes on two CPU cores the "
                    "first time (the base model is cached afterwards).")
    q.add_argument("--output", help="keep the models here and write results.json (default: a temporary folder)")
    q.add_argument("--seed", type=int, default=0, help="prompts, sampling, labels and data order (default 0)")
    q.add_argument("--train-prompts", type=int, help="training prompts to sample for (default 600)")
    q.add_argument("--samples-per-prompt", type=int, help="responses per prompt; best vs worst is labelled (default 4)")
    q.add_argument("--beta", type=float, help="DPO beta (default 0.1)")
    q.add_argument("--learning-rate", type=float, help="DPO learning rate (default 5e-4)")
    q.add_argument("--epochs", type=float, help="DPO passes over the pairs (default 2)")
    q.add_argument("--eval-prompts", type=int, help="held-out prompts for the evaluation (default 400)")
    q.add_argument("--base-model", help="start from this SFT model folder instead of the world's own base model")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    _cache_args(q)
    q.set_defaults(func=cmd_quickstart)

    w = sub.add_parser("world", help="the bundled task: build its base model, export its data",
                       description="The bundled alignment task: prompts in four families (arithmetic, harmful, "
                                   "benign-but-risky-looking, open requests), a ground-truth reward r*, simulated "
                                   "labelers and a tiny base model.")
    ws = w.add_subparsers(dest="world_command", metavar="COMMAND")
    b = ws.add_parser("base", help="build (or reuse) the task's pre-trained + SFT'd tiny Llama",
                      description="Pre-train a tiny Llama on the world's generated corpus, then SFT it (about 3 "
                                  "minutes on two CPU cores); cached under the cache folder, keyed by its config.")
    b.add_argument("--output", help="also copy the model folder here")
    b.add_argument("--force", action="store_true", help="rebuild even when a cached model exists")
    _cache_args(b)
    b.set_defaults(func=cmd_base)

    e = ws.add_parser("export", help="write prompts and labelled data (pairwise, binary, listwise, scored, SFT) as TRL JSONL",
                      description="Write the task's prompts and simulated-labeler data in TRL-compatible JSONL: "
                                  "prompts_{train,heldout}.jsonl, sft.jsonl, pairwise.jsonl, binary.jsonl, "
                                  "listwise.jsonl, scored.jsonl and manifest.json.")
    e.add_argument("--output", required=True, help="folder to write the files to")
    e.add_argument("--n-prompts", type=int, default=400, help="training prompts to label (default 400)")
    e.add_argument("--samples-per-prompt", type=int, default=4, help="candidates per prompt (default 4)")
    e.add_argument("--source", default="corpus", choices=("corpus", "base"),
                   help="candidates from the corpus's behaviour mix (fast, default) or sampled from the base model")
    e.add_argument("--seed", type=int, default=0, help="prompt draw, candidates and labeler stream (default 0)")
    e.add_argument("--temperature", type=float, default=0.5, help="labeler Bradley-Terry/Plackett-Luce temperature (default 0.5)")
    e.add_argument("--noise", type=float, default=0.0, help="labeler label-flip rate (default 0)")
    e.add_argument("--length-bias", type=float, default=0.0, help="labeler utility bonus per word (default 0)")
    e.add_argument("--position-bias", type=float, default=0.0, help="rate of preferring the first-shown answer (default 0)")
    e.add_argument("--score-noise", type=float, default=0.0, help="std of noise on scalar scores (default 0)")
    _cache_args(e)
    e.set_defaults(func=cmd_export)

    def world_help(args):
        w.print_help()
        return 2
    w.set_defaults(func=world_help)
