"""LLM judges without a model: the score parser, templates, swap-and-average and the expected score
checked by hand against a scripted backend, judge specs, exemplars, label bounds, the cache file."""
import json
import math

import pytest

import alignkit.judges  # noqa: F401  (registers llm-pair and llm-score)
from alignkit.errors import ConfigError, DataError, ModelLoadError
from alignkit.judges.backends import Backend, labels_from_top, normalise
from alignkit.judges.cache import ResponseCache, request_key
from alignkit.judges.exemplars import read_exemplars
from alignkit.judges.pairwise import PairwiseLLMJudge
from alignkit.judges.parse import parse_score
from alignkit.judges.pointwise import PointwiseLLMJudge
from alignkit.judges.specs import llm_judge, parse_llm_spec
from alignkit.judges.templates import load_template, parse_template
from alignkit.rewards.judge import WeightedJudge
from alignkit.rewards.specs import judge_from_spec


class Scripted(Backend):
    """Label log-probs and generations from functions of the query, every query recorded."""

    def __init__(self, labels_fn, gen_fn=None, chat=False):
        super().__init__()
        self.labels_fn, self.gen_fn, self.chat = labels_fn, gen_fn, chat
        self.name = "scripted"
        self.label_queries, self.gen_queries = [], []

    def label_logprobs(self, queries, labels):
        self.label_queries += queries
        self.count(calls=len(queries), prompt_tokens=10 * len(queries))
        return [self.labels_fn(q, labels) for q in queries]

    def generate(self, queries, max_new_tokens, temperature=0.0, seed=0):
        self.gen_queries += queries
        self.count(calls=len(queries), completion_tokens=5 * len(queries))
        return [self.gen_fn(q, seed) for q in queries]


def text_of(query):
    return query if isinstance(query, str) else "\n".join(m["content"] for m in query)


def shown_first(query) -> str:
    """Which response a pairwise query shows first ('good' or 'bad'), from the sample section."""
    text = text_of(query)
    sample = text[text.rindex("Response 1:"):]
    return "good" if sample.index("GOOD") < sample.index("BAD") else "bad"


# ---- the score parser -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("Score: 4", 4.0),
    ("4/5", 4.0),
    ("I would give this a score of 3 points.", 3.0),
    ("It earns 2 points for relevance and 1 for clarity.\nScore: 5", 5.0),  # the conclusion, not a rubric line
    ("Add 1 point for relevance. Add another. Total: 3", 3.0),
    ("**Score:** 4", 4.0),
    ("Score: **2**", 2.0),
    ("Score: four", 4.0),
    ("I award three points.", 3.0),
    ("rated 2 out of 5", 2.0),
    ("Score: 4.5", 4.5),
    ("8/10", 4.0),  # rescaled to the 0-5 scale
    ("Score: 3/5, though 2 points were close", 3.0),
    ("A fine answer overall. 4", 4.0),  # the last number
    ("Score: 7", None),  # outside the scale: not a score
    ("no number at all", None),
    ("", None),
])
def test_parse_score(text, expected):
    assert parse_score(text, 0, 5) == expected


def test_parse_score_other_scale():
    assert parse_score("Score: 7", 1, 10) == 7.0
    assert parse_score("3/5", 1, 10) == pytest.approx(1 + 9 * 3 / 5)


# ---- templates --------------------------------------------------------------------------------------
GOOD_PAIR = """# a user's template
=== preamble ===
Pick the better answer ({label_a} or {label_b}).
=== sample ===
Q: {context}
{label_a}: {response_a}
{label_b}: {response_b}
=== ending ===
Better:
=== labels ===
A B
"""


def test_builtin_templates_load_with_cot_sections():
    for kind in ("pairwise", "pointwise"):
        for name in ("helpful", "harmless"):
            t = load_template(name, kind)
            t.require_cot()
            assert t.kind == kind and t.source.endswith(f"{kind}_{name}.txt")
    assert load_template("helpful", "pairwise").labels == ("1", "2")
    assert load_template("harmless", "pointwise").labels == tuple("012345")
    # labels are written once and filled into every section
    assert "Answer with 1 or 2 only." in load_template("helpful", "pairwise").section("ending")
    assert "from 0 to 5" in load_template("helpful", "pointwise").section("ending")


def test_user_template_file(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text(GOOD_PAIR)
    t = load_template(str(p), "pairwise")
    assert t.labels == ("A", "B")
    assert t.section("sample", context="q {response_b}", response_a="x", response_b="y") == "Q: q {response_b}\nA: x\nB: y"
    with pytest.raises(ConfigError, match="cot=1"):
        t.require_cot()


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.replace("{response_b}", "..."), r"section 'sample' lacks the placeholder \{response_b\}"),
    (lambda s: s.replace("Better:", "Better {answer}:"), r"unknown placeholder \{answer\}"),
    (lambda s: s.replace("A B", "A"), "two different labels"),
    (lambda s: s.replace("=== ending ===\nBetter:\n", ""), "missing section 'ending'"),
    (lambda s: s.replace("=== labels ===", "=== lables ==="), "unknown section 'lables'"),
    (lambda s: "stray text\n" + s, "text before the first section"),
    (lambda s: s.replace("Better:", "Better: {context}"), r"\{context\} belongs in section 'sample'"),
])
def test_bad_user_templates_are_one_line_errors(tmp_path, edit, message):
    p = tmp_path / "bad.txt"
    p.write_text(edit(GOOD_PAIR))
    with pytest.raises(ConfigError, match=message) as e:
        load_template(str(p), "pairwise")
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_template_kind_mismatch_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="a pointwise template"):
        parse_template(load_template("helpful", "pointwise").source and
                       open(load_template("helpful", "pointwise").source).read(), "pw.txt", "pairwise")
    with pytest.raises(ConfigError, match="no such file, and not a built-in pairwise template"):
        load_template(str(tmp_path / "absent.txt"), "pairwise")


# ---- pairwise: swap and average ----------------------------------------------------------------------
def biased(first_prob_good_first: float, first_prob_bad_first: float):
    """A judge that prefers the first-shown response: P(label 1) depends on which response is first.
    Log-probs are unnormalised on purpose (the judge normalises over the two labels)."""
    def fn(query, labels):
        p1 = first_prob_good_first if shown_first(query) == "good" else first_prob_bad_first
        return [math.log(0.1 * p1), math.log(0.1 * (1 - p1))]
    return fn


def test_swap_and_average_by_hand():
    backend = Scripted(biased(0.7, 0.6))
    judge = PairwiseLLMJudge(backend, load_template("helpful", "pairwise"))
    [j] = judge.judge_pairs(["q"], ["GOOD"], ["BAD"])
    # a shown first: P(a) = 0.7; b shown first: P(b) = 0.6 so P(a) = 0.4; average 0.55
    assert j.forward == pytest.approx(0.7) and j.backward == pytest.approx(0.4)
    assert j.probability == pytest.approx(0.55)
    assert j.verdicts == ("a", "b") and j.agree is False  # the two orders disagree: position bias
    assert j.first_preferred == pytest.approx((0.7, 0.6))
    assert judge.compare(["q"], ["GOOD"], ["BAD"]) == [pytest.approx(0.55)]
    assert judge.compare(["q"], ["BAD"], ["GOOD"]) == [pytest.approx(0.45)]  # symmetric
    # both orders in one batch, the second shows b first
    assert len(backend.label_queries) == 6 and shown_first(backend.label_queries[1]) == "bad"
    u = judge.usage()
    assert (u["judgments"], u["queries"], u["calls"], u["prompt_tokens"]) == (3, 6, 6, 60)


def test_consistent_judge_and_no_debias():
    judge = PairwiseLLMJudge(Scripted(biased(0.9, 0.2)), load_template("helpful", "pairwise"))
    [j] = judge.judge_pairs(["q"], ["GOOD"], ["BAD"])
    assert j.probability == pytest.approx((0.9 + 0.8) / 2) and j.agree is True and j.verdicts == ("a", "a")
    one = PairwiseLLMJudge(Scripted(biased(0.9, 0.2)), load_template("helpful", "pairwise"), debias=False)
    [k] = one.judge_pairs(["q"], ["BAD"], ["GOOD"])
    assert k.probability == pytest.approx(0.2) and k.backward is None and k.agree is None
    assert one.usage()["queries"] == 1


def test_rank_counts_expected_wins():
    def fn(q, labels):  # GOOD beats BAD surely; two BADs tie
        sample = text_of(q)[text_of(q).rindex("Response 1:"):]
        if "GOOD" not in sample:
            return [0.0, 0.0]
        return [0.0, -50.0] if shown_first(q) == "good" else [-50.0, 0.0]

    judge = PairwiseLLMJudge(Scripted(fn), load_template("helpful", "pairwise"))
    assert judge.rank("q", ["BAD one", "GOOD one", "BAD two"])[0] == 1
    with pytest.raises(NotImplementedError):
        judge.score(["q"], ["x"])


def test_chain_of_thought_queries_text_and_chat():
    for chat in (False, True):
        backend = Scripted(biased(0.8, 0.3), gen_fn=lambda q, seed: " because GOOD is right", chat=chat)
        judge = PairwiseLLMJudge(backend, load_template("helpful", "pairwise"), cot=True)
        [j] = judge.judge_pairs(["q"], ["GOOD"], ["BAD"])
        assert j.rationales == (" because GOOD is right", " because GOOD is right")
        t = judge.template
        first = backend.gen_queries[0]
        verdict = backend.label_queries[0]
        if chat:
            assert first == [{"role": "user", "content": text_of(first)}]
            assert text_of(first).endswith(t.section("cot_ending"))
            assert verdict[1:] == [{"role": "assistant", "content": "because GOOD is right"},
                                   {"role": "user", "content": t.section("verdict")}]
        else:
            assert first.endswith(t.section("cot_ending"))
            assert verdict == f"{first} because GOOD is right\n\n{t.section('verdict')}"
        assert j.probability == pytest.approx((0.8 + 0.7) / 2)


def test_prompt_layout_and_exemplars(tmp_path):
    ex = tmp_path / "ex.jsonl"
    ex.write_text(json.dumps({"prompt": "2+2?", "chosen": "4", "rejected": "5"}) + "\n"
                  + json.dumps({"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello", "rejected": "go away",
                                "rationale": "polite"}) + "\n")
    t = load_template("helpful", "pairwise")
    shots = read_exemplars(str(ex), "pairwise", t.labels)
    # alternating sides: the chosen response is shown first, then second
    assert [(s.responses, s.answer) for s in shots] == [(("4", "5"), "1"), (("go away", "hello"), "2")]
    backend = Scripted(biased(0.5, 0.5))
    judge = PairwiseLLMJudge(backend, t, shots)
    judge.compare(["ctx"], ["GOOD"], ["BAD"])
    q = backend.label_queries[0]
    parts = q.split("\n\n")
    assert parts[0] == t.section("preamble").split("\n\n")[0]
    assert q.startswith(t.section("preamble") + "\n\n" + t.section("sample", context="2+2?", response_a="4",
                                                                        response_b="5"))
    assert "Conversation:\nUser: hi\n\nResponse 1:\ngo away" in q  # a conversation becomes "Role: text" lines
    assert q.endswith(t.section("sample", context="ctx", response_a="GOOD", response_b="BAD") + "\n\n" + t.section("ending"))
    assert f"{t.section('ending')} 2\n\n" in q  # the second exemplar's answer


def test_exemplar_errors_name_file_line_field(tmp_path):
    ex = tmp_path / "ex.jsonl"
    ex.write_text(json.dumps({"prompt": "q", "chosen": "a"}) + "\n")
    with pytest.raises(DataError, match=r"ex.jsonl:1: field 'rejected'"):
        read_exemplars(str(ex), "pairwise", ("1", "2"))
    ex.write_text(json.dumps({"prompt": "q", "completion": "a", "score": 9}) + "\n")
    with pytest.raises(DataError, match=r"ex.jsonl:1: field 'score': expected one of"):
        read_exemplars(str(ex), "pointwise", tuple("012345"))


# ---- pointwise ---------------------------------------------------------------------------------------
def test_expected_score_by_hand():
    weights = [0, 0, 1, 1, 2, 0]  # P = 0, 0, .25, .25, .5, 0

    backend = Scripted(lambda q, labels: [math.log(w) if w else -math.inf for w in weights])
    judge = PointwiseLLMJudge(backend, load_template("helpful", "pointwise"), cot=False)
    [d] = judge.score_details(["q"], ["r"])
    assert d.score == pytest.approx(2 * 0.25 + 3 * 0.25 + 4 * 0.5)
    assert d.probabilities == pytest.approx({"0": 0, "1": 0, "2": 0.25, "3": 0.25, "4": 0.5, "5": 0})
    assert judge.score(["q", "q"], ["a", "b"]) == [pytest.approx(3.25)] * 2


def test_written_scores_are_parsed_averaged_and_fall_back():
    texts = {0: "Relevant and clear. Score: 4", 1: "Mostly fine, 3/5", 2: "I cannot tell."}
    backend = Scripted(lambda q, labels: [0.0 if lab == "1" else -math.inf for lab in labels],
                       gen_fn=lambda q, seed: texts[seed])
    judge = PointwiseLLMJudge(backend, load_template("helpful", "pointwise"), samples=3, temperature=0.7)
    [d] = judge.score_details(["q"], ["r"])
    # 4 and 3 parsed; the third has no score: the verdict line is appended and its label probabilities
    # (all mass on "1") give 1
    assert d.parsed == (4.0, 3.0, None) and d.score == pytest.approx((4 + 3 + 1) / 3)
    assert backend.label_queries[0].endswith("I cannot tell.\n\n" + judge.template.section("verdict"))
    assert judge.usage()["parse_fallbacks"] == 1
    assert judge.rank("q", ["a", "b"]) == [0, 1]  # equal scores: stable
    with pytest.raises(ValueError, match="samples > 1 needs"):
        PointwiseLLMJudge(backend, load_template("helpful", "pointwise"), samples=2)


# ---- specs -------------------------------------------------------------------------------------------
def test_spec_options_and_errors(tmp_path):
    assert parse_llm_spec("llm-pair", "hf:runs/a,b,cot=1,template=harmless,batch_size=4") == (
        "hf:runs/a,b", {"cot": True, "template": "harmless"}, {"batch_size": 4})
    assert parse_llm_spec("llm-score", "http://h:1/v1,model=m,timeout=2.5,samples=3,chat=0")[1:] == (
        {"samples": 3}, {"model": "m", "timeout": 2.5, "chat": False})
    with pytest.raises(ConfigError, match="unknown option 'debias'"):
        parse_llm_spec("llm-score", "hf:x,debias=0")
    with pytest.raises(ConfigError, match="option cot: expected 0 or 1"):
        parse_llm_spec("llm-pair", "hf:x,cot=maybe")
    with pytest.raises(ConfigError, match="needs a backend"):
        judge_from_spec("llm-pair:")
    with pytest.raises(ConfigError, match="expected hf:DIR"):
        judge_from_spec("llm-pair:ftp://x")
    with pytest.raises(ModelLoadError, match="model folder not found"):
        judge_from_spec(f"llm-score:hf:{tmp_path / 'absent'}")
    # a spec with a given backend: options reach the judge
    judge = llm_judge("llm-pair", "hf:unused,template=harmless,debias=0", backend=Scripted(biased(.5, .5)))
    assert judge.template.source.endswith("pairwise_harmless.txt") and judge.debias is False
    with pytest.raises(ConfigError, match="samples > 1 needs"):
        llm_judge("llm-score", "hf:unused,samples=2", backend=Scripted(biased(.5, .5)))


def test_weighted_sum_with_an_llm_judge():
    # the spec grammar splits at a '+' before a registered kind: llm-score is one
    judge = judge_from_spec("0.5*rule:words+0.5*llm-score:http://127.0.0.1:9/v1,model=m")
    assert isinstance(judge, WeightedJudge) and judge.parts[1][1].name == "llm-score:http://127.0.0.1:9/v1"


# ---- label probabilities from a server's top list ----------------------------------------------------
def test_labels_from_top_by_hand():
    top = [(" 1", math.log(0.5)), ("1", math.log(0.1)), ("2", math.log(0.2)), ("x", math.log(0.1))]
    lps, missing = labels_from_top(top, ("1", "2"))
    assert not missing and [math.exp(v) for v in lps] == pytest.approx([0.6, 0.2])
    assert normalise(lps) == pytest.approx([0.75, 0.25])
    # "2" not listed: bounded by the smallest listed (0.1) and by what is left over (1 - 0.9 = 0.1)
    lps, missing = labels_from_top(top[:2] + top[3:], ("1", "2"))
    assert missing and math.exp(lps[1]) == pytest.approx(0.1)
    lps, _ = labels_from_top([("a", math.log(0.9)), ("b", math.log(0.05))], ("1", "2"))
    assert normalise(lps) == pytest.approx([0.5, 0.5])  # neither listed: no preference


# ---- the cache file ----------------------------------------------------------------------------------
def test_cache_survives_a_torn_line(tmp_path):
    path = tmp_path / "c.jsonl"
    c = ResponseCache(path)
    c.put(request_key("u", {"a": 1}), {"x": 1})
    c.close()
    with open(path, "ab") as f:
        f.write(b'{"key": "abc", "resp')  # a write cut short by a kill
    c = ResponseCache(path)
    assert len(c) == 1 and c.torn == 1 and c.get(request_key("u", {"a": 1})) == {"x": 1}
    c.put(request_key("u", {"a": 2}), {"x": 2})
    c.close()
    c = ResponseCache(path)
    assert len(c) == 2 and c.get(request_key("u", {"a": 2})) == {"x": 2}
    assert request_key("u", {"a": 1, "b": 2}) == request_key("u", {"b": 2, "a": 1}) != request_key("v", {"a": 1, "b": 2})


def test_default_local_judge_name_resolves_or_says_how_to_fetch(tmp_path, monkeypatch):
    """`smollm2` names the default local judge's folder (runs/smollm2-135m-instruct, what `alignkit
    models get` and `make smollm2` write); without it, one line says which command makes it."""
    from alignkit.judges.backends import local_model_dir
    monkeypatch.chdir(tmp_path)
    for spec in ("llm-pair:smollm2", "llm-score:smollm2,template=harmless,cot=0",
                 "llm-pair:hf:unused,baseline=smollm2"):
        with pytest.raises(ConfigError) as err:
            judge_from_spec(spec)
        msg = str(err.value)
        assert "\n" not in msg and "runs/smollm2-135m-instruct" in msg
        assert "alignkit models get smollm2-135m-instruct --output runs/smollm2-135m-instruct" in msg
    assert parse_llm_spec("llm-pair", "smollm2,template=harmless,batch_size=2") == (
        "smollm2", {"template": "harmless"}, {"batch_size": 2})
    folder = tmp_path / "runs" / "smollm2-135m-instruct"
    folder.mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds no model"):  # an empty folder is no model either
        local_model_dir("smollm2")
    (folder / "config.json").write_text("{}")
    assert local_model_dir("smollm2") == local_model_dir("smollm2-135m-instruct") == "runs/smollm2-135m-instruct"
    with pytest.raises(ConfigError, match="smollm2"):  # the unknown-backend error lists the names
        judge_from_spec("llm-pair:ftp://x")
