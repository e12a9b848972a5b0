"""`alignkit eval`: evaluations of a trained model.

    alignkit eval --model DIR [--baseline DIR] [--ref DIR] [--n-prompts N] [--seed S] [--json]
    alignkit eval policy --model DIR ...        (the same, spelled out: the bundled task's metrics under r*)
    alignkit eval preferences --model DIR --data FILE [--ref DIR] [--beta B] [--json]
    alignkit eval curves RUN [RUN ...] --output PNG [--metrics a,b] [--smooth N] [--labels a,b]
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..config import option
from .common import add_command, at_least, one_of, required
from .rewards import PreferenceData, make_judge, preference_eval

SPLITS = ("heldout", "train")


@dataclass(frozen=True)
class PolicyEvalConfig:
    model: str = ""  # the policy to evaluate (a local Hugging Face folder)
    baseline: str = ""  # a policy to compare against: win rate under r* (ties count half); also the KL reference unless --ref is given
    ref: str = ""  # reference model for KL(model || ref), estimated from the model's samples ("": the baseline)
    n_prompts: int = option(200, ge=1)  # prompts, balanced over the four families
    split: str = option("heldout", choices=SPLITS)  # which side of the task's fixed prompt split: heldout (never trained on) | train
    seed: int = 0  # prompt draw and sampling seed
    temperature: float = option(1.0, ge=0)  # sampling temperature (the KL estimate is exact only at 1)
    max_new_tokens: int = option(48, ge=1)  # longest response sampled
    json: bool = False  # print the metrics as JSON instead of a table

    def __post_init__(self):
        required(self, "model", hint="DIR, or a subcommand; see `alignkit eval --help`")
        one_of(self, "split", SPLITS)
        at_least(self, "n_prompts", 1)
        at_least(self, "max_new_tokens", 1)
        at_least(self, "temperature", 0.0)


@dataclass(frozen=True)
class PreferencesConfig(PreferenceData):
    model: str = ""  # the policy folder (trained with a DPO-family method)
    ref: str = ""  # reference model folder ("": the one in the policy's config.yaml)
    beta: float | None = option(None, gt=0)  # beta of the implicit reward (unset: the policy's training beta, else 0.1)

    def __post_init__(self):
        required(self, "model")
        super().__post_init__()


@dataclass(frozen=True)
class CurvesConfig:
    runs: tuple[str, ...] = ()  # run folders (or metrics.jsonl files)
    output: str = ""  # the PNG to write
    metrics: str = ""  # comma-separated metric names ("": loss, implicit-reward accuracy and margin, log-probs and lengths of chosen and rejected, reward and KL, as far as the runs logged them)
    smooth: int = option(10, ge=0)  # running mean over this many training steps
    labels: str = ""  # comma-separated legend names, one per run ("": the folder names)

    def __post_init__(self):
        required(self, "runs", "output")
        at_least(self, "smooth", 0)
        if self.labels and len(self.labels.split(",")) != len(self.runs):
            raise ValueError(f"--labels has {len(self.labels.split(','))} names for {len(self.runs)} runs")


def cmd_policy(cfg: PolicyEvalConfig) -> int:
    import dataclasses
    from ..synthetic.evaluate import EVAL_SAMPLING, evaluate_policy, format_table
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
    res = evaluate_policy(cfg.model, baseline=cfg.baseline or None, ref=cfg.ref or None, n_prompts=cfg.n_prompts,
                          seed=cfg.seed, split=cfg.split, sampling=sampling, require_task_model=True,
                          log=(lambda *a, **k: None) if cfg.json else print)
    if cfg.json:
        print(json.dumps(res, indent=1))
        return 0
    cols = ([("baseline", res["baseline_metrics"])] if cfg.baseline else []) + [("model", res["policy"])]
    print(format_table(cols, res.get("win_rate")))
    if not cfg.baseline:
        print("(pass --baseline DIR for the win rate; the KL is measured against --ref, else the baseline)")
    return 0


def cmd_preferences(cfg: PreferencesConfig) -> int:
    """Preference accuracy of beta * (log pi - log pi_ref)."""
    from ..rewards.implicit import ImplicitRewardJudge
    return preference_eval(make_judge(ImplicitRewardJudge, cfg.model, cfg.ref or None, cfg.beta), cfg)


def cmd_curves(cfg: CurvesConfig) -> int:
    from ..eval.curves import plot_curves
    metrics = [m.strip() for m in cfg.metrics.split(",") if m.strip()] or None
    labels = [s.strip() for s in cfg.labels.split(",")] if cfg.labels else None
    print(plot_curves(list(cfg.runs), cfg.output, metrics, cfg.smooth, labels))
    return 0


def register(sub):
    desc = ("Sample a saved model on held-out prompts of the bundled task and score it with the ground-truth "
            "reward r*: mean true reward, win rate against --baseline (ties count half), harmlessness rate on "
            "harmful prompts, over-refusal rate on benign-but-risky ones, answer accuracy, KL(model || ref) "
            "from samples, mean length. Subcommands add other evaluations.")
    p = add_command(sub, "eval", cmd_policy, PolicyEvalConfig, description=desc,
                    help="evaluate a model: the bundled task under r* (default), preferences, training curves")
    whats = p.add_subparsers(dest="eval_what", metavar="WHAT", required=False)
    add_command(whats, "policy", cmd_policy, PolicyEvalConfig, description=desc,
                help="a policy's metrics on the bundled task under r* (the default)")
    add_command(whats, "preferences", cmd_preferences, PreferencesConfig,
                help="implicit-reward preference accuracy of a DPO-family policy on labelled pairs",
                description="Score each labelled pair with the policy's implicit reward beta * (log pi - log pi_ref) "
                            "(Rafailov et al. 2023) and report preference accuracy and calibration (reliability "
                            "table, expected calibration error); on thumbs-up/down data, the AUC of the implicit "
                            "reward (KTO, BCO). The reference and beta default to the ones in the policy folder's "
                            "config.yaml.")
    add_command(whats, "curves", cmd_curves, CurvesConfig, positional={"runs": {"nargs": "+"}},
                help="plot training curves of one or more runs (metrics.jsonl) side by side",
                description="Plot each run's metrics.jsonl, one panel per metric with the runs overlaid: training "
                            "steps as a running mean, held-out evaluations as markers. By default the panels are "
                            "loss, implicit-reward accuracy and margin, the policy's log-probs and lengths of chosen "
                            "and rejected, and for RL runs reward and KL, as far as the runs logged them.")
