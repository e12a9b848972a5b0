"""Multi-process training: DPO under `accelerate launch` with 2 CPU processes (DDP over gloo) follows
the same loss curve as one process with the same global batch (2 x 4 pairs vs 1 x 8); so does DRO,
whose value head lives outside the DDP module."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from alignkit.cli import main

from conftest import make_pairs
from hostile.files import write_lines

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def pair_rows():
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in make_pairs(40)]


def binary_rows():
    return [{"prompt": p.prompt, "completion": c, "label": good} for p in make_pairs(20)
            for c, good in ((p.chosen, True), (p.rejected, False))]


@pytest.mark.slow
@pytest.mark.parametrize("method,make_rows,keys", [
    ("dpo", pair_rows, ("loss", "rewards/margin", "rewards/accuracy", "rewards/chosen", "grad_norm")),
    ("dro", binary_rows, ("loss", "grad_norm")),
])
def test_two_processes_match_one_with_the_same_global_batch(tiny_model_dir, tmp_path, capsys, method,
                                                            make_rows, keys):
    data = write_lines(tmp_path / "data.jsonl", make_rows())
    common = ["--data", str(data), "--model", str(tiny_model_dir), "--max-steps", "4", "--eval-fraction", "0.2",
              "--eval-every", "2", "--progress", "false", "--seed", "2", "--learning-rate", "5e-3",
              "--num-threads", "1", "--save-every", "2"]
    # no GPU may join in, and no user accelerate config may change the launch
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", HF_HOME=str(tmp_path / "hf"),
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "accelerate.commands.launch",
              "--config_file", str(REPO / "configs" / "accelerate" / "ddp_cpu.yaml"),
              "--main_process_port", str(free_port()),
              "-m", "alignkit.cli", "train", method, "--output", str(tmp_path / "ddp"), "--batch-size", "4", *common]
    proc = subprocess.run(launch, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("resumed from") == 0 and proc.stdout.count("tokenized") == 1  # main process logs

    assert main(["train", method, "--output", str(tmp_path / "one"), "--batch-size", "8", *common]) == 0
    capsys.readouterr()
    two, one = rows(tmp_path / "ddp"), rows(tmp_path / "one")
    assert [(r["step"], r["split"]) for r in two] == [(r["step"], r["split"]) for r in one]
    assert [r["split"] for r in one].count("train") == 4 and [r["split"] for r in one].count("eval") == 3
    for a, b in zip(two, one):
        for key in keys:
            if key in b:
                assert abs(a[key] - b[key]) < 1e-4 * max(1.0, abs(b[key])), (a["step"], a["split"], key, a[key], b[key])
    assert one[-1]["loss"] < one[0]["loss"] - 0.01  # it learned something: the curves are not flat

    for name in ["model.safetensors"] + (["value_head.safetensors"] if method == "dro" else []):
        w2, w1 = load_file(str(tmp_path / "ddp" / name)), load_file(str(tmp_path / "one" / name))
        assert max((w2[k] - w1[k]).abs().max().item() for k in w1) < 1e-4, name
    ck = tmp_path / "ddp" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000002", "step-00000004"]

