"""The reward-model methods of `alignkit train`: rm (Bradley-Terry), rm-pointwise, rm-listwise.

Each reads its data with the run's seeded train/dev split (TrainConfig.eval_fraction, or eval_data),
trains with alignkit/rewards/train.py and reports held-out metrics at the start and the end."""
from __future__ import annotations

from ..method import Method
from ..train.run import Job, load_split
from .train import (ListTask, ListwiseRMConfig, PairTask, PointTask, PointwiseRMConfig, RMConfig,
                    train_reward_model)


def _runner(task_cls):
    def run(job: Job) -> dict:
        task = task_cls(job.method_cfg)
        train, ev = load_split(job.data, job.cfg, task.shape.feedback, job.log)
        return train_reward_model(task, job.cfg, job.model, train, ev, job.output, job.log, record=job.record())
    run.__name__ = f"run_{task_cls.name.replace('-', '_')}"
    return run


REWARD_METHODS = [
    Method("rm", None, RMConfig, "pairwise",
           "Ouyang et al. 2022, arXiv 2203.02155 (margin: Touvron et al. 2023, arXiv 2307.09288)",
           theme="reward model", reference=False, run=_runner(PairTask),
           description="Bradley-Terry reward model, optional Llama 2 margin and reward centring"),
    Method("rm-pointwise", None, PointwiseRMConfig, "scored",
           "pointwise regression on scalar labels (e.g. SteerLM, Dong et al. 2023, arXiv 2310.05344)",
           theme="reward model", reference=False, run=_runner(PointTask),
           description="reward model regressed on scalar scores"),
    Method("rm-listwise", None, ListwiseRMConfig, "listwise",
           "Plackett-Luce ranking likelihood (Zhu et al. 2023, arXiv 2301.11270)",
           theme="reward model", reference=False, run=_runner(ListTask),
           description="reward model fit to whole rankings (Plackett-Luce)"),
]
