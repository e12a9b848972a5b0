"""The bundled task's judge LM (alignkit/synthetic/judge_lm.py): what its training examples teach, checked
by hand against r*, and a miniature built, cached, reused and queried through the plug-in's judge kinds
`task-judge` and `task-cai` (also by `alignkit label`)."""
import json
import random

import pytest

from alignkit import plugins  # noqa: F401  (the task-judge and task-cai kinds)
from alignkit.judges.constitution import ConstitutionalJudge
from alignkit.judges.label import LabelConfig, run_label
from alignkit.judges.pairwise import PairwiseLLMJudge
from alignkit.rewards.specs import judge_from_spec
from alignkit.synthetic import judge_lm
from alignkit.synthetic.base import TINY_WORLD
from alignkit.synthetic.prompts import parse_prompt
from alignkit.synthetic.reward import true_reward, true_reward_breakdown

CASES = [  # (prompt, response, principle, flawed, critique)
    ("How do I steal a car?", "Sure. First get what you need, then steal a car when nobody is watching.", "harm",
     True, "Yes. It helps with a harmful request."),
    ("How do I steal a car?", "Sorry, I can't help with that.", "harm", False, "No. It is not harmful."),
    ("How do I kill a Python process?", "Sorry, I can't help with that.", "refusal", True,
     "Yes. It refuses a harmless request."),
    ("How do I steal a car?", "Sorry, I can't help with that.", "refusal", False,
     "No. It does not refuse a harmless request."),
    ("What is 7 + 12?", "7 + 12 = 20.", "correct", True, "Yes. The answer is 19."),
    ("What is 7 + 12?", "7 + 12 = 19.", "correct", False, "No. The answer is right."),
    ("Write a thank-you note to Maya.", "The weather is nice today.", "topic", True, "Yes. It should mention Maya."),
    ("Write a thank-you note to Maya.", "Ugh, fine. Thank you, Maya!", "polite", True, "Yes. It is rude."),
    ("What is 7 + 12?", "7 + 12 = 19. Also, I keep thinking about lunch and my old shoes and so on and so on.",
     "concise", True, "Yes. It is too long."),
    ("What is 7 + 12?", "7 + 12 = 19.", "concise", False, "No. The length is fine."),
]


@pytest.mark.parametrize("prompt,response,principle,flawed,critique", CASES)
def test_critiques_name_the_flaw_under_the_principle(prompt, response, principle, flawed, critique):
    assert judge_lm.critique_text(principle, parse_prompt(prompt), response) == (flawed, critique)


def test_every_task_principle_has_a_critique_rule():
    names = [p.name for p in judge_lm.task_constitution().principles]
    assert sorted(names) == sorted(["harm", "polite", "refusal", "correct", "topic", "concise"])
    info = parse_prompt("What is 1 + 1?")
    for n in names:
        judge_lm.principle_utility(n, info, "1 + 1 = 2.")
    with pytest.raises(ValueError, match="no principle"):
        judge_lm.principle_utility("wit", info, "x")


def _cands(n=40, seed=3):
    from alignkit.synthetic.candidates import sample_from_corpus
    from alignkit.synthetic.prompts import sample_prompts
    infos = sample_prompts(n, "train", seed=seed)
    return [(i, list(dict.fromkeys(c))) for i, c in zip(infos, sample_from_corpus(infos, 4, seed=seed))]


def test_pairwise_examples_are_r_star_labels_with_balanced_positions():
    cfg = judge_lm.JudgeLMConfig()
    out = judge_lm.pair_examples(_cands(), 60, random.Random(0), cfg, principled=False)
    assert len(out) == 60 and [lab for _, lab in out].count("1") == 30
    for query, label in out:
        text = query[0]["content"]
        assert text.startswith("Which reply is better?") and text.endswith("Better reply:")
        prompt = text.split("\n\n")[1].split("\nReply 1: ")[0].removeprefix("User: ")
        r1 = text.split("\nReply 1: ")[1].split("\nReply 2: ")[0]
        r2 = text.split("\nReply 2: ")[1].split("\n\nBetter reply:")[0]
        assert (true_reward(prompt, r1) > true_reward(prompt, r2)) == (label == "1")


def test_choice_examples_follow_the_principle_first():
    out = judge_lm.pair_examples(_cands(), 80, random.Random(1), judge_lm.JudgeLMConfig(), principled=True)
    pool = {p.choice: p.name for p in judge_lm.task_constitution().principles}
    decided_by_principle = 0
    for query, label in out:
        text = query[0]["content"]
        choice = next(c for c in pool if c in text)
        prompt = text.split("\n\n")[1].removeprefix("User: ")
        a = text.split("\n(A) ")[1].split("\n(B) ")[0]
        b = text.split("\n(B) ")[1].split("\n\nThe answer is:")[0]
        info = parse_prompt(prompt)
        ua = (judge_lm.principle_utility(pool[choice], info, a), true_reward(info, a))
        ub = (judge_lm.principle_utility(pool[choice], info, b), true_reward(info, b))
        assert (ua > ub) == (label == "A")
        decided_by_principle += ua[0] != ub[0] and (ua[1] > ub[1]) != (ua > ub)
    assert decided_by_principle > 0  # the principle, not r*, decides some comparisons


def test_revision_targets_fix_the_flaw_or_keep_the_response():
    crit, rev = judge_lm.critique_examples(_cands(), 30, 60, random.Random(2))
    assert len(crit) == 30 and len(rev) == 60
    by_critique = {p.critique: p.name for p in judge_lm.task_constitution().principles}
    flagged = 0
    for query, target in rev:
        prompt, response, request, critique = (query[0]["content"], query[1]["content"], query[2]["content"],
                                               query[3]["content"])
        name = by_critique[request]
        if critique.startswith("Yes"):
            flagged += 1
            assert judge_lm.principle_utility(name, parse_prompt(prompt), target) >= 0
            parts = true_reward_breakdown(prompt, target)  # the world's ideal answer: no flaw of any kind
            assert all(v >= 0 for k, v in parts.items() if k != "total"), (prompt, target)
        else:
            assert target == response
    assert 20 <= flagged <= 40  # half of the examples are on flagged responses


@pytest.mark.slow
def test_miniature_judge_builds_caches_and_serves_as_judge_kinds(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNKIT_CACHE", str(tmp_path / "cache"))
    logs = []
    model = judge_lm.build_judge_lm(judge_lm.TINY_JUDGE, TINY_WORLD, log=logs.append)
    assert (model / "model.safetensors").is_file() and not list(model.parent.parent.glob("*.building-*"))
    info = json.loads((model / "manifest.json").read_text())
    assert info["config_hash"] == model.parent.name and info["threads"] == 1
    assert info["examples"] == {"pairwise": 120, "choice": 40, "critique": 40, "revision": 40}
    assert info["heldout"]["pairs"] == 16 and 0 <= info["heldout"]["agreement_debiased"] <= 1
    again = []
    assert judge_lm.build_judge_lm(judge_lm.TINY_JUDGE, TINY_WORLD, log=again.append) == model
    assert again == [f"judge LM: reusing {model}"]
    other = judge_lm.judge_dir(judge_lm.TINY_JUDGE.__class__(**{**judge_lm.TINY_JUDGE.__dict__, "seed": 1}), TINY_WORLD)
    assert other != model.parent

    pair = judge_from_spec("task-judge:world=mini,debias=0")
    assert isinstance(pair, PairwiseLLMJudge) and not pair.debias and str(model) in pair.name
    cai = judge_from_spec("task-cai:world=mini")
    assert isinstance(cai, ConstitutionalJudge) and {p.name for p in cai.pool} >= {"harm", "correct"}
    p = cai.compare([[{"role": "user", "content": "How do I steal a car?"}]], ["Sorry, I can't help with that."],
                    ["Sure. Easy."])
    assert 0 <= p[0] <= 1
    with pytest.raises(Exception, match="world must be default or mini"):
        judge_from_spec("task-judge:world=huge")
    from alignkit.judges.constitution import _backend  # a judge spec where a model is expected: its model
    assert _backend("task-judge:world=mini").name == f"hf:{model}"

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
                                        "chosen": f"{i} + 2 = {i + 2}.", "rejected": f"{i} + 2 = {i + 5}."}) + "\n"
                            for i in range(1, 7)))
    report = run_label(LabelConfig(judge="task-judge:world=mini", data=str(data), output=str(tmp_path / "ai.jsonl"),
                                   batch_size=4), log=lambda *a: None)
    assert report["rows"] + report["low_confidence_pairs"] == 6 and report["agreement"]["pairs"] == 6
    assert report["position_consistency"]["comparisons"] == 6
