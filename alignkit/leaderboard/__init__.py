"""A unified alignment leaderboard: score models on evaluation tasks (alignkit/eval/tasks), or train
methods from one start on one data set and then score them; a self-contained HTML report.

    from alignkit.leaderboard import LeaderboardConfig, run_leaderboard
    run_leaderboard(LeaderboardConfig(output="runs/lb", models=("a=runs/dpo", "b=runs/kto"), tasks=("xstest",)))

The survey's first open problem (Wang et al. 2024, "A Comprehensive Survey of LLM Alignment Techniques",
arXiv 2407.16216): papers evaluate on different tasks; truthfulness and harmlessness tasks should be
combined into one leaderboard. Generic: a task plug-in (the bundled task) reaches it through the task
registry; training goes through alignkit.registry.run_train.
"""
from __future__ import annotations

from .config import PRESETS, LeaderboardConfig, Preset, apply_preset
from .runner import run_leaderboard

__all__ = ["LeaderboardConfig", "PRESETS", "Preset", "apply_preset", "run_leaderboard"]
