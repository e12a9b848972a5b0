"""benchmarks/gpu_check.sh, the GPU readiness run: its syntax always; on the CPU, its --cpu-smoke mode
runs every stage (DPO and GRPO side by side with TRL, on a tiny model) and writes gpu_check.json."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.slow
def test_cpu_smoke_runs_every_stage_and_writes_the_figures(tmp_path):
    pytest.importorskip("trl")
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True, env=env,
                          timeout=1500, cwd=str(SCRIPT.parents[1]))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert len(res["stages"]) == 3 and all("exit 0" in s for s in res["stages"][:2])  # dpo, grpo finished
    assert res["dpo"]["ratio"] > 0 and res["dpo"]["loss_diff_step0"] < 1e-4  # the two sides train alike
    assert res["grpo"]["ratio_step"] > 0 and "peak_flops_per_s" in res["grpo"]["flops"]
    assert any("grpo_vllm: skipped" in s for s in res["stages"])  # no GPU here
