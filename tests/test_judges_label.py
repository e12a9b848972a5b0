"""`alignkit label`: AI-labelled pairwise, binary and listwise data from a judge, with agreement,
position consistency, calls and tokens in the report; a run killed mid-way and restarted writes the
same file as an uninterrupted one and does not pay for the finished items again."""
import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import alignkit.judges  # noqa: F401
from alignkit.config import build_config
from alignkit.data.readers import read_records
from alignkit.data.records import Binary, Listwise, Pairwise
from alignkit.errors import ConfigError
from alignkit.judges.commands import register
from alignkit.judges.label import LabelConfig, run_label, side_paths

REPO = Path(__file__).resolve().parents[1]


def quality(text: str) -> int:
    words = text.split()
    return words.count("sure") - words.count("no")


class FakeJudge:
    """An OpenAI-compatible judge server with a known rule: the response with more "sure" than "no"
    is better, P(first shown) = sigmoid(q1 - q2 + bias) (bias > 0: it favours the first position);
    written verdicts say "Score: clamp(2 + q)". Every request body is recorded."""

    def __init__(self, bias: float = 0.0, delay: float = 0.0):
        self.bias, self.delay, self.bodies, self.lock = bias, delay, [], threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, payload):
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "fake"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(json.dumps(body, sort_keys=True))
                time.sleep(outer.delay)
                self._send(outer.answer(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, body):
        text = body["messages"][0]["content"]
        usage = {"prompt_tokens": len(text.split()), "completion_tokens": 1}
        if body.get("logprobs"):
            sample = text[text.rindex("Response 1:"):]
            r1, r2 = sample.split("Response 2:")
            z = quality(r1) - quality(r2) + self.bias
            p1 = 1 / (1 + math.exp(-z))
            top = [{"token": "1", "logprob": math.log(p1)}, {"token": "2", "logprob": math.log(1 - p1)}]
            return {"choices": [{"message": {"content": "1"}, "logprobs": {"content": [
                {"token": "1", "logprob": top[0]["logprob"], "top_logprobs": top}]}}], "usage": usage}
        response = text[text.rindex("Response:"):]
        score = min(5, max(0, 2 + quality(response)))
        return {"choices": [{"message": {"role": "assistant", "content": f"Fine. Score: {score}"}}], "usage": usage}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    servers = []

    def start(**kw):
        s = FakeJudge(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pairs_file(tmp_path, n=6):
    rows = []
    for i in range(n):
        good, bad = f"sure , here is how {i} .", f"no , i cannot {i} ."
        # every third pair's file label is "wrong" (the worse response marked chosen)
        rows.append({"prompt": f"question {i} ?", "chosen": bad if i % 3 == 2 else good,
                     "rejected": good if i % 3 == 2 else bad})
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def label(tmp_path, **kw):
    logs = []
    cfg = build_config(LabelConfig, {"output": str(tmp_path / "out.jsonl"), **kw}, where="label")
    return run_label(cfg, log=logs.append), logs


def test_pairwise_labels_agreement_and_position_consistency(fake, tmp_path):
    s = fake(bias=1.5)  # a strong pull to the first position, weaker than a clear quality gap of 2
    data = pairs_file(tmp_path)
    report, logs = label(tmp_path, judge=f"llm-pair:{s.url}", data=str(data), batch_size=4)
    records, _ = read_records(str(tmp_path / "out.jsonl"))
    assert len(records) == 6 and all(isinstance(r, Pairwise) for r in records)
    for r in records:
        assert r.chosen.startswith("sure") and r.rejected.startswith("no")  # the judge's choice, not the file's
        # sure vs no: q gap 2; both orders: (sigmoid(2 + 1.5) + sigmoid(2 - 1.5)) / 2
        p = (1 / (1 + math.exp(-3.5)) + 1 / (1 + math.exp(-0.5))) / 2
        assert r.weight == pytest.approx(p)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows[0]["judge_probability"] == pytest.approx(rows[0]["weight"])
    assert report["agreement"] == {"pairs": 6, "rate": pytest.approx(4 / 6)}  # the file is wrong on 2 of 6
    assert report["position_consistency"] == {"comparisons": 6, "rate": 1.0}
    first = (1 / (1 + math.exp(-3.5)) + 1 / (1 + math.exp(0.5))) / 2  # P(first preferred), good first / bad first
    assert report["first_position_preferred"] == pytest.approx(first)
    assert report["usage"]["calls"] == 1 + 12 and report["usage"]["prompt_tokens"] > 0
    assert json.loads(side_paths(str(tmp_path / "out.jsonl"))["report"].read_text()) == report
    assert any(line.startswith("label: 6/6 items (100%)") and "ETA" in line for line in logs)


def test_a_biased_judge_without_debiasing_disagrees_with_itself(fake, tmp_path):
    s = fake(bias=3.0)  # the first position wins even against a quality gap of 2
    report, _ = label(tmp_path, judge=f"llm-pair:{s.url}", data=str(pairs_file(tmp_path)), batch_size=6)
    assert report["position_consistency"]["rate"] == 0.0  # each order picks its first response
    one, _ = label(tmp_path / "one", judge=f"llm-pair:{s.url},debias=0", data=str(pairs_file(tmp_path)))
    assert one["position_consistency"] is None and one["usage"]["calls"] == 1 + 6
    # seen in one order, the shown-first response always wins: agreement is what the seeded order gives
    assert one["agreement_one_order"] == one["agreement"]


def test_pointwise_thumbs_and_rank(fake, tmp_path):
    s = fake()
    data = write_jsonl(tmp_path / "lists.jsonl", [
        {"prompt": "q1", "completions": ["sure sure", "maybe", "no no"], "scores": [3, 2, 1]},
        {"prompt": [{"role": "user", "content": "q2"}], "completions": ["no", "sure"], "scores": [5, 1]}])
    report, _ = label(tmp_path, judge=f"llm-score:{s.url}", data=str(data), mode="pointwise", threshold=3)
    records, _ = read_records(str(tmp_path / "out.jsonl"))
    assert all(isinstance(r, Binary) for r in records)
    assert [r.label for r in records] == [True, False, False, False, True]  # scores 4 2 0 | 1 3 vs 3
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["judge_score"] for r in rows] == [4.0, 2.0, 0.0, 1.0, 3.0]
    # the file agrees on q1's 3 pairs, disagrees on q2's one
    assert report["agreement"] == {"pairs": 4, "rate": 0.75} and report["thumbs_up_rate"] == pytest.approx(2 / 5)
    report, _ = label(tmp_path / "rank", judge=f"llm-score:{s.url}", data=str(data), mode="rank")
    records, _ = read_records(str(tmp_path / "rank" / "out.jsonl"))
    assert [r.scores for r in records] == [(4.0, 2.0, 0.0), (1.0, 3.0)] and isinstance(records[0], Listwise)
    # a pairwise-only judge ranks by expected wins over the others
    report, _ = label(tmp_path / "wins", judge=f"llm-pair:{s.url}", data=str(data), mode="rank")
    records, _ = read_records(str(tmp_path / "wins" / "out.jsonl"))
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    q2 = records[1].scores
    assert q2 == pytest.approx((sig(-2), sig(2)))  # "no" vs "sure": quality gap 2, no position bias
    assert sum(records[0].scores) == pytest.approx(3)  # three pairs, one win each
    assert report["position_consistency"]["rate"] == 1.0


def test_pointwise_needs_a_scoring_judge(fake, tmp_path):
    s = fake()
    with pytest.raises(ConfigError, match="--mode pointwise needs a judge that scores each response"):
        label(tmp_path, judge=f"llm-pair:{s.url}", data=str(pairs_file(tmp_path)), mode="pointwise")
    # nothing was labelled: the next run starts over with any settings
    report, _ = label(tmp_path, judge=f"llm-score:{s.url}", data=str(pairs_file(tmp_path)), mode="pointwise")
    assert report["rows"] == 12


def test_any_judge_spec_and_unlabelled_samples(tmp_path):
    data = write_jsonl(tmp_path / "samples.jsonl", [{"prompt": "q", "completions": ["one two three", "one", "one"]}])
    report, _ = label(tmp_path, judge="rule:words", data=str(data), soft_labels=False, min_confidence=0.1)
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    # words: 3 vs 1 twice, sigmoid(2); the identical pair is skipped, not judged
    assert rows == [{"prompt": "q", "chosen": "one two three", "rejected": "one", "judge_probability": pytest.approx(
        1 / (1 + math.exp(-2)))}] * 2
    assert report["agreement"] == {"pairs": 0, "rate": None} and report["identical_pairs"] == 1
    assert report["position_consistency"] is None and report["usage"] == {}
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q", "completions": ["only one"]}])
    with pytest.raises(Exception, match=r"bad.jsonl:1: field 'completions': expected a list of two or more"):
        label(tmp_path / "b", judge="rule:words", data=str(bad))
    demos = write_jsonl(tmp_path / "demos.jsonl", [{"prompt": "q", "completion": "a"}])
    with pytest.raises(Exception, match="one response per prompt; label needs two or more"):
        label(tmp_path / "c", judge="rule:words", data=str(demos))


def test_existing_outputs_are_protected(fake, tmp_path):
    s = fake()
    data = pairs_file(tmp_path)
    (tmp_path / "out.jsonl").write_text("someone's file\n")
    with pytest.raises(ConfigError, match="exists and is not a run of alignkit label"):
        label(tmp_path, judge=f"llm-pair:{s.url}", data=str(data))
    label(tmp_path, judge=f"llm-pair:{s.url}", data=str(data), overwrite=True)
    with pytest.raises(ConfigError, match=r"holds a run with other settings \(judge differ\)"):
        label(tmp_path, judge=f"llm-pair:{s.url},debias=0", data=str(data))
    asked = len(s.bodies)
    report, logs = label(tmp_path, judge=f"llm-pair:{s.url}", data=str(data))  # finished: nothing to do
    assert len(s.bodies) == asked and report["rows"] == 6 and "is complete" in logs[0]


def test_config_and_flags():
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    args = p.parse_args(["label", "--judge", "rule:words", "--data", "d.jsonl", "--output", "o.jsonl", "--mode", "rank",
                         "--soft-labels", "false", "--batch_size", "3"])
    assert (args.mode, args.soft_labels, args.batch_size) == ("rank", False, 3)
    with pytest.raises(ConfigError, match="--mode must be one of pairwise, pointwise, rank, got 'listwise'"):
        build_config(LabelConfig, {"judge": "x", "data": "d", "output": "o", "mode": "listwise"}, where="label")
    with pytest.raises(ConfigError, match="field 'judge': required"):
        build_config(LabelConfig, {"data": "d", "output": "o"}, where="label")


SCRIPT = """
import argparse, sys
from alignkit.judges.commands import register
p = argparse.ArgumentParser()
register(p.add_subparsers())
args = p.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_killed_and_restarted_run_writes_the_same_file(fake, tmp_path):
    s = fake(bias=0.5, delay=0.03)
    data = pairs_file(tmp_path, n=30)
    out = tmp_path / "killed" / "out.jsonl"
    out.parent.mkdir()
    cmd = [sys.executable, "-c", SCRIPT, "label", "--judge", f"llm-pair:{s.url},concurrency=1", "--data", str(data),
           "--output", str(out), "--batch-size", "2"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    progress = side_paths(str(out))["progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and progress.read_text().count('"done"') >= 4:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_at_kill = progress.read_text().count('"done"')
    assert 4 <= done_at_kill < 15, proc.stderr.read().decode()  # killed mid-way
    asked_by_killed = len(s.bodies)
    rc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rc.returncode == 0, rc.stderr
    assert f"resuming {out} at item {2 * done_at_kill} of 30" in rc.stdout
    restarted = s.bodies[:]
    # the uninterrupted run, with its own cache, on the same server
    reference, _ = label(tmp_path / "ref", judge=f"llm-pair:{s.url},concurrency=1", data=str(data), batch_size=2)
    assert out.read_bytes() == (tmp_path / "ref" / "out.jsonl").read_bytes()
    assert len(out.read_text().splitlines()) == 30
    report = json.loads(side_paths(str(out))["report"].read_text())
    for key in ("agreement", "position_consistency", "first_position_preferred", "rows", "items_labelled"):
        assert report[key] == reference[key], key
    # a restarted run does not ask again what was answered before the kill: at most the one request
    # in flight when it died (answered, not yet cached) is repeated
    assert len(restarted) - len(set(restarted)) <= 1
    assert asked_by_killed >= 8 and len(set(restarted)) == 60  # 30 pairs x 2 orders (GET /v1/models is not logged)
