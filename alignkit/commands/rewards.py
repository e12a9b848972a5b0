"""`alignkit rewards score|eval|tokens`.

    alignkit rewards score --reward SPEC --data FILE [--output FILE]
        one reward per response (pairwise data: both sides) as JSONL, to --output or stdout
    alignkit rewards eval --reward SPEC --data FILE [--against SPEC] [--json]
        preference accuracy on labelled pairs, calibration (reliability table, ECE), and agreement
        (accuracy, Cohen's kappa) with another judge; on thumbs (binary) data, the AUC and reward gap
    alignkit rewards tokens --model DIR [--ref DIR] --data FILE [--beta B] [--html OUT.html] [--json]
        per-token implicit rewards of a policy against its reference (alignkit/rewards/tokens.py)

SPEC is a judge spec (alignkit/rewards/specs.py): rm:DIR, implicit:POLICY[,REF], rule:NAME, file:F.py:FN,
truth, or a weighted sum such as 0.7*rule:sentiment+0.3*rm:DIR. `alignkit eval preferences`
(commands/eval.py) shares the evaluation part.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass

from ..config import option
from ..rewards.evaluate import PreferenceOptions
from .common import add_command, add_group, at_least, one_of, required

SPEC_HELP = ("judge spec: rm:DIR, implicit:POLICY[,REF], rule:NAME, file:F.py:FN, truth, "
             "or a weighted sum like 0.5*rule:a+0.5*rm:DIR")
BAD_RECORD = ("error", "skip")
COLOR = ("auto", "always", "never")


def _stderr(*a):
    print(*a, file=sys.stderr)


def make_judge(factory, *args):
    """A judge built with whatever it prints while loading sent to stderr: stdout is the data (--json,
    JSONL) that scripts read."""
    import contextlib
    with contextlib.redirect_stdout(sys.stderr):
        return factory(*args)


# ---- rewards score ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreConfig:
    reward: str = ""  # judge spec: rm:DIR, implicit:POLICY[,REF], rule:NAME, file:F.py:FN, truth, or a weighted sum like 0.5*rule:a+0.5*rm:DIR
    data: str = ""  # records to score (any feedback shape): a file, a hub-style folder or a dataset name in the local Hugging Face cache (NAME[:SPLIT])
    output: str = ""  # JSONL file to write ("": stdout)
    columns: str = ""  # other field names mapped to the ones the formats read: prompt=question,completion=answer

    def __post_init__(self):
        required(self, "reward", "data")


def cmd_score(cfg: ScoreConfig) -> int:
    from ..rewards.evaluate import reward_rows
    from ..rewards.specs import judge_from_spec
    judge = make_judge(judge_from_spec, cfg.reward)
    rows = reward_rows(judge, read_heldout(cfg.data, columns=cfg.columns))
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if cfg.output:
        with open(cfg.output, "w") as f:
            f.write(lines)
    else:
        sys.stdout.write(lines)
    values = [row[key] for row in rows for key in ("reward", "reward_chosen", "reward_rejected") if key in row]
    values += [v for row in rows for v in row.get("rewards", [])]
    mean = sum(values) / len(values) if values else math.nan
    _stderr(f"{judge.name}: scored {len(values)} responses of {len(rows)} records, mean reward {mean:.4f}"
            + (f"; wrote {cfg.output}" if cfg.output else ""))
    return 0


# ---- rewards eval (and eval preferences) --------------------------------------------------------
@dataclass(frozen=True)
class PreferenceData(PreferenceOptions):
    data: str = ""  # labelled pairs (pairwise; listwise or scored data become pairs); binary (thumbs) data gets the AUC of the score instead
    json: bool = False  # print the report as JSON

    def __post_init__(self):
        required(self, "data")
        super().__post_init__()  # bins, eval_fraction, on_bad_record, max_pairs (rewards/evaluate.py)


@dataclass(frozen=True)
class RewardEvalConfig(PreferenceData):
    reward: str = ""  # judge spec of the reward to evaluate
    against: str = ""  # another judge spec: report agreement (accuracy, Cohen's kappa)

    def __post_init__(self):
        required(self, "reward")
        super().__post_init__()


def read_heldout(path: str, eval_fraction: float = 0.0, seed: int = 0, on_bad_record: str = "error",
                 columns: str = "") -> list:
    """Records of `path` (rewards/evaluate.py heldout_records), what was read said on stderr."""
    from ..rewards.evaluate import heldout_records
    return heldout_records(path, eval_fraction, seed, on_bad_record, columns, log=_stderr)


def preference_eval(judge, cfg: PreferenceData, against=None) -> int:
    """Print the judge's preference report (pairs: accuracy, calibration, agreement with `against`;
    thumbs: AUC) on cfg's data."""
    from ..rewards.evaluate import format_binary_report, format_report, preference_results
    records = read_heldout(cfg.data, cfg.eval_fraction, cfg.seed, cfg.on_bad_record, cfg.columns)
    report = preference_results(judge, records, against, cfg.bins, cfg.max_pairs, cfg.data)
    text = format_binary_report(report) if "auc" in report else format_report(report)
    print(json.dumps(report, indent=1) if cfg.json else text)
    return 0


def cmd_eval(cfg: RewardEvalConfig) -> int:
    from ..rewards.specs import judge_from_spec
    against = make_judge(judge_from_spec, cfg.against) if cfg.against else None
    return preference_eval(make_judge(judge_from_spec, cfg.reward), cfg, against)


# ---- rewards tokens ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TokensConfig:
    model: str = ""  # the policy folder (trained against --ref)
    ref: str = ""  # reference model folder ("": the one in the policy's config.yaml)
    data: str = ""  # records whose completions to show (any feedback shape; pairwise: chosen and rejected, listwise: every response)
    beta: float | None = option(None, gt=0)  # beta of the implicit reward (unset: the policy's training beta, else 0.1)
    html: str = ""  # also write a self-contained HTML page here (OUT.html)
    limit: int = option(5, ge=0)  # show the first N records (0 = all)
    json: bool = False  # print the token rewards as JSON instead of the view
    color: str = option("auto", choices=COLOR)  # colour the terminal view: auto (when stdout is a terminal) | always | never
    no_color: bool = False  # same as --color never
    max_length: int = option(0, ge=0)  # longest prompt+completion in tokens (0: the policy's training max_length, else its context window)

    def __post_init__(self):
        required(self, "model", "data")
        one_of(self, "color", COLOR)
        at_least(self, "limit", 0)
        at_least(self, "max_length", 0)


def cmd_tokens(cfg: TokensConfig) -> int:
    from ..rewards.tokens import colour_mode, render_html, render_terminal, token_views
    views, beta, ref_dir = token_views(cfg.model, cfg.data, ref=cfg.ref or None, beta=cfg.beta, limit=cfg.limit,
                                       max_length=cfg.max_length, log=_stderr)
    if cfg.html:
        with open(cfg.html, "w", encoding="utf-8") as f:
            f.write(render_html(views, beta, cfg.model, ref_dir, cfg.data))
        _stderr(f"wrote {cfg.html} ({len(views)} completions, {sum(len(v.rewards) for v in views)} tokens)")
    if cfg.json:
        print(json.dumps({"beta": beta, "model": cfg.model, "ref": ref_dir,
                          "completions": [v.to_dict() for v in views]}, ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(render_terminal(views, beta, colour_mode("never" if cfg.no_color else cfg.color, sys.stdout)))
    return 0


def register(sub):
    _, rewards = add_group(sub, "rewards", help="score responses with a reward and evaluate rewards on preferences",
                           description="Judges as rewards: score a data file, evaluate a judge on labelled "
                                       "preferences, show a policy's per-token implicit rewards. " + SPEC_HELP + ".")
    add_command(rewards, "score", cmd_score, ScoreConfig,
                help="score every response of a data file with a reward (JSONL out)")
    add_command(rewards, "eval", cmd_eval, RewardEvalConfig,
                help="preference accuracy, calibration and agreement of a reward on labelled pairs")
    add_command(rewards, "tokens", cmd_tokens, TokensConfig,
                help="per-token implicit rewards of a policy vs its reference (From r to Q*), coloured or as HTML")
