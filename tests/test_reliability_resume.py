"""Interrupted runs: SIGKILL mid-way then --resume gives the uninterrupted run's weights;
SIGTERM/SIGINT save a checkpoint and exit with status 130; a checkpoint half-written when the
process died (.tmp-step-*) is ignored by --resume, which takes the previous one."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from alignkit.cli import main

from conftest import make_pairs
from hostile.files import write_lines

REPO = Path(__file__).resolve().parents[1]
RUN = ["--batch-size", "4", "--save-every", "2", "--eval-fraction", "0", "--progress", "false",
       "--seed", "1", "--learning-rate", "5e-3", "--num-threads", "1"]


def args(model, data, out, steps, *extra):
    return ["train", "dpo", "--model", str(model), "--data", str(data), "--output", str(out),
            "--max-steps", str(steps), *RUN, *extra]


def start(argv):
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, "-m", "alignkit.cli", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc, ready, what, timeout=120):
    t0 = time.time()
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (status {proc.returncode}) before {what}:\n{out}\n{err}")
        assert time.time() - t0 < timeout, f"no {what} after {timeout}s"
        time.sleep(0.01)


def checkpoints(out):
    return sorted(p.name for p in (out / "checkpoints").glob("step-*") if (p / "state.json").is_file())


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in make_pairs(32)]
    return write_lines(tmp_path_factory.mktemp("data") / "pairs.jsonl", rows)


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_weights(tiny_model_dir, pairs_file, tmp_path, capsys):
    steps = 60  # long enough that the watcher below sees a checkpoint and a later step before the run ends
    assert main(args(tiny_model_dir, pairs_file, tmp_path / "full", steps)) == 0
    capsys.readouterr()

    out = tmp_path / "killed"
    proc = start(args(tiny_model_dir, pairs_file, out, steps))

    def logged_past_a_checkpoint():  # so the killed run leaves metrics rows the resumed run redoes
        cks = checkpoints(out) if (out / "checkpoints").is_dir() else []
        rows = (out / "metrics.jsonl").read_text().splitlines() if cks else []
        return cks and max(json.loads(r)["step"] for r in rows[:-1] or ['{"step": 0}']) > int(cks[-1][5:])

    wait_for(proc, logged_past_a_checkpoint, "a step logged after a checkpoint")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL  # it died mid-way, not at the end
    assert not (out / "model.safetensors").exists()
    kept = checkpoints(out)
    at = int(kept[-1][5:])
    assert 2 <= at < steps

    assert main(args(tiny_model_dir, pairs_file, out, steps, "--resume")) == 0
    assert f"resumed from {out / 'checkpoints' / kept[-1]} at step {at}" in capsys.readouterr().out
    assert max_diff(weights(tmp_path / "full"), weights(out)) < 1e-6
    # each step logged once, even those the killed run logged after its last checkpoint
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, steps + 1))
    full = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == len(full) and all(abs(a["loss"] - b["loss"]) < 1e-6 for a, b in zip(rows, full))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_exits_130(tiny_model_dir, pairs_file, tmp_path, sig):
    out = tmp_path / "run"
    proc = start(args(tiny_model_dir, pairs_file, out, 200))
    metrics = out / "metrics.jsonl"
    wait_for(proc, lambda: metrics.is_file() and '"train"' in metrics.read_text(), "the first step")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"signal {int(sig)}: saving a checkpoint after this step, then stopping" in stdout
    step = max(json.loads(line)["step"] for line in metrics.read_text().splitlines())
    ckpt = out / "checkpoints" / f"step-{step:08d}"
    assert (f"stopped at step {step}/200; checkpoint {ckpt}; rerun with --resume to continue"
            in stdout.splitlines())
    assert step < 200 and (ckpt / "state.json").is_file() and (ckpt / "trainable.safetensors").is_file()
    assert json.loads((ckpt / "state.json").read_text())["step"] == step
    assert not (out / "model.safetensors").exists()


def test_half_written_checkpoint_is_ignored_by_resume(tiny_model_dir, pairs_file, tmp_path, capsys):
    done, out = tmp_path / "done", tmp_path / "crashed"
    assert main(args(tiny_model_dir, pairs_file, done, 4)) == 0
    # what a kill while writing step 4 leaves: step 2 intact, step 4 under its temporary name
    shutil.copytree(done, out)
    tmp = out / "checkpoints" / ".tmp-step-00000004"
    (out / "checkpoints" / "step-00000004").rename(tmp)
    (tmp / "state.json").unlink()
    (tmp / "trainable.safetensors").write_bytes(b"\0" * 100)  # cut short
    (out / "model.safetensors").unlink()
    capsys.readouterr()

    assert main(args(tiny_model_dir, pairs_file, out, 4, "--resume")) == 0
    assert f"resumed from {out / 'checkpoints' / 'step-00000002'} at step 2" in capsys.readouterr().out
    assert max_diff(weights(done), weights(out)) < 1e-6
    assert checkpoints(out) == ["step-00000002", "step-00000004"]
    assert not tmp.exists()  # the next save cleans it up


@pytest.mark.parametrize("keep,expected", [(2, ["step-00000002", "step-00000003"]), (0, ["step-00000001",
                                            "step-00000002", "step-00000003"])])
def test_checkpoint_rotation(tiny_model_dir, tmp_path, keep, expected):
    from alignkit.models.loading import load_causal_lm
    from alignkit.train.config import TrainConfig
    from alignkit.train.engine import Engine
    engine = Engine(load_causal_lm(str(tiny_model_dir)), TrainConfig(keep_checkpoints=keep), tmp_path, total_steps=3)
    for step in (1, 2, 3):
        engine.step = step
        engine.save_checkpoint(lambda folder: (folder / "weights.bin").write_bytes(b"w"), {})
    assert checkpoints(tmp_path) == expected
    assert Engine.newest_checkpoint(tmp_path).name == "step-00000003"


def test_resumed_run_keeps_its_step0_evaluation_in_the_summary(tiny_model_dir, pairs_file, tmp_path, capsys):
    done, out = tmp_path / "done", tmp_path / "resumed"
    def argv(o, *extra):  # like args(), but with 8 of the 32 pairs held out
        return ["train", "dpo", "--model", str(tiny_model_dir), "--data", str(pairs_file), "--output", str(o),
                "--max-steps", "4", *RUN, "--eval-fraction", "0.25", *extra]
    assert main(argv(done)) == 0
    shutil.copytree(done, out)
    shutil.rmtree(out / "checkpoints" / "step-00000004")
    (out / "model.safetensors").unlink()
    capsys.readouterr()
    assert main(argv(out, "--resume")) == 0
    assert "resumed from" in capsys.readouterr().out
    first, second = (json.loads((d / "summary.json").read_text()) for d in (done, out))
    assert second["eval_start"] and second["eval_start"] == pytest.approx(first["eval_start"])
    assert second["eval_end"] == pytest.approx(first["eval_end"], abs=1e-5)
