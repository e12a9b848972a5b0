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


def policy_table(runs: Path) -> list:
    boards = [json.loads(p.read_text()) for p in sorted(runs.glob("board*/leaderboard.json"))]
    prefs = {p.stem[len("eval_"):]: p for p in runs.glob("eval_*.log")}
    rows = ["| model | held-out pref. acc. | XSTest unsafe refused | XSTest safe refused | XSTest mean | "
            "TruthfulQA MC1 | MC2 | train steps x batch | train wall s |",
            "|---|---|---|---|---|---|---|---|---|"]
    times = {}
    tsv = runs / "times.tsv"
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            name, secs, _ = line.split("\t")
            times[name] = secs
    for board in boards:
        for cell in board.get("rows", board.get("models", [])):
            label = cell.get("label") or cell.get("model")
            m = cell.get("metrics", cell)
            key = label.replace("-", "_")
            acc = "0.50 (by construction)" if label == "base" else "-"
            if key in prefs:
                text = prefs[key].read_text()
                j = json.loads(text[text.index("{"):])
                acc = f"{j['accuracy']:.2f} (n={j['pairs']})"
            summ = runs / key / "summary.json"
            steps = json.loads(summ.read_text())["steps"] if summ.exists() else "-"

            def g(k):
                v = m.get(k)
                return "-" if v is None else f"{v:.2f}"
            rows.append(f"| {label} | {acc} | {g('refusal_unsafe')} | {g('over_refusal')} | {g('xstest')} | "
                        f"{g('mc1')} | {g('mc2')} | {steps}{' x 4' if steps != '-' else ''} | {times.get(key, '-')} |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    args = ap.parse_args()
    runs = Path(args.runs)
    jr = runs / "judge" / "results.json"
    if jr.exists():
        print("\n".join(judge_table(json.loads(jr.read_text()))), "\n")
    print("\n".join(policy_table(runs)))


if __name__ == "__main__":
    main()
