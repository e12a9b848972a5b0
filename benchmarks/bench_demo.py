"""`make demo`'s time, idle and under load: `alignkit quickstart` as a fresh clone runs it (an empty
cache, so the base model is the shipped one), in a fresh process, timed from start-up to exit.
Not part of the test suite.

    .venv/bin/python benchmarks/bench_demo.py [--rounds 2] [--threads auto,all]

Conditions, alternating within each round:
  idle     nothing added (other users' jobs on a shared machine still count: the load is reported)
  loaded   one competing CPU-bound process per core (`while True: pass`), started before the run and
           stopped after it
Thread policies:
  auto     alignkit's choice: the cores free at each stage (alignkit/models/threads.py)
  all      torch's default, one thread per core whatever the load (the behaviour before issue 21)
The goal: the idle run under 3 minutes; the loaded one at most 3x the idle one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ALL_CORES = ("import torch, sys; import alignkit.models.threads as t; t.choose_threads = lambda: t._CAP; "
             "from alignkit.cli import main; sys.exit(main(sys.argv[1:]))")
AUTO = "import sys; from alignkit.cli import main; sys.exit(main(sys.argv[1:]))"


def run(policy: str, loaded: bool) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="alignkit-demo-cache-"))
    out = common.WORK / f"demo-{policy}-{'loaded' if loaded else 'idle'}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "ALIGNKIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(x for x in (str(common.ROOT), os.environ.get("PYTHONPATH", "")) if x)}
    spinners = []
    if loaded:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
        time.sleep(1.0)
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", ALL_CORES if policy == "all" else AUTO, "quickstart",
                               "--output", str(out), "--no-progress"], capture_output=True, text=True, env=env,
                              cwd=str(common.ROOT), timeout=3600)
    finally:
        wall = time.perf_counter() - t
        for p in spinners:
            p.kill()
            p.wait()
        shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"quickstart failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads((out / "results.json").read_text())
    return {"process_s": wall, "load": (load0 + os.getloadavg()[0]) / 2, "timings_s": res["timings_s"],
            "threads": res.get("threads"), "win_rate": res["win_rate"]["win_rate"],
            "base_model": res["base_model"]}


def main():
    import argparse
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", default="auto,all", help="thread policies to compare: auto, all")
    p.add_argument("--json", default="")
    a = p.parse_args()
    policies = [x for x in a.threads.split(",") if x]
    print(f"machine: {common.machine()}", flush=True)
    runs = {(pol, ld): [] for pol in policies for ld in (False, True)}
    for r in range(a.rounds):
        for (pol, ld) in runs:
            res = run(pol, ld)
            runs[(pol, ld)].append(res)
            print(f"round {r + 1} {pol:4s} {'loaded' if ld else 'idle':6s}: {res['process_s']:.1f} s whole process "
                  f"(stages {res['timings_s']}, threads {res['threads']}), win rate {res['win_rate']:.3f}, "
                  f"load {res['load']:.1f}", flush=True)
    summary = {"benchmark": "demo", "machine": common.machine(), "rounds": a.rounds}
    for (pol, ld), rs in runs.items():
        key = f"{pol}-{'loaded' if ld else 'idle'}"
        summary[key] = {"process_s": common.median([x["process_s"] for x in rs]),
                        "load": common.median([x["load"] for x in rs]), "runs": rs}
    print()
    for pol in policies:
        idle, loaded = summary[f"{pol}-idle"], summary[f"{pol}-loaded"]
        per_round = [b["process_s"] / i["process_s"] for i, b in zip(runs[(pol, False)], runs[(pol, True)])]
        summary[f"{pol}-ratio"] = {"median": loaded["process_s"] / idle["process_s"], "per_round": per_round}
        print(f"{pol}: idle {idle['process_s']:.1f} s (load {idle['load']:.1f}), loaded {loaded['process_s']:.1f} s "
              f"(load {loaded['load']:.1f}): loaded / idle {summary[f'{pol}-ratio']['median']:.2f}x "
              f"(per round {', '.join(f'{x:.2f}' for x in per_round)})")
    common.write_json(a.json, summary)
    return summary


if __name__ == "__main__":
    main()
