"""iterative-dpo: rounds of sampling the current policy, judging, best-vs-worst pairs and a pairwise loss."""
import json

import pytest
import yaml

from alignkit.cli import main
from alignkit.online.iterative import best_vs_worst, round_prompts


def test_best_vs_worst_by_hand():
    p = best_vs_worst("q", ["a", "bbb", "cc"], [1.0, 3.0, 2.0], "s")
    assert (p.chosen, p.rejected, p.prompt) == ("bbb", "a", "q")
    assert best_vs_worst("q", ["a", "b"], [2.0, 2.0], "s") is None  # a tie says nothing
    assert best_vs_worst("q", ["a", "a"], [1.0, 2.0], "s") is None  # the same text twice
    assert best_vs_worst("q", ["a", "b"], [1.0, 2.5], "s", min_gap=2.0) is None  # DNO keeps large margins only
    assert best_vs_worst("q", ["a", "b"], [1.0, 3.0], "s", min_gap=2.0).chosen == "b"


def test_round_prompts_take_fresh_prompts_and_wrap():
    ps = list("abcde")
    assert round_prompts(ps, 2, 0) == ["a", "b"] and round_prompts(ps, 2, 1) == ["c", "d"]
    assert round_prompts(ps, 2, 2) == ["e", "a"]
    assert round_prompts(ps, 0, 3) == ps and round_prompts(ps, 9, 1) == ps


def _prompts(tmp_path, n=8):
    f = tmp_path / "prompts.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n" for i in range(n)))
    return f


ARGS = ["--reward", "rule:chars", "--samples-per-prompt", "4", "--max-new-tokens", "10", "--max-steps", "2",
        "--batch-size", "2", "--progress", "false", "--eval-fraction", "0", "--learning-rate", "1e-3"]


def test_two_rounds_end_to_end_and_resume(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "it"
    argv = ["train", "iterative-dpo", "--model", str(tiny_model_dir), "--data", str(_prompts(tmp_path)), "--output",
            str(out), "--iterations", "2", "--prompts-per-iteration", "4", "--reference", "previous", *ARGS]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    assert summary["rounds"][1]["policy"] == str(out / "round-1")  # round 2 samples round 1's model
    for r in (1, 2):
        pairs = [json.loads(line) for line in open(out / f"round-{r}" / "pairs.jsonl")]
        assert pairs and all(len(p["chosen"]) > len(p["rejected"]) for p in pairs)  # rule:chars prefers longer
    assert [r["reference"] for r in summary["rounds"]] == [str(tiny_model_dir), str(out / "round-1")]
    # reference = the round's starting model, so it is taken from the policy before its first step ("")
    assert yaml.safe_load((out / "round-2" / "config.yaml").read_text())["ref"] == ""
    assert (out / "model.safetensors").read_bytes() == (out / "round-2" / "model.safetensors").read_bytes()
    # the rounds' prompts are disjoint (fresh prompts each round)
    seen = [{json.loads(line)["prompt"] for line in open(out / f"round-{r}" / "pairs.jsonl")} for r in (1, 2)]
    assert not (seen[0] & seen[1])

    stamp = (out / "round-1" / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    assert capsys.readouterr().out.count("done before, reusing") == 2
    assert (out / "round-1" / "model.safetensors").stat().st_mtime_ns == stamp


def test_reference_initial_is_the_starting_model_in_every_round(tiny_model_dir, tmp_path):
    out = tmp_path / "it"
    assert main(["train", "iterative-dpo", "--model", str(tiny_model_dir), "--data", str(_prompts(tmp_path)),
                 "--output", str(out), "--iterations", "2", *ARGS]) == 0
    assert yaml.safe_load((out / "round-2" / "config.yaml").read_text())["ref"] == str(tiny_model_dir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"][0]["prompts"] == 8  # prompts_per_iteration 0: every prompt every round


def test_bad_settings_are_clear_errors(tiny_model_dir, tmp_path, capsys):
    base = ["train", "iterative-dpo", "--model", str(tiny_model_dir), "--data", str(_prompts(tmp_path)),
            "--output", str(tmp_path / "x")]
    assert main(base + ["--loss", "kto", "--reward", "rule:chars"]) == 2
    assert "not a pairwise or listwise loss" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # an sppo flag; the inner loss is dpo
        main(base + ["--reward", "rule:chars", "--eta", "1"])
    assert e.value.code == 2 and "unknown option --eta" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # the inner loss's flags are typed
        main(base + ["--reward", "rule:chars", "--loss", "sppo", "--eta", "x"])
    assert e.value.code == 2 and "--eta" in capsys.readouterr().err
    assert main(base) == 2
    assert "needs --reward" in capsys.readouterr().err
    assert main(base + ["--reward", "rule:chars", "--reference", "sft"]) == 2
    assert "--reference must be one of initial, previous, got 'sft'" in capsys.readouterr().err
    assert main(base + ["--reward", "rule:chars", "--min-gap", "1000", "--max-new-tokens", "4"]) == 2
    assert "differ enough under the judge" in capsys.readouterr().err


def test_win_rates_by_hand():
    from alignkit.online.iterative import best_vs_worst_win_rates, win_rates
    import math
    s = [1.0, 0.0, -1.0]
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    want = [(0.5 + sig(1) + sig(2)) / 3, (sig(-1) + 0.5 + sig(1)) / 3, (sig(-2) + sig(-1) + 0.5) / 3]
    assert win_rates(s) == [pytest.approx(w) for w in want]
    assert sum(win_rates(s)) == pytest.approx(1.5)  # the K win rates of a list always sum to K/2
    rec = best_vs_worst_win_rates("q", ["a", "b", "c"], s, "x")
    assert rec.completions == ("a", "c") and rec.scores == (pytest.approx(want[0]), pytest.approx(want[2]))


def test_sppo_rounds_end_to_end(tiny_model_dir, tmp_path):
    out = tmp_path / "sppo"
    assert main(["train", "iterative-dpo", "--model", str(tiny_model_dir), "--data", str(_prompts(tmp_path)),
                 "--output", str(out), "--loss", "sppo", "--eta", "10", "--iterations", "2", "--reference",
                 "previous", *ARGS]) == 0
    rows = [json.loads(line) for line in open(out / "round-2" / "pairs.jsonl")]
    assert rows and all(len(r["completions"][0]) > len(r["completions"][1]) for r in rows)  # rule:chars: longer wins
    assert all(r["scores"][0] > 0.5 > r["scores"][1] for r in rows)  # the best beats the policy, the worst loses
    assert yaml.safe_load((out / "round-2" / "config.yaml").read_text())["method"] == "sppo"


def test_sppo_target_from_a_pairwise_judge_by_hand():
    """A pairwise-only judge's probabilities are SPPO's P(y > pi_t) as they are (Wu et al. 2024: the mean of
    P(y > y_k) over the K samples, y itself included at 1/2), not passed through a sigmoid a second time."""
    import math
    from types import SimpleNamespace

    import torch

    from alignkit.losses.base import ListwiseInput
    from alignkit.losses.nash import SPPOConfig, sppo
    from alignkit.online.iterative import IterativeConfig, IterativeRecipe
    from alignkit.rewards.judge import Judge
    from conftest import equal_token_logps

    table = {("a", "b"): 0.9, ("a", "c"): 0.7, ("a", "d"): 0.6, ("b", "c"): 0.2, ("b", "d"): 0.5, ("c", "d"): 0.4}

    class Scripted(Judge):  # compare only, from the table (and 1 - P the other way round)
        def compare(self, prompts, a, b):
            return [table[(x, y)] if (x, y) in table else 1 - table[(y, x)] for x, y in zip(a, b)]

    job = SimpleNamespace(method_cfg=IterativeConfig(reward="scripted", loss="sppo"), method=SimpleNamespace(
        name="iterative-dpo"), inner=(SimpleNamespace(feedback="listwise"), SPPOConfig(eta=10.0)))
    recipe = IterativeRecipe(job)
    groups = [("q", ["a", "b", "c", "d"])]
    scores = recipe.scores(Scripted(), groups)
    rec = recipe.records("q", groups[0][1], scores[0], "s")[0]
    # by hand: P(a > pi) = (0.5 + 0.9 + 0.7 + 0.6) / 4 = 0.675 (a is the best), P(b > pi) = (0.1 + 0.5 + 0.2 + 0.5) / 4
    # = 0.325 (the worst); the old recipe's sigmoid of the round-robin means gave 0.5 + about (0.9 - 0.5)/4
    assert rec.completions == ("a", "b")
    assert rec.scores == (pytest.approx(0.675), pytest.approx(0.325))
    # SPPO's targets eta (P - 1/2) = 10 * (0.175, -0.175): log-ratios at the targets give zero loss, zero at 3.5
    inp = ListwiseInput(equal_token_logps([1.75, -1.75], [2, 2]), torch.tensor([rec.scores], dtype=torch.float64),
                        equal_token_logps([0.0, 0.0], [2, 2]))
    assert sppo(inp, SPPOConfig(eta=10.0)).loss.item() == pytest.approx(0.0, abs=1e-12)
    inp = ListwiseInput(equal_token_logps([0.0, 0.0], [2, 2]), torch.tensor([rec.scores], dtype=torch.float64),
                        equal_token_logps([0.0, 0.0], [2, 2]))
    assert sppo(inp, SPPOConfig(eta=10.0)).loss.item() == pytest.approx(1.75 ** 2)
    # a judge with scores keeps the Bradley-Terry reading, P = (1/K) sum_j sigma(s_i - s_j)
    from alignkit.rewards.rules import RuleJudge
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    s = recipe.scores(RuleJudge("n", lambda p, r: float(len(r))), [("q", ["x", "yy", "zzz"])])
    rec = recipe.records("q", ["x", "yy", "zzz"], s[0], "s")[0]
    assert rec.scores == (pytest.approx((sig(2) + sig(1) + 0.5) / 3), pytest.approx((sig(-2) + sig(-1) + 0.5) / 3))


def test_reuse_rounds_replays_the_previous_rounds_records(tiny_model_dir, tmp_path):
    out = tmp_path / "replay"
    assert main(["train", "iterative-dpo", "--model", str(tiny_model_dir), "--data", str(_prompts(tmp_path)),
                 "--output", str(out), "--iterations", "3", "--prompts-per-iteration", "4", "--reference", "previous",
                 "--reuse-rounds", "1", *ARGS, "--max-steps", "1"]) == 0
    n = [sum(1 for _ in open(out / f"round-{r}" / "pairs.jsonl")) for r in (1, 2, 3)]
    rounds = json.loads((out / "summary.json").read_text())["rounds"]
    assert "replayed" not in rounds[0] and [r.get("replayed") for r in rounds[1:]] == [n[0], n[1]]
    # each round trains on its own records and the previous round's (one round back, not two)
    trained = [json.loads((out / f"round-{r}" / "summary.json").read_text())["train_examples"] for r in (1, 2, 3)]
    assert trained == [n[0], n[1] + n[0], n[2] + n[1]]
    from alignkit.online.rounds import replayed_records
    assert len(replayed_records(out, 3, 2, "pairs.jsonl", "pairwise")) == n[0] + n[1]
    assert replayed_records(out, 1, 5, "pairs.jsonl", "pairwise") == []
