"""The reward-model methods of `alignkit train`: rm (Bradley-Terry), rm-pointwise, rm-listwise.

Each reads its data with the run's seeded train/dev split (TrainConfig.eval_fraction, or eval_data),
trains with alignkit/rewards/train.py and reports held-out metrics at the start and the end."""
from __future__ import annotations

from ..train.api import Recipe, load_split, register_recipe
from .train import (ListTask, ListwiseRMConfig, PairTask, PointTask, PointwiseRMConfig, RMConfig,
                    train_reward_model)


def _runner(task_cls):
    def run(cfg, mcfg, model_path: str, data, output: str, log=print) -> dict:
        task = task_cls(mcfg)
        train, ev = load_split(data, cfg, task.feedback, log)
        return train_reward_model(task, cfg, model_path, train, ev, output, log)
    run.__name__ = f"run_{task_cls.name.replace('-', '_')}"
    return run


register_recipe(Recipe(
    "rm", _runner(PairTask), RMConfig, "pairwise",
    "Ouyang et al. 2022, arXiv 2203.02155 (margin: Touvron et al. 2023, arXiv 2307.09288)",
    theme="reward model", reference=False,
    description="Bradley-Terry reward model, optional Llama 2 margin and reward centring"))
register_recipe(Recipe(
    "rm-pointwise", _runner(PointTask), PointwiseRMConfig, "scored",
    "pointwise regression on scalar labels (e.g. SteerLM, Dong et al. 2023, arXiv 2310.05344)",
    theme="reward model", reference=False, description="reward model regressed on scalar scores"))
register_recipe(Recipe(
    "rm-listwise", _runner(ListTask), ListwiseRMConfig, "listwise",
    "Plackett-Luce ranking likelihood (Zhu et al. 2023, arXiv 2301.11270)",
    theme="reward model", reference=False, description="reward model fit to whole rankings (Plackett-Luce)"))
