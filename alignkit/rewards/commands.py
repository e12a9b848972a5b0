"""`alignkit rewards score|eval` and the `eval preferences` mode.

    alignkit rewards score --reward SPEC --data FILE [--output FILE]
        one reward per response (pairwise data: both sides) as JSONL, to --output or stdout
    alignkit rewards eval --reward SPEC --data FILE [--against SPEC] [--json]
        preference accuracy on labelled pairs, calibration (reliability table, ECE), and agreement
        (accuracy, Cohen's kappa) with another judge; on thumbs (binary) data, the AUC and reward gap
    alignkit eval preferences --model DIR [--ref DIR] --data FILE [--beta B] [--json]
        the implicit reward's preference accuracy of a DPO-family policy (`eval_preferences`)

SPEC is a judge spec (alignkit/rewards/specs.py): rm:DIR, implicit:POLICY[,REF], rule:NAME, file:F.py:FN,
truth, or a weighted sum such as 0.7*rule:sentiment+0.3*rm:DIR.
"""
from __future__ import annotations

import json
import math
import sys


def _read(path: str, eval_fraction: float = 0.0, seed: int = 0, on_bad_record: str = "error") -> list:
    """Records of `path`; with eval_fraction > 0 only the held-out part of the seeded split that
    `alignkit train ... --eval-fraction F --seed S [--on-bad-record skip]` makes of the same file."""
    from ..data.convert import split_records
    from ..data.readers import read_records
    records, report = read_records(path, on_bad_record=on_bad_record)
    print(report.summary(), file=sys.stderr)
    if eval_fraction > 0:
        _, records = split_records(records, eval_fraction, seed)
        print(f"evaluating the held-out {len(records)} records (eval_fraction={eval_fraction}, seed={seed})",
              file=sys.stderr)
    return records


def score_records(judge, records: list) -> list:
    """TRL-style rows of `records` with the judge's rewards added: `reward` for one response,
    `reward_chosen`/`reward_rejected` for a pair, `rewards` for a list. One batched score call."""
    from ..data.convert import to_trl_dict
    from ..data.records import Listwise, Pairwise
    prompts, texts = [], []
    for r in records:
        if isinstance(r, Pairwise):
            items = [r.chosen, r.rejected]
        elif isinstance(r, Listwise):
            items = list(r.completions)
        else:
            items = [r.completion]
        prompts += [r.prompt] * len(items)
        texts += items
    scores = judge.score(prompts, texts)
    rows, k = [], 0
    for r in records:
        row = to_trl_dict(r)
        if isinstance(r, Pairwise):
            row["reward_chosen"], row["reward_rejected"] = scores[k], scores[k + 1]
            k += 2
        elif isinstance(r, Listwise):
            row["rewards"] = scores[k: k + len(r.completions)]
            k += len(r.completions)
        else:
            row["reward"] = scores[k]
            k += 1
        rows.append(row)
    return rows


def cmd_score(args) -> int:
    from .specs import judge_from_spec
    judge = judge_from_spec(args.reward)
    records = _read(args.data)
    rows = score_records(judge, records)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if args.output:
        with open(args.output, "w") as f:
            f.write(lines)
    else:
        sys.stdout.write(lines)
    values = [v for row in rows for key in ("reward", "reward_chosen", "reward_rejected") if key in row
              for v in [row[key]]] + [v for row in rows for v in row.get("rewards", [])]
    mean = sum(values) / len(values) if values else math.nan
    print(f"{judge.name}: scored {len(values)} responses of {len(rows)} records, mean reward {mean:.4f}"
          + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def _report(judge, args, against=None) -> int:
    from ..errors import DataError
    from .evaluate import as_pairs, binary_report, format_binary_report, format_report, is_binary, preference_report
    records = _read(args.data, args.eval_fraction, args.seed, args.on_bad_record)
    if is_binary(records):  # thumbs labels: AUC of the score, not pair accuracy
        if against is not None:
            raise DataError(args.data, None, None, "--against needs pairwise, listwise or scored records")
        records = records[: args.max_pairs] if args.max_pairs else records
        report = binary_report(judge, records)
        print(json.dumps(report, indent=1) if args.json else format_binary_report(report))
        return 0
    pairs = as_pairs(records, args.data)
    if args.max_pairs:
        pairs = pairs[: args.max_pairs]
    if not pairs:
        raise DataError(args.data, None, None, "no preference pairs to evaluate")
    report = preference_report(judge, pairs, against, args.bins)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def cmd_eval(args) -> int:
    from .specs import judge_from_spec
    return _report(judge_from_spec(args.reward), args, judge_from_spec(args.against) if args.against else None)


def eval_preferences(args) -> int:
    """`alignkit eval preferences`: preference accuracy of beta * (log pi - log pi_ref)."""
    from .implicit import ImplicitRewardJudge
    return _report(ImplicitRewardJudge(args.model, args.ref, args.beta), args)


def _common_eval_args(p):
    p.add_argument("--data", required=True, help="labelled pairs (pairwise; listwise or scored data become pairs); "
                                                 "binary (thumbs) data gets the AUC of the score instead")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--bins", type=int, default=10, help="bins of the reliability table (default 10)")
    p.add_argument("--eval-fraction", "--eval_fraction", dest="eval_fraction", type=float, default=0.0,
                   help="evaluate only the held-out part of the seeded split `alignkit train` makes with this "
                        "--eval-fraction and --seed (default 0: the whole file)")
    p.add_argument("--seed", type=int, default=0, help="seed of that split (default 0)")
    p.add_argument("--on-bad-record", "--on_bad_record", dest="on_bad_record", choices=("error", "skip"),
                   default="error", help="error: stop at the first bad record, naming file, line and field; "
                                         "skip: leave it out and count it, as `alignkit train --on-bad-record skip` "
                                         "does, so the held-out split is the same (default error)")
    p.add_argument("--max-pairs", "--max_pairs", dest="max_pairs", type=int, default=0,
                   help="evaluate the first N pairs only (default 0: all)")


def add_preferences_args(p):
    """The arguments of `alignkit eval preferences` (for the eval command's parser)."""
    p.add_argument("--model", required=True, help="the policy folder (trained with a DPO-family method)")
    p.add_argument("--ref", default=None, help="reference model folder (default: the one in the policy's config.yaml)")
    p.add_argument("--beta", type=float, default=None,
                   help="beta of the implicit reward (default: the policy's training beta, else 0.1)")
    _common_eval_args(p)
    p.set_defaults(func=eval_preferences)


def register(subparsers):
    p = subparsers.add_parser("rewards", help="score responses with a reward and evaluate rewards on preferences")
    sub = p.add_subparsers(dest="rewards_command", metavar="SUBCOMMAND")
    s = sub.add_parser("score", help="score every response of a data file with a reward (JSONL out)")
    s.add_argument("--reward", required=True, help="judge spec: rm:DIR, implicit:POLICY[,REF], rule:NAME, "
                                                   "file:F.py:FN, truth, or a weighted sum like 0.5*rule:a+0.5*rm:DIR")
    s.add_argument("--data", required=True, help="records to score (any feedback shape)")
    s.add_argument("--output", default=None, help="JSONL file to write (default: stdout)")
    s.set_defaults(func=cmd_score)
    e = sub.add_parser("eval", help="preference accuracy, calibration and agreement of a reward on labelled pairs")
    e.add_argument("--reward", required=True, help="judge spec of the reward to evaluate")
    e.add_argument("--against", default=None, help="another judge spec: report agreement (accuracy, Cohen's kappa)")
    _common_eval_args(e)
    e.set_defaults(func=cmd_eval)
    from .tokens import add_tokens_command  # `rewards tokens` (issue 7)
    add_tokens_command(sub)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
