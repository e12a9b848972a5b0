"""docs/results/paft.md's tables from docs/results/scripts/paft.py's results over several seeds: each figure as
mean +- sample standard deviation over the seeds (n given when a row lacks some seed).

    .venv/bin/python docs/results/scripts/paft_table.py [OUT] [--seeds 0 1 2]     (default OUT: runs/paft)
"""
import argparse
import json
import statistics
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("out", nargs="?", default="runs/paft")
ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
args = ap.parse_args()

runs = {}
for s in args.seeds:
    f = Path(args.out) / f"seed-{s}" / "results.json"
    if f.is_file():
        r = json.loads(f.read_text())
        runs[s] = r
worlds = sorted({r["world"] for r in runs.values()})
print(f"seeds {sorted(runs)}; world {', '.join(worlds)}")


REF = "SFT -> DPO"  # the paired columns compare each arm with it on the same seed (same evaluation prompts)


def value(r, name, key):
    """A row's figure; key "time/ref": its training seconds over SFT -> DPO's (same seed, so about the same load);
    key "d:K": figure K minus SFT -> DPO's."""
    rows = r["rows"]
    if name not in rows:
        return None
    if key == "time/ref":
        return rows[name]["train_seconds"] / rows[REF]["train_seconds"] if rows[name]["train_seconds"] else None
    if key.startswith("d:"):
        a, b = rows[name][key[2:]], rows[REF][key[2:]]
        return None if a is None or b is None else a - b
    return rows[name][key]


def stat(name, key, fmt=".3f"):
    xs = [x for x in (value(r, name, key) for r in runs.values()) if x is not None]
    if not xs:
        return "-"
    m = statistics.mean(xs)
    sd = f" ± {statistics.stdev(xs):{fmt}}" if len(xs) > 1 else ""
    n = "" if len(xs) == len(runs) else f" (n={len(xs)})"
    return f"{m:{'+' if key.startswith('d:') else ''}{fmt}}{sd}{n}"


def sparsity(name, which):
    xs = [r["rows"][name]["sparsity"][which]["sparsity"] for r in runs.values()
          if name in r["rows"] and r["rows"][name]["sparsity"]]
    return f"{statistics.mean(xs):.3f}" if xs else "-"


names = list(dict.fromkeys(n for r in runs.values() for n in r["rows"]))
main = [n for n in names if not n.startswith("L1 on ")]
sweep = [n for n in names if n.startswith("L1 on ")]
cols = (("accuracy", "accuracy"), ("demo NLL", "demo_nll"), ("r*", "r*"), ("win rate", "win_rate"),
        ("harmless", "harmless"), ("over-refusal", "over_refusal"), ("KL to SFT", "kl_to_sft"))
print("\n| arm | " + " | ".join(c for c, _ in cols) + " | train s | ÷ SFT -> DPO's | PAFT parallel s | delta sparsity sft / pref |")
print("|---" * (len(cols) + 5) + "|")
for n in main:
    print(f"| {n} | " + " | ".join(stat(n, k) for _, k in cols) + f" | {stat(n, 'train_seconds', '.0f')} | "
          f"{stat(n, 'time/ref', '.2f')} | {stat(n, 'parallel_seconds', '.0f')} | {sparsity(n, 'sft')} / {sparsity(n, 'pref')} |")

paired = ("accuracy", "demo_nll", "r*", "win_rate", "harmless")
print(f"\n| arm, minus {REF} on the same seed | " + " | ".join(paired) + " |")
print("|---" * (len(paired) + 1) + "|")
for n in main:
    if n != REF:
        print(f"| {n} | " + " | ".join(stat(n, "d:" + k) for k in paired) + " |")

if sweep:
    def key(n):  # "L1 on PLACE LAMBDA, MERGE" -> (place, merge, lambda)
        head, merge = n.split(", ")
        _, _, place, lam = head.split()
        return place, merge, float(lam)
    # lambda 1e-3 is the main table's "PAFT L1 on SFT/pref" arm, lambda 0 its "PAFT no L1" arm
    main_arm = {f"L1 on {p} 0.001, {m}": f"PAFT L1 on {'SFT' if p == 'sft' else 'pref'}, {m}"
                for p in ("sft", "pref") for m in ("ties", "task_arithmetic")}
    main_arm.update({f"L1 on {p} 0, {m}": f"PAFT no L1, {m}" for p in ("sft", "pref") for m in ("ties", "task_arithmetic")})
    print("\n| L1 on | lambda | merge | sparsity of the penalised delta | accuracy | demo NLL | r* | win rate "
          "| harmless | train s |")
    print("|---" * 10 + "|")
    for n in sorted(set(sweep) | set(main_arm), key=key):
        place, merge, lam = key(n)
        src = main_arm.get(n, n)
        print(f"| {place} | {lam:g} | {merge} | {sparsity(src, place)} | " +
              " | ".join(stat(src, k) for k in ("accuracy", "demo_nll", "r*", "win_rate", "harmless")) +
              f" | {stat(src, 'train_seconds', '.0f')} |")
