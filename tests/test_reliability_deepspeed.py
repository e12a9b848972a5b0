"""DeepSpeed ZeRO-2 and ZeRO-3 under `accelerate launch` with 2 CPU processes (gloo,
configs/accelerate/deepspeed_zero{2,3}_cpu.yaml): DPO follows the loss curve of one process with the
same global batch (2 processes x 2 pairs x --grad-accum 2 vs 1 x 8), the saved model is gathered whole
and loads with transformers, and --resume continues from DeepSpeed's own checkpoint to the same weights.

Both runs use --grad-accum 2, which takes both of alignkit's DeepSpeed step paths (alignkit/train/
zero.py): ZeRO-2 runs every micro-batch's forward first and backpropagates each scaled by the global
weight; ZeRO-3 runs forward+backward one by one and divides its gradient partitions by the global
weight before DeepSpeed's step. Tolerance as in the FSDP test: float32 summation order only
(measured: metrics 7.6e-7 relative, weights 1.7e-5 absolute); a wrong normaliser (a lost
micro-batch, a factor 2) moves the first step's gradient norm by far more.

Skipped when deepspeed is not installed (`pip install 'alignkit[deepspeed]'`; it is not in the dev
extra). The refusals at the end need no deepspeed."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from alignkit.cli import main
from alignkit.errors import ConfigError
from alignkit.train.engine import make_accelerator

from hostile.files import write_lines
from test_reliability_ddp import free_port, pair_rows, rows
from test_reliability_fsdp import COMMON, assert_same_curve, assert_same_saved_model, max_diff, one_process

REPO = Path(__file__).resolve().parents[1]
HAVE_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
needs_deepspeed = pytest.mark.skipif(not HAVE_DEEPSPEED, reason="deepspeed is not installed "
                                     "(pip install 'alignkit[deepspeed]'); the DeepSpeed runs cannot be tested")
KEYS = ("loss", "rewards/margin", "rewards/accuracy", "rewards/chosen", "grad_norm", "lr")


def ds_launch(tmp_path, stage, data, model, out, *extra):
    # no GPU may join in, and no user accelerate config may change the launch; PYTHONPATH keeps a
    # deepspeed installed outside the venv importable
    path = os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    env = dict(os.environ, PYTHONPATH=path, CUDA_VISIBLE_DEVICES="", HF_HOME=str(tmp_path / "hf"),
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--config_file", str(REPO / "configs" / "accelerate" / f"deepspeed_zero{stage}_cpu.yaml"),
           "--main_process_port", str(free_port()),
           "-m", "alignkit.cli", "train", "dpo", "--data", str(data), "--model", str(model), "--output", str(out),
           "--batch-size", "2", "--grad-accum", "2", *COMMON, *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deepspeed-dpo")
    data = write_lines(tmp / "data.jsonl", pair_rows())
    procs = {stage: ds_launch(tmp, stage, data, tiny_model_dir, tmp / f"zero{stage}") for stage in (2, 3)}
    one_process("dpo", data, tiny_model_dir, tmp / "one")
    return tmp, data, procs, tiny_model_dir


@needs_deepspeed
@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_zero_matches_one_process_and_saves_a_whole_model(runs, capsys, stage):
    tmp, _, procs, _ = runs
    capsys.readouterr()
    assert procs[stage].stdout.count("tokenized") == 1  # only the main process logs
    ds, one = tmp / f"zero{stage}", tmp / "one"
    ref = rows(one)
    assert [r["split"] for r in ref].count("train") == 4 and [r["split"] for r in ref].count("eval") == 3
    assert_same_curve(rows(ds), ref, KEYS)

    # the final model: gathered whole, the same tensors as one process's, loads with transformers
    assert_same_saved_model(ds, one)

    # checkpoints: whole trainable weights (alignkit's) + DeepSpeed's partitions, one per process
    ck = ds / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000002", "step-00000004"]
    last = "checkpoints/step-00000004"
    assert max_diff(load_file(str(ds / last / "trainable.safetensors")),
                    load_file(str(one / last / "trainable.safetensors"))) < 1e-4
    assert len(list((ds / last / "deepspeed" / "state").glob("*optim_states.pt"))) == 2


@needs_deepspeed
@pytest.mark.slow
def test_resume_under_zero3_ends_on_the_uninterrupted_weights(runs, capsys):
    """The step-2 checkpoint of the ZeRO-3 run (as a kill after step 2 would leave it), resumed under
    ZeRO-3 with as many processes: the same arithmetic as the uninterrupted run. On one process it is
    refused with a one-line error (its optimizer state is in DeepSpeed's per-process format)."""
    tmp, data, _, model = runs
    out = tmp / "resume"
    shutil.copytree(tmp / "zero3" / "checkpoints" / "step-00000002", out / "checkpoints" / "step-00000002")
    shutil.copy(tmp / "zero3" / "metrics.jsonl", out / "metrics.jsonl")
    proc = ds_launch(tmp, 3, data, model, out, "--resume")
    assert "resumed from" in proc.stdout and "at step 2" in proc.stdout
    assert max_diff(load_file(str(out / "model.safetensors")), load_file(str(tmp / "zero3" / "model.safetensors"))) < 1e-6
    resumed, full = rows(out), rows(tmp / "zero3")
    assert [(r["step"], r["split"]) for r in resumed] == [(r["step"], r["split"]) for r in full]
    for a, b in zip(resumed, full):
        assert abs(a["loss"] - b["loss"]) < 1e-6, (a, b)

    elsewhere = tmp / "resume-one"
    shutil.copytree(tmp / "zero3" / "checkpoints" / "step-00000002", elsewhere / "checkpoints" / "step-00000002")
    capsys.readouterr()
    rc = main(["train", "dpo", "--data", str(data), "--model", str(model), "--output", str(elsewhere),
               "--batch-size", "8", *COMMON, "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "was written under DeepSpeed" in err and "docs/distributed.md" in err


def test_deepspeed_with_lora_is_refused(tiny_model_dir, tmp_path, monkeypatch, capsys):
    # what `accelerate launch` sets for a DeepSpeed config: refused before any work is done
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    data = write_lines(tmp_path / "data.jsonl", pair_rows())
    rc = main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o"),
               "--progress", "false", "--lora-r", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: DeepSpeed with LoRA (--lora-r) is not supported") and "docs/distributed.md" in err
    assert not (tmp_path / "o").exists()


def test_deepspeed_not_installed_is_one_line(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # `import deepspeed` raises ImportError
    data = write_lines(tmp_path / "data.jsonl", pair_rows())
    rc = main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o"),
               "--progress", "false"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: the accelerate config asks for DeepSpeed, which is not installed")
    assert "pip install 'alignkit[deepspeed]'" in err and not (tmp_path / "o").exists()


def test_loops_without_sharded_saving_refuse_deepspeed(monkeypatch):
    # reward-model and RL training gather no partitioned weights: they ask for make_accelerator() as is
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(ConfigError, match=r"DeepSpeed is supported for offline training \(`alignkit train <loss>`\) only"):
        make_accelerator()
