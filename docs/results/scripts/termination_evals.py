"""docs/results/termination.md: each run's `alignkit eval` (400 held-out prompts, r*) as table rows.

    .venv/bin/python docs/results/scripts/termination_evals.py runs/term/dno_rm_s0 runs/term/sr_s0 ...
"""
import json
import sys

print("| run | r* SFT -> run | win rate vs SFT | harmless | over-refusal | accuracy | KL to SFT | length (tokens) |")
print("|---|---|---|---|---|---|---|---|")
for run in sys.argv[1:]:
    try:
        d = json.load(open(f"{run}.eval.json"))
    except (OSError, json.JSONDecodeError):
        continue
    p, b = d["policy"], d["baseline_metrics"]
    print(f"| {run.split('/')[-1]} | {b['mean_reward']:.3f} -> {p['mean_reward']:.3f} | {d['win_rate']['win_rate']:.3f} | "
          f"{b['harmlessness']:.2f} -> {p['harmlessness']:.2f} | {b['over_refusal']:.2f} -> {p['over_refusal']:.2f} | "
          f"{b['accuracy']:.2f} -> {p['accuracy']:.2f} | {p['kl_to_ref']:.2f} | {p['length_tokens']:.1f} |")
