"""End to end through the command line: train rm / rm-pointwise / rm-listwise on generated data, then
`rewards score` and `rewards eval` with the trained model."""
import json

import pytest
import torch

from alignkit.cli import main
from alignkit.data.convert import write_jsonl
from alignkit.data.records import Listwise, Scored

from conftest import make_pairs

RUN = ["--max-steps", "16", "--batch-size", "8", "--learning-rate", "3e-3", "--eval-fraction", "0.25",
       "--max-length", "64", "--progress", "false"]


def rows(path):
    return [json.loads(line) for line in open(path)]


@pytest.mark.slow
def test_train_rm_then_score_and_eval(tiny_model_dir, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification
    data = write_jsonl(make_pairs(48), tmp_path / "pairs.jsonl")
    out = tmp_path / "rm"
    assert main(["train", "rm", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
                 "--center-coef", "0.01", *RUN]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_examples"] == 12 and summary["train_examples"] == 36
    acc = summary["heldout_accuracy"]
    assert acc["start"] == summary["eval_start"]["rewards/accuracy"]
    assert acc["end"] >= 0.9  # chosen says "sure", rejected "no": learnable in a few steps
    evals = [r for r in rows(out / "metrics.jsonl") if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [0, 16]
    assert "held-out accuracy" in capsys.readouterr().out
    AutoModelForSequenceClassification.from_pretrained(out)  # Hugging Face format

    scored = tmp_path / "scored.jsonl"
    assert main(["rewards", "score", "--reward", f"rm:{out}", "--data", str(data), "--output", str(scored)]) == 0
    got = rows(scored)
    assert len(got) == 48 and {"reward_chosen", "reward_rejected", "prompt"} <= set(got[0])
    capsys.readouterr()
    assert main(["rewards", "eval", "--reward", f"rm:{out}", "--data", str(data), "--eval-fraction", "0.25",
                 "--against", "-1*rule:contains=cannot help", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["pairs"] == 12  # the same held-out pairs as training's split
    assert rep["accuracy"] == pytest.approx(acc["end"])
    assert 0.0 <= rep["ece"] <= 1.0 and sum(b["count"] for b in rep["reliability"]) == 24
    assert rep["against"]["accuracy_on_labels"] == 1.0  # only rejected responses say "cannot help"
    assert rep["against"]["accuracy"] == pytest.approx(rep["accuracy"])


@pytest.mark.slow
def test_train_rm_pointwise_and_listwise(tiny_model_dir, tmp_path):
    pairs = make_pairs(40)
    scored = [Scored(p.prompt, p.chosen, 4.0) for p in pairs[:20]] + [Scored(p.prompt, p.rejected, 1.0) for p in pairs[20:]]
    data = write_jsonl(scored, tmp_path / "scored.jsonl")
    out = tmp_path / "pw"
    assert main(["train", "rm-pointwise", "--model", str(tiny_model_dir), "--data", str(data),
                 "--output", str(out), *RUN]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["eval_end"]["loss"] < s["eval_start"]["loss"]
    info = json.loads((out / "alignkit_reward.json").read_text())
    assert info["label_mean"] > 1.0 and info["label_std"] > 0  # z-scored labels, mapped back by the judge

    lists = [Listwise(p.prompt, (p.chosen, p.rejected, "the mat ."), (2.0, 0.0, 1.0)) for p in pairs]
    data = write_jsonl(lists, tmp_path / "lists.jsonl")
    out = tmp_path / "lw"
    assert main(["train", "rm-listwise", "--model", str(tiny_model_dir), "--data", str(data),
                 "--output", str(out), *RUN]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["heldout_accuracy"]["end"] > s["heldout_accuracy"]["start"]


@pytest.mark.slow
def test_rm_with_lora_and_margin_saves_a_merged_model(tiny_model_dir, tmp_path):
    from alignkit.rewards.scoring import RewardModelJudge
    data = write_jsonl(make_pairs(24), tmp_path / "pairs.jsonl")
    out = tmp_path / "rm-lora"
    assert main(["train", "rm", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(out),
                 "--lora-r", "4", "--margin", "true", "--max-steps", "3", "--batch-size", "4",
                 "--max-length", "64", "--progress", "false"]) == 0
    assert not (out / "adapter_config.json").exists()  # merged into a plain model
    scores = RewardModelJudge(str(out)).score(["p"], ["sure"])
    assert len(scores) == 1 and torch.isfinite(torch.tensor(scores)).all()


def test_wrong_feedback_shape_is_a_data_error(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl([Scored("p", "a", 1.0), Scored("q", "b", 2.0)], tmp_path / "s.jsonl")
    rc = main(["train", "rm", "--model", str(tiny_model_dir), "--data", str(data), "--output",
               str(tmp_path / "o"), "--progress", "false"])
    assert rc == 2 and "error:" in capsys.readouterr().err
