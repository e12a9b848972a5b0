"""`alignkit eval`: evaluate a saved policy on the bundled task under the ground-truth reward r*.

    alignkit eval --model DIR [--baseline DIR] [--ref DIR] [--n-prompts N] [--seed S] [--json]
    alignkit eval policy --model DIR ...        (the same, spelled out)
    alignkit eval WHAT ...                      (other evaluations, added by EVAL_EXTENSIONS)

Other modules add evaluations as subcommands: a module named in EVAL_EXTENSIONS defines
`register_eval(eval_subparsers)` and adds its own parser there (e.g. `alignkit eval preferences`).
"""
from __future__ import annotations

import json

from ..errors import ConfigError

# Modules that add `alignkit eval WHAT` subcommands.
EVAL_EXTENSIONS = ("alignkit.rewards.eval_commands", "alignkit.eval.curves")


def cmd_eval_policy(args) -> int:
    if not args.model:
        raise ConfigError("alignkit eval needs --model DIR (or a subcommand; see `alignkit eval --help`)")
    from ..synthetic.evaluate import EVAL_SAMPLING, evaluate_policy, format_table
    import dataclasses
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    quiet = args.json
    res = evaluate_policy(args.model, baseline=args.baseline, ref=args.ref, n_prompts=args.n_prompts,
                          seed=args.seed, split=args.split, sampling=sampling,
                          log=(lambda *a, **k: None) if quiet else print)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    cols = ([("baseline", res["baseline_metrics"])] if args.baseline else []) + [("model", res["policy"])]
    print(format_table(cols, res.get("win_rate")))
    if not args.baseline:
        print("(pass --baseline DIR for the win rate; the KL is measured against --ref, else the baseline)")
    return 0


def add_policy_args(p):
    p.add_argument("--model", help="the policy to evaluate (a local Hugging Face folder)")
    p.add_argument("--baseline", help="a policy to compare against: win rate under r* (ties count half); "
                                      "also the KL reference unless --ref is given")
    p.add_argument("--ref", help="reference model for KL(model || ref), estimated from the model's samples "
                                 "(default: the baseline)")
    p.add_argument("--n-prompts", type=int, default=200, help="prompts, balanced over the four families (default 200)")
    p.add_argument("--split", default="heldout", choices=("heldout", "train"),
                   help="which side of the task's fixed prompt split (default heldout: never trained on)")
    p.add_argument("--seed", type=int, default=0, help="prompt draw and sampling seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature (default 1: the KL estimate is exact only at 1)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="longest response sampled (default 48)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    p.set_defaults(func=cmd_eval_policy)


def register(sub):
    import importlib
    desc = ("Sample a saved model on held-out prompts of the bundled task and score it with the ground-truth "
            "reward r*: mean true reward, win rate against --baseline (ties count half), harmlessness rate on "
            "harmful prompts, over-refusal rate on benign-but-risky ones, answer accuracy, KL(model || ref) "
            "from samples, mean length. Subcommands add other evaluations.")
    p = sub.add_parser("eval", help="evaluate a model on the bundled task under the ground truth r*", description=desc)
    add_policy_args(p)
    es = p.add_subparsers(dest="eval_what", metavar="WHAT", required=False)
    pol = es.add_parser("policy", help="a policy's metrics under r* (the default)", description=desc)
    add_policy_args(pol)
    for mod in EVAL_EXTENSIONS:
        importlib.import_module(mod).register_eval(es)
