"""Constitutional AI (alignkit/judges/constitution.py): the constitution file and its one-line errors, the
principle drawn per comparison and per revision round, the multiple-choice judge, the supervised stage's
queries and output (chat and text), the preference stage, the pairwise judge as a reward against a
baseline, and resumption: a run killed mid-way and restarted writes the same file."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import alignkit.judges  # noqa: F401  (registers llm-pair, llm-score, llm-cai)
from alignkit.config import build_config
from alignkit.data.readers import read_records
from alignkit.data.records import Demonstration, Pairwise
from alignkit.errors import ConfigError, DataError
from alignkit.judges.backends import Backend
from alignkit.judges.constitution import (ConstitutionalJudge, PreferenceConfig, ReviseConfig, clean, draw,
                                          parse_constitution, read_constitution, revise_chunk, run_preferences,
                                          run_revise)
from alignkit.judges.pairwise import PairwiseLLMJudge
from alignkit.judges.resumable import side_paths
from alignkit.judges.specs import backend_with_options, llm_judge
from alignkit.judges.templates import load_template, parse_template

REPO = Path(__file__).resolve().parents[1]


class Scripted(Backend):
    """Label log-probs and generations from functions of the query; every query recorded."""

    def __init__(self, labels_fn=None, gen_fn=None, chat=True, name="scripted"):
        super().__init__()
        self.labels_fn = labels_fn or (lambda q, labels: [math.log(0.5)] * len(labels))
        self.gen_fn = gen_fn or (lambda q, seed: "text")
        self.chat, self.name = chat, name
        self.label_queries, self.gen_queries, self.seeds = [], [], []

    def label_logprobs(self, queries, labels):
        self.label_queries += queries
        self.count(calls=len(queries))
        return [self.labels_fn(q, labels) for q in queries]

    def generate(self, queries, max_new_tokens, temperature=0.0, seed=0):
        self.gen_queries += queries
        self.seeds.append(seed)
        self.count(calls=len(queries))
        return [self.gen_fn(q, seed) for q in queries]


def text_of(query):
    return query if isinstance(query, str) else "\n".join(m["content"] for m in query)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---- the constitution file ----------------------------------------------------------------------------
def test_default_constitution_has_both_kinds_and_every_field():
    c = read_constitution()
    kinds = {p.kind for p in c.principles}
    assert kinds == {"harmless", "helpful"} and len(c.principles) >= 10
    assert len({p.name for p in c.principles}) == len(c.principles)
    for p in c.principles:
        assert p.critique and p.revision and p.choice.endswith("?")
    assert all(p.kind == "helpful" for p in c.select("helpful"))
    assert c.select("all") == c.principles
    assert [p.name for p in c.select("respect+harm+respect")] == ["respect", "harm"]


ROW = {"name": "a", "kind": "harmless", "critique": "c?", "revision": "r.", "choice": "q?"}


@pytest.mark.parametrize("line,message", [
    ('{"name": "a", ', r"c.jsonl:3: malformed JSON"),
    (json.dumps({**ROW, "critque": "x"}), r"c.jsonl:3: field 'critque': unknown field; a principle has name, kind"),
    (json.dumps({k: v for k, v in ROW.items() if k != "choice"}), r"c.jsonl:3: field 'choice': missing"),
    (json.dumps({**ROW, "revision": "  "}), r"c.jsonl:3: field 'revision': expected a non-empty string"),
    (json.dumps({**ROW, "kind": "harmles"}), r"c.jsonl:3: field 'kind': expected harmless or helpful, got 'harmles'"),
    (json.dumps({**ROW, "name": "first"}), r"c.jsonl:3: field 'name': 'first' is already the name of the principle "
                                           r"on line 2"),
    (json.dumps({**ROW, "name": "two words"}), r"c.jsonl:3: field 'name': 'two words': use letters"),
    ("[1, 2]", r"c.jsonl:3: expected a JSON object"),
])
def test_bad_constitution_files_are_one_line_errors(tmp_path, line, message):
    p = tmp_path / "c.jsonl"
    p.write_text("# my constitution\n" + json.dumps({**ROW, "name": "first"}) + "\n" + line + "\n")
    with pytest.raises(DataError, match=message) as e:
        read_constitution(str(p))
    assert "\n" not in str(e.value)


def test_constitution_missing_empty_and_selection_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file, and not a built-in one"):
        read_constitution(str(tmp_path / "absent.jsonl"))
    with pytest.raises(DataError, match="no principles"):
        parse_constitution("# only a comment\n\n", "empty.jsonl")
    c = parse_constitution(json.dumps(ROW), "one.jsonl")
    with pytest.raises(ConfigError, match="no helpful principle"):
        c.select("helpful")
    with pytest.raises(ConfigError, match=r"principles 'harm': expected harmless, helpful, all or principle names"):
        c.select("harm")


def test_draws_are_seeded_and_cover_the_pool():
    pool = read_constitution().select("harmless")
    assert draw(pool, "x", 1) == draw(pool, "x", 1)
    names = {draw(pool, "revision", 0, i, 0).name for i in range(200)}
    assert names == {p.name for p in pool}


# ---- templates with {principle} and the multiple-choice judge -------------------------------------------
def test_principle_placeholder_in_templates():
    t = load_template("constitution", "pairwise")
    assert t.uses_principle and t.labels == ("A", "B")
    assert not load_template("harmless", "pairwise").uses_principle
    with pytest.raises(ConfigError, match="unknown placeholder"):
        parse_template("=== preamble ===\n{principle}\n=== sample ===\n{context} {response}\n=== ending ===\n"
                       "S:\n=== labels ===\n0 1\n", "pw.txt", "pointwise")
    with pytest.raises(ConfigError, match="not a built-in pointwise template"):
        load_template("constitution", "pointwise")


def test_constitutional_judge_draws_one_principle_per_pair_for_both_orders():
    # the judge prefers whichever option says "kind", in either position
    def labels(q, labs):
        opts = text_of(q).split("Options:")[1]
        a, b = opts.split("\n(B) ")
        return [math.log(0.8), math.log(0.2)] if "kind" in a else [math.log(0.2), math.log(0.8)]
    backend = Scripted(labels)
    judge = llm_judge("llm-cai", "hf:unused,principles=harmless,seed=3", backend=backend)
    assert isinstance(judge, ConstitutionalJudge)
    prompts = [f"question {i}" for i in range(8)]
    out = judge.judge_pairs(prompts, ["kind words"] * 8, [f"rude {i}" for i in range(8)])
    pool = {p.name: p for p in read_constitution().select("harmless")}
    assert all(j.probability == pytest.approx(0.8) and j.agree for j in out)
    for i, j in enumerate(out):
        fwd, bwd = text_of(backend.label_queries[i]), text_of(backend.label_queries[8 + i])
        assert pool[j.principle].choice in fwd and pool[j.principle].choice in bwd  # both orders, one principle
        assert fwd.index("(A) kind words") < fwd.index(f"(B) rude {i}") and f"(A) rude {i}" in bwd
    # the draw depends on the pair, not on its order or on the batch
    again = judge.judge_pairs([prompts[5]], [f"rude 5"], ["kind words"])[0]
    assert again.principle == out[5].principle and again.probability == pytest.approx(0.2)
    assert len({j.principle for j in out}) > 1


def test_principle_judges_refuse_wrong_templates():
    with pytest.raises(ConfigError, match=r"has no \{principle\} placeholder"):
        llm_judge("llm-cai", "hf:unused,template=harmless", backend=Scripted())
    plain = PairwiseLLMJudge(Scripted(), load_template("constitution", "pairwise"))
    with pytest.raises(ConfigError, match=r"asks for a \{principle\}"):
        plain.compare(["q"], ["a"], ["b"])
    harmless = PairwiseLLMJudge(Scripted(), load_template("harmless", "pairwise"))
    with pytest.raises(ConfigError, match=r"no \{principle\} placeholder"):
        harmless.judge_pairs(["q"], ["a"], ["b"], principles=["Which?"])


def test_pairwise_judge_against_a_baseline_is_a_reward():
    # P(first shown preferred) = 0.9 when the first response is longer than the second, else 0.1
    def labels(q, labs):
        t = text_of(q)
        r1 = t.split("Response 1:\n")[1].split("\n\nResponse 2:")[0]
        r2 = t.split("Response 2:\n")[1].split("\n\n")[0]
        return [math.log(0.9), math.log(0.1)] if len(r1) > len(r2) else [math.log(0.1), math.log(0.9)]
    base = Scripted(gen_fn=lambda q, seed: "  mid size  \n")
    judge = PairwiseLLMJudge(Scripted(labels), load_template("helpful", "pairwise"), baseline=base)
    scores = judge.score(["p1", "p2", "p1"], ["a much longer answer", "x", "another long answer"])
    assert scores == pytest.approx([0.9, 0.1, 0.9])
    assert base.gen_queries == ["p1", "p2"]  # one greedy answer per distinct prompt, kept
    judge.score(["p2"], ["yy"])
    assert base.gen_queries == ["p1", "p2"] and judge.baseline_answers(["p1"]) == ["mid size"]
    with pytest.raises(NotImplementedError, match="baseline"):
        PairwiseLLMJudge(Scripted(labels), load_template("helpful", "pairwise")).score(["p"], ["y"])


def test_backend_and_baseline_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown option 'cot'; options for this backend"):
        backend_with_options("hf:somewhere,cot=1")
    with pytest.raises(ConfigError, match="a model is needed"):
        backend_with_options("")
    with pytest.raises(ConfigError, match="baseline_tokens must be >= 1"):
        llm_judge("llm-pair", "hf:x,baseline_tokens=0", backend=Scripted())


# ---- the supervised stage -----------------------------------------------------------------------------
def critic_fn(query, seed):
    """A scripted helpful model: answers, critiques ("rude" if the response says 'ugh') and revises."""
    if isinstance(query, list):
        last = query[-1]["content"]
        if len(query) == 1:
            return f"ugh, answer to {last}"
        response = query[1]["content"]
    else:
        last = query.rsplit("\n\n", 1)[-1]
        if last == "Assistant:":
            return " ugh, answer\n\nHuman: and a made-up next turn"
        response = query.split("Assistant: ")[1].split("\n\n")[0]
    if "Critique:" in last or (isinstance(query, list) and len(query) == 3):
        return "It is rude." if "ugh" in response else "Fine."
    return response.replace("ugh, ", "") + " (revised)"


def test_revision_queries_chat_and_text():
    pool = read_constitution().select("all")
    cfg = build_config(ReviseConfig, {"model": "hf:x", "data": "d", "output": "o", "rounds": 2}, where="t")
    chat = Scripted(gen_fn=critic_fn)
    rows, stats = revise_chunk(chat, chat, ["How do I bake bread?"], 5, cfg, pool)
    q = chat.gen_queries
    assert q[0] == [{"role": "user", "content": "How do I bake bread?"}]
    p1 = draw(pool, "revision", 0, 5, 0)
    assert [m["role"] for m in q[1]] == ["user", "assistant", "user"] and q[1][2]["content"] == p1.critique
    assert q[2][3] == {"role": "assistant", "content": "It is rude."} and q[2][4]["content"] == p1.revision
    assert q[3][1]["content"] == "answer to How do I bake bread? (revised)"  # round 2 starts from revision 1
    row = rows[0]
    assert row["initial_response"] == "ugh, answer to How do I bake bread?"
    assert row["completion"] == "answer to How do I bake bread? (revised) (revised)"  # a text prompt: text rows
    assert [r["principle"] for r in row["revisions"]] == [p1.name, draw(pool, "revision", 0, 5, 1).name]
    assert row["revisions"][0]["critique"] == "It is rude." and row["revisions"][1]["critique"] == "Fine."
    assert stats["changed"] == 1 and stats["revisions_changed"] == 2

    text = Scripted(gen_fn=critic_fn, chat=False)
    rows, _ = revise_chunk(text, text, ["How do I bake bread?"], 5, cfg, pool)
    q = text.gen_queries
    assert q[0] == "Human: How do I bake bread?\n\nAssistant:"
    assert q[1] == f"Human: How do I bake bread?\n\nAssistant: ugh, answer\n\nCritique Request: {p1.critique}\n\nCritique:"
    assert q[2] == q[1] + f" It is rude.\n\nRevision Request: {p1.revision}\n\nRevision:"
    assert rows[0]["initial_response"] == "ugh, answer"  # the made-up next turn is cut
    assert rows[0]["completion"] == "answer (revised) (revised)"
    assert clean("x\nRevision: y") == "x" and clean("  plain  ") == "plain"


def test_revise_writes_sft_data_and_resumes_after_a_crash(tmp_path, monkeypatch):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"question {i}?"} for i in range(7)])

    def run(out, fail_at=None):
        calls = {"n": 0}

        def gen(q, seed):
            calls["n"] += 1
            if fail_at is not None and calls["n"] > fail_at:
                raise KeyboardInterrupt  # the run dies mid-chunk
            return critic_fn(q, seed) + (f" s{seed}" if isinstance(q, list) and len(q) == 1 else "")
        backend = Scripted(gen_fn=gen)
        monkeypatch.setattr("alignkit.judges.constitution._backend", lambda spec: backend)
        cfg = build_config(ReviseConfig, {"model": "hf:m", "data": str(prompts), "output": str(out), "rounds": 2,
                                          "batch_size": 3, "principles": "all"}, where="t")
        logs = []
        return run_revise(cfg, log=logs.append), logs, backend

    ref, _, _ = run(tmp_path / "ref" / "sl.jsonl")
    out = tmp_path / "cut" / "sl.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(out, fail_at=20)  # 15 calls a chunk of 3 (3 answers, 2 rounds x 3 critiques + 3 revisions): chunk 2 dies
    with open(out, "ab") as f:
        f.write(b'{"prompt": "torn')  # a torn row, as a kill mid-write leaves
    report, logs, backend = run(out)
    assert any("resuming" in line and "at prompt 3 of 7" in line for line in logs)
    assert out.read_bytes() == (tmp_path / "ref" / "sl.jsonl").read_bytes()
    records, _ = read_records(str(out))
    assert len(records) == 7 and all(isinstance(r, Demonstration) for r in records)
    assert records[0].completion.endswith("(revised) (revised)")
    assert report["rows"] == 7 and report["changed_rate"] == 1.0 and sum(report["principle_counts"].values()) == 14
    assert ref["principle_counts"] == report["principle_counts"]
    with pytest.raises(ConfigError, match=r"holds a run with other settings \(rounds differ\)"):
        cfg = build_config(ReviseConfig, {"model": "hf:m", "data": str(prompts), "output": str(out), "rounds": 1,
                                          "batch_size": 3, "principles": "all"}, where="t")
        run_revise(cfg, log=lambda *a: None)


def test_revise_config_errors():
    with pytest.raises(ConfigError, match="--rounds must be >= 1, got 0"):
        build_config(ReviseConfig, {"model": "m", "data": "d", "output": "o", "rounds": 0}, where="t")
    with pytest.raises(ConfigError, match="field 'feedback': required"):
        build_config(PreferenceConfig, {"data": "d", "output": "o"}, where="t")
    with pytest.raises(ConfigError, match="--samples must be >= 2, got 1"):
        build_config(PreferenceConfig, {"feedback": "f", "data": "d", "output": "o", "samples": 1}, where="t")


# ---- both stages on a real (tiny) Hugging Face model ------------------------------------------------------
@pytest.mark.slow
def test_preferences_with_a_local_model_sampled_and_resumed(tiny_model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": [{"role": "user", "content": f"what is {i} ?"}]}
                                                       for i in range(5)])
    kw = {"feedback": f"hf:{tiny_model_dir}", "policy": f"hf:{tiny_model_dir}", "data": str(prompts),
          "samples": 3, "max_tokens": 6, "batch_size": 2, "principles": "harmless", "seed": 1}
    cfg = build_config(PreferenceConfig, {**kw, "output": str(tmp_path / "a" / "prefs.jsonl")}, where="t")
    report = run_preferences(cfg, log=lambda *a: None)
    samples = [json.loads(x) for x in side_paths(cfg.output)["samples"].read_text().splitlines()]
    assert len(samples) == 5 and all(len(s["completions"]) == 3 for s in samples)
    rows = [json.loads(x) for x in Path(cfg.output).read_text().splitlines()]
    harmless = {p.name for p in read_constitution().select("harmless")}
    assert rows and all(r["judge_principle"] in harmless and 0.5 <= r["weight"] <= 1 for r in rows)
    assert report["position_consistency"]["comparisons"] == report["comparisons"] > 0
    records, _ = read_records(cfg.output)
    assert all(isinstance(r, Pairwise) for r in records)
    # the same command again: nothing to sample or judge, the same file
    before = Path(cfg.output).read_bytes()
    run_preferences(cfg, log=lambda *a: None)
    assert Path(cfg.output).read_bytes() == before


REVISE = """
import sys
from alignkit.judges.constitution import ReviseConfig, run_revise
from alignkit.config import build_config
out, model, data = sys.argv[1:4]
run_revise(build_config(ReviseConfig, {"model": "hf:" + model, "data": data, "output": out, "rounds": 2,
                                       "max_tokens": 8, "batch_size": 2, "principles": "all"}, where="t"))
"""


@pytest.mark.slow
def test_killed_revise_run_restarted_writes_the_same_file(tiny_model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"please help me with {i} ."} for i in range(40)])
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")

    def cmd(out):
        return [sys.executable, "-c", REVISE, str(out), str(tiny_model_dir), str(prompts)]
    ref = tmp_path / "ref" / "sl.jsonl"
    subprocess.run(cmd(ref), env=env, check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed" / "sl.jsonl"
    progress = side_paths(str(out))["progress"]
    proc = subprocess.Popen(cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and progress.read_text().count('"done"') >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = progress.read_text().count('"done"')
    assert 3 <= done < 20, proc.stderr.read().decode()
    rc = subprocess.run(cmd(out), env=env, capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr
    assert f"resuming {out} at prompt" in rc.stdout
    assert out.read_bytes() == ref.read_bytes()
    assert len(out.read_text().splitlines()) == 40


# ---- the command line ---------------------------------------------------------------------------------
def test_cli_show_and_one_line_errors(tmp_path, capsys):
    from alignkit.cli import main
    assert main(["constitution", "show", "--principles", "helpful"]) == 0
    out = capsys.readouterr().out
    assert "12 principles (8 harmless, 4 helpful)" in out and "[correctness] (helpful)" in out and "[harm]" not in out
    bad = tmp_path / "mine.jsonl"
    bad.write_text(json.dumps({**ROW, "kind": "kind"}) + "\n")
    assert main(["constitution", "show", "--constitution", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:1: field 'kind': expected harmless or helpful" in err
    assert main(["constitution", "revise", "--data", "d.jsonl", "--output", "o.jsonl"]) == 2
    assert "field 'model': required" in capsys.readouterr().err
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "hello"}])
    assert main(["constitution", "prefs", "--feedback", "rule:words", "--data", str(prompts), "--output",
                 str(tmp_path / "p.jsonl"), "--policy", "rule:words"]) == 2
    assert "rule:words: not a model" in capsys.readouterr().err
