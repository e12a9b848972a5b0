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
    assert resolved["beta"] == 0.2  # flag beats YAML
    assert resolved["batch_size"] == 4  # YAML beats default
    assert resolved["max_steps"] == 1  # underscore flag works too
    assert resolved["learning_rate"] == 1e-3


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


def _leaf_parsers(parser, path=()):
    """(command path, parser) of every subcommand that runs something."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub is not parser:
                    yield from _leaf_parsers(sub, path + (name,))
    if parser._defaults.get("func"):
        yield path, parser


def test_every_subcommand_option_comes_from_a_config_dataclass():
    """No hand-written flag: every option is a config field (add_dataclass_args prints its default), or
    --config FILE.yaml."""
    from alignkit.cli import build_parser
    leaves = dict(_leaf_parsers(build_parser()[0]))
    assert {("rewards", "score"), ("world", "compare"), ("synthetic", "unlearn"), ("eval", "curves"),
            ("models", "get"), ("tiny-model",), ("serve",), ("quickstart",)} <= set(leaves)
    for path, p in leaves.items():
        for a in p._actions:
            if not a.option_strings or a.dest in ("help", "config") or a.help == "==SUPPRESS==":
                continue
            assert a.help and "(default: " in a.help, (path, a.option_strings)


def test_a_command_reads_its_options_from_yaml_and_flags_win(tmp_path, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl", make_pairs(3))
    cfg = tmp_path / "score.yaml"
    cfg.write_text(yaml.safe_dump({"reward": "rule:words", "data": str(data), "output": str(tmp_path / "a.jsonl")}))
    assert main(["rewards", "score", "--config", str(cfg), "--output", str(tmp_path / "b.jsonl")]) == 0
    assert not (tmp_path / "a.jsonl").exists()
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {"reward_chosen", "reward_rejected"} <= set(rows[0])
    cfg.write_text("rewrad: rule:words\n")
    assert main(["rewards", "score", "--config", str(cfg)]) == 2
    assert "unknown key 'rewrad'" in capsys.readouterr().err


def test_command_errors_are_one_line_and_name_the_field(capsys):
    for argv, words in [(["rewards", "tokens", "--model", "m", "--data", "d", "--color", "red"],
                         ("color", "auto, always, never")),
                        (["world", "compare", "--methods", "dpo", "--output", "o", "--pairs", "all"],
                         ("pairs", "best-worst, disjoint")),
                        (["serve", "--port", "70000"], ("port", "[0, 65535]")),
                        (["eval"], ("model", "required"))]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and all(w in err for w in words), err
    with pytest.raises(SystemExit) as e:
        main(["rewards", "score", "--rewrd", "x"])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown option --rewrd (did you mean --reward?); "
                                              "`alignkit rewards score --help`")


def test_world_is_the_synthetic_group():
    from alignkit.cli import build_parser
    p = build_parser()[0]
    a = p.parse_args(["world", "base", "--force"])
    b = p.parse_args(["synthetic", "base", "--force"])
    assert a.func.__code__ is b.func.__code__ and a.force is b.force is True
