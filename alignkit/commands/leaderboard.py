"""`alignkit leaderboard`: models side by side on evaluation tasks, or methods trained and then scored.

    alignkit leaderboard --models A,B,... --tasks bundled,xstest,truthfulqa --output DIR
    alignkit leaderboard --methods dpo,kto,... [--model SFT --data pairs.jsonl] --seeds 0,1,2 --output DIR
    alignkit leaderboard --preset sft-vs-base|ppo-vs-dpo --output DIR

Writes DIR/leaderboard.md, .csv, .json and report.html (alignkit/leaderboard); a rerun resumes.
"""
from __future__ import annotations

from ..leaderboard.config import LeaderboardConfig
from .common import add_command


def cmd_leaderboard(cfg: LeaderboardConfig) -> int:
    from ..leaderboard import run_leaderboard
    from ..leaderboard.report import markdown
    res = run_leaderboard(cfg)
    print(markdown(res))
    print(f"report: {cfg.output}/report.html (also leaderboard.md, .csv, .json)")
    failed = [c for c in res["cells"] if c["status"] != "ok"]
    if failed:
        print(f"{len(failed)} cell(s) failed; their one-line errors are in the table and under Cells")
    return 0


def register(sub):
    add_command(
        sub, "leaderboard", cmd_leaderboard, LeaderboardConfig,
        help="score models on evaluation tasks (bundled, preferences, truthfulqa, xstest, alpaca_eval), or train "
             "methods and score them; writes a report page",
        description="Score given models (--models) or train methods from one start on one labelled data set "
                    "(--methods; seeds, one label budget and step count; resumable) and score them on evaluation "
                    "tasks: the bundled task under r*, held-out preference accuracy, TruthfulQA (MC1/MC2 or "
                    "judged generations), XSTest (harmlessness and over-refusal) and an AlpacaEval-style win rate "
                    "(raw and length-controlled). Writes leaderboard.md, .csv, .json and a self-contained "
                    "report.html (table with the seed spread, bar charts, the reward-KL frontier of a --sweep, "
                    "training curves, each cell's wall time and peak memory). Presets: sft-vs-base (DPO, IPO, "
                    "KTO, CPO from the SFT model and from the pre-trained one), ppo-vs-dpo (PPO vs iterative "
                    "DPO vs DPO).")
