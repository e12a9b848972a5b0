"""`alignkit eval curves`: runs' metrics.jsonl drawn side by side; bad input is a one-line error."""
import json

import pytest

from alignkit.cli import main
from alignkit.errors import ConfigError, DataError
from alignkit.eval.curves import plot_curves, read_metrics, running_mean


def _run(folder, steps, cut_last_line=False):
    folder.mkdir()
    rows = [{"step": 0, "split": "eval", "loss": 0.69, "rewards/accuracy": 0.5}]
    rows += [{"step": s, "split": "train", "loss": 0.69 - 0.01 * s, "length/chosen": 20 + s} for s in range(1, steps + 1)]
    rows += [{"step": steps, "split": "eval", "loss": 0.5, "rewards/accuracy": 0.8}]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    if cut_last_line:
        text += '{"step": 99, "split": "tra'  # a killed run's half-written line
    (folder / "metrics.jsonl").write_text(text)
    return folder


def test_running_mean_by_hand():
    assert running_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert running_mean([2.0, 4.0], 1) == [2.0, 4.0]


def test_read_skips_a_cut_line_and_splits_train_from_eval(tmp_path):
    train, ev = read_metrics(_run(tmp_path / "a", 5, cut_last_line=True))
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5] and [r["step"] for r in ev] == [0, 5]


def test_plot_two_runs_and_the_cli(tmp_path, capsys):
    a, b = _run(tmp_path / "a", 5), _run(tmp_path / "b", 8)
    png = plot_curves([a, b], tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert main(["eval", "curves", str(a), str(b), "--output", str(tmp_path / "d.png"), "--metrics",
                 "loss,length/chosen", "--labels", "dpo,simpo"]) == 0
    assert (tmp_path / "d.png").is_file()


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    a = _run(tmp_path / "a", 3)
    with pytest.raises(DataError, match="no such file"):
        read_metrics(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no run logged kl.*logged: .*loss"):
        plot_curves([a], tmp_path / "x.png", metrics=["kl"])
    assert main(["eval", "curves", str(a), "--output", str(tmp_path / "x.png"), "--labels", "one,two"]) == 2
    assert "--labels has 2 names for 1 runs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    with pytest.raises(DataError, match="no metric to plot"):
        plot_curves([tmp_path / "empty"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
