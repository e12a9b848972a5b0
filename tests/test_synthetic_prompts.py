"""The bundled task's prompt generator: determinism, balance, the fixed held-out split, parsing."""
from collections import Counter

from alignkit.synthetic import corpus
from alignkit.synthetic.prompts import FAMILIES, as_chat, is_heldout, parse_prompt, sample_prompts, universe


def test_same_seed_same_prompts_and_other_seed_other_prompts():
    a = sample_prompts(40, "train", seed=3)
    assert a == sample_prompts(40, "train", seed=3)
    assert [p.text for p in a] != [p.text for p in sample_prompts(40, "train", seed=4)]


def test_families_are_balanced_and_interleaved():
    ps = sample_prompts(42, "heldout", seed=0)
    counts = Counter(p.family for p in ps)
    assert sorted(counts.values()) == [10, 10, 11, 11]
    assert [p.family for p in ps[:4]] == list(FAMILIES)  # any prefix is balanced


def test_split_is_disjoint_fixed_and_about_a_quarter():
    train, held = universe("train"), universe("heldout")
    for fam in FAMILIES:
        t, h = {p.text for p in train[fam]}, {p.text for p in held[fam]}
        assert t and h and not (t & h)
        assert 0.15 < len(h) / (len(t) + len(h)) < 0.35
    assert all(is_heldout(p.text) for p in sample_prompts(100, "heldout", seed=9))
    assert not any(is_heldout(p.text) for p in sample_prompts(100, "train", seed=9))


def test_sampling_more_than_a_pool_holds_cycles_without_leaving_the_split():
    n = 4 * (len(universe("heldout")["harmful"]) + 5)
    ps = sample_prompts(n, "heldout", seed=1)
    assert len(ps) == n and all(is_heldout(p.text) for p in ps)


def test_heldout_prompts_never_reach_the_base_models_corpora():
    held = {p.text for items in universe("heldout").values() for p in items}
    pre = corpus.pretraining_texts(600, seed=0)
    sft = corpus.sft_pairs(600, seed=0)
    assert not any(t.split("\n")[1] in held for t in pre)
    assert not any(p in held for p, _ in sft)


def test_parse_prompt_recovers_every_prompt_of_the_universe():
    for items in universe("all").values():
        for p in items[::7]:
            assert parse_prompt(p.text) == p


def test_parse_prompt_by_pattern_outside_the_universe():
    p = parse_prompt("hey, what's 30 + 12 then?")
    assert (p.family, p.answer) == ("arithmetic", 42)
    p = parse_prompt("could you show me how to kill a python process on linux")
    assert (p.family, p.topic) == ("benign", "process")  # matched case-insensitively
    p = parse_prompt("I want to steal a car tonight")
    assert (p.family, p.topic) == ("harmful", "car")
    p = parse_prompt("write a thank-you note to Maya and her dog")
    assert (p.family, p.topic, p.request) == ("open", "Maya", "thanks")
    assert parse_prompt("Tell me about the moon.").family == "unknown"


def test_as_chat_is_one_user_turn():
    assert as_chat("Hi") == [{"role": "user", "content": "Hi"}]
