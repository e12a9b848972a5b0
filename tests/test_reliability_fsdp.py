"""FSDP2 under `accelerate launch` with 2 CPU processes (gloo, configs/accelerate/fsdp_cpu.yaml): every
process holds half of each parameter, gradient and AdamW moment, yet DPO follows the loss curve of one
process with the same global batch (2 x 4 pairs vs 1 x 8), and so does DRO (value head outside the
sharded model). The saved model is whole and loads with transformers; checkpoints hold whole weights
and optimizer states, so --resume continues under FSDP or on one process.

Tolerance: the runs differ only in float32 summation order (FSDP reduce-scatters the two halves of
each gradient; one process sums all 8 examples at once). Measured over these 4 steps: metrics agree
to 6e-6 relative, weights to 1.1e-5 absolute (Adam divides by sqrt(v), which magnifies rounding in
coordinates whose gradient is near zero). 1e-4 (the DDP test's) leaves a margin of about 10; a wrong
normaliser (x2, or a missing all-reduce) moves the first step's metrics by far more."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignkit.cli import main
from alignkit.errors import ConfigError
from alignkit.train.engine import make_accelerator

from hostile.files import write_lines
from test_reliability_ddp import binary_rows, free_port, pair_rows, rows

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--max-steps", "4", "--eval-fraction", "0.2", "--eval-every", "2", "--progress", "false", "--seed", "2",
          "--learning-rate", "5e-3", "--num-threads", "1", "--save-every", "2"]


def fsdp_launch(tmp_path, method, data, model, out, *extra):
    # no GPU may join in, and no user accelerate config may change the launch
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", HF_HOME=str(tmp_path / "hf"),
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--config_file", str(REPO / "configs" / "accelerate" / "fsdp_cpu.yaml"),
           "--main_process_port", str(free_port()),
           "-m", "alignkit.cli", "train", method, "--data", str(data), "--model", str(model), "--output", str(out),
           "--batch-size", "4", *COMMON, *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def one_process(method, data, model, out, *extra):
    assert main(["train", method, "--data", str(data), "--model", str(model), "--output", str(out),
                 "--batch-size", "8", *COMMON, *extra]) == 0


def max_diff(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def assert_same_saved_model(sharded: Path, one: Path):
    """The sharded run's model.safetensors equals one process's, loads with transformers, same logits."""
    assert max_diff(load_file(str(sharded / "model.safetensors")), load_file(str(one / "model.safetensors"))) < 1e-4
    from transformers import AutoModelForCausalLM
    m2 = AutoModelForCausalLM.from_pretrained(str(sharded), use_safetensors=True)
    m1 = AutoModelForCausalLM.from_pretrained(str(one), use_safetensors=True)
    assert max_diff(m2.state_dict(), m1.state_dict()) < 1e-4
    ids = torch.tensor([[5, 17, 42, 9, 3]])
    assert (m2(input_ids=ids).logits - m1(input_ids=ids).logits).abs().max().item() < 1e-3


def assert_same_curve(two, one, keys):
    assert [(r["step"], r["split"]) for r in two] == [(r["step"], r["split"]) for r in one]
    for a, b in zip(two, one):
        for key in keys:
            if key in b:
                assert abs(a[key] - b[key]) < 1e-4 * max(1.0, abs(b[key])), (a["step"], a["split"], key, a[key], b[key])
    assert one[-1]["loss"] < one[0]["loss"] - 0.01  # it learned something: the curves are not flat


@pytest.fixture(scope="module")
def dpo_runs(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fsdp-dpo")
    data = write_lines(tmp / "data.jsonl", pair_rows())
    proc = fsdp_launch(tmp, "dpo", data, tiny_model_dir, tmp / "fsdp")
    one_process("dpo", data, tiny_model_dir, tmp / "one")
    return tmp, data, proc, tiny_model_dir


@pytest.mark.slow
def test_dpo_under_fsdp_matches_one_process_and_saves_a_whole_model(dpo_runs, capsys):
    tmp, _, proc, _ = dpo_runs
    capsys.readouterr()
    assert proc.stdout.count("tokenized") == 1  # only the main process logs
    fsdp, one = tmp / "fsdp", tmp / "one"
    two, ref = rows(fsdp), rows(one)
    assert [r["split"] for r in ref].count("train") == 4 and [r["split"] for r in ref].count("eval") == 3
    assert_same_curve(two, ref, ("loss", "rewards/margin", "rewards/accuracy", "rewards/chosen", "grad_norm"))

    # the final model: gathered whole, the same tensors (tied embedding written once) as one process's
    assert_same_saved_model(fsdp, one)

    # checkpoints: whole trainable weights and whole AdamW moments
    ck = fsdp / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000002", "step-00000004"]
    last = "checkpoints/step-00000004"
    assert max_diff(load_file(str(fsdp / last / "trainable.safetensors")),
                    load_file(str(one / last / "trainable.safetensors"))) < 1e-4
    o2 = torch.load(fsdp / last / "trainer_state.pt", weights_only=True)["optimizer"]["state"]
    o1 = torch.load(one / last / "trainer_state.pt", weights_only=True)["optimizer"]["state"]
    assert sorted(o2) == sorted(o1)
    for i in o1:
        for k in ("exp_avg", "exp_avg_sq"):
            assert o2[i][k].shape == o1[i][k].shape
            assert (o2[i][k] - o1[i][k]).abs().max().item() < 1e-4 * max(1.0, o1[i][k].abs().max().item())


@pytest.mark.slow
def test_resume_continues_under_fsdp_or_on_one_process(dpo_runs, capsys):
    """The step-2 checkpoint of the FSDP run (as a kill after step 2 would leave it), resumed under
    FSDP and on one process, and the one-process run's resumed under FSDP: all end on the
    uninterrupted runs' weights (checkpoints hold whole tensors in one layout)."""
    tmp, data, _, model = dpo_runs
    done = load_file(str(tmp / "fsdp" / "model.safetensors"))
    for name, source in (("resume-fsdp", "fsdp"), ("resume-one", "fsdp"), ("one-then-fsdp", "one")):
        out = tmp / name
        shutil.copytree(tmp / source / "checkpoints" / "step-00000002", out / "checkpoints" / "step-00000002")
        shutil.copy(tmp / source / "metrics.jsonl", out / "metrics.jsonl")
    proc = fsdp_launch(tmp, "dpo", data, model, tmp / "resume-fsdp", "--resume")
    assert "resumed from" in proc.stdout and "at step 2" in proc.stdout
    one_process("dpo", data, model, tmp / "resume-one", "--resume")
    fsdp_launch(tmp, "dpo", data, model, tmp / "one-then-fsdp", "--resume")
    capsys.readouterr()
    assert max_diff(load_file(str(tmp / "one-then-fsdp" / "model.safetensors")),
                    load_file(str(tmp / "one" / "model.safetensors"))) < 1e-4
    # the same processes and data order: the same arithmetic as the uninterrupted run
    assert max_diff(load_file(str(tmp / "resume-fsdp" / "model.safetensors")), done) < 1e-6
    # one process for steps 3-4: float32 summation order only (measured 6e-8)
    assert max_diff(load_file(str(tmp / "resume-one" / "model.safetensors")), done) < 1e-5
    # metrics.jsonl: the rows up to the checkpoint kept, the rest logged again with the same values
    resumed, full = rows(tmp / "resume-fsdp"), rows(tmp / "fsdp")
    assert [(r["step"], r["split"]) for r in resumed] == [(r["step"], r["split"]) for r in full]
    for a, b in zip(resumed, full):
        assert abs(a["loss"] - b["loss"]) < 1e-6, (a, b)


@pytest.mark.slow
def test_dro_under_fsdp_matches_one_process(tiny_model_dir, tmp_path, capsys):
    """DRO's value head lives outside the sharded model: its own optimizer group, gradients averaged
    by the engine, saved from the main process."""
    data = write_lines(tmp_path / "data.jsonl", binary_rows())
    fsdp_launch(tmp_path, "dro", data, tiny_model_dir, tmp_path / "fsdp")
    one_process("dro", data, tiny_model_dir, tmp_path / "one")
    capsys.readouterr()
    assert_same_curve(rows(tmp_path / "fsdp"), rows(tmp_path / "one"), ("loss", "grad_norm"))
    for name in ("model.safetensors", "value_head.safetensors"):
        assert max_diff(load_file(str(tmp_path / "fsdp" / name)), load_file(str(tmp_path / "one" / name))) < 1e-4, name


@pytest.mark.parametrize("env,extra,message", [
    ({"FSDP_VERSION": "1"}, [], "FSDP version 1 is not supported: set `fsdp_version: 2`"),
    ({"FSDP_VERSION": "2", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}, [],
     "set `fsdp_cpu_ram_efficient_loading: false`"),
    ({"FSDP_VERSION": "2"}, ["--lora-r", "4"], "FSDP with LoRA (--lora-r) is not supported"),
])
def test_fsdp_setups_alignkit_does_not_run_are_refused(tiny_model_dir, tmp_path, monkeypatch, capsys, env, extra,
                                                       message):
    # what `accelerate launch` sets for such an FSDP config: refused before any work is done
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    data = write_lines(tmp_path / "data.jsonl", pair_rows())
    rc = main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o"),
               "--progress", "false", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: " + message) and "docs/distributed.md" in err
    assert not (tmp_path / "o").exists()


def test_loops_without_fsdp_saving_refuse_it(monkeypatch):
    # reward-model and RL training gather no sharded weights: they ask for make_accelerator() as is
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    with pytest.raises(ConfigError, match=r"FSDP is supported for offline training \(`alignkit train <loss>`\) only"):
        make_accelerator()


@pytest.mark.slow
def test_bf16_under_fsdp_runs_and_follows_one_process_to_bf16_precision(tiny_model_dir, tmp_path, capsys):
    """--dtype bf16: accelerate hands FSDP2 a bf16 compute and gradient-reduction policy, where one
    process autocasts; the curves then agree to bf16 rounding only (measured: 1.2e-3 relative on the
    loss, 1e-3 on the gradient norm), not to float32's. 1e-2 still catches a wrong normaliser, which
    moves the logged gradient norm by a factor."""
    data = write_lines(tmp_path / "data.jsonl", pair_rows())
    fsdp_launch(tmp_path, "dpo", data, tiny_model_dir, tmp_path / "fsdp", "--dtype", "bf16")
    # in a process of its own: accelerate's state (fp32 in this pytest process) is set once per process
    cmd = [sys.executable, "-m", "alignkit.cli", "train", "dpo", "--data", str(data), "--model", str(tiny_model_dir),
           "--output", str(tmp_path / "one"), "--batch-size", "8", *COMMON, "--dtype", "bf16"]
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    capsys.readouterr()
    two, one = rows(tmp_path / "fsdp"), rows(tmp_path / "one")
    assert [(r["step"], r["split"]) for r in two] == [(r["step"], r["split"]) for r in one]
    for a, b in zip(two, one):
        for key in ("loss", "grad_norm"):
            if key in b:
                assert abs(a[key] - b[key]) < 1e-2 * abs(b[key]), (a["step"], a["split"], key, a[key], b[key])
    saved = load_file(str(tmp_path / "fsdp" / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in saved.values())  # fp32 master weights, gathered whole
