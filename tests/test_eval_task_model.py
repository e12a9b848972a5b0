"""`alignkit eval` scores the bundled task only: a model that is not the task's (another tokenizer, not
trained from the task's base model: stories260K, a tiny model of its own) is refused with one line that
points to the commands that fit, instead of an all-zero table."""
from __future__ import annotations

import shutil

from alignkit.cli import main
from alignkit.synthetic.base import MANIFEST, SHIPPED
from alignkit.synthetic.evaluate import task_model_problem


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_a_model_of_another_tokenizer_is_refused_with_the_commands_that_fit(tiny_model_dir, capsys):
    assert main(["eval", "--model", str(tiny_model_dir), "--n-prompts", "2", "--max-new-tokens", "4"]) == 2
    err = _one_error_line(capsys)
    assert err.startswith(f"error: {tiny_model_dir}: not a model of the bundled task")
    for cmd in ("alignkit eval preferences", "alignkit generate", "--judge", "alignkit leaderboard"):
        assert cmd in err
    assert "mean true reward" not in capsys.readouterr().out
    # as the baseline (or the KL reference) too
    assert main(["eval", "policy", "--model", str(SHIPPED), "--baseline", str(tiny_model_dir), "--n-prompts", "2"]) == 2
    assert f"{tiny_model_dir}: not a model of the bundled task" in _one_error_line(capsys)


def test_stories260k_is_refused(capsys):
    from conftest import shared_path
    model = shared_path("models", "stories260K")
    assert main(["eval", "--model", str(model), "--n-prompts", "2"]) == 2
    assert "not a model of the bundled task" in _one_error_line(capsys)


def test_the_task_models_pass(tiny_model_dir, tmp_path, capsys, monkeypatch):
    assert task_model_problem(str(SHIPPED)) is None  # the shipped base model (its manifest)
    moved = tmp_path / "moved"  # a copy without the manifest: recognised by its tokenizer's vocabulary
    shutil.copytree(SHIPPED, moved, ignore=shutil.ignore_patterns(MANIFEST, "config.yaml"))
    assert task_model_problem(str(moved)) is None
    # a model trained from a world base model (any world config): its run's config.yaml leads back to it
    world = tmp_path / "cache" / "sft"
    shutil.copytree(tiny_model_dir, world)
    (world / MANIFEST).write_text("{}")
    child = tmp_path / "runs" / "child"
    shutil.copytree(tiny_model_dir, child)
    monkeypatch.chdir(tmp_path)
    (child / "config.yaml").write_text("method: dpo\nmodel: cache/sft\n")  # relative to where the run started
    assert task_model_problem(str(child)) is None
    (child / "config.yaml").write_text("method: dpo\nmodel: ../../cache/sft\n")  # relative to the run folder
    assert task_model_problem(str(child)) is None
    (child / "config.yaml").write_text("method: dpo\nmodel: nowhere\n")
    assert "not a model of the bundled task" in task_model_problem(str(child))

    assert main(["eval", "--model", str(moved), "--n-prompts", "2", "--max-new-tokens", "4"]) == 0
    assert "mean true reward" in capsys.readouterr().out
