"""Evaluation tasks behind one interface (base.py: Task, Subject, Context), in one registry.

    from alignkit.eval.tasks import get_task
    task = get_task("xstest")

The generic tasks are registered here by static imports, as losses are in losses/registry.py:
held-out preference accuracy (preferences.py), TruthfulQA (truthfulqa.py), XSTest (xstest.py) and an
AlpacaEval-style win rate with length control (alpaca_eval.py). A task plug-in registers its own with
`register_task` (the bundled task: alignkit/synthetic/plugin.py).
"""
from __future__ import annotations

from . import alpaca_eval, preferences, truthfulqa, xstest
from .base import (TASKS, Context, Metric, Subject, Task, TrainingSetup, get_task, register_task, subject_kind,
                   task_config)

for _module in (preferences, truthfulqa, xstest, alpaca_eval):
    register_task(_module.TASK)

__all__ = ["TASKS", "Context", "Metric", "Subject", "Task", "TrainingSetup", "get_task", "register_task",
           "subject_kind", "task_config"]
