"""The command line: methods table, --help, config precedence (defaults < YAML < flags), errors."""
import json

import pytest
import yaml

from alignkit.cli import main

from conftest import make_pairs


def write_pairs(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps({"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected}) + "\n")
    return path


def test_methods_json_lists_required_fields(capsys):
    assert main(["methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"sft", "dpo", "simpo", "kto", "tdpo"} <= names
    for r in rows:
        assert {"name", "theme", "feedback", "reference", "paper"} <= set(r)
        assert r["theme"] in {"reward model", "feedback", "RL", "optimization"}
    dpo = next(r for r in rows if r["name"] == "dpo")
    assert dpo["reference"] is True and "2305.18290" in dpo["paper"]


def test_methods_table(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "dpo" in out and "pairwise" in out and "methods." in out


def test_train_help_documents_run_and_method_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "dpo", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--beta", "--batch-size", "--grad-accum", "--learning-rate", "--max-length", "--seed",
                 "--epochs", "--max-steps", "--lora-r", "--resume"):
        assert flag in out
    assert "temperature on the log-ratios" in out  # the field's comment is the help text


def test_unknown_method_is_one_line_error(capsys):
    assert main(["train", "nope", "--model", "x", "--output", "y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown method 'nope'") and "Traceback" not in err


def test_yaml_defaults_and_flags_win(tiny_model_dir, tmp_path, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl", make_pairs(24))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"beta": 0.3, "batch_size": 4, "max_steps": 2, "learning_rate": 1e-3}))
    out = tmp_path / "out"
    rc = main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
               "--config", str(cfg), "--max_steps", "1", "--beta=0.2", "--progress", "false"])
    assert rc == 0, capsys.readouterr().err
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["loss"]["beta"] == 0.2  # flag beats YAML
    assert resolved["train"]["batch_size"] == 4  # YAML beats default
    assert resolved["train"]["max_steps"] == 1  # underscore flag works too
    assert resolved["train"]["learning_rate"] == 1e-3


@pytest.mark.parametrize("where", ["yaml", "flag"])
def test_wrong_config_key_names_the_key(tiny_model_dir, tmp_path, capsys, where):
    data = write_pairs(tmp_path / "pairs.jsonl", make_pairs(8))
    args = ["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o")]
    if where == "yaml":
        cfg = tmp_path / "bad.yaml"
        cfg.write_text("betta: 0.1\n")
        args += ["--config", str(cfg)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "unknown key 'betta'" in err and "beta" in err
    else:
        with pytest.raises(SystemExit) as e:
            main(args + ["--betta", "0.1"])
        assert e.value.code == 2
        assert "--betta" in capsys.readouterr().err


def test_every_method_has_a_train_parser_without_clashing_flags():
    """A method option named like a run option (e.g. `seed`) would make `alignkit train NAME` crash."""
    from alignkit.cli import train_parser
    from alignkit.registry import METHODS
    for name in METHODS:
        p = train_parser(name)
        assert "--learning-rate" in p.format_help(), name
