"""docs/results/nash.md's table across seeds: one nash_eval.py output per training seed (each seed's methods
against each other and the base on the same 400 held-out prompts), reduced to mean and range per method.

    .venv/bin/python docs/results/scripts/nash_seeds_table.py runs/nash/eval_seed0_fixed.json \
        runs/nash/eval_seed1_fixed.json runs/nash/eval_seed2_fixed.json [--models dpo,iterdpo,sppo,dno,nashmd]

The worst-case population win rate (the Nash criterion) of a method is taken within its seed, against the base
and the other listed methods (models outside --models, e.g. an extra variant in one seed's file, are left out).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAMES = {"dpo": "dpo", "iterdpo": "iterative-dpo", "sppo": "sppo", "dno": "dno", "nashmd": "nash-md"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("evals", nargs="+")
    ap.add_argument("--models", default="dpo,iterdpo,sppo,dno,nashmd")
    a = ap.parse_args()
    models = a.models.split(",")
    runs = [json.loads(Path(f).read_text()) for f in a.evals]
    rows = {m: {"r*": [], "pop_vs_base": [], "kl": [], "harmless": [], "worst": [], "against": []} for m in models}
    for res in runs:
        pop, pm = res["population_win_rate"], res["per_model"]
        for m in models:
            others = ["base"] + [o for o in models if o != m]
            worst = min(others, key=lambda o: pop[m][o])
            r = rows[m]
            r["r*"].append(pm[m]["mean_reward"])
            r["pop_vs_base"].append(pop[m]["base"])
            r["kl"].append(pm[m]["kl_to_base"])
            r["harmless"].append(pm[m]["harmlessness"])
            r["worst"].append(pop[m][worst])
            r["against"].append(NAMES.get(worst, worst))

    def f(v):
        return f"{sum(v) / len(v):.3f} [{min(v):.3f}, {max(v):.3f}]"
    print(f"mean [min, max] over {len(runs)} seeds\n")
    print("| method | r* | pop. win rate vs base | KL to base | harmless | worst-case pop. win rate (Nash criterion) | "
          "worst against (per seed) |")
    print("|---|---|---|---|---|---|---|")
    for m in models:
        r = rows[m]
        print(f"| {NAMES.get(m, m)} | {f(r['r*'])} | {f(r['pop_vs_base'])} | {f(r['kl'])} | {f(r['harmless'])} | "
              f"{f(r['worst'])} | {' / '.join(r['against'])} |")


if __name__ == "__main__":
    main()
