"""What a run prints when nobody watches a terminal, and what an RL run's log means.

- Output to a pipe or a log file: plain progress lines with step/total, rate and ETA, never a carriage
  return; `--progress false`: no progress at all.
- RL: `alignkit train grpo --help` explains the logged loss (~0 on-policy: zero-mean advantages) and a
  negative k1 KL; the claim is checked on a run (loss ~0, gradient not); sample completions go to
  completions.jsonl every --log-completions-every iterations (and the first), one printed to the log.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from alignkit.train.progress import Progress
from conftest import make_pairs, synthetic_texts

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def _alignkit(*args) -> subprocess.CompletedProcess:
    """The CLI in its own process, stdout and stderr to pipes (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "alignkit.cli", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=600)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    from alignkit.data.convert import to_trl_dict
    p = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    p.write_text("".join(json.dumps(to_trl_dict(r)) + "\n" for r in make_pairs(40)))
    return p


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("rl-prompts") / "prompts.jsonl"
    p.write_text("".join(json.dumps({"prompt": " ".join(t.split()[:4])}) + "\n" for t in synthetic_texts(12, seed=5)))
    return p


def test_progress_lines_without_a_terminal_every_5_percent_and_at_the_end():
    out = io.StringIO()
    bar = Progress(100, desc="train", unit="step", stream=out, every_seconds=1e9)
    for i in range(100):
        bar.set_postfix_str(f"loss={1 / (i + 1):.4f}")
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 21  # the first step, then each 5%
    assert lines[0].startswith("train: 1/100 steps (1%), ") and "steps/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("train: 100/100 steps (100%)") and lines[-1].endswith("ETA 0:00:00, loss=0.0100")
    quiet = io.StringIO()
    off = Progress(10, stream=quiet, enabled=False)
    off.update(10)
    off.close()
    assert quiet.getvalue() == ""


def test_a_training_run_to_a_pipe_prints_plain_lines_with_eta(tiny_model_dir, pairs_file, tmp_path):
    common = ["train", "dpo", "--model", tiny_model_dir, "--data", pairs_file, "--max-steps", "6", "--batch-size", "4",
              "--num-threads", "1", "--eval-fraction", "0"]
    res = _alignkit(*common, "--output", tmp_path / "a")
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout + res.stderr
    assert "\r" not in text
    eta = [line for line in text.splitlines() if "ETA" in line]
    assert eta and all(" steps/s" in line for line in eta), text[-2000:]
    assert any(line.startswith("train dpo: 6/6 steps (100%)") for line in eta)
    quiet = _alignkit(*common, "--output", tmp_path / "b", "--progress", "false")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "\r" not in quiet.stdout + quiet.stderr and "ETA" not in quiet.stdout + quiet.stderr


def test_rl_help_explains_the_logged_loss_and_kl(capsys):
    from alignkit.cli import main
    for method in ("grpo", "rloo"):
        with pytest.raises(SystemExit):
            main(["train", method, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # the notes wrap at 100 columns
        assert "why loss=0.000 at every step" in text and "zero mean within each prompt's group" in text
        assert "k1 estimate of KL" in text and "can be negative" in text and "never negative" in text
        assert "--log-completions-every" in text and "completions.jsonl" in text
    with pytest.raises(SystemExit):
        main(["train", "ppo", "--help"])
    assert "why loss=0.000" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "nash-md", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "mean P(y > y')" in text and "not a quantity that goes to 0" in text and "can be negative" in text


def test_grpo_logs_zero_loss_with_a_gradient_and_sample_completions(tiny_model_dir, prompts_file, tmp_path, capsys):
    from alignkit.cli import main
    out = tmp_path / "grpo"
    rc = main(["train", "grpo", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output", str(out),
               "--reward", "rule:chars", "--iterations", "5", "--samples-per-prompt", "4", "--prompts-per-step", "2",
               "--max-new-tokens", "8", "--log-completions-every", "2", "--eval-fraction", "0", "--progress", "false",
               "--num-threads", "1", "--learning-rate", "1e-3", "--temperature", "1.0"])
    printed = capsys.readouterr().out
    assert rc == 0
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    train = [r for r in rows if r.get("split") == "train"]
    assert len(train) == 5
    first = train[0]
    # the help's claim: iteration 1 (policy = reference, so GRPO's k3 term is 0) logs -mean(A) = 0 ...
    assert abs(first["loss"]) < 1e-5 and first["reward_std"] > 0
    assert first["grad_norm"] > 1e-4  # ... while the gradient is not zero
    comp = [json.loads(line) for line in open(out / "completions.jsonl")]
    assert sorted({c["iteration"] for c in comp}) == [1, 2, 4]  # the first, then every 2nd
    assert all(sum(c["iteration"] == i for c in comp) == 8 for i in (1, 2, 4))  # 2 prompts x 4 samples
    assert all(c["reward"] == float(len(c["completion"])) for c in comp)  # rule:chars of the logged text
    assert "sample @ iteration 4:" in printed and "iteration 5/5 (elapsed" in printed and "ETA" in printed

    rc = main(["train", "grpo", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output",
               str(tmp_path / "none"), "--reward", "rule:chars", "--iterations", "1", "--samples-per-prompt", "2",
               "--prompts-per-step", "1", "--max-new-tokens", "4", "--log-completions-every", "0",
               "--eval-fraction", "0", "--progress", "false", "--num-threads", "1"])
    assert rc == 0 and not (tmp_path / "none" / "completions.jsonl").exists()


def test_iterative_rounds_keep_their_judged_answers(tiny_model_dir, tmp_path, capsys):
    from alignkit.cli import main
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n" for i in range(4)))
    out = tmp_path / "it"
    assert main(["train", "iterative-dpo", "--model", str(tiny_model_dir), "--data", str(tmp_path / "p.jsonl"),
                 "--output", str(out), "--iterations", "1", "--reward", "rule:chars", "--samples-per-prompt", "2",
                 "--max-new-tokens", "6", "--max-steps", "1", "--batch-size", "2", "--progress", "false",
                 "--eval-fraction", "0", "--num-threads", "1"]) == 0
    rows = [json.loads(line) for line in open(out / "round-1" / "completions.jsonl")]
    assert len(rows) == 8 and {r["prompt"] for r in rows} == {f"question {i} :" for i in range(4)}
    assert all(r["round"] == 1 and r["score"] == float(len(r["completion"])) for r in rows)
    assert "iterative-dpo round 1: sample 'question" in capsys.readouterr().out


def test_nash_md_logs_its_completions_against_the_mixture(tiny_model_dir, prompts_file, tmp_path, capsys):
    from alignkit.cli import main
    out = tmp_path / "nash"
    assert main(["train", "nash-md", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output", str(out),
                 "--reward", "rule:chars", "--iterations", "2", "--samples-per-prompt", "2", "--prompts-per-step", "2",
                 "--max-new-tokens", "6", "--log-completions-every", "1", "--eval-fraction", "0",
                 "--progress", "false", "--num-threads", "1"]) == 0
    rows = [json.loads(line) for line in open(out / "completions.jsonl")]
    assert [r["iteration"] for r in rows] == [1] * 4 + [2] * 4
    assert all(0.0 <= r["preference"] <= 1.0 and isinstance(r["mixture_completion"], str) for r in rows)
    # rule:chars as a preference: the longer of the two completions wins (sigmoid of the length difference)
    import math
    for r in rows:
        d = len(r["completion"]) - len(r["mixture_completion"])
        assert r["preference"] == pytest.approx(1 / (1 + math.exp(-d)), abs=1e-5)
    assert "sample @ iteration 2:" in capsys.readouterr().out
