"""`alignkit serve`: a judge and/or a generator behind a small HTTP server (stdlib only).

    alignkit serve --reward SPEC            POST /score     {"prompts": [...], "responses": [...]}
                                             -> {"scores": [float, ...]}
    alignkit serve --model DIR              POST /generate  {"prompts": [...], "max_new_tokens": 64,
                                                             "temperature": 0.0, "seed": 0}
                                             -> {"completions": [str, ...]}
    GET /health -> {"ok": true, "endpoints": [...]}

A prompt is text or a conversation (a list of {"role", "content"} messages), as in the data files.

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
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import ConfigError

TOKEN_ENV = "ALIGNKIT_SERVE_TOKEN"


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
                 max_items: int = 256):
        self.judge, self.model, self.tok = judge, model, tokenizer
        self.max_new_tokens, self.max_items = max_new_tokens, max_items
        self.lock = threading.Lock()

    def endpoints(self) -> list:
        return (["/score"] if self.judge is not None else []) + (["/generate"] if self.model is not None else [])

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


# ---- HTTP ------------------------------------------------------------------------------------
def make_handler(service: Service, token: str | None, max_request_bytes: int, quiet: bool = False):
    routes = {"/score": service.score, "/generate": service.generate}

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
            try:
                if not self._authorised():
                    raise BadRequest(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'")
                path = self.path.split("?")[0]
                if path == "/health" and method == "GET":
                    return self._send(200, {"ok": True, "endpoints": service.endpoints()})
                if path not in routes:
                    raise BadRequest(404, f"no endpoint {path}; this server has {service.endpoints() + ['/health']}")
                if method != "POST":
                    raise BadRequest(405, f"{path} takes POST")
                self._send(200, routes[path](self._body()))
            except BadRequest as e:
                if not self.body_read:
                    self._discard_body()
                self.close_connection = True
                self._send(e.status, {"error": e.message})
            except Exception as e:  # a failure inside the model or judge: answer, keep serving
                self._send(500, {"error": f"{type(e).__name__}: {e}".splitlines()[0]})

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
                 max_new_tokens: int = 64) -> Service:
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
    return Service(judge, m, tok, max_new_tokens)


def cmd_serve(args) -> int:
    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_exposure(args.host, token)  # before loading anything
    service = load_service(args.reward, args.model, args.trust_remote_code, args.max_new_tokens)
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


def register(sub):
    p = sub.add_parser("serve", help="serve a judge (POST /score) and/or a model (POST /generate) over HTTP",
                       description="A small HTTP server for a judge and/or a generator. Binds to 127.0.0.1; "
                                   "another --host needs --token (or ALIGNKIT_SERVE_TOKEN), and then every request "
                                   "needs 'Authorization: Bearer TOKEN'.")
    p.add_argument("--reward", help="judge spec to serve on POST /score (as for --reward elsewhere)")
    p.add_argument("--model", help="local Hugging Face model folder to serve on POST /generate")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--token", help=f"bearer token every request must carry (default: ${TOKEN_ENV})")
    p.add_argument("--max-new-tokens", type=int, default=64, help="longest completion a request may ask for (default 64)")
    p.add_argument("--max-request-bytes", type=int, default=10 * 2**20, help="largest request body (default 10 MiB)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model folder (off by default)")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    p.set_defaults(func=cmd_serve)
