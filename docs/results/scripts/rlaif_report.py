"""Tables (markdown, printed) and figures (docs/results/figures/rlaif_*.png) from runs/rlaif/seed*/results.json,
written by docs/results/scripts/rlaif.py.

    .venv/bin/python docs/results/scripts/rlaif_report.py [--runs runs/rlaif] [--figures docs/results/figures]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def fmt(v, nd=3):
    return "-" if v is None else f"{v:.{nd}f}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cell(vals, nd=3):
    """The median, and the per-seed values when there are several."""
    if len(vals) == 1:
        return fmt(vals[0], nd)
    return f"{fmt(med(vals), nd)} ({' / '.join(fmt(v, nd) for v in vals)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/rlaif")
    ap.add_argument("--figures", default="docs/results/figures")
    args = ap.parse_args()
    res = {int(p.parent.name[4:]): json.loads(p.read_text()) for p in sorted(Path(args.runs).glob("seed*/results.json"))}
    seeds = sorted(res)
    print(f"seeds: {seeds}\n")
    R = [res[s] for s in seeds]

    # ---- judge quality ----
    print("| labeller | agreement with r* (one order) | agreement with r* (both orders averaged) | position consistency | P(first shown preferred) |")
    print("|---|---|---|---|---|")
    print(f"| simulated human (BT on r*, T=0.3) | {cell([r['judge']['human_agreement'] for r in R])} | - | - | - |")
    deb = [r["judge"]["judge"]["debiased"] for r in R]
    one = [r["judge"]["judge"]["one_order"] for r in R]
    print(f"| judge LM | {cell([d['agreement_one_order']['rate'] for d in deb])} | {cell([d['agreement']['rate'] for d in deb])} "
          f"| {cell([d['position_consistency']['rate'] for d in deb])} | {cell([d['first_position_preferred'] for d in deb])} |")
    print(f"\npairs: {[r['judge']['pairs'] for r in R]}, with an r* gap: {[r['judge']['pairs_with_r_star_gap'] for r in R]}")
    if all("bias" in r for r in R):
        for s, r in zip(seeds, R):
            b = r["bias"]
            firsts = [(f > 0.5, (1 - bw) > 0.5) for f, bw in zip(b["forward"], b["backward"])]  # first shown preferred?
            inconsistent = [x for x in firsts if x[0] == x[1]]  # the same position wins both orders
            both_first = sum(x[0] for x in inconsistent)
            print(f"seed {s}: {len(inconsistent)} of {len(firsts)} pairs get opposite verdicts in the two orders: the "
                  f"first shown wins both in {both_first}, the second shown in {len(inconsistent) - both_first}")
    hb = [r["judge_build"]["heldout"] for r in R][0]
    print(f"judge build, held-out pairs: {json.dumps(hb)}\n")

    # ---- RLAIF vs RLHF (DPO) ----
    cols = ("win_rate_vs_sft", "mean_reward", "harmlessness", "over_refusal", "accuracy", "rude", "kl_to_ref", "length_tokens")
    head = "| arm | " + " | ".join(cols) + " |"
    if all("dpo" in r for r in R):
        print(head)
        print("|---" * (len(cols) + 1) + "|")
        print("| SFT | - | " + " | ".join(cell([r["dpo"]["sft"][c] for r in R]) for c in cols[1:]) + " |")
        for arm in ("rlhf", "rlaif", "rlaif_one_order"):
            print(f"| DPO {arm} | " + " | ".join(cell([r["dpo"]["arms"][arm][c] for r in R]) for c in cols) + " |")
        print(f"\nRLAIF vs RLHF head to head: {cell([r['dpo']['rlaif_vs_rlhf']['win_rate'] for r in R])} "
              f"({[r['dpo']['rlaif_vs_rlhf'] for r in R]}); one order vs both: "
              f"{cell([r['dpo']['rlaif_one_order_vs_rlaif']['win_rate'] for r in R])}\n")
    if all("rl" in r for r in R):
        print(head)
        print("|---" * (len(cols) + 1) + "|")
        for arm in ("distilled", "direct"):
            print(f"| GRPO {arm} | " + " | ".join(cell([r["rl"]["arms"][arm][c] for r in R]) for c in cols) + " |")
        rm = [r["rl"]["rm"]["eval_end"].get("rewards/accuracy") for r in R]
        print(f"\ndirect vs distilled head to head: {cell([r['rl']['direct_vs_distilled']['win_rate'] for r in R])}; "
              f"reward model held-out accuracy on the AI labels: {cell(rm)}; rollouts {R[0]['rl']['rollouts']}; "
              f"seconds {[ {k: v['seconds'] for k, v in r['rl']['arms'].items()} for r in R]}\n")
    if all("cai" in r for r in R):
        c = [r["cai"] for r in R]
        print("| responses of the revision round | mean r* | harmlessness | over-refusal | accuracy | on topic | rude | words |")
        print("|---|---|---|---|---|---|---|---|")
        for key, name in (("responses_before", "first responses (SFT samples)"), ("responses_after", "after 2 revision rounds")):
            print(f"| {name} | " + " | ".join(cell([x[key][m] for x in c]) for m in
                                              ("mean_reward", "harmlessness", "over_refusal", "accuracy", "on_topic",
                                               "rude", "length_words")) + " |")
        print(f"\ncritique accuracy {cell([x['critique_accuracy'] for x in c])} over {[x['critiques'] for x in c]}; "
              f"revise report {[x['revise'] for x in c]}\n")
        print(head)
        print("|---" * (len(cols) + 1) + "|")
        for arm in ("sl_cai", "rl_cai"):
            print(f"| {arm} | " + " | ".join(cell([x[arm][col] for x in c]) for col in cols) + " |")
        print(f"\nRL-CAI vs SL-CAI: {cell([x['rl_cai_vs_sl_cai']['win_rate'] for x in c])}; preferences: "
              f"{[x['prefs'] for x in c]}\n")
    figures(R, seeds, Path(args.figures))


def figures(R, seeds, folder: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    # 1. position bias and agreement: P(first shown preferred) split by which one r* prefers
    if all("bias" in r for r in R):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        better, worse, deb_right, deb_wrong = [], [], [], []
        for r in R:
            b = r["bias"]
            for f, bw, (sa, sb) in zip(b["forward"], b["backward"], b["r_star"]):
                if sa == sb:
                    continue
                first_a, first_b = f, 1.0 - bw  # P(first shown preferred) with a first, with b first
                (better if sa > sb else worse).append(first_a)
                (better if sb > sa else worse).append(first_b)
                p = (f + bw) / 2  # P(a > b), both orders
                (deb_right if (p > 0.5) == (sa > sb) else deb_wrong).append(max(p, 1 - p))
        bins = [i / 20 for i in range(21)]
        axes[0].hist([better, worse], bins=bins, label=["first shown is r*-better", "first shown is r*-worse"],
                     color=["tab:green", "tab:red"], alpha=0.8)
        axes[0].axvline(0.5, color="k", lw=0.8)
        axes[0].set_xlabel("P(first shown preferred), one order")
        axes[0].set_ylabel("judgments")
        axes[0].legend(fontsize=8)
        axes[0].set_title("judge LM, one order at a time")
        bins = [0.5 + i / 40 for i in range(21)]
        axes[1].hist([deb_right, deb_wrong], bins=bins, label=["agrees with r*", "disagrees"], stacked=True,
                     color=["tab:green", "tab:red"], alpha=0.8)
        axes[1].set_xlabel("confidence max(p, 1-p), both orders averaged")
        axes[1].set_title("after swap-and-average")
        axes[1].legend(fontsize=8)
        fig.suptitle(f"bundled task, pairs of SFT samples with an r* gap (seeds {seeds})", fontsize=9)
        fig.tight_layout()
        fig.savefig(folder / "rlaif_judge.png", dpi=110)
        print(f"wrote {folder / 'rlaif_judge.png'}")
    # 2. win rate vs SFT per arm
    arms = []
    for label, get in (("DPO, human labels", lambda r: r["dpo"]["arms"]["rlhf"]),
                       ("DPO, AI labels", lambda r: r["dpo"]["arms"]["rlaif"]),
                       ("DPO, AI labels (1 order)", lambda r: r["dpo"]["arms"]["rlaif_one_order"]),
                       ("GRPO, distilled (RM)", lambda r: r["rl"]["arms"]["distilled"]),
                       ("GRPO, direct (judge)", lambda r: r["rl"]["arms"]["direct"]),
                       ("SL-CAI (SFT on revisions)", lambda r: r["cai"]["sl_cai"]),
                       ("RL-CAI (DPO on AI prefs)", lambda r: r["cai"]["rl_cai"])):
        try:
            arms.append((label, [get(r)["win_rate_vs_sft"] for r in R]))
        except KeyError:
            continue
    if arms:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        for i, (label, vals) in enumerate(arms):
            ax.bar(i, med(vals), color="tab:blue" if "human" in label else "tab:orange", alpha=0.85)
            ax.scatter([i] * len(vals), vals, color="k", s=10, zorder=3)
        ax.axhline(0.5, color="k", lw=0.8)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels([a for a, _ in arms], rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("win rate vs SFT under r*")
        ax.set_ylim(0.3, 0.85)
        ax.set_title(f"bundled task, 400 held-out prompts (seeds {seeds}; bar = median, dots = seeds)", fontsize=9)
        fig.tight_layout()
        fig.savefig(folder / "rlaif_winrates.png", dpi=110)
        print(f"wrote {folder / 'rlaif_winrates.png'}")


if __name__ == "__main__":
    main()
