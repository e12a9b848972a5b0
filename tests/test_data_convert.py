"""Conversions between feedback shapes (outputs worked out by hand), the split, and TRL round trips."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignkit.data.convert import (demonstrations_from_pairwise, listwise_to_pairwise, pairwise_to_binary,
                                   scored_to_pairwise, split_records, to_trl_dict, write_jsonl)
from alignkit.data.readers import read_records
from alignkit.data.records import Binary, Demonstration, Listwise, Pairwise, Scored
from alignkit.errors import ConfigError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# scores: b (3) > a (2) = d (2) > c (0)
RANKED = Listwise("Q", ("a", "b", "c", "d"), (2.0, 3.0, 0.0, 2.0), source="f.jsonl:7")


def pairs_of(records):
    return [(p.chosen, p.rejected, p.margin) for p in records]


def test_listwise_to_pairwise_all_pairs_skip_ties():
    out = listwise_to_pairwise([RANKED])
    # best first: b > a, b > d, b > c, then a > c, d > c; a = d is a tie and gives no pair
    assert pairs_of(out) == [("b", "a", 1.0), ("b", "d", 1.0), ("b", "c", 3.0), ("a", "c", 2.0), ("d", "c", 2.0)]
    assert all(p.prompt == "Q" and p.source == "f.jsonl:7" for p in out)


def test_listwise_to_pairwise_best_vs_rest():
    assert pairs_of(listwise_to_pairwise([RANKED], mode="best_vs_rest")) == [
        ("b", "a", 1.0), ("b", "d", 1.0), ("b", "c", 3.0)]


def test_listwise_to_pairwise_leaves_out_identical_texts_and_checks_arguments():
    same = Listwise("Q", ("x", "x", "y"), (2.0, 1.0, 0.0))
    assert pairs_of(listwise_to_pairwise([same])) == [("x", "y", 2.0), ("x", "y", 1.0)]
    with pytest.raises(ConfigError, match="mode"):
        listwise_to_pairwise([RANKED], mode="best")
    with pytest.raises(TypeError, match="expected Listwise records, got Pairwise"):
        listwise_to_pairwise([Pairwise("Q", "a", "b")])


def test_pairwise_to_binary():
    out = pairwise_to_binary([Pairwise("Q1", "good", "bad", source="s:1"), Pairwise("Q2", "yes", "no")])
    assert out == [Binary("Q1", "good", True, source="s:1"), Binary("Q1", "bad", False, source="s:1"),
                   Binary("Q2", "yes", True), Binary("Q2", "no", False)]


def test_scored_to_pairwise_groups_by_prompt_and_respects_min_gap():
    conv = [{"role": "user", "content": "Hi"}]
    records = [Scored("Q", "a", 1.0, "s:1"), Scored(conv, "hello", 5.0, "s:2"), Scored("Q", "b", 4.0, "s:3"),
               Scored("Q", "c", 1.5, "s:4"), Scored(list(conv), "yo", 2.0, "s:5"), Scored("Q", "d", 4.0, "s:6")]
    out = scored_to_pairwise(records)
    # "Q": b=4, d=4, c=1.5, a=1 -> b>c, b>a, d>c, d>a, c>a (b=d tie left out); then the conversation
    assert [(p.prompt, p.chosen, p.rejected, p.margin) for p in out] == [
        ("Q", "b", "c", 2.5), ("Q", "b", "a", 3.0), ("Q", "d", "c", 2.5), ("Q", "d", "a", 3.0), ("Q", "c", "a", 0.5),
        (conv, "hello", "yo", 3.0)]
    assert out[0].source == "s:3 vs s:4"
    assert pairs_of(scored_to_pairwise(records, min_gap=2.5)) == [("b", "a", 3.0), ("d", "a", 3.0), ("hello", "yo", 3.0)]
    with pytest.raises(ConfigError, match="min_gap"):
        scored_to_pairwise(records, min_gap=-1)


def test_demonstrations_from_pairwise():
    assert demonstrations_from_pairwise([Pairwise("Q", "good", "bad", margin=2.0, source="s:3")]) == [
        Demonstration("Q", "good", source="s:3")]


def test_split_is_seeded_deterministic_and_keeps_prompts_together():
    records = [Pairwise(f"q{i // 2}", f"a{i}", f"b{i}") for i in range(20)]  # 10 prompts, 2 records each
    train, dev = split_records(records, 0.2, seed=1)
    assert (train, dev) == split_records(records, 0.2, seed=1)
    assert len(dev) == 4 and len(train) == 16
    assert {r.prompt for r in train}.isdisjoint({r.prompt for r in dev})
    assert sorted(train + dev, key=records.index) == records
    assert [records.index(r) for r in train] == sorted(records.index(r) for r in train)  # input order kept
    assert any(split_records(records, 0.2, seed=s)[1] != dev for s in range(2, 6))  # the seed matters
    assert split_records(records, 0.0, seed=1) == (records, [])
    singles = [Scored(f"q{i}", "a", 1.0) for i in range(10)]
    assert len(split_records(singles, 0.01, seed=0)[1]) == 1  # at least one record when dev_fraction > 0
    one_prompt = [Scored("q", f"a{i}", 1.0) for i in range(5)]
    assert split_records(one_prompt, 0.5, seed=0) == (one_prompt, [])  # never an empty train set
    with pytest.raises(ConfigError, match="dev_fraction"):
        split_records(records, 1.0, seed=0)


def test_to_trl_dict_standard_and_conversational():
    conv = [{"role": "user", "content": "Hi"}]
    assert to_trl_dict(Pairwise("Q", "a", "b", source="s:1")) == {"prompt": "Q", "chosen": "a", "rejected": "b"}
    assert to_trl_dict(Pairwise(conv, "a", "b", margin=1.5, weight=0.8)) == {
        "prompt": conv, "chosen": [{"role": "assistant", "content": "a"}],
        "rejected": [{"role": "assistant", "content": "b"}], "margin": 1.5, "weight": 0.8}
    assert to_trl_dict(Binary("Q", "a", False)) == {"prompt": "Q", "completion": "a", "label": False}
    assert to_trl_dict(Demonstration("", "Once upon a time")) == {"text": "Once upon a time"}
    assert to_trl_dict(Scored("Q", "a", 0.5)) == {"prompt": "Q", "completion": "a", "score": 0.5}
    assert to_trl_dict(Listwise("Q", ("a", "b"), (1.0, 0.0))) == {"prompt": "Q", "completions": ["a", "b"],
                                                                  "scores": [1.0, 0.0]}


def test_write_jsonl_round_trips_every_shape(tmp_path):
    conv = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi ünïcode"}]
    cases = [[Pairwise("Q", "a", "b"), Pairwise(conv, "a", "b", margin=2.0, weight=0.9)],
             [Binary("Q", "a", True), Binary(conv, "b", False)],
             [Demonstration("Q", "a"), Demonstration(conv, "b"), Demonstration("", "a story")],
             [Listwise("Q", ("a", "b", "c"), (0.5, 0.25, 0.0))],
             [Scored("Q", "a", -1.5), Scored(conv, "b", 2.0)]]
    for i, records in enumerate(cases):
        p = write_jsonl(records, tmp_path / f"sub/{i}.jsonl")
        back, _ = read_records(p)
        assert [r.__class__(**{**r.__dict__, "source": ""}) for r in back] == records
        assert [r.source for r in back] == [f"{p}:{n}" for n in range(1, len(records) + 1)]
    assert json.loads((tmp_path / "sub/1.jsonl").read_text(encoding="utf-8").splitlines()[0]) == {
        "prompt": "Q", "completion": "a", "label": True}


def test_real_hh_round_trip_and_alpaca_eval_pairs(tmp_path):
    hh = SHARED_DATA / "hh-rlhf" / "harmless-base-sample.jsonl"
    listwise = SHARED_DATA / "alpaca_eval" / "listwise_5models_vs_gpt4turbo_ref.jsonl.gz"
    if not (hh.exists() and listwise.exists()):
        pytest.skip(f"{SHARED_DATA} is absent (../shared holds the real data; a user's clone has none)")
    records, _ = read_records(hh, on_bad_record="skip", limit=200)
    back, _ = read_records(write_jsonl(records, tmp_path / "hh.jsonl"))
    assert [(r.prompt, r.chosen, r.rejected) for r in back] == [(r.prompt, r.chosen, r.rejected) for r in records]
    lists, _ = read_records(listwise, limit=50)
    pairs = listwise_to_pairwise(lists, mode="best_vs_rest")
    assert pairs and all(p.margin > 0 and p.chosen != p.rejected for p in pairs)
    assert all(p.chosen == next(r for r in lists if r.source == p.source).completions[0] for p in pairs)
