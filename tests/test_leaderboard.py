"""`alignkit leaderboard` on tiny models: scoring given models (a missing and a broken folder get one-line
errors while the other cells finish), training methods and scoring them (seeds, sweeps, frontier,
curves, wall time and peak memory per cell), resuming, the outputs, and the command line."""
from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import pytest

import alignkit.plugins  # noqa: F401  (the bundled task registers itself, as in the CLI)
from alignkit.data.convert import write_jsonl
from alignkit.errors import ConfigError
from alignkit.leaderboard import LeaderboardConfig, apply_preset, run_leaderboard
from alignkit.leaderboard.cells import run_cell
from alignkit.leaderboard.report import bar_chart, line_chart
from alignkit.leaderboard.runner import plan_runs
from conftest import make_pairs

SMALL = ("bundled.n_prompts=6", "bundled.nll_demos=4", "bundled.max_new_tokens=8")


def quiet(*a, **k):
    pass


def test_models_mode_errors_stay_in_their_cells_and_a_rerun_resumes(tmp_path, tiny_model_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    pairs = write_jsonl(make_pairs(10), tmp_path / "pairs.jsonl")
    cfg = LeaderboardConfig(output=str(tmp_path / "out"), seeds=(0, 1), tasks=("bundled", "preferences"),
                            models=(f"tiny={tiny_model_dir}", f"missing={tmp_path / 'absent'}", f"broken={broken}"),
                            task_option=SMALL + (f"preferences.data={pairs}",), baseline=str(tiny_model_dir))
    res = run_leaderboard(cfg, log=quiet)
    table = res["table"]
    assert table["tiny"]["bundled"]["metrics"]["win_rate"]["mean"] == 0.5  # the baseline against itself
    assert table["tiny"]["bundled"]["metrics"]["mean_reward"]["n"] == 2
    assert table["tiny"]["preferences"]["metrics"]["accuracy"]["mean"] == 0.5  # its own reference
    assert table["missing"]["bundled"]["error"] == f"{tmp_path / 'absent'}: model folder not found"
    err = table["broken"]["bundled"]["error"]
    assert err and "\n" not in err and "broken" in err
    ok = [c for c in res["cells"] if c["row"] == "tiny"]
    assert len(ok) == 4 and all(c["status"] == "ok" and c["seconds"] > 0 and c["peak_rss_mib"] > 0 for c in ok)
    out = tmp_path / "out"
    md = (out / "leaderboard.md").read_text()
    assert f"| missing | error: {tmp_path / 'absent'}: model folder not found" in md
    rows = list(csv.DictReader(open(out / "leaderboard.csv")))
    assert {"tiny", "missing", "broken"} == {r["model"] for r in rows}
    html = (out / "report.html").read_text()
    assert "<table id='leaderboard'>" in html and html.count("<figure class='chart'") == len(res["charts"]) > 0
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained
    again = run_leaderboard(cfg, log=quiet)
    reused = [c for c in again["cells"] if c["row"] == "tiny"]
    assert all(c["reused"] for c in reused)
    assert not any(c["reused"] for c in again["cells"] if c["row"] in ("missing", "broken"))  # failures rerun


@pytest.mark.slow
def test_methods_mode_trains_sweeps_and_scores(tmp_path, tiny_model_dir):
    pairs = write_jsonl(make_pairs(24), tmp_path / "pairs.jsonl")
    cfg = LeaderboardConfig(output=str(tmp_path / "out"), methods=("dpo", "thumbs=kto", "sft"), model=str(tiny_model_dir),
                            data=str(pairs), label_budget=20, max_steps=2, batch_size=4, seeds=(0, 1),
                            tasks=("bundled", "preferences"), task_option=SMALL, sweep=("dpo.beta=0.5",),
                            set=("max_length=96",))
    res = run_leaderboard(cfg, log=quiet)
    labels = [r["label"] for r in res["rows"]]
    assert labels == ["start", "dpo", "dpo beta=0.5", "thumbs", "sft"]
    assert res["setup"]["0"]["train_pairs"] + res["setup"]["0"]["heldout_pairs"] == 20
    trains = [c for c in res["cells"] if c["phase"] == "train"]
    assert len(trains) == 8 and all(c["status"] == "ok" and c["steps"] == 2 for c in trains)
    assert all(c["peak_rss_mib"] > 0 and c["seconds"] > 0 for c in trains)
    dpo = res["table"]["dpo"]
    assert dpo["bundled"]["metrics"]["kl_to_ref"]["n"] == 2 and dpo["preferences"]["metrics"]["accuracy"]["n"] == 2
    fr = {g["group"]: g for g in res["frontier"]["bundled"]}
    assert [p["sweep"] for p in sorted(fr["dpo"]["points"], key=lambda p: p["label"])] == [{}, {"beta": 0.5}]
    assert {c["row"] for c in res["curves"]} == {"dpo", "dpo beta=0.5", "thumbs", "sft"}
    assert all(len(c["series"]["loss"]) == 2 for c in res["curves"])
    run = tmp_path / "out" / "runs" / "seed1" / "thumbs"
    assert (run / "config.json").is_file() and (run / "metrics.jsonl").is_file()
    again = run_leaderboard(cfg, log=quiet)  # resumable: every finished cell is reused
    assert all(c["reused"] for c in again["cells"])


def test_a_failed_training_cell_does_not_stop_the_others(tmp_path, tiny_model_dir):
    pairs = write_jsonl(make_pairs(10), tmp_path / "pairs.jsonl")
    cfg = LeaderboardConfig(output=str(tmp_path / "out"), methods=("dpo", "bad=dpo"), model=str(tiny_model_dir),
                            data=str(pairs), max_steps=1, batch_size=4, tasks=("preferences",),
                            set=(f"bad.ref={tmp_path / 'no-ref'}", "max_length=96"), isolate=False)
    res = run_leaderboard(cfg, log=quiet)
    cells = {c["name"]: c for c in res["cells"]}
    assert cells["train dpo seed0"]["status"] == "ok"
    bad = cells["train bad seed0"]
    assert bad["status"] == "error" and "no-ref" in bad["error"] and "\n" not in bad["error"]
    assert res["table"]["bad"]["preferences"]["error"] == "not trained (its training cell failed)"
    assert res["table"]["dpo"]["preferences"]["metrics"]["accuracy"]["n"] == 1


def _add(a, b):
    return a + b


def _sleep(seconds):
    import time
    time.sleep(seconds)


def test_a_crashing_cell_is_reported_and_timed_out_cells_stop():
    import os
    died = run_cell(os._exit, {"status": 3}, isolate=True, threads=0)
    assert died["status"] == "error" and "exited with status 3" in died["error"]
    slow = run_cell(_sleep, {"seconds": 30}, isolate=True, threads=0, timeout=0.5)
    assert slow["status"] == "error" and "timed out after 0.5 s" in slow["error"]
    ok = run_cell(_add, {"a": 1, "b": 2}, isolate=True, threads=0)
    assert ok["status"] == "ok" and ok["value"] == 3 and ok["peak_rss_mib"] > 0


def test_config_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="either --models"):
        LeaderboardConfig(output="x")
    with pytest.raises(ValueError, match="exclude each other"):
        LeaderboardConfig(output="x", models=("a",), methods=("dpo",))
    with pytest.raises(ValueError, match="starts: later"):
        LeaderboardConfig(output="x", methods=("dpo",), starts=("later",))
    with pytest.raises(ConfigError, match="no method takes the option 'betta'"):
        plan_runs(LeaderboardConfig(output="x", methods=("dpo",), set=("betta=1",)))
    with pytest.raises(ConfigError, match="kto: kto takes no option 'eta'"):
        plan_runs(LeaderboardConfig(output="x", methods=("dpo", "kto"), sweep=("kto.eta=1,2",)))
    with pytest.raises(ConfigError, match="unknown task 'mmlu'"):
        run_leaderboard(LeaderboardConfig(output=str(tmp_path / "o"), models=("a",), tasks=("mmlu",)), log=quiet)
    with pytest.raises(ConfigError, match="unknown key 'n_prompt'"):
        run_leaderboard(LeaderboardConfig(output=str(tmp_path / "o"), models=("a",), task_option=("bundled.n_prompt=3",)),
                        log=quiet)


def test_runs_of_starts_and_sweeps_and_presets():
    runs = plan_runs(LeaderboardConfig(output="x", methods=("dpo", "kto"), starts=("model", "base"),
                                       set=("beta=0.2", "kto.desirable_weight=1.5"), sweep=("dpo.beta=0.2,0.5",)))
    assert [r.label for r in runs] == ["dpo (from SFT)", "dpo (from SFT) beta=0.5", "kto (from SFT)",
                                       "dpo (from base)", "dpo (from base) beta=0.5", "kto (from base)"]
    assert runs[0].options == {"beta": 0.2} and runs[1].options == {"beta": 0.5} and runs[1].group == "dpo (from SFT)"
    assert runs[2].options == {"beta": 0.2, "desirable_weight": 1.5}
    p = apply_preset(LeaderboardConfig(output="x", preset="sft-vs-base", seeds=(0, 1)))
    assert p.methods == ("dpo", "ipo", "kto", "cpo") and p.starts == ("model", "base") and p.seeds == (0, 1)
    mine = apply_preset(LeaderboardConfig(output="x", preset="ppo-vs-dpo", methods=("dpo",)))
    assert mine.methods == ("dpo",) and mine.sweep  # a field the user set wins over the preset
    assert [r.label for r in plan_runs(apply_preset(LeaderboardConfig(output="x", preset="ppo-vs-dpo")))] == [
        "dpo", "dpo beta=0.03", "dpo beta=1.0", "iterative-dpo", "ppo", "ppo kl_coef=0.2"]


def test_charts_are_well_formed_svg():
    svg = bar_chart("r*", [("a", -0.5, -0.7, -0.4), ("b", 0.25, 0.2, 0.3), ("c", None, None, None)], True)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}rect")) == 2
    line = line_chart("f", [("dpo", "#000", [(0.1, 0.2), (1.0, 0.5)], ["beta=1", "beta=0.1"])], "KL", "r*", markers=True)
    root = ET.fromstring(line)
    assert len(root.findall(".//{http://www.w3.org/2000/svg}circle")) == 2


def test_the_command_line(tmp_path, tiny_model_dir, capsys):
    from alignkit.commands import build_parser
    from alignkit.commands import leaderboard
    p, sub = build_parser()
    if "leaderboard" not in sub.choices:
        leaderboard.register(sub)
    with pytest.raises(SystemExit) as e:  # every option's help renders
        p.parse_args(["leaderboard", "--help"])
    assert e.value.code == 0 and "--task-option" in capsys.readouterr().out
    args = p.parse_args(["leaderboard", "--models", f"a={tiny_model_dir}", "--tasks", "bundled", "--task-option",
                         "bundled.n_prompts=4", "--task-option", "bundled.nll_demos=0", "--output",
                         str(tmp_path / "o"), "--isolate", "false", "--seeds", "3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| a | -" in out or "| a | " in out
    assert json.loads((tmp_path / "o" / "leaderboard.json").read_text())["seeds"] == [3]
