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


@pytest.mark.slow
def test_eval_preferences_of_a_dpo_policy(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(make_pairs(32), tmp_path / "pairs.jsonl")
    policy = tmp_path / "dpo"
    assert main(["train", "dpo", "--model", str(tiny_model_dir), "--data", str(data), "--output", str(policy),
                 "--beta", "0.5", *RUN]) == 0
    capsys.readouterr()
    assert main(["eval", "preferences", "--model", str(policy), "--data", str(data), "--eval-fraction", "0.25",
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    trained = json.loads((policy / "summary.json").read_text())["eval_end"]["rewards/accuracy"]
    # the same held-out pairs, the same implicit reward beta * (log pi - log pi_ref) as DPO's own metric
    assert rep["pairs"] == 8 and rep["accuracy"] == pytest.approx(trained)
    assert rep["judge"] == f"implicit:{policy}"


@pytest.mark.slow
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    data = write_jsonl(make_pairs(24), tmp_path / "pairs.jsonl")
    base = ["train", "rm", "--model", str(tiny_model_dir), "--data", str(data), "--batch-size", "4",
            "--learning-rate", "3e-3", "--lr-scheduler", "constant", "--max-length", "64", "--progress", "false"]
    assert main(base + ["--output", str(tmp_path / "straight"), "--max-steps", "4"]) == 0
    assert main(base + ["--output", str(tmp_path / "resumed"), "--max-steps", "2", "--save-every", "2"]) == 0
    assert main(base + ["--output", str(tmp_path / "resumed"), "--max-steps", "4", "--resume"]) == 0
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    steps = [r["step"] for r in rows(tmp_path / "resumed" / "metrics.jsonl") if r["split"] == "train"]
    assert steps == [1, 2, 3, 4]
    s = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert s["heldout_accuracy"]["start"] == json.loads((tmp_path / "straight" / "summary.json").read_text())[
        "heldout_accuracy"]["start"]


@pytest.mark.slow
def test_eval_preferences_on_thumbs_data_reports_auc(tiny_model_dir, tmp_path, capsys):
    from alignkit.data.records import Binary
    recs = [Binary(p.prompt, p.chosen, True) for p in make_pairs(6)] + \
           [Binary(p.prompt, p.rejected, False) for p in make_pairs(6)]
    data = write_jsonl(recs, tmp_path / "thumbs.jsonl")
    # the untrained model as its own reference: every implicit reward is 0, so the AUC is exactly chance
    assert main(["eval", "preferences", "--model", str(tiny_model_dir), "--ref", str(tiny_model_dir),
                 "--data", str(data), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["responses"] == 12 and rep["thumbs_up"] == 6 and rep["auc"] == 0.5 and rep["reward_gap"] == 0.0


@pytest.mark.slow
def test_eval_preferences_skips_bad_records_like_train(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(make_pairs(8), tmp_path / "pairs.jsonl")
    lines = data.read_text().splitlines()
    bad = json.loads(lines[0]); bad["chosen"] = ""  # an empty chosen text, as in hh-rlhf
    data.write_text("\n".join(lines[:3] + [json.dumps(bad)] + lines[3:]) + "\n")
    args = ["eval", "preferences", "--model", str(tiny_model_dir), "--ref", str(tiny_model_dir), "--data", str(data),
            "--json"]
    assert main(args) == 2
    assert f"{data}:4" in capsys.readouterr().err  # file and line of the bad record
    assert main(args + ["--on-bad-record", "skip"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["pairs"] == 8 and "1 bad record" in out.err
