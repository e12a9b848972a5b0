"""`alignkit serve`: a judge and/or a generator behind a small HTTP server (stdlib only).

    alignkit serve --reward SPEC            POST /score     {"prompts": [...], "responses": [...]}
                                             -> {"scores": [float, ...]}
    alignkit serve --model DIR              POST /generate  {"prompts": [...], "max_new_tokens": 64,
                                                             "temperature": 0.0, "seed": 0}
                                             -> {"completions": [str, ...]}
                                             and the OpenAI-compatible endpoints below
    GET /health -> {"ok": true, "endpoints": [...]}

A prompt is text or a conversation (a list of {"role", "content"} messages), as in the data files.

OpenAI-compatible endpoints (with --model), so that LLM judges (alignkit/judges/client.py), vLLM
clients and OpenAI SDKs can use a local model; `--model-name` sets its id (default: the folder name):
    GET  /v1/models            -> {"object": "list", "data": [{"id": NAME, "object": "model", ...}]}
    POST /v1/completions       {"model": NAME (optional), "prompt": str | [str, ...], "max_tokens": 16,
                                "temperature": 1.0, "top_p": 1.0, "seed": int, "stop": str | [str],
                                "logprobs": K (0 to --max-logprobs, default 20; optional), "n": 1}
        -> {"id", "object": "text_completion", "created", "model", "choices": [{"index", "text",
            "finish_reason": "stop" | "length", "logprobs": null | {"tokens": [...],
            "token_logprobs": [...], "top_logprobs": [{token: logprob, ...}, ...], "text_offset": [...]}}],
            "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}
    POST /v1/chat/completions  {"model" (optional), "messages": [{"role", "content": str | [{"type": "text",
                                "text"}]}], "max_tokens" (or "max_completion_tokens"; default: the server's
                                limit), "temperature": 1.0, "top_p", "seed", "stop", "n": 1,
                                "logprobs": false, "top_logprobs": K (0 to --max-logprobs)}
        -> {"id", "object": "chat.completion", "created", "model", "choices": [{"index",
            "message": {"role": "assistant", "content"}, "finish_reason", "logprobs": null |
            {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}}],
            "usage": {...}}
Log-probs are the model's own (log-softmax of its logits, before temperature and top-p, as vLLM reports
by default). A completion prompt is used as it is (BOS prepended); chat messages go through the
tokenizer's chat template with the generation prompt. The answer stops at EOS, at a stop string (cut
before it) or after max_tokens (at most --max-new-tokens); a prompt plus max_tokens longer than the
model's context is refused. Not supported (400): n > 1, echo, stream, token-id prompts.
Errors on /v1/ paths take OpenAI's shape: {"error": {"message", "type", "code"}}.

Safety: the server binds to 127.0.0.1 unless told otherwise. Binding to any other address needs a
token (`--token` or ALIGNKIT_SERVE_TOKEN); with a token, every request must carry
`Authorization: Bearer TOKEN` or gets 401. Request bodies are capped (`--max-request-bytes`), and
one request at a time reaches the model (a lock), so concurrent clients queue instead of racing.
Errors are JSON: {"error": "one line"} with status 400 (bad request), 401, 404, 405, 411 or 413.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import ConfigError

TOKEN_ENV = "ALIGNKIT_SERVE_TOKEN"

# Every endpoint with a request body and the shape of its answer, for `alignkit serve --help` and
# docs/serve.md (tests/test_serve_docs.py posts each body to a running server and checks the answer's
# keys), as served by `alignkit serve --reward rule:words --model DIR --model-name my-model`.
EXAMPLES = (
    ("GET", "/health", None,
     {"ok": True, "endpoints": ["/score", "/generate", "/v1/completions", "/v1/chat/completions", "/v1/models"]}),
    ("POST", "/score", {"prompts": ["What is 2+2?", [{"role": "user", "content": "Say hi."}]],
                        "responses": ["It is 4.", "Hello there!"]},
     {"scores": [3.0, 2.0]}),
    ("POST", "/generate", {"prompts": ["Once upon a time", [{"role": "user", "content": "Tell me a story."}]],
                           "max_new_tokens": 32, "temperature": 0.7, "top_p": 1.0, "seed": 0},
     {"completions": ["there was a cat.", "A dog found a ball."]}),
    ("GET", "/v1/models", None,
     {"object": "list", "data": [{"id": "my-model", "object": "model", "created": 0, "owned_by": "alignkit"}]}),
    ("POST", "/v1/completions", {"model": "my-model", "prompt": "Once upon a time", "max_tokens": 16,
                                 "temperature": 0.0, "logprobs": 2, "stop": ["."]},
     {"id": "cmpl-...", "object": "text_completion", "created": 1764720000, "model": "my-model",
      "choices": [{"index": 0, "text": " there was a cat", "finish_reason": "stop",
                   "logprobs": {"tokens": [" there"], "token_logprobs": [-0.4], "top_logprobs": [{" there": -0.4}],
                                "text_offset": [0]}}],
      "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}),
    ("POST", "/v1/chat/completions", {"model": "my-model", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
        "max_tokens": 16, "temperature": 0.7, "seed": 1, "logprobs": True, "top_logprobs": 2},
     {"id": "chatcmpl-...", "object": "chat.completion", "created": 1764720000, "model": "my-model",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Blue."}, "finish_reason": "stop",
                   "logprobs": {"content": [{"token": "Blue", "logprob": -0.7, "bytes": [66, 108, 117, 101],
                                             "top_logprobs": [{"token": "Blue", "logprob": -0.7,
                                                               "bytes": [66, 108, 117, 101]}]}]}}],
      "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}}),
)
ERROR_EXAMPLE = ("POST", "/score", {"prompts": ["What is 2+2?"]},
                 {"error": "field 'responses': expected a non-empty list"})


def curl(method: str, path: str, body, base: str = "http://127.0.0.1:8000") -> str:
    """The curl command of one example (one line)."""
    if body is None:
        return f"curl -s {base}{path}"
    return f"curl -s {base}{path} -H 'Content-Type: application/json' -d '{json.dumps(body)}'"


def help_examples() -> str:
    """`alignkit serve --help`'s epilog: each endpoint's curl example and the shape of its answer."""
    lines = ["examples (alignkit serve --reward rule:words --model DIR --model-name my-model; every field: "
             "docs/serve.md):"]
    for method, path, body, answer in EXAMPLES + (ERROR_EXAMPLE,):
        lines += ["", f"  {curl(method, path, body)}", f"  -> {json.dumps(answer)}"]
    lines += ["", "  Prompts are text or a conversation ([{role, content}, ...]). With a token, add "
                  "-H 'Authorization: Bearer TOKEN'.",
              "  Errors: {\"error\": \"one line\"} (on /v1/: {\"error\": {\"message\", \"type\", \"code\"}}), "
              "status 400/401/404/405/411/413."]
    return "\n".join(lines)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def is_loopback(host: str) -> bool:
    """Only a loopback address literal or "localhost" counts; any other name may reach the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ConfigError(f"--host {host} exposes the server beyond this machine; give it a token with "
                          f"--token or {TOKEN_ENV} (clients then send 'Authorization: Bearer TOKEN'), "
                          "or keep the default --host 127.0.0.1")


# ---- the two services ------------------------------------------------------------------------
def _text_list(body: dict, key: str) -> list:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise BadRequest(400, f"field {key!r}: expected a non-empty list")
    for i, v in enumerate(value):
        ok = isinstance(v, str) or (key == "prompts" and isinstance(v, list) and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in v))
        if not ok:
            raise BadRequest(400, f"field {key!r}[{i}]: expected a string" +
                             (" or a list of {role, content} messages" if key == "prompts" else ""))
    return value


def _number(body: dict, key: str, default, kind=float, low=None, high=None):
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise BadRequest(400, f"field {key!r}: expected {'an integer' if kind is int else 'a number'}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(400, f"field {key!r}: expected a value in [{low}, {high}], got {value}")
    return kind(value)


class Service:
    """What the handler calls: `score` (a judge) and/or `generate` (a model), one request at a time."""

    def __init__(self, judge=None, model=None, tokenizer=None, max_new_tokens: int = 64,
                 max_items: int = 256, model_name: str = "alignkit", max_logprobs: int = 20):
        self.judge, self.model, self.tok = judge, model, tokenizer
        self.max_new_tokens, self.max_items = max_new_tokens, max_items
        self.model_name, self.max_logprobs = model_name, max_logprobs
        self.lock = threading.Lock()

    def endpoints(self) -> list:
        return (["/score"] if self.judge is not None else []) + (
            ["/generate"] + OPENAI_ENDPOINTS if self.model is not None else [])

    def _cap(self, items: list, key: str) -> None:
        if len(items) > self.max_items:
            raise BadRequest(413, f"field {key!r}: {len(items)} items, more than the server's limit of {self.max_items}")

    def score(self, body: dict) -> dict:
        if self.judge is None:
            raise BadRequest(404, "this server has no judge (start it with --reward SPEC)")
        prompts, responses = _text_list(body, "prompts"), _text_list(body, "responses")
        if len(prompts) != len(responses):
            raise BadRequest(400, f"{len(prompts)} prompts but {len(responses)} responses")
        self._cap(prompts, "prompts")
        with self.lock:
            scores = self.judge.score(prompts, responses)
        return {"scores": [float(s) for s in scores]}

    def generate(self, body: dict) -> dict:
        from .models.generate import SamplingConfig, generate_texts
        if self.model is None:
            raise BadRequest(404, "this server has no model (start it with --model DIR)")
        prompts = _text_list(body, "prompts")
        self._cap(prompts, "prompts")
        cfg = SamplingConfig(
            max_new_tokens=_number(body, "max_new_tokens", self.max_new_tokens, int, 1, self.max_new_tokens),
            temperature=_number(body, "temperature", 0.0, float, 0.0, 10.0),
            top_p=_number(body, "top_p", 1.0, float, 0.0, 1.0), batch_size=16)
        seed = _number(body, "seed", 0, int, 0, 2**31 - 1)
        with self.lock:
            texts = generate_texts(self.model, self.tok, prompts, cfg, seed=seed)
        return {"completions": texts}

    # ---- the OpenAI-compatible protocol (see the module docstring) ------------------------------
    def models(self, body: dict | None = None) -> dict:
        self._need_model()
        return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": 0,
                                            "owned_by": "alignkit"}]}

    def completions(self, body: dict) -> dict:
        self._need_model()
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise BadRequest(400, "field 'prompt': expected a string or a non-empty list of strings "
                                  "(token-id prompts are not supported)")
        self._cap(prompts, "prompt")
        k = body.get("logprobs")
        if k is not None:
            k = _number(body, "logprobs", 0, int, 0, self.max_logprobs)
        if body.get("echo"):
            raise BadRequest(400, "field 'echo': not supported by this server")
        params = self._sampling(body, "max_tokens", 16)
        gens, ids = self._run(prompts, params, k or 0, k is not None)
        choices, usage = [], [0, 0]
        for i, (g, p) in enumerate(zip(gens, ids)):
            toks, text, finish = self._finish(g, params["stop"])
            choice = {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
            if k is not None:
                offsets, at = [], 0
                for t in toks:
                    offsets.append(at)
                    at += len(t[1])
                choice["logprobs"] = {"tokens": [t[1] for t in toks], "token_logprobs": [t[2] for t in toks],
                                      "top_logprobs": [self._top_dict(t) for t in toks], "text_offset": offsets}
            choices.append(choice)
            usage[0] += len(p)
            usage[1] += len(toks)
        return self._reply("text_completion", choices, usage)

    def chat_completions(self, body: dict) -> dict:
        self._need_model()
        messages = _chat_messages(body.get("messages"))
        want = body.get("logprobs", False)
        if not isinstance(want, bool):
            raise BadRequest(400, "field 'logprobs': expected true or false")
        k = _number(body, "top_logprobs", 0, int, 0, self.max_logprobs) if body.get("top_logprobs") is not None else 0
        if k and not want:
            raise BadRequest(400, "field 'top_logprobs': needs \"logprobs\": true")
        key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        params = self._sampling(body, key, self.max_new_tokens)
        gens, ids = self._run([messages], params, k, want)
        toks, text, finish = self._finish(gens[0], params["stop"])
        logprobs = None
        if want:
            def entry(text: str, lp: float) -> dict:
                return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}
            logprobs = {"content": [{**entry(text, lp), "top_logprobs": [entry(self._piece(i), v) for i, v in top]}
                                    for _, text, lp, top in toks]}
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                  "logprobs": logprobs}
        return self._reply("chat.completion", [choice], [len(ids[0]), len(toks)])

    def _need_model(self):
        if self.model is None:
            raise BadRequest(404, "this server has no model (start it with --model DIR)")

    def _sampling(self, body: dict, max_key: str, default_max: int) -> dict:
        for key, allowed in (("stream", (None, False)), ("n", (None, 1))):
            if body.get(key) not in allowed:
                raise BadRequest(400, f"field {key!r}: only {allowed[1]!r} is supported by this server")
        name = body.get("model")
        if name is not None and name != self.model_name:
            raise BadRequest(404, f"model {name!r} not found; this server serves {self.model_name!r} (GET /v1/models)")
        stop = body.get("stop")
        stop = [stop] if isinstance(stop, str) else (stop or [])
        if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(x, str) and x for x in stop):
            raise BadRequest(400, "field 'stop': expected a string or a list of up to 4 non-empty strings")
        max_tokens = _number(body, max_key, min(default_max, self.max_new_tokens), int, 1, 2**31)
        if max_tokens > self.max_new_tokens:
            raise BadRequest(400, f"field {max_key!r}: {max_tokens} is over this server's limit of "
                                  f"{self.max_new_tokens} (start it with a larger --max-new-tokens)")
        seed = body.get("seed")
        return {"max_tokens": max_tokens, "stop": stop,
                "temperature": _number(body, "temperature", 1.0, float, 0.0, 2.0),
                "top_p": _number(body, "top_p", 1.0, float, 0.0, 1.0),
                "seed": random.randrange(2**31) if seed is None else _number(body, "seed", 0, int, 0, 2**63 - 1)}

    def _run(self, prompts: list, params: dict, top_k: int, logprobs: bool) -> tuple:
        from .data.tokenize import Encoder
        from .judges.hf import generate_with_logprobs
        from .models.context import context_length
        enc = Encoder.untruncated(self.tok)
        ids = [enc.prompt_ids(p) for p in prompts]
        context = context_length(getattr(self.model, "config", None))
        for i, p in enumerate(ids):
            if context and len(p) + params["max_tokens"] > context:
                raise BadRequest(400, f"prompt {i}: {len(p)} tokens plus max_tokens {params['max_tokens']} is "
                                      f"more than the model's context of {context} tokens")
        with self.lock:
            gens = generate_with_logprobs(self.model, self.tok, ids, params["max_tokens"], params["temperature"],
                                          params["top_p"], top_k, params["seed"] % 2**32, logprobs=logprobs)
        return gens, ids

    def _piece(self, token_id: int) -> str:
        return self.tok.decode([token_id])

    def _finish(self, g, stop: list) -> tuple:
        """[(id, text, logprob, top)] of the tokens kept, the text, and the finish reason: a stop
        string cuts the text before it and drops the tokens that start at or after the cut."""
        text = self.tok.decode(g.ids, skip_special_tokens=True)
        lps = g.logprobs or [None] * len(g.ids)  # none asked for
        toks = [(tid, self._piece(tid), lp, g.top[j] if g.top else []) for j, (tid, lp) in enumerate(zip(g.ids, lps))]
        finish = g.finish_reason
        cuts = [text.find(x) for x in stop if x in text]
        if cuts:
            cut = min(cuts)
            text, finish = text[:cut], "stop"
            kept, at = [], 0
            for t in toks:
                if at >= cut:
                    break
                kept.append(t)
                at += len(t[1])
            toks = kept
        return toks, text, finish

    def _top_dict(self, tok) -> dict:
        top = {}
        for tid, lp in tok[3]:
            top.setdefault(self._piece(tid), lp)  # pieces that decode alike: keep the likelier
        top.setdefault(tok[1], tok[2])  # the sampled token is always listed, as vLLM does
        return top

    def _reply(self, kind: str, choices: list, usage: list) -> dict:
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
                "model": self.model_name, "choices": choices,
                "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


OPENAI_ENDPOINTS = ["/v1/completions", "/v1/chat/completions", "/v1/models"]


def _chat_messages(value) -> list:
    """OpenAI chat messages -> [{"role", "content": str}]; text parts of a content list are joined."""
    if not isinstance(value, list) or not value:
        raise BadRequest(400, "field 'messages': expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant"):
            raise BadRequest(400, f"field 'messages'[{i}]: expected a role of system, developer, user or assistant")
        content = m.get("content")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise BadRequest(400, f"field 'messages'[{i}].content: only text parts are supported")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise BadRequest(400, f"field 'messages'[{i}].content: expected a string or a list of text parts")
        out.append({"role": "system" if m["role"] == "developer" else m["role"], "content": content})
    return out


# ---- HTTP ------------------------------------------------------------------------------------
def make_handler(service: Service, token: str | None, max_request_bytes: int, quiet: bool = False):
    routes = {"/score": service.score, "/generate": service.generate, "/v1/completions": service.completions,
              "/v1/chat/completions": service.chat_completions}
    get_routes = {"/v1/models": service.models}

    class Handler(BaseHTTPRequestHandler):
        server_version = "alignkit"
        protocol_version = "HTTP/1.1"
        timeout = 60  # seconds a client may stall mid-request before its connection is dropped

        def log_message(self, fmt, *args):
            if not quiet:
                super().log_message(fmt, *args)

        def _send(self, status: int, payload: dict):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="alignkit"')
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if not token:
                return True
            given = self.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

        def _discard_body(self):
            """Read (and drop) an unread body, up to a cap, so that closing the connection does not
            reset it before the client has read the error."""
            try:
                n = int(self.headers.get("Content-Length") or 0)
                if 0 < n <= max(max_request_bytes, 2**20):
                    self.rfile.read(n)
            except (ValueError, OSError):
                pass

        def _body(self) -> dict:
            length = self.headers.get("Content-Length")
            if length is None:
                raise BadRequest(411, "a Content-Length header is required")
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n < 0:
                raise BadRequest(400, f"bad Content-Length {length!r}")
            if n > max_request_bytes:
                raise BadRequest(413, f"request body of {n:,} bytes is over the limit of {max_request_bytes:,}")
            self.body_read = True
            try:
                body = json.loads(self.rfile.read(n).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BadRequest(400, f"the body is not JSON: {e}") from None
            if not isinstance(body, dict):
                raise BadRequest(400, "the body must be a JSON object")
            return body

        def _handle(self, method: str):
            self.body_read = False
            path = self.path.split("?")[0]
            try:
                if not self._authorised():
                    raise BadRequest(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'")
                if path == "/health" and method == "GET":
                    return self._send(200, {"ok": True, "endpoints": service.endpoints()})
                if path in get_routes:
                    if method != "GET":
                        raise BadRequest(405, f"{path} takes GET")
                    return self._send(200, get_routes[path]())
                if path not in routes:
                    raise BadRequest(404, f"no endpoint {path}; this server has {service.endpoints() + ['/health']}")
                if method != "POST":
                    raise BadRequest(405, f"{path} takes POST")
                self._send(200, routes[path](self._body()))
            except BadRequest as e:
                if not self.body_read:
                    self._discard_body()
                self.close_connection = True
                self._send(e.status, self._error(path, e.status, e.message))
            except Exception as e:  # a failure inside the model or judge: answer, keep serving
                self._send(500, self._error(path, 500, f"{type(e).__name__}: {e}".splitlines()[0]))

        @staticmethod
        def _error(path: str, status: int, message: str) -> dict:
            if path.startswith("/v1/"):  # OpenAI clients read error.message
                kind = "invalid_request_error" if status < 500 else "server_error"
                return {"error": {"message": message, "type": kind, "code": status}}
            return {"error": message}

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

    return Handler


def make_server(service: Service, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
                max_request_bytes: int = 10 * 2**20, quiet: bool = False) -> ThreadingHTTPServer:
    """A ready (not yet serving) server; port 0 picks a free port (see `server.server_address`)."""
    check_exposure(host, token)
    if not service.endpoints():
        raise ConfigError("nothing to serve: give --reward SPEC (a judge), --model DIR (generation), or both")
    handler = make_handler(service, token, max_request_bytes, quiet)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    server.daemon_threads = True
    return server


def load_service(reward: str | None, model: str | None, trust_remote_code: bool = False,
                 max_new_tokens: int = 64, model_name: str | None = None, max_logprobs: int = 20) -> Service:
    judge = m = tok = None
    if reward:
        try:
            from .rewards.specs import judge_from_spec
        except ModuleNotFoundError as e:
            if e.name != "alignkit.rewards.specs":
                raise
            raise ConfigError("--reward needs alignkit.rewards.specs (judge specs), which this install lacks; "
                              "serve generation with --model DIR") from None
        judge = judge_from_spec(reward)
    if model:
        from .models.loading import load_causal_lm, load_tokenizer
        m = load_causal_lm(model, "fp32", trust_remote_code)
        tok = load_tokenizer(model, trust_remote_code)
        m.config.use_cache = True
        m.eval()
    name = model_name or (Path(model).resolve().name if model else "alignkit")
    return Service(judge, m, tok, max_new_tokens, model_name=name, max_logprobs=max_logprobs)


def cmd_serve(args) -> int:
    """Serve until interrupted; `args` has the fields of commands/serve.py's ServeConfig."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_exposure(args.host, token)  # before loading anything
    service = load_service(args.reward, args.model, args.trust_remote_code, args.max_new_tokens,
                           args.model_name, args.max_logprobs)
    server = make_server(service, args.host, args.port, token, args.max_request_bytes, args.quiet)
    host, port = server.server_address[:2]
    auth = "token required" if token else "no token (loopback only)"
    print(f"alignkit serve: http://{host}:{port} {' '.join(service.endpoints())} /health; {auth}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("alignkit serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
