"""The acceleration table of docs/results/nash.md: for each snapshot (a round of an iterative run, a stage of
nash-md) its population win rate against the base (from nash_eval.py's output), the cost to reach it
(generated answers, preference queries, wall time), and per run the first snapshot at or above a target.

    .venv/bin/python docs/results/scripts/nash_accel_table.py EVAL.json [EVAL2.json ...] runs/nash/study [--target 0.6]

Several nash_eval.py outputs are merged (a later file's snapshot replaces an earlier one of the same name).

Wall time: nash-md stages are timed one by one (STUDY/NAME.wall); an iterative run's rounds end at the
modification times of their round.json, counted from the run's start (its .wall file's time less its length).
The machine was shared (load average 8-13 on 2 cores), so wall times carry that noise.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

# run -> (snapshot names in order, answers generated per snapshot step, preference queries per step, warm-start cost)
K4 = 4 * 3 // 2  # round-robin comparisons among 4 answers
RUNS = {
    "sppo": ([f"sppo_r{i}" for i in (1, 2, 3)], 800, 200 * K4, None),
    "dno": ([f"dno_r{i}" for i in (1, 2, 3)], 800, 200 * K4, None),
    "iterdpo": ([f"iterdpo_r{i}" for i in (1, 2, 3)], 800, 200 * K4, None),
    "sppo_warm": ([f"sppo_warm_r{i}" for i in (1, 2, 3)], 800, 200 * K4, "dpo"),
    "sppo_k8": ([f"sppo_k8_r{i}" for i in (1, 2)], 1200, 150 * 8 * 7 // 2, None),
    "sppo_replay": ([f"sppo_replay_r{i}" for i in (1, 2, 3)], 800, 200 * K4, None),
    "dno_replay": ([f"dno_replay_r{i}" for i in (1, 2, 3)], 800, 200 * K4, None),
    "iterdpo_replay": ([f"iterdpo_replay_r{i}" for i in (1, 2, 3)], 800, 200 * K4, None),
    "nashmd": ([f"nashmd_{n}" for n in (25, 50, 75, 100, 125, 150)], 25 * 8 * 2, 25 * 8, None),
    "nashmd_warm": ([f"nashmd_warm_{n}" for n in (25, 50, 75)], 25 * 8 * 2, 25 * 8, "dpo"),
    "nashmd_k4": ([f"nashmd_k4_{n}" for n in (25, 50, 75)], 25 * 8 * 4 * 2, 25 * 8 * 4, None),
}
DPO_COST = (2400, 596)  # the exported candidates (600 prompts x 4) and the labelled pairs the offline DPO trained on


def run_times(study: Path, run: str, names: list) -> list:
    """Cumulative seconds at each snapshot."""
    if run.startswith("nashmd"):
        total, out = 0.0, []
        for n in names:
            total += float((study / f"{n}.wall").read_text())
            out.append(total)
        return out
    wall = study / f"{run}.wall"
    start = os.path.getmtime(wall) - float(wall.read_text())
    return [os.path.getmtime(study / run / f"round-{i + 1}" / "round.json") - start for i in range(len(names))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_json", nargs="+")
    ap.add_argument("study")
    ap.add_argument("--target", type=float, default=0.6)
    a = ap.parse_args()
    pm, study = {}, Path(a.study)
    for f in a.eval_json:
        pm.update(json.loads(Path(f).read_text())["per_model"])
    dpo_wall = float((study / "dpo.wall").read_text())
    print("| run | snapshot | pop. win rate vs base | r* | KL to base | answers generated | preference queries | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    reach = {}
    for run, (names, answers, queries, warm) in RUNS.items():
        if not all(n in pm for n in names):
            continue
        times = run_times(study, run, names)
        for i, (n, t) in enumerate(zip(names, times)):
            m = pm[n]
            ans, q, w = answers * (i + 1), queries * (i + 1), t
            note = ""
            if warm:
                ans, q, w = ans + DPO_COST[0], q + DPO_COST[1], w + dpo_wall
                note = " (incl. offline DPO)"
            print(f"| {run} | {n} | {m['pop_vs_base']:.3f} | {m['mean_reward']:.3f} | {m['kl_to_base']:.3f} | {ans}{note} | "
                  f"{q} | {w:.0f} |")
            if run not in reach and m["pop_vs_base"] >= a.target:
                reach[run] = (n, i + 1, ans, q, w)
    print(f"\nfirst snapshot at or above a population win rate of {a.target} against the base:\n")
    print("| run | reached at | rounds / stages | answers generated | preference queries | wall (s) |")
    print("|---|---|---|---|---|---|")
    for run in RUNS:
        if not all(n in pm for n in RUNS[run][0]):
            continue
        if run in reach:
            n, i, ans, q, w = reach[run]
            print(f"| {run} | {n} | {i} | {ans} | {q} | {w:.0f} |")
        else:
            print(f"| {run} | not reached | - | - | - | - |")
    print(f"\n(the offline DPO model alone: {pm['dpo']['pop_vs_base']:.3f}, {DPO_COST[0]} answers, {DPO_COST[1]} labels, "
          f"{dpo_wall:.0f} s)")


if __name__ == "__main__":
    main()
