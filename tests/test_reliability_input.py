"""Hostile input through `alignkit train`: each bad file, config or model folder gets one line on
stderr naming the file, line and field, exit status 2, and no traceback; `--on-bad-record skip`
counts what it skips; a failing run never destroys what an earlier run wrote."""
import hashlib
import json
import resource
import time

import pytest
import yaml

from alignkit.cli import main

from conftest import make_pairs
from hostile.files import CASES, GOOD, huge_line_file, pickled_model_folder, write_lines

FAST = ["--max-steps", "1", "--batch-size", "2", "--progress", "false", "--eval-fraction", "0",
        "--num-threads", "1"]


def train(method, model, data, out, *extra):
    return main(["train", method, "--model", str(model), "--data", str(data), "--output", str(out), *FAST, *extra])


def one_line_error(capsys, rc) -> str:
    cap = capsys.readouterr()
    assert rc == 2, cap.err
    assert "Traceback" not in cap.err + cap.out
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), cap.err
    return lines[0]


def pair_rows(n):
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in make_pairs(n)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_file_is_one_line_error(case, tiny_model_dir, tmp_path, capsys):
    path = case.write(tmp_path)
    err = one_line_error(capsys, train(case.method, tiny_model_dir, path, tmp_path / "out"))
    assert err.startswith(case.expected(path)), err
    assert not (tmp_path / "out").exists()  # the data is read before anything is written


def test_50mb_line_fails_fast_without_exhausting_memory(tiny_model_dir, tmp_path, capsys):
    path = huge_line_file(tmp_path / "huge.jsonl", megabytes=50)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    rc = train("dpo", tiny_model_dir, path, tmp_path / "out")
    elapsed = time.perf_counter() - t0
    err = one_line_error(capsys, rc)
    assert err == (f"error: {path}:2: field 'prompt': text of 52,428,800 characters is longer than "
                   "max_chars=100,000")
    assert elapsed < 10
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # Linux: KiB
    assert grew_mb < 600  # a few copies of the line at most, not a runaway


def test_prompts_longer_than_max_length_are_truncated_and_reported(tiny_model_dir, tmp_path, capsys):
    long_prompt = " ".join(["the cat sat on a mat ."] * 60)  # far over 48 tokens
    rows = [dict(GOOD, prompt=long_prompt if i % 2 == 0 else GOOD["prompt"]) for i in range(6)]
    path = write_lines(tmp_path / "long.jsonl", rows)
    rc = train("dpo", tiny_model_dir, path, tmp_path / "out", "--max-length", "48")
    out = capsys.readouterr().out
    assert rc == 0
    # 3 long prompts x (chosen, rejected) sequences are cut to 48 tokens, none is lost
    assert "tokenized 12 sequences: 6 truncated, 0 dropped (no completion token left)" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["truncated"] == 6 and summary["train_examples"] == 6


def test_skip_counts_bad_records_and_trains_on_the_rest(tiny_model_dir, tmp_path, capsys):
    rows = pair_rows(10)
    rows[2:2] = ['{"prompt": broken', dict(GOOD, chosen=3)]
    rows += [dict(GOOD, rejected=GOOD["chosen"]), b'{"prompt": "\xff", "chosen": "a", "rejected": "b"}']
    path = write_lines(tmp_path / "mixed.jsonl", rows)
    assert train("dpo", tiny_model_dir, path, tmp_path / "strict") == 2
    assert f"{path}:3: malformed JSON" in capsys.readouterr().err
    rc = train("dpo", tiny_model_dir, path, tmp_path / "out", "--on-bad-record", "skip")
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert f"{path}: 10 records, 4 bad records skipped" in cap.out
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["train_examples"] == 10


def test_wrong_config_key_in_yaml(tiny_model_dir, tmp_path, capsys):
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(4))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"beta": 0.1, "learning_rat": 1e-3}))
    err = one_line_error(capsys, train("dpo", tiny_model_dir, data, tmp_path / "out", "--config", str(cfg)))
    assert err.startswith("error: config file: unknown key 'learning_rat'") and "learning_rate" in err


def test_wrong_config_key_as_flag(tiny_model_dir, tmp_path, capsys):
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(4))
    with pytest.raises(SystemExit) as e:
        train("dpo", tiny_model_dir, data, tmp_path / "out", "--betta", "0.1")
    assert e.value.code == 2
    cap = capsys.readouterr()
    assert cap.err == ("error: unknown option --betta (did you mean --beta?); "
                       "`alignkit train dpo --help` lists the options\n")


def test_bad_config_value_is_one_line(tiny_model_dir, tmp_path, capsys):
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(4))
    cfg = tmp_path / "run.yaml"
    cfg.write_text("beta: [0.1,\n")  # not YAML: PyYAML's message spans lines
    err = one_line_error(capsys, train("dpo", tiny_model_dir, data, tmp_path / "out", "--config", str(cfg)))
    assert err.startswith(f"error: {cfg}: not valid YAML")


def test_missing_model_folder(tmp_path, capsys):
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(4))
    err = one_line_error(capsys, train("dpo", tmp_path / "no-such-model", data, tmp_path / "out"))
    assert err.startswith(f"error: {tmp_path / 'no-such-model'}: model folder not found")


def test_folder_without_config_json(tmp_path, capsys):
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(4))
    (tmp_path / "empty").mkdir()
    err = one_line_error(capsys, train("dpo", tmp_path / "empty", data, tmp_path / "out"))
    assert err.startswith(f"error: {tmp_path / 'empty'}: no config.json here")


def test_pickled_weights_are_refused_not_unpickled(tiny_model_dir, tmp_path, capsys):
    marker = tmp_path / "pickle-ran"
    model = pickled_model_folder(tiny_model_dir, tmp_path / "pickled", marker, keep_safetensors=False)
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(4))
    err = one_line_error(capsys, train("dpo", model, data, tmp_path / "out"))
    assert err.startswith(f"error: {model}: no .safetensors weights; alignkit refuses to unpickle .bin files")
    assert not marker.exists()


def _tree(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failing_run_loses_nothing_already_written(tiny_model_dir, tmp_path, capsys):
    data = write_lines(tmp_path / "pairs.jsonl", pair_rows(8))
    out = tmp_path / "out"
    assert main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
                 "--max-steps", "2", "--save-every", "1", "--batch-size", "2", "--eval-fraction", "0",
                 "--progress", "false", "--num-threads", "1"]) == 0
    capsys.readouterr()
    before = _tree(out)
    assert {"checkpoints/step-00000001/state.json", "checkpoints/step-00000002/state.json",
            "metrics.jsonl", "model.safetensors"} <= set(before)

    # resuming with a bad eval file: stops at the eval file's bad line, touches nothing (an eval file is
    # a change of the stored settings: refused first, unless said to be intended)
    bad_eval = write_lines(tmp_path / "eval.jsonl", [GOOD, dict(GOOD, chosen="")])
    err = one_line_error(capsys, train("dpo", tiny_model_dir, data, out, "--resume", "--eval-data", str(bad_eval)))
    assert err.startswith("error: --resume: this run differs from") and f"eval_data '' -> '{bad_eval}'" in err
    assert _tree(out) == before
    err = one_line_error(capsys, train("dpo", tiny_model_dir, data, out, "--resume", "--eval-data", str(bad_eval),
                                       "--resume-allow-changes"))
    assert err == f"error: {bad_eval}:2: field 'chosen': empty text"
    assert _tree(out) == before

    # a fresh run into the same folder would delete metrics.jsonl and rotate the checkpoints away
    err = one_line_error(capsys, train("dpo", tiny_model_dir, data, out))
    assert err == (f"error: --output {out} holds a finished run (summary.json); pass --overwrite to replace it, "
                   "--resume to continue it, or choose another --output")
    assert _tree(out) == before
