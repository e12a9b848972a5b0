"""Training curves of one or more runs from their metrics.jsonl, one panel per metric, runs overlaid.

`alignkit eval curves runs/dpo runs/simpo --output cmp.png` draws, for each metric the runs logged:
training steps as a thin line (a running mean over --smooth steps, since one micro-batch is noisy) and
held-out evaluations as markers. The default panels are the ones that diagnose preference training:
loss, implicit-reward accuracy and margin, the policy's log-probs of chosen and rejected (both falling
is likelihood displacement) and their lengths (length drift), plus the RL loop's reward and KL.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, DataError

DEFAULT_METRICS = ("loss", "rewards/accuracy", "rewards/margin", "logps/chosen", "logps/rejected",
                   "length/chosen", "length/rejected", "logps", "length", "nll", "reward", "kl", "true_reward")


def read_metrics(run) -> tuple:
    """(train rows, eval rows) of a run folder's metrics.jsonl. A line cut short by a killed run is skipped."""
    path = Path(run) / "metrics.jsonl" if Path(run).is_dir() else Path(run)
    if not path.is_file():
        raise DataError(str(path), None, None, "no such file (a run folder written by `alignkit train` holds metrics.jsonl)")
    train, ev = [], []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "step" in row:
            (ev if row.get("split") == "eval" else train).append(row)
    return train, ev


def running_mean(values: list, n: int) -> list:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def plot_curves(runs: list, png_path, metrics=None, smooth: int = 10, labels=None) -> Path:
    """Draw `metrics` (default: those of DEFAULT_METRICS any run logged) for every run into png_path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    data = [read_metrics(r) for r in runs]
    labels = labels or [Path(r).name or str(r) for r in runs]
    logged = {k for train, ev in data for row in train + ev for k, v in row.items() if isinstance(v, (int, float))}
    if metrics:
        missing = [m for m in metrics if m not in logged]
        if missing:
            raise ConfigError(f"--metrics: no run logged {', '.join(missing)}; logged: {', '.join(sorted(logged - {'step', 'time'}))}")
    else:
        metrics = [m for m in DEFAULT_METRICS if m in logged]
    if not metrics:
        raise DataError(", ".join(map(str, runs)), None, None, "no metric to plot (an empty metrics.jsonl?)")
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), dpi=100, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes.flat, metrics):
        for i, ((train, ev), label) in enumerate(zip(data, labels)):
            c = colors[i % len(colors)]
            pts = [(r["step"], r[metric]) for r in train if isinstance(r.get(metric), (int, float))]
            if pts:
                ax.plot([s for s, _ in pts], running_mean([v for _, v in pts], max(1, smooth)), color=c, lw=1,
                        alpha=0.8, label=f"{label} (train)")
            epts = [(r["step"], r[metric]) for r in ev if isinstance(r.get(metric), (int, float))]
            if epts:
                ax.plot([s for s, _ in epts], [v for _, v in epts], color=c, marker="o", ms=4, ls="--", lw=1,
                        label=f"{label} (held out)")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    for ax in list(axes.flat)[1:len(metrics)]:  # a metric only some runs logged: collect every label once
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="lower center", ncol=min(4, len(names)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * ((len(names) - 1) // 4), 1, 1))
    fig.savefig(png_path)
    plt.close(fig)
    return Path(png_path)
