"""docs/results/paft.md: sequential SFT -> DPO, ORPO from the pre-trained base, and PAFT (L1 penalty off, on the
SFT delta as in the paper, on the preference delta as in issue 18; each merge method) on the bundled task, and
(--sweep) the L1 penalty's lambda on either delta.

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/scripts/paft.py SEED [OUT] [--sweep] [--num-threads 1]

(default OUT: runs/paft). Each arm is the library call `alignkit train ...` makes (the CLI flags are in paft.md); a
finished arm is kept, so a rerun only does what is missing (e.g. --sweep after a run without it). Writes
OUT/seed-SEED/results.json (with the world's hash and the load average when each arm finished training) and prints
the table; docs/results/scripts/paft_table.py summarises several seeds.
"""
import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from alignkit.registry import run_train
from alignkit.synthetic.base import WorldConfig, base_dir, build_base
from alignkit.synthetic.evaluate import EVAL_SAMPLING, evaluate_policy
from alignkit.synthetic.export import export_world
from alignkit.synthetic.labelers import LabelerConfig

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("seed", type=int, nargs="?", default=0)
ap.add_argument("out", nargs="?", default="runs/paft")
ap.add_argument("--sweep", action="store_true", help="also the L1 lambda sweep (ties and task_arithmetic merges)")
ap.add_argument("--num-threads", type=int, default=1, help="torch threads of every run and evaluation")
args = ap.parse_args()
SEED, OUT, THREADS = args.seed, Path(args.out) / f"seed-{args.seed}", args.num_threads
LAMBDA = 1e-3  # the L1 penalty's lambda (PAFT arms with the penalty)
SWEEP = {"sft": (1e-5, 3e-5, 1e-4, 3e-4), "pref": (1e-4, 3e-4, 3e-3)}  # --sweep: the other lambdas (1e-3 is above)
SWEEP_MERGES = ("ties", "task_arithmetic")
EVAL_PROMPTS, NLL_DEMOS = 200, 200
torch.set_num_threads(THREADS)
quiet = lambda *a, **k: None  # noqa: E731

SFT = build_base(log=quiet)  # the bundled task's SFT model (pre-training, then SFT); cached
WORLD = base_dir(WorldConfig())
PRE = WORLD / "pretrained"  # the pre-training stage's output: the "pre-trained base" of PAFT
if not (PRE / "config.json").is_file():  # the shipped base model carries the SFT stage only
    raise SystemExit(f"{PRE} is missing: the shipped base model has no pre-training stage; "
                     "`alignkit world base --force` builds both stages into the cache (about 20 minutes on 1 thread)")
data = OUT / "data"
if not (data / "pairwise.jsonl").is_file():  # 400 training prompts x 4 samples of the SFT model, best vs worst
    export_world(str(data), n_prompts=400, k=4, source="base", labeler=LabelerConfig(temperature=0.3, seed=SEED),
                 seed=SEED, progress=False, log=quiet)
DEMOS, PAIRS = str(data / "sft.jsonl"), str(data / "pairwise.jsonl")  # the 3000 demonstrations the base was SFT'd on

COMMON = dict(seed=SEED, num_threads=THREADS, progress=False, max_length=128, lr_scheduler="cosine", warmup_ratio=0.1)
SFT_RUN = dict(COMMON, learning_rate=1e-3, epochs=1, batch_size=32, eval_fraction=0.05)  # the base's SFT recipe
DPO_RUN = dict(COMMON, learning_rate=2e-4, epochs=2, batch_size=16, eval_fraction=0.1, beta=0.3)  # the quickstart's
PAFT = dict(DPO_RUN, sft_data=DEMOS, sft_learning_rate=1e-3, sft_epochs=1, delta_threshold=1e-4)
LOADS = OUT / "loads.json"  # arm -> the 1/5/15-minute load averages when its training finished
loads = json.loads(LOADS.read_text()) if LOADS.is_file() else {}


def arm(name, method, model, data, opts):
    """Train once (a finished arm is kept); -> (folder, seconds)."""
    out = OUT / name
    if not (out / "summary.json").is_file():
        t = time.time()
        s = run_train(method, str(model), data, str(out), opts, log=quiet)
        assert not s.get("interrupted")
        (OUT / f"{name}.seconds").write_text(f"{time.time() - t:.1f}")
        loads[name] = [round(x, 2) for x in os.getloadavg()]
        LOADS.write_text(json.dumps(loads, indent=1))
    return out, float((OUT / f"{name}.seconds").read_text())


def linked(name, stages_from):
    """OUT/name with the stage folders of finished runs linked in ({stage: run folder}): --resume reuses them."""
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    for stage, src in stages_from.items():
        if not (out / stage).exists():
            (out / stage).symlink_to((src / stage).resolve())
    return out


arms = {}
sft, t1 = arm("seq_sft", "sft", PRE, DEMOS, SFT_RUN)
dpo, t2 = arm("seq_dpo", "dpo", sft, PAIRS, DPO_RUN)
arms["SFT -> DPO"] = (dpo, t1 + t2)
arms["SFT only (from PRE)"] = (sft, t1)
arms["ORPO from PRE"] = arm("orpo", "orpo", PRE, PAIRS, dict(COMMON, learning_rate=1e-3, epochs=2, batch_size=16,
                                                               eval_fraction=0.1))
for tag, extra in (("no L1", {}), ("L1 on SFT", {"sft_l1_delta": LAMBDA}), ("L1 on pref", {"pref_l1_delta": LAMBDA})):
    key = {"no L1": "nol1", "L1 on SFT": "l1sft", "L1 on pref": "l1pref"}[tag]
    first, t = arm(f"paft_{key}_ties", "paft", PRE, PAIRS, dict(PAFT, merge="ties", **extra))
    arms[f"PAFT {tag}, ties"] = (first, t)
    for m in ("task_arithmetic", "dare_ties", "dare_linear", "linear"):  # the same two runs, merged otherwise
        out = linked(f"paft_{key}_{m}", {"sft": first, "pref": first})
        folder, _ = arm(out.name, "paft", PRE, PAIRS, dict(PAFT, merge=m, resume=True, **extra))
        arms[f"PAFT {tag}, {m}"] = (folder, t)  # training time: the two runs, once; the merge is in the summary

if args.sweep:  # the penalised run is trained; the other one is the "no L1" arm's, linked (it is the same run)
    nol1 = OUT / "paft_nol1_ties"
    for place, lams in SWEEP.items():
        other = "pref" if place == "sft" else "sft"
        for lam in lams:
            first = None
            for m in SWEEP_MERGES:
                name = f"sweep_{place}_{lam:g}_{m}"
                out = linked(name, {other: nol1} if first is None else {"sft": first, "pref": first})
                folder, _ = arm(name, "paft", PRE, PAIRS, dict(PAFT, merge=m, resume=True, **{f"{place}_l1_delta": lam}))
                first = first or folder
                s = json.loads((folder / "summary.json").read_text())["seconds"]
                arms[f"L1 on {place} {lam:g}, {m}"] = (folder, s["sft"] + s["pref"])

rows = {}
sampling = dataclasses.replace(EVAL_SAMPLING, batch_size=128)
for name, (folder, seconds) in {"pre-trained base": (PRE, 0.0), "bundled SFT model": (SFT, 0.0), **arms}.items():
    f = OUT / f"eval-{Path(folder).name}.json"
    if not f.is_file():
        f.write_text(json.dumps(evaluate_policy(str(folder), baseline=str(SFT), n_prompts=EVAL_PROMPTS, seed=SEED,
                                                sampling=sampling, nll_demos=NLL_DEMOS, log=quiet)))
    ev = json.loads(f.read_text())
    summ = json.loads((Path(folder) / "summary.json").read_text()) if (Path(folder) / "summary.json").is_file() else {}
    p = ev["policy"]
    rows[name] = {"accuracy": p["accuracy"], "demo_nll": p["demo_nll"], "r*": p["mean_reward"],
                  "win_rate": ev["win_rate"]["win_rate"], "harmless": p["harmlessness"],
                  "over_refusal": p["over_refusal"], "kl_to_sft": p.get("kl_to_ref"),
                  "train_seconds": seconds, "merge_seconds": summ.get("seconds", {}).get("merge"),
                  "parallel_seconds": summ.get("seconds", {}).get("parallel_wall_clock"),
                  "sparsity": summ.get("deltas"), "load": loads.get(Path(folder).name)}
(OUT / "results.json").write_text(json.dumps({"world": WORLD.name, "seed": SEED, "rows": rows}, indent=1))
cols = ("accuracy", "demo_nll", "r*", "win_rate", "harmless", "over_refusal", "kl_to_sft", "train_seconds")
print("| arm | " + " | ".join(cols) + " | delta sparsity sft / pref |")
print("|---" * (len(cols) + 2) + "|")
for name, r in rows.items():
    sp = r["sparsity"]
    sp = f"{sp['sft']['sparsity']:.3f} / {sp['pref']['sparsity']:.3f}" if sp else "-"
    print(f"| {name} | " + " | ".join("-" if r[c] is None else f"{r[c]:.3f}" if c != "train_seconds" else
                                      f"{r[c]:.0f}" for c in cols) + f" | {sp} |")
