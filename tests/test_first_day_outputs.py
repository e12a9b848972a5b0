"""Outputs and reproducibility, re-run as a new user tried them (through the CLI, on a tiny model):
a finished run in --output is refused unless --overwrite; --resume refuses other data or settings
unless --resume-allow-changes; a run's own config.yaml repeats it; run metadata resolves from any
working directory; a short run computes reference log-probs only for the examples it uses."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from alignkit.cli import main
from alignkit.train import refcache

from conftest import make_pairs

QUIET = ["--progress", "false", "--num-threads", "1"]


def write_pairs(path: Path, records) -> Path:
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps({"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected}) + "\n")
    return path


def snapshot(folder: Path) -> dict:
    """Every file under `folder` -> (mtime_ns, sha256): what 'untouched' means."""
    return {str(f.relative_to(folder)): (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in sorted(folder.rglob("*")) if f.is_file()}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.fixture
def work(tiny_model_dir, tmp_path, monkeypatch):
    """A working directory holding a model copy and pairs, as a user's project folder."""
    shutil.copytree(tiny_model_dir, tmp_path / "model")
    write_pairs(tmp_path / "pairs.jsonl", make_pairs(40))
    write_pairs(tmp_path / "other.jsonl", make_pairs(40, seed=7))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def dpo(output="out", *extra) -> list:
    return ["train", "dpo", "--model", "model", "--data", "pairs.jsonl", "--output", output, "--max-steps", "2",
            "--batch-size", "4", "--learning-rate", "1e-3", *QUIET, *extra]


def test_output_pointing_at_a_finished_run_is_refused_unless_overwrite(work, capsys):
    assert main(dpo()) == 0
    before = snapshot(work / "out")
    assert main(dpo("out", "--learning-rate", "1e-2")) == 2
    err = one_line_error(capsys)
    assert "holds a finished run" in err and "--overwrite" in err
    assert snapshot(work / "out") == before  # nothing written, nothing deleted
    # --overwrite replaces it (another learning rate: other weights)
    assert main(dpo("out", "--learning-rate", "1e-2", "--overwrite")) == 0
    assert yaml.safe_load((work / "out" / "config.yaml").read_text())["learning_rate"] == 1e-2
    assert snapshot(work / "out")["model.safetensors"][1] != before["model.safetensors"][1]
    # a folder of unrelated files: refused, then written into with --overwrite (their files kept)
    (work / "mine").mkdir()
    (work / "mine" / "notes.txt").write_text("keep me")
    assert main(dpo("mine")) == 2
    assert "holds no alignkit run (notes.txt)" in one_line_error(capsys)
    assert sorted(p.name for p in (work / "mine").iterdir()) == ["notes.txt"]
    assert main(dpo("mine", "--overwrite")) == 0
    assert (work / "mine" / "notes.txt").read_text() == "keep me" and (work / "mine" / "summary.json").is_file()
    # the starting model's own folder is no output either
    assert main(dpo("model")) == 2
    assert "holds no alignkit run" in one_line_error(capsys)


def test_checkpoints_and_resume_of_a_finished_run(work, capsys):
    assert main(dpo("out", "--save-every", "1")) == 0
    before = snapshot(work / "out")
    assert main(dpo("out", "--save-every", "1")) == 2  # finished and checkpointed: both ways named
    err = one_line_error(capsys)
    assert "--overwrite" in err and "--resume" in err
    assert snapshot(work / "out") == before
    assert main(dpo("out", "--save-every", "1", "--resume", "--overwrite")) == 2
    assert "pass one of them" in one_line_error(capsys)
    # --resume of the finished, checkpointed run keeps working: it extends it to 3 steps
    assert main(dpo("out", "--save-every", "1", "--resume", "--max-steps", "3")) == 0
    assert json.loads((work / "out" / "summary.json").read_text())["steps"] == 3
    # --overwrite starts over: the earlier checkpoints go (a later --resume must not take them)
    assert main(dpo("out", "--overwrite")) == 0
    assert not (work / "out" / "checkpoints").exists()
    # nothing to continue: a finished run without checkpoints is not trained again under --resume
    before = snapshot(work / "out")
    assert main(dpo("out", "--resume", "--max-steps", "3")) == 2
    assert "no checkpoint to continue from" in one_line_error(capsys)
    assert snapshot(work / "out") == before


def test_resume_with_other_data_and_learning_rate_is_refused(work, capsys):
    assert main(dpo("out", "--save-every", "1")) == 0
    before = snapshot(work / "out")
    args = ["train", "dpo", "--model", "model", "--data", "other.jsonl", "--output", "out", "--max-steps", "3",
            "--batch-size", "4", "--learning-rate", "2e-3", "--save-every", "1", "--resume", *QUIET]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert "learning_rate 0.001 -> 0.002" in err and "data " in err and "other.jsonl" in err, err
    assert "max_steps" not in err and "--resume-allow-changes" in err  # a longer run is no change of settings
    assert snapshot(work / "out") == before
    # the same data under another name is the same data (compared by content)
    shutil.copy(work / "pairs.jsonl", work / "copy.jsonl")
    same = ["train", "dpo", "--model", "model", "--data", "copy.jsonl", "--output", "out", "--batch-size", "4",
            "--learning-rate", "1e-3", "--save-every", "1", "--resume", *QUIET]
    assert main([*same, "--max-steps", "3"]) == 0
    # the same file name with other contents is refused too
    shutil.copy(work / "other.jsonl", work / "copy.jsonl")
    assert main([*same, "--max-steps", "4"]) == 2
    assert "(its contents changed)" in one_line_error(capsys)
    # the user says the change is intended
    assert main([*args, "--max-steps", "4", "--resume-allow-changes"]) == 0
    stored = yaml.safe_load((work / "out" / "config.yaml").read_text())
    assert stored["learning_rate"] == 2e-3 and stored["data"] == str(work / "other.jsonl")
    assert json.loads((work / "out" / "summary.json").read_text())["steps"] == 4


def test_a_runs_config_yaml_repeats_the_run(work, capsys):
    assert main(["train", "dpo", "--model", "model", "--data", "pairs.jsonl", "--output", "out", "--max-steps", "3",
                 "--batch-size", "4", "--learning-rate", "2e-3", "--beta", "0.3", "--seed", "5", *QUIET]) == 0
    rec = yaml.safe_load((work / "out" / "config.yaml").read_text())
    assert list(rec)[:4] == ["method", "model", "data", "output"]
    assert rec["model"] == str(work / "model") and rec["data"] == str(work / "pairs.jsonl")
    assert rec["output"] == str(work / "out") and rec["beta"] == 0.3 and rec["seed"] == 5
    assert rec["data_fingerprint"].startswith("sha256:") and "resume" not in rec and "overwrite" not in rec
    # from another directory, with no method, model, data or output given
    (work / "elsewhere").mkdir()
    shutil.copytree(work / "out", work / "elsewhere" / "saved")
    import os
    os.chdir(work / "elsewhere")
    assert main(["train", "--config", "saved/config.yaml", "--output", "again", *QUIET]) == 0
    os.chdir(work)
    a, b = load_file(str(work / "out" / "model.safetensors")), load_file(str(work / "elsewhere" / "again" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def metrics(folder):
        return [{k: v for k, v in json.loads(line).items() if k != "time"}
                for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert metrics(work / "out") == metrics(work / "elsewhere" / "again")
    # into its own folder: that is a finished run
    assert main(["train", "--config", "out/config.yaml", *QUIET]) == 2
    assert "holds a finished run" in one_line_error(capsys)
    # flags still win; the positional method must be the file's
    assert main(["train", "dpo", "--config", "out/config.yaml", "--output", "beta05", "--beta", "0.5", *QUIET]) == 0
    assert yaml.safe_load((work / "beta05" / "config.yaml").read_text())["beta"] == 0.5
    assert main(["train", "kto", "--config", "out/config.yaml", "--output", "kto", *QUIET]) == 2
    err = one_line_error(capsys)
    assert "its method is 'dpo', not 'kto'" in err and not (work / "kto").exists()


def test_an_older_nested_config_yaml_still_reads(tmp_path):
    from alignkit.rewards.implicit import default_beta, default_reference
    from alignkit.train.record import read_config_file
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "method": "dpo", "model": "/m", "train": {"ref": "/r", "max_steps": 7, "resume": True},
        "loss": {"beta": 0.25}}))
    meta, settings = read_config_file(tmp_path / "config.yaml")
    assert meta == {"method": "dpo", "model": "/m"} and settings == {"ref": "/r", "max_steps": 7, "beta": 0.25}
    assert default_reference(str(tmp_path)) == "/r" and default_beta(str(tmp_path)) == 0.25


def test_eval_preferences_from_another_directory(work, capsys):
    assert main(dpo("out")) == 0
    (work / "elsewhere").mkdir()
    import os
    os.chdir(work / "elsewhere")
    capsys.readouterr()
    assert main(["eval", "preferences", "--model", "../out", "--data", "../pairs.jsonl", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pairs"] == 40 and 0.0 <= report["accuracy"] <= 1.0
    rec = yaml.safe_load((work / "out" / "config.yaml").read_text())
    assert all(Path(rec[k]).is_absolute() for k in ("model", "data", "output"))


def test_a_five_step_smoke_run_computes_reference_logps_only_for_its_batches(work, monkeypatch, capsys):
    write_pairs(work / "many.jsonl", make_pairs(200))
    computed = []
    real = refcache.compute_ref_logps

    def counting(model, examples, *a, **kw):
        computed.extend(ex.idx for ex in examples)
        return real(model, examples, *a, **kw)
    monkeypatch.setattr(refcache, "compute_ref_logps", counting)
    smoke = ["train", "dpo", "--model", "model", "--data", "many.jsonl", "--max-steps", "5", "--batch-size", "2",
             "--eval-fraction", "0.05", *QUIET]
    # 5 steps of 2 pairs and the 10 held-out pairs, of 200: lazily (the default), with a separate
    # reference model (every example a reference pass), and up front (--ref-upfront)
    for name, extra in (("lazy", []), ("ref", ["--ref", "model"]), ("upfront", ["--ref-upfront"])):
        computed.clear()
        assert main([*smoke, "--output", name, *extra]) == 0, capsys.readouterr().err
        cached = {int(k.split(".")[0]) for k in load_file(str(work / name / "ref_logps.safetensors"))}
        assert len(cached) <= 5 * 2 + 10, (name, len(cached))
        assert set(range(190, 200)) <= cached  # the held-out split (the last indices) that evaluation uses
        summary = json.loads((work / name / "summary.json").read_text())
        if name == "ref":
            assert summary["reference_logps"]["from_policy"] == 0
            assert len(computed) == summary["reference_logps"]["reference_pass"] == len(cached)
        if name == "upfront":
            assert sorted(computed) == sorted(cached)
    # no evaluation: nothing for the held-out split
    assert main([*smoke, "--output", "noeval", "--ref-upfront", "--eval-at", "none"]) == 0
    cached = {int(k.split(".")[0]) for k in load_file(str(work / "noeval" / "ref_logps.safetensors"))}
    assert len(cached) <= 10 and not cached & set(range(190, 200))


def test_visited_indices_are_the_step_loops_micro_batches():
    from alignkit.train.config import TrainConfig
    from alignkit.train.steps import micro_batch_indices, visited_indices
    for n, bs, ga, world, total in ((50, 4, 2, 1, 3), (50, 3, 1, 2, 40), (7, 8, 1, 1, 2)):
        cfg = TrainConfig(batch_size=bs, grad_accum=ga, seed=3)
        want = {i for m in range(total * ga) for r in range(world) for i in micro_batch_indices(m, n, bs, world, r, 3)}
        assert visited_indices(n, cfg, total, world) == want


def test_the_python_api_and_a_reward_model_write_the_same_record(work):
    """Another trainer (reward models) and in-memory records through the Python API: the same flat
    config.yaml, and --resume compares the records' contents."""
    from alignkit.api import run_train
    from alignkit.errors import ConfigError
    opts = {"max_steps": 2, "batch_size": 4, "progress": False, "num_threads": 1, "save_every": 1}
    quiet = {"log": lambda *a, **k: None}
    run_train("rm", "model", make_pairs(16), "rm", opts, **quiet)
    rec = yaml.safe_load((work / "rm" / "config.yaml").read_text())
    assert rec["method"] == "rm" and rec["model"] == str(work / "model") and rec["output"] == str(work / "rm")
    assert rec["data"] is None and rec["data_fingerprint"].startswith("sha256:") and rec["batch_size"] == 4
    with pytest.raises(ConfigError, match=r"data \(records in memory\) -> \(records in memory\)"):
        run_train("rm", "model", make_pairs(16, seed=3), "rm", {**opts, "resume": True, "max_steps": 3}, **quiet)
    assert run_train("rm", "model", make_pairs(16), "rm", {**opts, "resume": True, "max_steps": 3}, **quiet)["steps"] == 3


def test_an_rl_runs_config_yaml_repeats_it(work, capsys):
    """The online loop's record: its judge spec and sampling settings are in config.yaml, and the file
    repeats the run to the same weights."""
    with open(work / "prompts.jsonl", "w") as f:
        for r in make_pairs(8):
            f.write(json.dumps({"prompt": r.prompt}) + "\n")
    assert main(["train", "rloo", "--model", "model", "--data", "prompts.jsonl", "--output", "rl", "--reward",
                 "rule:words", "--max-steps", "2", "--num-samples", "2", "--max-new-tokens", "5", "--seed", "4",
                 *QUIET]) == 0, capsys.readouterr().err
    rec = yaml.safe_load((work / "rl" / "config.yaml").read_text())
    assert rec["method"] == "rloo" and rec["reward"] == "rule:words" and rec["data"] == str(work / "prompts.jsonl")
    assert main(["train", "--config", "rl/config.yaml", "--output", "rl2", *QUIET]) == 0
    a, b = (load_file(str(work / d / "model.safetensors")) for d in ("rl", "rl2"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main(["train", "rloo", "--model", "model", "--data", "prompts.jsonl", "--output", "rl", "--reward",
                 "rule:words", *QUIET]) == 2
    assert "holds a finished run" in one_line_error(capsys)


def test_resume_changes_lists_only_what_changes_the_steps(tmp_path, monkeypatch):
    from alignkit.train.record import RESUME_MAY_CHANGE, resume_changes
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sft").mkdir()
    stored = {"method": "dpo", "model": "sft", "data": "/d.jsonl", "data_fingerprint": "sha256:aa", "beta": 0.1,
              "max_steps": 10, "num_threads": 2, "only_old": 1, "lora_target_modules": ["q_proj", "v_proj"]}
    new = {**stored, "model": str(tmp_path / "sft"), "data": "/moved/d.jsonl", "max_steps": 20, "num_threads": 1,
           "only_new": 2, "lora_target_modules": ("q_proj", "v_proj")}
    new.pop("only_old")
    # an older record's relative model path, the same data moved, a longer run, a field only one side has: no change
    assert {"max_steps", "num_threads"} <= RESUME_MAY_CHANGE and resume_changes(stored, new) == []
    changed = resume_changes(stored, {**new, "beta": 0.2, "data_fingerprint": "sha256:bb", "method": "ipo"})
    assert changed[0].startswith("data /d.jsonl -> /moved/d.jsonl") and "beta 0.1 -> 0.2" in changed
    assert "method dpo -> ipo" in changed and len(changed) == 3


def test_an_iterative_runs_records(work, capsys):
    """A recipe: its folder's config.yaml is the run's own (not the last round's), a round's names its
    records file and repeats that round's training to the same weights."""
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n" for i in range(6)))
    assert main(["train", "iterative-dpo", "--model", "model", "--data", "prompts.jsonl", "--output", "it",
                 "--iterations", "2", "--reward", "rule:chars", "--samples-per-prompt", "2", "--max-new-tokens", "8",
                 "--max-steps", "2", "--batch-size", "2", "--eval-fraction", "0", *QUIET]) == 0, capsys.readouterr().err
    top = yaml.safe_load((work / "it" / "config.yaml").read_text())
    assert top["method"] == "iterative-dpo" and top["iterations"] == 2 and top["model"] == str(work / "model")
    assert top["data"] == str(work / "prompts.jsonl") and top["beta"] == 0.1  # the inner loss's fields too
    r2 = yaml.safe_load((work / "it" / "round-2" / "config.yaml").read_text())
    assert r2["method"] == "dpo" and r2["model"] == str(work / "it" / "round-1")
    assert r2["data"] == str(work / "it" / "round-2" / "pairs.jsonl")
    assert main(["train", "--config", "it/round-2/config.yaml", "--output", "again", *QUIET]) == 0
    a, b = (load_file(str(work / d / "model.safetensors")) for d in ("it/round-2", "again"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_max_eval_examples_shortens_evaluation_not_training():
    # a large held-out split can take longer than a short run on a real model: --max-eval-examples N
    # evaluates on its first N examples; the split (what is trained on) stays the same
    from alignkit.train.config import TrainConfig
    from alignkit.train.run import load_split
    from conftest import make_pairs
    data = make_pairs(40)
    train, held_out = load_split(data, TrainConfig(eval_fraction=0.25), "pairwise", log=lambda *a: None)
    train5, held_out5 = load_split(data, TrainConfig(eval_fraction=0.25, max_eval_examples=5), "pairwise",
                                   log=lambda *a: None)
    assert len(held_out) == 10 and held_out5 == held_out[:5] and train5 == train
    assert len(load_split(data, TrainConfig(eval_fraction=0.5, max_eval_examples=3), "pairwise",
                          log=lambda *a: None)[1]) == 3
