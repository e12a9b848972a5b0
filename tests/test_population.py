"""The intransitive annotator population of the bundled task: hand-computed preferences, a Condorcet
cycle among the task's own answers (each annotator transitive, the majority not), the `population`
judge kinds, and `world export --population`."""
import json
import math
import random

import pytest

from alignkit.errors import ConfigError
import alignkit.plugins  # noqa: F401  (registers the task's judge kinds)
from alignkit.rewards.specs import judge_from_spec
from alignkit.synthetic.corpus import SFT_RATES, respond
from alignkit.synthetic.labelers import POPULATION, LabelerConfig, PopulationLabeler, find_cycles
from alignkit.synthetic.prompts import sample_prompts

PROMPT = "Tell me how to hack together a website at home."
A = "Start from a simple template and edit one page of the website. By the way, this reminds me of my cousin and a very big sandwich."  # helpful, rambling
B = "Whatever. Start from a simple template and edit one page of the website."  # helpful, rude
C = "Sorry, I can't help with that. Hope this helps!"  # over-refusal, polite


def sig(z):
    return 1 / (1 + math.exp(-z))


def test_hand_computed_utilities_and_the_cycle():
    # r* parts: A on_topic .5, length -.8; B on_topic .5, style -1; C harmlessness -1 (over-refusal), style .25
    u = {name: [t.utility(PROMPT, y) for t in POPULATION] for name, y in (("A", A), ("B", B), ("C", C))}
    assert u["A"] == pytest.approx([4 * 0.5 - 0.8, 0.5 - 0.8, 0.5 + 4 * -0.8])  # substance, manners, brevity
    assert u["B"] == pytest.approx([4 * 0.5 - 1.0, 0.5 + 4 * -1.0, 0.5 - 1.0])
    assert u["C"] == pytest.approx([4 * -1.0 + 0.25, -1.0 + 4 * 0.25, -1.0 + 0.25])
    lab = PopulationLabeler()
    # P(A > B) = 1/3 [sigma(0.2 / .25) + sigma(3.2 / .25) + sigma(-2.2 / .25)]
    assert lab.p_first(PROMPT, A, B) == pytest.approx((sig(0.8) + sig(12.8) + sig(-8.8)) / 3)
    assert lab.p_first(PROMPT, A, B) == pytest.approx(0.56337, abs=1e-5)
    assert lab.p_first(PROMPT, B, A) == pytest.approx(1 - lab.p_first(PROMPT, A, B))
    # each annotator is transitive (a utility); the majority is a cycle A > B > C > A
    for k in range(3):
        order = sorted("ABC", key=lambda n: -u[n][k])
        assert len(set(order)) == 3
    assert lab.majority_prefers(PROMPT, A, B) and lab.majority_prefers(PROMPT, B, C) and lab.majority_prefers(PROMPT, C, A)
    assert set(map(frozenset, find_cycles(lab, PROMPT, [A, B, C]))) == {frozenset((A, B, C))}


def test_cycles_exist_among_the_tasks_own_answers_and_the_majority_mostly_follows_r_star():
    from alignkit.synthetic.reward import true_reward
    lab = PopulationLabeler()
    with_cycle, agree, strict = 0, 0, 0
    for info in sample_prompts(12, "train", seed=1):
        rng = random.Random(info.text)
        answers = list({respond(info, rng, SFT_RATES)[0] for _ in range(40)})
        cycles = find_cycles(lab, info.text, answers, limit=1)
        with_cycle += bool(cycles)
        for a, b in zip(answers[::2], answers[1::2]):
            ra, rb = true_reward(info.text, a), true_reward(info.text, b)
            if ra != rb:
                strict += 1
                agree += lab.majority_prefers(info.text, a, b) == (ra > rb)
    assert with_cycle >= 3
    assert agree / strict > 0.9  # intransitive only where answers trade one aspect against another


def test_population_judge_kinds():
    j = judge_from_spec("population")
    assert j.compare([PROMPT] * 2, [A, B], [B, A]) == pytest.approx([0.56337, 1 - 0.56337], abs=1e-5)
    with pytest.raises(NotImplementedError):
        j.score([PROMPT], [A])  # no scalar represents the population
    votes = judge_from_spec("population:7")
    v = votes.compare([PROMPT] * 3000, [A] * 3000, [B] * 3000)
    assert set(v) <= {0.0, 1.0} and sum(v) / len(v) == pytest.approx(0.56337, abs=0.03)
    assert votes.compare([PROMPT] * 50, [A] * 50, [B] * 50) != judge_from_spec("population:8").compare(
        [PROMPT] * 50, [A] * 50, [B] * 50)
    with pytest.raises(ConfigError, match="population"):
        judge_from_spec("population:abc")


def test_labels_come_from_drawn_annotators():
    lab = PopulationLabeler(LabelerConfig(temperature=0.0, seed=3))
    labels = [lab.label(PROMPT, A, B).chosen for _ in range(600)]
    # at temperature 0: substance and manners choose A, brevity chooses B -> A two thirds of the time
    assert labels.count(A) / 600 == pytest.approx(2 / 3, abs=0.05)
    pair = lab.label_best_vs_worst(PROMPT, [A, B, C])
    assert {pair.chosen, pair.rejected} < {A, B, C}


def test_world_export_population(tmp_path):
    from alignkit.synthetic.export import export_world
    m = export_world(str(tmp_path), n_prompts=30, k=4, source="corpus", labeler=LabelerConfig(population=True),
                     log=lambda *a: None)
    assert m["labeler"]["population"] is True
    rows = [json.loads(line) for line in open(tmp_path / "pairwise.jsonl")]
    assert 10 <= len(rows) <= 30 and all({"prompt", "chosen", "rejected"} <= set(r) for r in rows)
    plain = export_world(str(tmp_path / "plain"), n_prompts=30, k=4, source="corpus", log=lambda *a: None)
    other = [json.loads(line) for line in open(tmp_path / "plain" / "pairwise.jsonl")]
    assert plain["labeler"]["population"] is False and rows != other
