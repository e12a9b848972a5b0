"""The Python API (alignkit/api.py): every ```python block of docs/python_api.md runs, in order, in a
folder holding models/base and pairs.jsonl, and prints what it says; run_train with a list of dicts and
with a datasets.Dataset (the issue's row); the API's errors are the command line's one-line messages."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from alignkit.cli import main
from alignkit.data.convert import write_jsonl
from alignkit.errors import AlignkitError, ConfigError, DataError

from conftest import make_pairs

DOC = Path(__file__).resolve().parents[1] / "docs" / "python_api.md"


def blocks() -> list:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def workspace(tmp_path, tiny_model_dir, monkeypatch) -> Path:
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "base")
    write_jsonl(make_pairs(40), tmp_path / "pairs.jsonl")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_example_of_the_python_api_page_runs(workspace):
    code = blocks()
    assert len(code) == 8  # a block added to the page is run here too; its checks go below
    ns: dict = {}
    printed = []
    for i, block in enumerate(code):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"docs/python_api.md block {i + 1}", "exec"), ns)
        printed.append(out.getvalue())
    # 1: a DPO run from a file
    steps, acc = printed[0].split("\n")[-2].split()
    assert steps == "2" and 0.0 <= float(acc) <= 1.0
    assert (workspace / "out" / "dpo" / "model.safetensors").is_file()
    # 2: lists of dicts and a datasets.Dataset; KTO on pairs: 16 pairs -> 32 examples
    assert printed[1].strip().splitlines()[-1] == "32"
    assert json.loads((workspace / "out" / "dpo-rows" / "summary.json").read_text())["steps"] == 2
    # 3: --columns and --chat-template chatml, saved with the tokenizer
    assert printed[2].endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n\n")
    # 4: the two mistakes, one line each
    errors = [line for line in printed[3].splitlines() if line.strip()]
    assert len(errors) == 2
    assert errors[0].startswith("data:1: field 'rejected': missing field")
    assert "--beta" in errors[1]
    # 5: held-out preferences of the trained policy on the split train held out
    pairs, accuracy, ece = printed[4].split()
    assert int(pairs) == 4 and 0.0 <= float(accuracy) <= 1.0 and 0.0 <= float(ece) <= 1.0
    # 6: rule:words counts words
    assert printed[5].split() == ["4.0", "1.0", "True"]
    # 7: greedy completions with a score each
    assert len([ln for ln in printed[6].splitlines() if "->" in ln]) == 2
    # 8: the resolved config and the reader
    lines = printed[7].splitlines()
    assert lines[0].split()[0] == "0.2"
    assert lines[2] == "pairs.jsonl: 40 records Pairwise"


def test_issue_row_run_train_with_a_list_of_dicts_or_a_datasets_dataset(workspace):
    """Was: AttributeError: 'dict' object has no attribute 'prompt'."""
    import datasets

    from alignkit.api import run_train
    rows = [{"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected} for r in make_pairs(20)]
    a = run_train("dpo", "models/base", rows, "out/a", {"max_steps": 2, "batch_size": 4, "num_threads": 1,
                                                       "progress": False, "seed": 3})
    b = run_train("dpo", "models/base", datasets.Dataset.from_list(rows), "out/b",
                  {"max_steps": 2, "batch_size": 4, "num_threads": 1, "progress": False, "seed": 3})
    c = run_train("dpo", "models/base", "pairs.jsonl", "out/c", {"max_steps": 2, "batch_size": 4, "num_threads": 1,
                                                                 "progress": False, "seed": 3, "max_examples": 20})
    assert a["train_examples"] == b["train_examples"] == c["train_examples"] == 18
    # the same rows give the same run, whichever way they come
    assert a["train_last"]["loss"] == pytest.approx(b["train_last"]["loss"], abs=1e-6)
    assert a["train_last"]["loss"] == pytest.approx(c["train_last"]["loss"], abs=1e-6)
    # a DatasetDict's train split; an online method's prompts as dicts
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:4])})
    assert run_train("sft", "models/base", dd, "out/d", {"max_steps": 1, "batch_size": 4, "num_threads": 1,
                                                         "progress": False})["train_examples"] == 18


def test_api_errors_are_the_command_lines_one_line_messages(workspace, capsys):
    from alignkit.api import evaluate, generate, run_train, score, train
    bad_rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q2", "chosen": 3, "rejected": "b"}]
    with pytest.raises(DataError) as e:
        run_train("dpo", "models/base", bad_rows, "out/x")
    assert str(e.value).startswith("data:2: field 'chosen': ")
    # the same option mistakes: the API's message is the command's (after "error: ")
    for flags, options in ((["--beta", "-1"], {"beta": -1}), (["--columns", "answer=x"], {"columns": "answer=x"}),
                           (["--chat-template", "nope"], {"chat_template": "nope"})):
        rc = main(["train", "dpo", "--model", "models/base", "--data", "pairs.jsonl", "--output", "out/y", *flags])
        cli = capsys.readouterr().err.strip()
        with pytest.raises(AlignkitError) as e:
            train("dpo", "models/base", "pairs.jsonl", "out/y", **options)
        api = str(e.value)
        assert rc == 2 and "\n" not in api
        assert cli == f"error: {api}", (cli, api)
    with pytest.raises(ConfigError, match="unknown key 'no_such_option'; known keys: "):
        train("dpo", "models/base", "pairs.jsonl", "out/y", no_such_option=1)
    with pytest.raises(ConfigError, match="--output is required"):
        run_train("dpo", "models/base", "pairs.jsonl", "")
    with pytest.raises(ConfigError, match="data: expected a path, a list of dicts or records, or a datasets.Dataset"):
        run_train("dpo", "models/base", 42, "out/z")
    with pytest.raises(AlignkitError, match="unknown rule 'nope'"):
        score("rule:nope", "pairs.jsonl")
    with pytest.raises(ConfigError, match="^generate: --max-new-tokens must be >= 1, got 0$"):
        generate("models/base", ["hi"], max_new_tokens=0)
    with pytest.raises(DataError, match="^prompts:2: field 'turns'"):
        generate("models/base", ["hi", {"turns": []}])
    with pytest.raises(ConfigError, match="--eval-fraction must be in \\[0, 1\\)"):
        evaluate("models/base", "pairs.jsonl", eval_fraction=1.5)


def test_score_and_evaluate_match_their_commands(workspace, capsys):
    """score() rows are `alignkit rewards score`'s output; evaluate() is `alignkit eval preferences --json`."""
    from alignkit.api import evaluate, score, train
    assert main(["rewards", "score", "--reward", "rule:words", "--data", "pairs.jsonl"]) == 0
    cli_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert score("rule:words", "pairs.jsonl") == cli_rows
    train("dpo", "models/base", "pairs.jsonl", "out/e", max_steps=2, batch_size=4, num_threads=1, progress=False)
    capsys.readouterr()
    assert main(["eval", "preferences", "--model", "out/e", "--data", "pairs.jsonl", "--json"]) == 0
    cli_report = json.loads(capsys.readouterr().out)
    api_report = evaluate("out/e", "pairs.jsonl")
    assert api_report["pairs"] == cli_report["pairs"] == 40
    assert api_report["accuracy"] == pytest.approx(cli_report["accuracy"])


def test_online_method_from_python_with_prompt_dicts_and_a_dataset(workspace):
    """An RL method's prompts as a list of dicts (here under another field name, mapped by columns) or a
    datasets.Dataset: the same prompts, the same run."""
    import datasets

    from alignkit.api import train
    rows = [{"question": f"question {i}: what is two plus three ?"} for i in range(8)]
    opts = dict(reward="rule:words", max_steps=1, samples_per_prompt=2, max_new_tokens=4, batch_size=4,
                num_threads=1, progress=False, seed=1)
    a = train("rloo", "models/base", rows, "out/rl-a", columns="prompt=question", **opts)
    b = train("rloo", "models/base", datasets.Dataset.from_list([{"prompt": r["question"]} for r in rows]),
              "out/rl-b", **opts)
    assert a["train_last"]["reward"] == pytest.approx(b["train_last"]["reward"])
    assert (workspace / "out" / "rl-a" / "model.safetensors").is_file()


def test_columns_in_evaluate_score_and_their_commands(workspace, capsys):
    """--columns (and columns=) for held-out preferences and scoring too."""
    from alignkit.api import evaluate, score, train
    renamed = workspace / "renamed.jsonl"
    renamed.write_text("".join(json.dumps({"q": r.prompt, "good": r.chosen, "bad": r.rejected}) + "\n"
                               for r in make_pairs(40)))
    cols = "prompt=q,chosen=good,rejected=bad"
    assert score("rule:words", str(renamed), columns={"prompt": "q", "chosen": "good", "rejected": "bad"}) == \
        score("rule:words", "pairs.jsonl")
    assert main(["rewards", "score", "--reward", "rule:words", "--data", str(renamed), "--columns", cols]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 40
    train("dpo", "models/base", "pairs.jsonl", "out/cols", max_steps=1, batch_size=4, num_threads=1, progress=False)
    a = evaluate("out/cols", "pairs.jsonl")
    b = evaluate("out/cols", str(renamed), columns=cols)
    assert a["accuracy"] == b["accuracy"] and a["pairs"] == b["pairs"] == 40
    capsys.readouterr()
    assert main(["eval", "preferences", "--model", "out/cols", "--data", str(renamed), "--columns", cols, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(a["accuracy"])
    with pytest.raises(ConfigError, match="--columns: unknown field 'question'"):
        evaluate("out/cols", str(renamed), columns="question=q")
