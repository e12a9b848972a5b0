"""The reward-vs-KL curve of a run (the DPO paper's frontier plot: Rafailov et al. 2023, arXiv 2305.18290,
sec. 6.1, Fig. 2 left), from metrics.jsonl.

x = sequence KL(pi || pi_ref) of each iteration's samples (k1, nats), y = mean judge reward; points
coloured by iteration, held-out evaluations as larger markers (and, when the run has an evaluation
judge such as r*, its held-out score as diamonds). A reference-free run has no KL, so its
plot is reward against iteration instead.
"""
from __future__ import annotations

import json
from pathlib import Path


def _rows(metrics_path: Path) -> tuple:
    train, ev = [], []
    for line in Path(metrics_path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        (ev if row.get("split") == "eval" else train).append(row)
    return train, ev


def plot_reward_vs_kl(metrics_path, png_path, title: str = "") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train, ev = _rows(metrics_path)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    have_kl = any("kl" in r for r in train + ev)
    xkey = "kl" if have_kl else "step"
    pts = [r for r in train if "reward" in r and xkey in r]
    if pts:
        sc = ax.scatter([r[xkey] for r in pts], [r["reward"] for r in pts], c=[r["step"] for r in pts],
                        cmap="viridis", s=16, label="training samples")
        ax.plot([r[xkey] for r in pts], [r["reward"] for r in pts], color="grey", lw=0.5, alpha=0.6)
        fig.colorbar(sc, ax=ax, label="iteration")
    epts = [r for r in ev if "reward" in r and xkey in r]
    if epts:
        ax.scatter([r[xkey] for r in epts], [r["reward"] for r in epts], marker="*", s=160, color="crimson",
                   edgecolor="black", label="held-out evaluation", zorder=3)
        for r in epts:
            ax.annotate(f"it {r['step']}", (r[xkey], r["reward"]), textcoords="offset points", xytext=(6, 4),
                        fontsize=8)
    tpts = [r for r in ev if "true_reward" in r and xkey in r and r.get("true_reward") != r.get("reward")]
    if tpts:  # the evaluation judge (e.g. r*) when it differs from the training reward
        ax.scatter([r[xkey] for r in tpts], [r["true_reward"] for r in tpts], marker="D", s=70, color="orange",
                   edgecolor="black", label="held-out true reward (eval judge)", zorder=3)
    ax.set_xlabel("KL(policy || reference), nats per sequence" if have_kl else "iteration")
    ax.set_ylabel("mean reward (judge)")
    ax.set_title(f"{title} reward vs KL" if have_kl else f"{title} reward (reference-free run)")
    ax.grid(alpha=0.3)
    if pts or epts or tpts:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
