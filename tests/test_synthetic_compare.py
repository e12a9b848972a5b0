"""`alignkit world compare`: label budgets per feedback shape, option parsing, medians, and a miniature
comparison through the CLI in which every pairwise method raises its held-out implicit-reward accuracy."""
import json

import pytest

from alignkit.data.records import Binary, Listwise, Pairwise
from alignkit.errors import ConfigError
from alignkit.synthetic.experiments import aggregate, make_labels, parse_arms, parse_sets
from alignkit.synthetic.labelers import LabelerConfig
from alignkit.synthetic.prompts import PromptInfo
from alignkit.synthetic.reward import true_reward

INFOS = [PromptInfo("What is 2 + 3?", "arithmetic", 5, "5", "2 + 3"),
         PromptInfo("How do I steal a car?", "harmful", None, "car", "steal a car")]
CANDS = [["It is 5.", "It is 7.", "The answer is 5, hope this helps.", "Ugh, 4."],
         ["I can't help with that.", "Take the car.", "I cannot help with that, sorry.", "Sure: the car."]]
EXACT = LabelerConfig(temperature=0.0)  # deterministic: always the higher r*


def test_pairwise_best_worst_is_one_call_per_prompt_reading_all_k():
    recs, budget = make_labels("pairwise", INFOS, CANDS, EXACT, "best-worst")
    assert budget == {"labeller_calls": 2, "responses_judged": 8, "records": 2}
    for info, c, r in zip(INFOS, CANDS, recs):
        assert isinstance(r, Pairwise)
        rewards = [true_reward(info.text, y) for y in c]
        assert true_reward(info.text, r.chosen) == max(rewards)
        assert true_reward(info.text, r.rejected) == min(rewards)


def test_disjoint_pairs_judge_each_candidate_once():
    recs, budget = make_labels("pairwise", INFOS, CANDS, EXACT, "disjoint", seed=3)
    assert budget == {"labeller_calls": 4, "responses_judged": 8, "records": 4}
    for k, info in enumerate(INFOS):
        mine = [r for r in recs if r.prompt[0]["content"] == info.text]
        assert sorted(y for r in mine for y in (r.chosen, r.rejected)) == sorted(CANDS[k])
        for r in mine:
            assert true_reward(info.text, r.chosen) >= true_reward(info.text, r.rejected)
    with pytest.raises(ConfigError):
        make_labels("pairwise", INFOS, CANDS, EXACT, "all-pairs")


def test_binary_listwise_and_negative_budgets():
    binary, b = make_labels("binary", INFOS, CANDS, EXACT)
    assert b == {"labeller_calls": 8, "responses_judged": 8, "records": 8}
    assert all(isinstance(r, Binary) for r in binary)
    # temperature 0, threshold 0: thumbs up exactly when r* > 0
    assert [r.label for r in binary] == [true_reward(r.prompt, r.completion) > 0 for r in binary]
    neg, nb = make_labels("negative", INFOS, CANDS, EXACT)
    assert nb["labeller_calls"] == 8 and nb["records"] == sum(not r.label for r in binary)
    assert all(not r.label for r in neg) and neg
    lists, lb = make_labels("listwise", INFOS, CANDS, EXACT)
    assert lb == {"labeller_calls": 2, "responses_judged": 8, "records": 2}
    for info, r in zip(INFOS, lists):
        assert isinstance(r, Listwise) and sorted(r.scores) == [0.0, 1.0, 2.0, 3.0]
        best = r.completions[r.scores.index(3.0)]
        assert true_reward(info.text, best) == max(true_reward(info.text, y) for y in r.completions)
    with pytest.raises(ConfigError):
        make_labels("scored", INFOS, CANDS, EXACT)


def test_parse_arms_and_sets():
    arms = parse_arms("dpo, rdpo2=r-dpo,simpo")
    assert [(a.label, a.method) for a in arms] == [("dpo", "dpo"), ("rdpo2", "r-dpo"), ("simpo", "simpo")]
    glob, arms = parse_sets(["learning-rate=5e-4", "rdpo2.alpha=0.2", "simpo.length_normalize=false",
                             "epochs=3"], arms)
    assert glob == {"learning_rate": 5e-4, "epochs": 3}
    assert arms[1].overrides == {"alpha": 0.2} and arms[2].overrides == {"length_normalize": False}
    assert arms[0].overrides == {}
    with pytest.raises(ConfigError):
        parse_sets(["nosuch.beta=1"], arms)
    with pytest.raises(ConfigError):
        parse_sets(["beta"], arms)


def test_aggregate_takes_the_median_over_seeds():
    def seed(r, wr, sft_r):
        return {"sft": {"mean_reward": sft_r}, "arms": {"dpo": {"row": {"mean_reward": r, "win_rate": wr}}}}
    med = aggregate({0: seed(0.1, 0.6, -0.5), 1: seed(-0.3, 0.4, -0.7), 2: seed(0.4, None, -0.6)})
    assert med["dpo"]["mean_reward"] == pytest.approx(0.1)
    assert med["dpo"]["win_rate"] == pytest.approx(0.5)  # a missing value is left out
    assert med["SFT"]["mean_reward"] == pytest.approx(-0.6)
    assert med["dpo"]["accuracy"] is None


@pytest.mark.slow
def test_mini_compare_through_the_cli_raises_implicit_accuracy(tmp_path, capsys):
    from alignkit.cli import main
    out = tmp_path / "cmp"
    argv = ["world", "compare", "--mini", "--methods", "dpo,ipo,simpo", "--output", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    arms = res["seeds"]["0"]["arms"]
    assert set(arms) == {"dpo", "ipo", "simpo"}
    for label, a in arms.items():
        row = a["row"]
        assert row["acc_end"] > row["acc_start"] + 0.1, (label, row["acc_start"], row["acc_end"])
        assert a["win_rate"]["wins"] + a["win_rate"]["losses"] + a["win_rate"]["ties"] == 16
        assert (out / "seed0" / label / "config.json").is_file()
    assert res["seeds"]["0"]["budget"]["pairwise"]["labeller_calls"] == 128
    table = (out / "results.md").read_text()
    assert all(f"| {lbl} |" in table for lbl in ("SFT", "dpo", "ipo", "simpo"))
    capsys.readouterr()
    assert main(argv) == 0  # a rerun reuses the candidates and every finished arm
    printed = capsys.readouterr().out
    assert printed.count("reusing") >= 4


@pytest.mark.slow
def test_mini_compare_scores_thumbs_and_ranking_methods_on_heldout_labels(tmp_path):
    from alignkit.cli import main
    out = tmp_path / "cmp"
    assert main(["world", "compare", "--mini", "--methods", "kto,lipo", "--output", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    arms = json.loads((out / "results.json").read_text())["seeds"]["0"]["arms"]
    # the SFT model as its own reference scores every response 0 (0.5); KTO separates the held-out thumbs
    # (AUC), LiPO orders the held-out lists' pairs
    for label in ("kto", "lipo"):
        row = arms[label]["row"]
        assert row["acc_start"] == 0.5 and row["acc_end"] > 0.6, (label, row)
