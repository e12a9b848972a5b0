"""`alignkit serve`: loopback by default, a token when exposed, and real requests on a free port."""
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from alignkit.cli import build_parser, main
from alignkit.commands.common import resolve
from alignkit.commands.serve import ServeConfig
from alignkit.errors import ConfigError
from alignkit.rewards.judge import Judge
from alignkit.serve import Service, is_loopback, load_service, make_server


class CountWords(Judge):
    """A judge whose score is checkable by hand: the number of words, minus 10 if it says 'no'."""
    name = "count_words"

    def score(self, prompts, responses):
        return [len(r.split()) - 10.0 * ("no" in r.split()) for r in responses]


@pytest.fixture
def serving():
    """serving(service, host=..., token=...) -> base URL of a running server (stopped after)."""
    servers = []

    def start(service, host="127.0.0.1", token=None, **kw):
        server = make_server(service, host, 0, token, quiet=True, **kw)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def call(url, body=None, token=None, method=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_binds_to_loopback_by_default(serving):
    args = build_parser()[0].parse_args(["serve", "--model", "m"])
    cfg, = resolve(args, ServeConfig, where="serve")
    assert cfg.host == "127.0.0.1" and cfg.model == "m"
    _, server = serving(Service(judge=CountWords()))
    assert server.server_address[0] == "127.0.0.1"
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    assert not is_loopback("my-host.example")  # a name may resolve anywhere: treated as exposed


def test_exposed_host_without_token_is_refused_before_loading(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ALIGNKIT_SERVE_TOKEN", raising=False)
    rc = main(["serve", "--model", str(tmp_path / "not-loaded"), "--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.startswith("error: --host 0.0.0.0 exposes the server beyond this machine; give it a token")
    with pytest.raises(ConfigError, match="exposes the server"):
        make_server(Service(judge=CountWords()), "0.0.0.0", 0, token=None)


def test_token_is_required_on_every_request(serving):
    url, _ = serving(Service(judge=CountWords()), host="0.0.0.0", token="s3cret")
    body = {"prompts": ["q"], "responses": ["one two three"]}
    for token in (None, "wrong", "s3cret-but-longer"):
        status, reply = call(url + "/score", body, token=token)
        assert status == 401 and "token" in reply["error"]
        assert call(url + "/health", token=token)[0] == 401
    assert call(url + "/score", body, token="s3cret") == (200, {"scores": [3.0]})
    assert call(url + "/health", token="s3cret") == (200, {"ok": True, "endpoints": ["/score"]})


def test_token_from_environment(tmp_path, monkeypatch, capsys):
    # the variable stands in for --token: the exposure check passes and loading starts (and fails here)
    monkeypatch.setenv("ALIGNKIT_SERVE_TOKEN", "from-env")
    rc = main(["serve", "--model", str(tmp_path / "absent"), "--host", "0.0.0.0"])
    assert rc == 2 and "model folder not found" in capsys.readouterr().err


def test_score_and_bad_requests(serving):
    url, _ = serving(Service(judge=CountWords()), max_request_bytes=1000)
    status, reply = call(url + "/score", {"prompts": ["q", [{"role": "user", "content": "q"}]],
                                          "responses": ["sure , here it is", "no"]})
    assert (status, reply) == (200, {"scores": [5.0, -9.0]})
    assert call(url + "/score", {"prompts": ["q"], "responses": ["a", "b"]}) == (
        400, {"error": "1 prompts but 2 responses"})
    assert call(url + "/score", {"prompts": ["q"], "responses": [3]}) == (
        400, {"error": "field 'responses'[0]: expected a string"})
    assert call(url + "/score", raw=b"{not json")[0] == 400
    assert call(url + "/score", raw=b"x" * 2000) == (
        413, {"error": "request body of 2,000 bytes is over the limit of 1,000"})
    assert call(url + "/score", method="GET")[0] == 405
    assert call(url + "/generate", {"prompts": ["q"]})[0] == 404  # no model on this server
    assert call(url + "/nope")[0] == 404


def test_generate_on_a_real_model(tiny_model_dir, serving):
    from alignkit.models.generate import SamplingConfig, generate_texts
    service = load_service(None, str(tiny_model_dir))
    url, _ = serving(service)
    prompts = ["the cat sat on", [{"role": "user", "content": "what is two plus three ?"}]]
    status, reply = call(url + "/generate", {"prompts": prompts, "max_new_tokens": 6})
    assert status == 200 and len(reply["completions"]) == 2
    # greedy by default: the same text as generating directly
    direct = generate_texts(service.model, service.tok, prompts, SamplingConfig(max_new_tokens=6, temperature=0))
    assert reply["completions"] == direct
    assert call(url + "/generate", {"prompts": ["x"], "max_new_tokens": 10_000}) == (
        400, {"error": "field 'max_new_tokens': expected a value in [1, 64], got 10000"})


def test_reward_spec_is_served(serving):
    url, _ = serving(load_service("rule:words+2*rule:chars", None))
    # words("a b c") = 3, chars("a b c") = 5: 3 + 2 * 5
    assert call(url + "/score", {"prompts": ["q", "q"], "responses": ["a b c", "hello"]}) == (
        200, {"scores": [13.0, 11.0]})


def test_serve_command_end_to_end():
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), ALIGNKIT_SERVE_TOKEN="")
    proc = subprocess.Popen([sys.executable, "-m", "alignkit.cli", "serve", "--reward", "rule:words", "--port", "0",
                             "--quiet"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert banner.startswith("alignkit serve: http://127.0.0.1:"), banner + proc.stderr.read()
        assert banner.rstrip().endswith("/score /health; no token (loopback only)")
        url = banner.split()[2]
        assert call(url + "/score", {"prompts": ["q"], "responses": ["one two"]}) == (200, {"scores": [2.0]})
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err
