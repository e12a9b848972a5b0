"""Held-out preference accuracy on any pairwise file: does the model rank the chosen response above
the rejected one?

- a policy is scored by its implicit reward r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x)) (DPO,
  Rafailov et al. 2023, arXiv 2305.18290, eq. 5; alignkit/rewards/implicit.py): the reference and beta
  are the ones the policy was trained with (its config.yaml), else the leaderboard's reference;
- a reward model by its score r(x, y) (alignkit/rewards/scoring.py).

The accuracy counts a tie half; the expected calibration error reads P(chosen > rejected) =
sigma(r_chosen - r_rejected) (alignkit/rewards/calibration.py). Listwise and scored files become pairs.
A policy scored against itself has reward 0 everywhere: accuracy 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError
from .base import Context, Metric, Subject, Task, data_file


@dataclass(frozen=True)
class PreferencesConfig:
    data: str = ""  # held-out labelled pairs (JSONL/JSON/Parquet/CSV, TRL formats); "" = the leaderboard's held-out split of its training data
    limit: int = 0  # score only the first N pairs; 0 = all
    beta: float = 0.0  # beta of a policy's implicit reward; 0 = the policy's training beta (else 0.1); accuracy does not depend on it

    def __post_init__(self):
        if self.limit < 0:
            raise ValueError(f"limit: must be >= 0, got {self.limit}")
        if self.beta < 0:
            raise ValueError(f"beta: must be >= 0, got {self.beta}")


def _items(cfg: PreferencesConfig, ctx: Context) -> list:
    from ...data.readers import read_records
    from ...rewards.evaluate import as_pairs
    path = data_file(cfg.data or ctx.heldout, "preferences", "--task-option preferences.data")
    records, _ = read_records(path, limit=cfg.limit or None)
    return as_pairs(records, str(path))


def judge_for(subject: Subject, ctx: Context, beta: float = 0.0):
    """The subject's reward: its score (reward model) or implicit reward (policy)."""
    if subject.kind == "reward":
        from ...rewards.scoring import RewardModelJudge
        return RewardModelJudge(subject.path)
    from ...rewards.implicit import ImplicitRewardJudge, training_config
    trained = training_config(subject.path)
    ref = subject.ref or trained.get("ref") or trained.get("model") or ""
    if not subject.ref and ctx.reference and not (ref and Path(ref).is_dir()):  # none named, or a folder since moved
        ref = ctx.reference
    if not ref:
        raise ConfigError(f"{subject.path}: the implicit reward needs a reference model; the folder's "
                          "config.yaml names none: pass --reference DIR")
    return ImplicitRewardJudge(subject.path, ref, beta or None)


def _score(subject: Subject, pairs: list, cfg: PreferencesConfig, ctx: Context) -> dict:
    from ...rewards.evaluate import preference_report
    rep = preference_report(judge_for(subject, ctx, cfg.beta), pairs)
    return {"accuracy": rep["accuracy"], "ece": rep["ece"], "ties": rep["ties"], "n": rep["pairs"]}


TASK = Task(
    name="preferences",
    description="held-out preference accuracy: implicit reward (policies) or score (reward models) of chosen "
                "vs rejected, ties half",
    paper="Rafailov et al. 2023, arXiv 2305.18290, eq. 5 (implicit reward); Bradley-Terry reward models",
    config=PreferencesConfig,
    metrics=(Metric("accuracy", "pref. accuracy", True, chart=True), Metric("ece", "pref. ECE", False)),
    primary="accuracy",
    items=_items,
    score=_score,
    subjects=("policy", "reward"),
)
