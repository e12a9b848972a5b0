"""Commands of the bundled task: `alignkit quickstart`, `alignkit world base`, `alignkit world export`,
`alignkit world compare`, `alignkit world unlearn`."""
from __future__ import annotations

import argparse
import dataclasses


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


def cmd_compare(args) -> int:
    from .base import TINY_WORLD, WorldConfig
    from .experiments import MINI_COMPARE, CompareConfig, parse_arms, parse_sets, run_compare
    from .labelers import LabelerConfig
    glob, arms = parse_sets(args.set, parse_arms(args.methods))
    base = MINI_COMPARE if args.mini else CompareConfig()
    over = {k: getattr(args, k) for k in ("train_prompts", "samples_per_prompt", "max_new_tokens", "pairs",
                                          "eval_prompts", "source", "candidates_dir") if getattr(args, k) is not None}
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else base.seeds
    cfg = dataclasses.replace(base, **over, seeds=seeds, train={**base.train, **glob})
    labeler = LabelerConfig(temperature=args.temperature, noise=args.noise, length_bias=args.length_bias,
                            position_bias=args.position_bias, threshold=args.threshold)
    run_compare(arms, cfg, labeler, output=args.output, world=TINY_WORLD if args.mini else WorldConfig(),
                cache_dir=args.cache_dir, base_model=args.base_model, progress=not args.no_progress)
    return 0


def cmd_unlearn(args) -> int:
    from .base import TINY_WORLD, WorldConfig
    from .experiments import parse_sets
    from .unlearn import MINI_UNLEARN, UnlearnConfig, run_unlearn
    glob, _ = parse_sets(args.set, [])
    base = MINI_UNLEARN if args.mini else UnlearnConfig()
    over = {k: getattr(args, k) for k in ("forget_prompts", "heldout_prompts", "samples_per_prompt",
                                          "retain_prompts", "eval_prompts", "source", "seed")
            if getattr(args, k) is not None}
    cfg = dataclasses.replace(base, **over, train={**base.train, **glob})
    run_unlearn(cfg, output=args.output, world=TINY_WORLD if args.mini else WorldConfig(), cache_dir=args.cache_dir,
                base_model=args.base_model, progress=not args.no_progress)
    return 0


def _labeler_args(p, temperature: float):
    """The simulated labeler's options (alignkit/synthetic/labelers.py)."""
    p.add_argument("--temperature", type=float, default=temperature,
                   help=f"labeler Bradley-Terry/Plackett-Luce temperature (default {temperature})")
    p.add_argument("--noise", type=float, default=0.0, help="labeler label-flip rate (default 0)")
    p.add_argument("--length-bias", type=float, default=0.0, help="labeler utility bonus per word (default 0)")
    p.add_argument("--position-bias", type=float, default=0.0,
                   help="rate of preferring the first-shown answer (default 0)")


def _cache_args(p):
    p.add_argument("--cache-dir", help="where the base model is cached (default $ALIGNKIT_CACHE or ~/.cache/alignkit)")
    p.add_argument("--mini", action="store_true", help=argparse.SUPPRESS)  # a seconds-long miniature, for tests


def register(sub):
    from .quickstart import QuickstartConfig
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
    q.add_argument("--beta", type=float, help=f"DPO beta (default {QuickstartConfig.beta})")
    q.add_argument("--learning-rate", type=float, help=f"DPO learning rate (default {QuickstartConfig.learning_rate})")
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
    _labeler_args(e, temperature=0.5)
    e.add_argument("--score-noise", type=float, default=0.0, help="std of noise on scalar scores (default 0)")
    _cache_args(e)
    e.set_defaults(func=cmd_export)

    c = ws.add_parser(
        "compare", help="train several methods on the same on-policy labels; compare them under r*",
        description="Sample K responses per training prompt from the SFT model once per seed (cached in the "
                    "output folder), label them with a simulated labeler in each method's feedback shape "
                    "(pairwise, binary, listwise, negative-only) at one label budget, train every method, "
                    "evaluate each against the SFT model on held-out prompts, and write results.json and "
                    "results.md (median over seeds). Finished arms are reused when rerun.")
    c.add_argument("--methods", required=True, help="comma-separated losses, e.g. dpo,simpo,kto; LABEL=METHOD "
                                                     "adds a second arm of one method")
    c.add_argument("--output", required=True, help="folder for candidates, models, results.json, results.md")
    c.add_argument("--seeds", help="comma-separated seeds (default 0)")
    c.add_argument("--candidates-dir", help="cache the sampled candidates here (DIR/seed{s}/candidates.json) to share "
                                            "them between comparisons (default: the output folder)")
    c.add_argument("--set", action="append", metavar="[ARM.]KEY=VALUE",
                   help="a run or method option for every arm (KEY=VALUE) or one arm (ARM.KEY=VALUE); repeatable")
    c.add_argument("--train-prompts", type=int, help="training prompts (default 600)")
    c.add_argument("--samples-per-prompt", type=int, help="K candidates per prompt (default 4)")
    c.add_argument("--max-new-tokens", type=int, help="longest sampled response (default 48)")
    c.add_argument("--pairs", choices=("best-worst", "disjoint"),
                   help="pairwise labels: best-vs-worst of the K (default) or K//2 disjoint pairs")
    c.add_argument("--eval-prompts", type=int, help="held-out prompts for the evaluation (default 400)")
    c.add_argument("--source", choices=("model", "corpus"),
                   help="candidates sampled from the SFT model (default) or drawn from the corpus's behaviour mix")
    _labeler_args(c, temperature=0.3)
    c.add_argument("--threshold", type=float, default=0.0, help="binary labeler: utility above which it gives a thumbs up")
    c.add_argument("--base-model", help="start from this SFT model folder instead of the world's own")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    _cache_args(c)
    c.set_defaults(func=cmd_compare)

    u = ws.add_parser(
        "unlearn", help="NPO on the SFT model's harmful compliances: forget-set likelihood vs retained accuracy",
        description="Sample the SFT model on harmful training prompts, keep its harmful compliances as a forget "
                    "set, unlearn them with NPO, and report the forget set's log-likelihood (trained-on and "
                    "held-out prompts) before and after, the answer accuracy on held-out arithmetic prompts, "
                    "and evaluate_policy against the SFT model. Writes unlearn.json and unlearn.md.")
    u.add_argument("--output", required=True, help="folder for the NPO model, unlearn.json and unlearn.md")
    u.add_argument("--set", action="append", metavar="KEY=VALUE", help="an NPO run or method option; repeatable")
    u.add_argument("--forget-prompts", type=int, help="harmful training prompts to sample (default 300)")
    u.add_argument("--heldout-prompts", type=int, help="held-out harmful prompts for the held-out forget set (default 100)")
    u.add_argument("--samples-per-prompt", type=int, help="responses per harmful prompt (default 4)")
    u.add_argument("--retain-prompts", type=int, help="held-out arithmetic prompts for the accuracy (default 400)")
    u.add_argument("--eval-prompts", type=int, help="held-out prompts for evaluate_policy (default 400)")
    u.add_argument("--source", choices=("model", "corpus"), help="forget set from the SFT model (default) or the corpus")
    u.add_argument("--seed", type=int, help="prompts, sampling and data order (default 0)")
    u.add_argument("--base-model", help="start from this SFT model folder instead of the world's own")
    u.add_argument("--no-progress", action="store_true", help="no progress bars")
    _cache_args(u)
    u.set_defaults(func=cmd_unlearn)

    def world_help(args):
        w.print_help()
        return 2
    w.set_defaults(func=world_help)
