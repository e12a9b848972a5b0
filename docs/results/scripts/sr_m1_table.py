"""termination.md's self-rewarding-from-M1 tables, from sr_m1.sh's outputs (runs/term/sr_m1 by default).

    .venv/bin/python docs/results/scripts/sr_m1_table.py [--dir runs/term/sr_m1] [--seeds 0,1,2]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


LABELS = {"m1": "M1 (SFT on IFT + EFT)", "sr": "self-rewarding, 3 rounds from M1",
          "sr_eft": "self-rewarding from M1, EFT every round"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="runs/term/sr_m1")
    ap.add_argument("--seeds", default="0,1,2")
    a = ap.parse_args()
    d, seeds = Path(a.dir), [int(s) for s in a.seeds.split(",")]
    print("against SFT, 400 held-out prompts (alignkit eval):\n")
    print("| seed | model | r* | win rate vs SFT | KL to SFT | harmless | over-refusal | accuracy | length (tokens) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in seeds:
        for m in LABELS:
            f = d / f"{m}_s{s}.eval.json"
            if not f.is_file():
                continue
            e = json.loads(f.read_text())
            p = e["policy"]
            print(f"| {s} | {LABELS[m]} | "
                  f"{p['mean_reward']:.3f} | {e['win_rate']['win_rate']:.3f} | {p['kl_to_ref']:.2f} | "
                  f"{p['harmlessness']:.2f} | {p['over_refusal']:.2f} | {p['accuracy']:.2f} | {p['length_tokens']:.1f} |")
    print("\nper round (200 held-out prompts; agreement: the self-judge vs r* on the round's own samples):\n")
    print("| seed | run | r* by round (M1 -> 3) | KL to M1 by round | self-judge agreement with r*, rounds 1 / 2 / 3 (pairs) |")
    print("|---|---|---|---|---|")
    for s, m in [(s, m) for m in ("sr", "sr_eft") for s in seeds]:
        f = d / f"{m}_s{s}" / "summary.json"
        if not f.is_file():
            continue
        sm = json.loads(f.read_text())
        h, rounds = sm["heldout"], sm["rounds"]
        rstar = " -> ".join(f"{x['eval_reward']:.3f}" for x in h)
        kl = " / ".join(f"{x['kl']:.2f}" for x in h[1:])
        agree = " / ".join(f"{r['judge_agreement']:.3f} ({r['judge_agreement_pairs']})" for r in rounds)
        print(f"| {s} | {LABELS[m]} | {rstar} | {kl} | {agree} |")


if __name__ == "__main__":
    main()
