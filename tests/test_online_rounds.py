"""The iterative methods' shared rounds: --stop-when rules (each driven by a scripted judge, stop round checked
exactly), dno, self-rewarding (with EFT), iterative-cringe, resume."""
import json
import math
import re
from pathlib import Path

import pytest

from alignkit.cli import main
from alignkit.errors import ConfigError
from alignkit.online import watch
from alignkit.online.stopping import StopRules, decide, parse_stop_when, win_rate_interval

# ---------------------------------------------------------------------------------------------- pure parts


def test_parse_stop_when():
    assert parse_stop_when("") == StopRules()
    r = parse_stop_when("winrate, kl:5, plateau=0.02:3, max:6")
    assert (r.winrate, r.kl, r.plateau, r.max_rounds) == (0.5, 5.0, (0.02, 3), 6)
    assert parse_stop_when("plateau").plateau == (0.01, 2) and parse_stop_when("winrate:0.55").winrate == 0.55
    assert parse_stop_when("max:3").watches is False and parse_stop_when("kl:1").watches
    for bad, msg in (("kl", "kl:B"), ("max", "max:N"), ("foo", "unknown rule"), ("kl:x", "not a number"),
                     ("max:0", ">= 1"), ("winrate,winrate", "twice"), ("winrate:1.5", "[0, 1)")):
        with pytest.raises(ConfigError, match=re.escape(msg)):
            parse_stop_when(bad)


def test_win_rate_interval_by_hand():
    w = win_rate_interval([1, 0.5, 0.5, 0.5], 0.95)  # mean 0.625, sample sd 0.25, se 0.125
    assert w["win_rate"] == pytest.approx(0.625)
    assert w["low"] == pytest.approx(0.625 - 1.959964 * 0.125, abs=1e-5)
    assert (w["wins"], w["ties"], w["losses"], w["n"]) == (1, 3, 0, 4)
    assert win_rate_interval([1, 1, 1])["low"] == 1.0  # no spread, no width


def test_decide_each_rule():
    h = [{"round": 0, "judge_reward": 1.0, "kl": 0.0}]
    ok = {"win_rate": 1.0, "low": 0.9, "high": 1.0, "n": 4, "confidence": 0.95}
    h.append({"round": 1, "judge_reward": 2.0, "kl": 0.5, "win_rate": ok})
    rules = parse_stop_when("winrate,kl:1,plateau:0.01:1,max:3")
    assert decide(rules, h) == []
    h.append({"round": 2, "judge_reward": 2.01, "kl": 1.5, "win_rate": {**ok, "low": 0.5}})
    fired = {f["rule"]: f for f in decide(rules, h)}
    assert set(fired) == {"winrate", "kl", "plateau"}
    assert fired["plateau"]["gains"] == [pytest.approx(0.005)] and fired["kl"]["kl"] == 1.5
    h.append({"round": 3, "judge_reward": 3.0, "kl": 0.1, "win_rate": ok})
    assert [f["rule"] for f in decide(rules, h)] == ["max"]


def test_ordering_agreement_and_judge_scores():
    from alignkit.online.rounds import judge_scores, ordering_agreement
    from alignkit.rewards.judge import Judge
    assert ordering_agreement([3, 2, 1], [1, 2, 3]) == (0, 3)
    assert ordering_agreement([3, 2, 2], [3, 1, 2]) == (2, 2)  # the tie of the first list is not compared

    class Pairs(Judge):  # a pairwise-only judge: the longer text wins with probability 0.9
        def compare(self, prompts, a, b):
            return [0.9 if len(x) > len(y) else 0.1 if len(x) < len(y) else 0.5 for x, y in zip(a, b)]
    s = judge_scores(Pairs(), [("q", ["a", "bbb", "cc"])])[0]
    assert s == [pytest.approx(0.1), pytest.approx(0.9), pytest.approx(0.5)]


def test_dno_win_rates_and_cringe_records_by_hand():
    from alignkit.online.dno import preference_win_rates
    from alignkit.online.iterative_cringe import cringe_records
    from alignkit.rewards.rules import RuleJudge
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    w = preference_win_rates(RuleJudge("n", lambda p, r: float(len(r))), [("q", ["a", "bb", "ccc"])])[0]
    assert w == [pytest.approx((sig(-1) + sig(-2)) / 2), pytest.approx(0.5), pytest.approx((sig(1) + sig(2)) / 2)]
    recs = cringe_records("q", ["a", "b", "c", "d"], [1.0, 3.0, 0.0, 2.0], "s")
    assert [(r.completion, r.label) for r in recs] == [("b", True), ("c", False)]  # the best, the worst
    recs = cringe_records("q", ["a", "b", "c", "d"], [1.0, 3.0, 0.0, 2.0], "s", bad_below=1.5)
    assert [(r.completion, r.label) for r in recs] == [("b", True), ("a", False), ("c", False)]
    assert cringe_records("q", ["a", "b"], [1.0, 1.0], "s") == []


# ---------------------------------------------------------------------------------------------- scripted judge

JUDGE = '''
import re
SCRIPT = {script!r}
def score(prompt, response):
    m = re.match(r"heldout r(\\d+) p(\\d+)$", response)
    if m:  # a held-out answer of round t: its scripted score
        return SCRIPT[int(m.group(1))][int(m.group(2))]
    return float(len(response))  # the training samples: longer is better, so every round has pairs
'''


def _files(tmp_path, script, n_train=4, n_held=4):
    (tmp_path / "judge.py").write_text(JUDGE.format(script=script))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n"
                                                  for i in range(n_train)))
    (tmp_path / "held.jsonl").write_text("".join(json.dumps({"prompt": f"held {i} :"}) + "\n" for i in range(n_held)))


def _round_of(model_path: str, initial) -> int:
    return 0 if Path(model_path) == Path(initial) else int(Path(model_path).name.split("-")[1])


@pytest.fixture
def scripted(monkeypatch, tiny_model_dir):
    """The held-out answers of round t are 'heldout rT pI', so the scripted judge controls every figure."""
    def fake(model_path, prompts, max_new_tokens, seed, trust_remote_code=False):
        t = _round_of(model_path, tiny_model_dir)
        return watch.Samples([f"heldout r{t} p{i}" for i in range(len(prompts))], [[1]] * len(prompts),
                             [[2]] * len(prompts))
    monkeypatch.setattr(watch, "heldout_samples", fake)
    return tiny_model_dir


def _run(model, tmp_path, stop_when, extra=(), iterations=6, method="iterative-dpo", name="run"):
    out = tmp_path / name
    argv = ["train", method, "--model", str(model), "--data", str(tmp_path / "train.jsonl"), "--output", str(out),
            "--reward", f"file:{tmp_path / 'judge.py'}:score", "--iterations", str(iterations), "--stop-when", stop_when,
            "--heldout-data", str(tmp_path / "held.jsonl"), "--samples-per-prompt", "3", "--sample-temperature", "1.5",
            "--max-new-tokens", "8", "--max-steps", "1", "--batch-size", "2", "--progress", "false",
            "--eval-fraction", "0", *extra]
    return out, argv


def _stopped(out) -> dict:
    return json.loads((out / "summary.json").read_text())["stopped"]


def test_stop_winrate(scripted, tmp_path, capsys):
    # rounds 1 and 2 beat their predecessor on every prompt (interval [1, 1]); round 3 ties on 3 of 4 prompts
    # and wins one: 0.625 with lower bound 0.625 - 1.96 * 0.125 = 0.38 <= 0.5 -> stop after round 3
    _files(tmp_path, {0: [0, 0, 0, 0], 1: [1, 1, 1, 1], 2: [2, 2, 2, 2], 3: [2, 2, 2, 3], 4: [9, 9, 9, 9]})
    out, argv = _run(scripted, tmp_path, "winrate")
    assert main(argv) == 0
    s = _stopped(out)
    assert s["round"] == 3 and [r["rule"] for r in s["rules"]] == ["winrate"]
    assert s["rules"][0]["win_rate"] == pytest.approx(0.625) and s["rules"][0]["low"] == pytest.approx(0.38, abs=0.01)
    assert s["result_round"] == 2  # the last round that passed
    assert (out / "model.safetensors").read_bytes() == (out / "round-2" / "model.safetensors").read_bytes()
    assert not (out / "round-4").exists()
    log = capsys.readouterr().out
    assert "stopped after round 3 by winrate: 0.625" in log
    # resuming a stopped run reuses its rounds and stops at the same round
    assert main(argv + ["--resume"]) == 0
    log = capsys.readouterr().out
    assert log.count("done before, reusing") == 3 and _stopped(out)["round"] == 3


def test_stop_plateau(scripted, tmp_path):
    # held-out judge rewards 1, 2, 3, 3.01, 3.02: relative gains 1, 0.5, 0.0033, 0.0033 -> below 0.01 for
    # 2 rounds after round 4
    _files(tmp_path, {t: [v] * 4 for t, v in enumerate([1.0, 2.0, 3.0, 3.01, 3.02, 5.0])})
    out, argv = _run(scripted, tmp_path, "plateau:0.01:2", ["--stop-keep", "last"])
    assert main(argv) == 0
    s = _stopped(out)
    assert s["round"] == 4 and s["rules"][0]["rule"] == "plateau" and s["result_round"] == 4
    assert s["rules"][0]["gains"] == [pytest.approx(0.01 / 3), pytest.approx(0.01 / 3.01)]
    summary = json.loads((out / "summary.json").read_text())
    assert [h["judge_reward"] for h in summary["heldout"]] == pytest.approx([1.0, 2.0, 3.0, 3.01, 3.02])


def test_stop_kl_budget(scripted, tmp_path, monkeypatch):
    _files(tmp_path, {t: [float(t)] * 4 for t in range(7)})
    kls = {1: 0.5, 2: 1.5, 3: 2.5, 4: 0.1}
    monkeypatch.setattr(watch, "estimate_kl",
                        lambda policy, initial, samples, trust=False: kls[_round_of(policy, scripted)])
    out, argv = _run(scripted, tmp_path, "kl:2")
    assert main(argv) == 0
    s = _stopped(out)
    assert s["round"] == 3 and s["rules"] == [{"rule": "kl", "kl": 2.5, "budget": 2.0}] and s["result_round"] == 2


def test_stop_max_rounds_and_other_methods(scripted, tmp_path):
    _files(tmp_path, {t: [float(t)] * 4 for t in range(7)})
    out, argv = _run(scripted, tmp_path, "max:2", method="iterative-cringe")
    assert main(argv) == 0
    s = _stopped(out)
    assert s["round"] == 2 and s["rules"] == [{"rule": "max", "rounds": 2, "max": 2}] and s["result_round"] == 2
    recs = [json.loads(line) for line in open(out / "round-1" / "thumbs.jsonl")]
    assert {r["label"] for r in recs} == {True, False}
    by_prompt = {}
    for r in recs:
        by_prompt.setdefault(r["prompt"], []).append(r)
    for rs in by_prompt.values():  # the scripted judge prefers longer answers: the positive is the longest
        assert len(rs[0]["completion"]) > max(len(r["completion"]) for r in rs[1:]) and rs[0]["label"]
    # dno and sppo-via-iterative-dpo take the same rules
    for method, extra in (("dno", ["--min-gap", "0"]), ("iterative-dpo", ["--loss", "sppo", "--reference", "previous"])):
        _files(tmp_path, {0: [0] * 4, 1: [1] * 4, 2: [1] * 4, 3: [5] * 4})
        out2, argv2 = _run(scripted, tmp_path, "winrate", extra, method=method, name=method)
        assert main(argv2) == 0
        s = _stopped(out2)
        assert s["round"] == 2 and s["rules"][0]["win_rate"] == 0.5  # round 2 ties round 1 everywhere


# ---------------------------------------------------------------------------------------------- methods

TEMPLATE = """=== preamble ===
Score the reply.
=== sample ===
{context}
Reply: {response}
=== ending ===
Score:
=== labels ===
0 1 2 3 4 5
"""


def test_self_rewarding_with_eft_and_agreement(tiny_model_dir, tmp_path):
    (tmp_path / "t.txt").write_text(TEMPLATE)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n" for i in range(4)))
    (tmp_path / "held.jsonl").write_text("".join(json.dumps({"prompt": f"held {i} :"}) + "\n" for i in range(3)))
    (tmp_path / "eft.jsonl").write_text("".join(json.dumps({"prompt": f"q{i}", "completion": "a" * (i + 1), "score": i * 1.2})
                                                + "\n" for i in range(5)))
    out = tmp_path / "sr"
    argv = ["train", "self-rewarding", "--model", str(tiny_model_dir), "--data", str(tmp_path / "train.jsonl"),
            "--output", str(out), "--iterations", "2", "--judge-options", f"cot=0,template={tmp_path / 't.txt'}",
            "--eft-data", str(tmp_path / "eft.jsonl"), "--eft-steps", "1", "--eval-judge", "rule:chars",
            "--heldout-data", str(tmp_path / "held.jsonl"), "--stop-when", "max:2", "--max-new-tokens", "8",
            "--sample-temperature", "1.5", "--max-steps", "1", "--batch-size", "2", "--progress", "false",
            "--eval-fraction", "0"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "self-rewarding" and summary["stopped"]["round"] == 2
    r2 = json.loads((out / "round-2" / "round.json").read_text())
    assert r2["policy"] == r2["reference"] == str(out / "round-1")  # M_t judges, samples and is the reference
    assert 0 <= r2["judge_agreement"] <= 1 and r2["judge_agreement_pairs"] > 0
    assert "eval_reward" in r2["heldout"] and "eval_win_rate" in r2["heldout"]
    # EFT: the judge's query -> the score label nearest the judgment's score
    assert (out / "round-1" / "eft" / "model.safetensors").is_file() and (out / "round-2" / "eft").is_dir()
    from alignkit.judges.specs import llm_judge
    from alignkit.online.self_rewarding import eft_demonstrations
    from alignkit.data.records import Scored
    j = llm_judge("llm-score", f"hf:{tiny_model_dir},cot=0,template={tmp_path / 't.txt'}")
    d = eft_demonstrations(j, [Scored("q", "ans", 3.4), Scored("q", "ans", 9.0)])
    assert [x.completion for x in d] == ["3", "5"]
    text = d[0].prompt[0]["content"] if isinstance(d[0].prompt, list) else d[0].prompt
    assert "Reply: ans" in text and text.rstrip().endswith("Score:")


def test_dno_teacher_candidates_and_margin(tiny_model_dir, tmp_path):
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"prompt": f"question {i} :"}) + "\n" for i in range(4)))
    gold = "a very long teacher answer that is longer than any sample"
    (tmp_path / "teacher.jsonl").write_text("".join(json.dumps({"prompt": f"question {i} :", "completion": gold}) + "\n"
                                                    for i in range(4)))
    out = tmp_path / "dno"
    assert main(["train", "dno", "--model", str(tiny_model_dir), "--data", str(tmp_path / "train.jsonl"),
                 "--output", str(out), "--iterations", "1", "--reward", "rule:chars", "--teacher-data",
                 str(tmp_path / "teacher.jsonl"), "--max-new-tokens", "6", "--max-steps", "1", "--batch-size", "2",
                 "--progress", "false", "--eval-fraction", "0"]) == 0
    pairs = [json.loads(line) for line in open(out / "round-1" / "pairs.jsonl")]
    assert pairs and all(p["chosen"] == gold for p in pairs)  # rule:chars: the teacher's long answer wins
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"] == "previous" and summary["method"] == "dno"
    assert summary["rounds"][0]["mean_reward_samples"] > 5  # the judge's own scores (characters), not the win rates
    # the margin is in win-rate units
    assert main(["train", "dno", "--model", str(tiny_model_dir), "--data", str(tmp_path / "train.jsonl"),
                 "--output", str(tmp_path / "x"), "--reward", "rule:chars", "--min-gap", "2"]) == 2


def test_dno_with_a_pairwise_judge_asks_every_pair():
    from alignkit.online.dno import preference_win_rates
    from alignkit.rewards.judge import Judge

    class Pairs(Judge):  # P(longer wins) = 0.8
        calls = 0

        def compare(self, prompts, a, b):
            Pairs.calls += len(a)
            return [0.8 if len(x) > len(y) else 0.2 if len(x) < len(y) else 0.5 for x, y in zip(a, b)]
    w = preference_win_rates(Pairs(), [("q", ["a", "bb", "ccc"]), ("r", ["x", "y"])])
    assert w[0] == [pytest.approx(0.2), pytest.approx(0.5), pytest.approx(0.8)] and w[1] == [0.5, 0.5]
    assert Pairs.calls == 3 + 1
