"""Tables of docs/results/smollm2.md from a run of smollm2_policy.sh (judge and policy parts).

    .venv/bin/python docs/results/scripts/smollm2_report.py --runs runs/smollm2_policy
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def fmt(r: dict) -> str:
    lo, hi = (max(0.0, v) for v in r["ci95"])  # Wilson's lower end can print as -0.00
    return f"{r['rate']:.2f} [{lo:.2f}, {hi:.2f}]"


def judge_table(res: dict) -> list:
    rows = ["| set (labels), part | n | labelled shown first | labelled shown second | one random order | "
            "swap-and-average | \"first\" verdicts | mean P(first) | flips under swap | s / judgment |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    names = {"alpaca_eval": "AlpacaEval (GPT-4)", "hh": "HH harmless-base (human)"}
    for key, r in res.items():
        if key == "config" or "agreement_labelled_first" not in r:
            continue
        s, part = key.split("/")
        rows.append(f"| {names[s]}, {part} | {r['n_pairs']} | {fmt(r['agreement_labelled_first'])} | "
                    f"{fmt(r['agreement_labelled_second'])} | {fmt(r['agreement_one_random_order'])} | "
                    f"{fmt(r['agreement_swap_averaged'])} | {fmt(r['first_verdict_share'])} | {r['mean_p_first']:.3f} | "
                    f"{fmt(r['flips_under_swap'])} | {r['seconds_per_judgment']} |")
    return rows


def policy_table(runs: Path, board_glob: str = "board*") -> list:
    """One row per model of every leaderboard under `runs` matching board_glob (a model in several: the last)."""
    metrics = {}
    for p in sorted(runs.glob(f"{board_glob}/leaderboard.json")):
        for label, tasks in json.loads(p.read_text())["table"].items():
            for task in tasks.values():
                for k, v in (task.get("metrics") or {}).items():
                    metrics.setdefault(label, {})[k] = v["mean"] if isinstance(v, dict) else v
    times = {}
    tsv = runs / "times.tsv"
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            name, secs, _ = line.split("\t")
            times[name] = secs
    rows = ["| model | held-out pref. acc. / AUC | XSTest unsafe refused | XSTest safe refused | XSTest mean | "
            "TruthfulQA MC1 | MC2 | steps x batch | train s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, m in metrics.items():
        key = label.replace("-", "_")
        acc = "0.50 (policy = reference)" if label == "base" else "-"
        log = runs / f"eval_{key}.log"
        if log.exists():
            text = log.read_text()
            j = json.loads(text[text.index("{"):])
            acc = (f"acc {j['accuracy']:.2f} (n={j['pairs']})" if "accuracy" in j
                   else f"AUC {j['auc']:.2f} (n={j['responses']})")
        summ = runs / key / "summary.json"
        steps = f"{json.loads(summ.read_text())['steps']} x 4" if summ.exists() else "-"

        def g(k):
            v = m.get(k)
            return "-" if v is None else f"{v:.2f}"
        rows.append(f"| {label} | {acc} | {g('refusal_unsafe')} | {g('over_refusal')} | {g('xstest')} | "
                    f"{g('mc1')} | {g('mc2')} | {steps} | {times.get(key, '-')} |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    args = ap.parse_args()
    runs = Path(args.runs)
    for jr in sorted(runs.glob("judge*/results.json")):
        print(f"{jr.parent.name}:", "\n".join(judge_table(json.loads(jr.read_text()))), "", sep="\n")
    print("small subsets (XSTest 20, TruthfulQA 20):", "\n".join(policy_table(runs, "board")),
          "\n".join(policy_table(runs, "board_kto*")), "", sep="\n")
    if (runs / "board100").exists():
        print("XSTest 100, TruthfulQA 100:", "\n".join(policy_table(runs, "board100")), sep="\n")


if __name__ == "__main__":
    main()
