"""The OpenAI-compatible judge client against deliberately bad servers on loopback: one that times
out, one that answers malformed JSON, one that answers 500 then 200, one that drops the connection,
plus 429 with Retry-After, a 4xx that is not retried, the concurrency limit, the API key, and the
on-disk cache (a rerun makes no call already made; a run cut short keeps what it was answered)."""
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import alignkit.judges  # noqa: F401
from alignkit.judges.client import HTTPBackend, JudgeServerError
from alignkit.judges.specs import llm_judge


def chat_answer(p1: float) -> dict:
    """A chat completion whose first token is "1" with probability p1 and "2" with 1 - p1."""
    top = [{"token": "1", "logprob": math.log(p1)}, {"token": "2", "logprob": math.log(1 - p1)}]
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "1"},
                         "logprobs": {"content": [{"token": "1", "logprob": math.log(p1), "top_logprobs": top}]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1}}


class Server:
    """A loopback HTTP server whose POST answers come from `behave(n, body, handler)` (n counts
    requests from 0): return (status, bytes[, headers]) to answer, or None to drop the connection."""

    def __init__(self, behave):
        self.behave, self.n, self.bodies, self.lock = behave, 0, [], threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.auth = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                data = json.dumps({"object": "list", "data": [{"id": "judge-model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    n = outer.n
                    outer.n += 1
                    outer.bodies.append(body)
                    outer.auth.append(self.headers.get("Authorization"))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    answer = outer.behave(n, body, self)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                if answer is None:  # drop the connection without a word
                    self.close_connection = True
                    return
                status, data, *headers = answer
                self.send_response(status)
                for k, v in (headers[0] if headers else {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(behave):
        s = Server(behave)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def ok(p1=0.8):
    return lambda n, body, h: (200, json.dumps(chat_answer(p1)).encode())


def backend(server, sleeps=None, **kw):
    kw.setdefault("model", "judge-model")
    return HTTPBackend(server.url, sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kw)


def one_line_naming(err, server) -> bool:
    text = str(err.value)
    return "\n" not in text and text.startswith(server.url)


def test_reads_label_probabilities_and_counts(serve):
    s = serve(ok(0.8))
    b = backend(s, model="")  # no model given: the first one GET /v1/models lists
    [lps] = b.label_logprobs(["query"], ("1", "2"))
    assert [math.exp(v) for v in lps] == pytest.approx([0.8, 0.2])
    body = s.bodies[0]
    assert body["model"] == "judge-model" and body["messages"] == [{"role": "user", "content": "query"}]
    assert (body["max_tokens"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (1, 0.0, True, 20)
    # two calls: GET /v1/models, then the judgment
    assert b.usage() == {"calls": 2, "cache_hits": 0, "retries": 0, "prompt_tokens": 7, "completion_tokens": 1}


def test_times_out_then_one_line_error(serve):
    s = serve(lambda n, body, h: time.sleep(1.0) or (200, json.dumps(chat_answer(0.5)).encode()))
    sleeps = []
    b = backend(s, sleeps, timeout=0.2, retries=2)
    t = time.monotonic()
    with pytest.raises(JudgeServerError, match=r"failed after 3 attempts; last: no answer within 0.2 s") as e:
        b.label_logprobs(["q"], ("1", "2"))
    assert one_line_naming(e, s) and s.n == 3 and len(sleeps) == 2
    assert time.monotonic() - t < 3


def test_malformed_json_is_retried_then_one_line_error(serve):
    s = serve(lambda n, body, h: (200, b"{not json"))
    with pytest.raises(JudgeServerError, match=r"failed after 4 attempts; last: malformed response: not JSON") as e:
        backend(s, retries=3).label_logprobs(["q"], ("1", "2"))
    assert one_line_naming(e, s) and s.n == 4
    s2 = serve(lambda n, body, h: (200, json.dumps({"choices": [{"message": {"content": "1"}}]}).encode()))
    with pytest.raises(JudgeServerError, match=r"malformed response: no field choices\[0\].logprobs") as e:
        backend(s2, retries=1).label_logprobs(["q"], ("1", "2"))
    assert one_line_naming(e, s2)


def test_500_then_200_is_retried_with_backoff(serve):
    s = serve(lambda n, body, h: (500, b'{"error": "overloaded"}') if n < 2 else (200, json.dumps(chat_answer(0.7)).encode()))
    sleeps = []
    b = backend(s, sleeps, backoff=0.5, seed=3)
    [lps] = b.label_logprobs(["q"], ("1", "2"))
    assert math.exp(lps[0]) == pytest.approx(0.7) and s.n == 3
    # exponential backoff with jitter: attempt k waits in [backoff 2^(k-1) / 2, backoff 2^(k-1)]
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    assert b.usage()["retries"] == 2 and b.usage()["calls"] == 1
    # the jitter is seeded: the same seed waits the same
    s2 = serve(lambda n, body, h: (500, b"") if n < 2 else (200, json.dumps(chat_answer(0.7)).encode()))
    sleeps2 = []
    backend(s2, sleeps2, backoff=0.5, seed=3).label_logprobs(["q"], ("1", "2"))
    assert sleeps2 == sleeps


def test_always_500_ends_in_one_line_error(serve):
    s = serve(lambda n, body, h: (503, json.dumps({"error": {"message": "model is loading\nstack..."}}).encode()))
    with pytest.raises(JudgeServerError, match=r"failed after 2 attempts; last: HTTP 503: model is loading$") as e:
        backend(s, retries=1).generate(["q"], 8)
    assert one_line_naming(e, s)


def test_dropped_connection_is_retried(serve):
    s = serve(lambda n, body, h: None if n == 0 else (200, json.dumps(chat_answer(0.6)).encode()))
    [lps] = backend(s).label_logprobs(["q"], ("1", "2"))
    assert math.exp(lps[0]) == pytest.approx(0.6) and s.n == 2
    s2 = serve(lambda n, body, h: None)
    with pytest.raises(JudgeServerError, match=r"failed after 3 attempts; last: connection failed: RemoteDisconnected") as e:
        backend(s2, retries=2).label_logprobs(["q"], ("1", "2"))
    assert one_line_naming(e, s2)


def test_refused_connection_names_the_server():
    b = HTTPBackend("http://127.0.0.1:9/v1", model="m", retries=1, sleep=lambda s: None)
    with pytest.raises(JudgeServerError, match=r"^http://127.0.0.1:9/v1: POST /chat/completions failed after 2 "
                                               r"attempts; last: connection failed: ConnectionRefusedError"):
        b.generate(["q"], 4)


def test_429_honours_retry_after_and_4xx_is_not_retried(serve):
    s = serve(lambda n, body, h: (429, b"slow down", {"Retry-After": "7"}) if n == 0 else
              (200, json.dumps(chat_answer(0.9)).encode()))
    sleeps = []
    backend(s, sleeps, max_backoff=30).label_logprobs(["q"], ("1", "2"))
    assert sleeps == [7.0]
    s2 = serve(lambda n, body, h: (400, json.dumps({"error": {"message": "bad max_tokens"}}).encode()))
    with pytest.raises(JudgeServerError, match=r"HTTP 400: bad max_tokens \(not retried\)") as e:
        backend(s2).label_logprobs(["q"], ("1", "2"))
    assert one_line_naming(e, s2) and s2.n == 1


def test_concurrency_limit_and_api_key(serve, monkeypatch):
    s = serve(lambda n, body, h: time.sleep(0.05) or (200, json.dumps(chat_answer(0.5 + n / 100)).encode()))
    monkeypatch.setenv("MY_JUDGE_KEY", "k-123")
    b = backend(s, concurrency=3, api_key_env="MY_JUDGE_KEY")
    queries = [f"q{i}" for i in range(12)]
    out = b.label_logprobs(queries, ("1", "2"))
    assert 2 <= s.max_in_flight <= 3 and s.n == 12
    assert set(s.auth) == {"Bearer k-123"}
    # results come back in the order asked, whatever order the server answered in
    order = {body["messages"][0]["content"]: n for n, body in enumerate(s.bodies)}
    assert [math.exp(lp[0]) for lp in out] == pytest.approx([0.5 + order[q] / 100 for q in queries])


def test_completions_endpoint(serve):
    top = {" 1": math.log(0.3), "2": math.log(0.6)}
    s = serve(lambda n, body, h: (200, json.dumps({"choices": [{"text": "2", "logprobs": {"top_logprobs": [top]}}]}).encode()))
    [lps] = backend(s, chat=False, top_logprobs=5).label_logprobs(["text query"], ("1", "2"))
    assert [math.exp(v) for v in lps] == pytest.approx([0.3, 0.6])
    assert s.bodies[0]["prompt"] == "text query" and s.bodies[0]["logprobs"] == 5 and "messages" not in s.bodies[0]


def test_cache_makes_a_rerun_free(serve, tmp_path):
    s = serve(lambda n, body, h: (200, json.dumps(chat_answer(0.9 if "GOOD" in body["messages"][0]["content"].split(
        "Response 1:")[1].split("Response 2:")[0] else 0.2)).encode()))
    cache = tmp_path / "cache.jsonl"
    spec = f"{s.url},model=judge-model,cache={cache}"
    judge = llm_judge("llm-pair", spec)
    first = judge.judge_pairs(["a", "b", "c"], ["GOOD 1", "GOOD 2", "BAD 3"], ["BAD 1", "BAD 2", "GOOD 3"])
    assert s.n == 6 and judge.usage()["calls"] == 6
    again = llm_judge("llm-pair", spec)  # a new process would do the same: read the file back
    assert again.judge_pairs(["a", "b", "c"], ["GOOD 1", "GOOD 2", "BAD 3"], ["BAD 1", "BAD 2", "GOOD 3"]) == first
    assert s.n == 6 and again.usage()["cache_hits"] == 6 and again.usage()["calls"] == 0
    assert first[0].probability == pytest.approx((0.9 + 0.8) / 2)


def test_cut_short_run_keeps_its_judgments(serve, tmp_path):
    """A server that goes down after 3 answers: the error names it, the 3 answers stay cached, and the
    rerun once it is back asks only for the other 2."""
    state = {"up": 3}

    def behave(n, body, h):
        if state["up"] is not None and n >= state["up"]:
            return 500, b"down"
        return 200, json.dumps(chat_answer(0.7)).encode()

    s = serve(behave)
    cache = tmp_path / "cache.jsonl"
    queries = [f"query {i}" for i in range(5)]
    with pytest.raises(JudgeServerError, match="HTTP 500: down"):
        backend(s, retries=0, concurrency=1, cache=str(cache)).label_logprobs(queries, ("1", "2"))
    assert len(cache.read_text().splitlines()) == 3
    state["up"], asked = None, s.n
    b2 = backend(s, cache=str(cache))
    out = b2.label_logprobs(queries, ("1", "2"))
    assert s.n - asked == 2 and b2.usage()["cache_hits"] == 3
    assert [math.exp(lp[0]) for lp in out] == pytest.approx([0.7] * 5)
    assert {b["messages"][0]["content"] for b in s.bodies[asked:]} == {"query 3", "query 4"}


def test_bad_options_are_one_line_errors():
    from alignkit.errors import ConfigError
    with pytest.raises(ConfigError, match="expected http"):
        HTTPBackend("http://")
    with pytest.raises(ConfigError, match="concurrency must be >= 1"):
        HTTPBackend("http://127.0.0.1:1/v1", concurrency=0)
    assert HTTPBackend("http://127.0.0.1:8000").base == "http://127.0.0.1:8000/v1"
