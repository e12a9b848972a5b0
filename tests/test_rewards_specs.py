"""Judge specs and rule rewards: parsing, weights, files, registered kinds, errors."""
import pytest

from alignkit.errors import ConfigError
from alignkit.rewards.judge import Judge, WeightedJudge
from alignkit.rewards.rules import RuleJudge, register_rule
from alignkit.rewards.specs import judge_from_spec, parse_term, register_judge_kind, split_terms

P = ["Say hello to Maya.", [{"role": "user", "content": "What is 2 + 3?"}]]
R = ["Hello Maya, I love this happy day!", "It is 5. Sadly I hate sums."]


def test_builtin_rules():
    assert judge_from_spec("rule:words").score(P, R) == [7.0, 7.0]
    assert judge_from_spec("rule:positive").score(P, R) == [2.0, 0.0]  # love, happy
    assert judge_from_spec("rule:negative").score(P, R) == [0.0, 2.0]  # sadly, hate
    assert judge_from_spec("rule:sentiment").score(P, R) == [2.0, -2.0]
    assert judge_from_spec("rule:contains=maya|day|sum").score(P, R) == [2.0, 1.0]
    assert judge_from_spec("rule:max_words=6").score(P, R) == [-1.0, -1.0]


def test_truth_is_the_bundled_tasks_r_star():
    from alignkit.synthetic.reward import true_reward
    want = [true_reward(P[0], R[0]), true_reward("What is 2 + 3?", R[1])]
    assert judge_from_spec("truth").score(P, R) == pytest.approx(want)
    assert judge_from_spec("rule:truth").score(P, R) == pytest.approx(want)


def test_weighted_sum():
    j = judge_from_spec("0.5*rule:words + 2*rule:positive+-1*rule:negative")
    assert isinstance(j, WeightedJudge)
    assert j.score(P, R) == pytest.approx([0.5 * 7 + 2 * 2, 0.5 * 7 - 2])
    single = judge_from_spec("3*rule:words")
    assert single.score(P, R) == [21.0, 21.0]


def test_plus_splits_only_where_a_term_starts():
    assert split_terms("rm:/runs/a+b/rm+0.3*rule:words") == ["rm:/runs/a+b/rm", "0.3*rule:words"]
    assert split_terms("rule:contains=a+b+truth") == ["rule:contains=a+b", "truth"]
    assert parse_term("0.25*implicit:/p,/r,beta=0.2") == (0.25, "implicit", "/p,/r,beta=0.2")
    assert parse_term("truth") == (None, "truth", "")


def test_rule_from_a_file(tmp_path):
    f = tmp_path / "my_reward.py"
    f.write_text("def shout(prompt, response):\n    return response.count('!')\n\n"
                 "from alignkit.rewards.judge import Judge\n"
                 "class Len(Judge):\n    name = 'len'\n"
                 "    def score(self, prompts, responses):\n        return [len(r) for r in responses]\n")
    assert judge_from_spec(f"file:{f}:shout").score(P, R) == [1.0, 0.0]
    assert judge_from_spec(f"file:{f}:Len").score(P, R) == [len(R[0]), len(R[1])]
    with pytest.raises(ConfigError, match="no 'nope'.*shout"):
        judge_from_spec(f"file:{f}:nope")
    with pytest.raises(ConfigError, match="not found"):
        judge_from_spec(f"file:{tmp_path}/missing.py:f")


def test_registered_rules_and_kinds():
    register_rule("test_exclaim")(lambda prompt, response: response.count("!"))
    assert judge_from_spec("rule:test_exclaim").score(P, R) == [1.0, 0.0]

    class Const(Judge):
        def __init__(self, v):
            self.name, self.v = f"const:{v}", float(v)

        def score(self, prompts, responses):
            return [self.v] * len(responses)

    register_judge_kind("const", Const)
    assert judge_from_spec("2*const:1.5+rule:words").score(P, R) == [10.0, 10.0]


def test_errors_are_config_errors():
    for bad, match in [("", "empty"), ("nope:x", "unknown kind 'nope'"), ("rule:zzz", "unknown rule"),
                       ("rule:contains", "takes an argument"), ("implicit:a,b,c", "POLICY_DIR"),
                       ("truth:x", "no argument"), ("rm:", "folder")]:
        with pytest.raises(ConfigError, match=match):
            judge_from_spec(bad)
    with pytest.raises(ConfigError, match="finite"):
        RuleJudge("rule:nan", lambda p, r: float("nan")).score(["p"], ["r"])
    with pytest.raises(ConfigError, match="not a number"):
        RuleJudge("rule:text", lambda p, r: "high").score(["p"], ["r"])


def test_a_judge_instance_passes_through():
    j = RuleJudge("x", lambda p, r: 1.0)
    assert judge_from_spec(j) is j


def test_rl_and_online_resolve_specs_through_this_module():
    from alignkit.rl.judges import judge_for
    assert judge_for("truth").score(P, R) == judge_from_spec("truth").score(P, R)
    assert judge_for("rule:contains=maya").score(P, R) == [1.0, 0.0]

