"""An OpenAI-compatible HTTP client for judges (`http://HOST:PORT/v1`, `https://...`): vLLM, hosted
APIs, `alignkit serve --model DIR`. Standard library only.

Endpoints used (request bodies as in the OpenAI API reference):
    GET  /v1/models                      the model to ask, when the spec gives no model=NAME
    POST /v1/chat/completions            chat=1 (default): {"model", "messages", "max_tokens",
                                         "temperature", "seed", "logprobs": true, "top_logprobs": K}
    POST /v1/completions                 chat=0: {"model", "prompt", "max_tokens", "temperature", "seed",
                                         "logprobs": K}
Label probabilities come from the top-K log-probs of the first generated token (`max_tokens` 1,
temperature 0); a label is matched against each listed token stripped of whitespace, so labels must be
single tokens for the server's tokenizer ("1", "2", "A", "B", "0".."5" are in every common one). A
label outside the top K gets an upper bound, not zero (`backends.labels_from_top`).

Reliability:
- a timeout per attempt (`timeout` seconds: connecting, sending, and waiting for the answer);
- retries (`retries`, default 5) with exponential backoff and jitter (`backoff` * 2^k seconds, drawn
  in [half, full], capped at `max_backoff`; a server's Retry-After wins when longer) on HTTP 429 and
  5xx, refused or dropped connections, timeouts, and answers that are not JSON or lack a field we
  read; other 4xx answers are not retried. Every failure ends in one line naming the server;
- at most `concurrency` requests in flight (a thread pool), order of results kept;
- an API key from the environment variable `api_key_env` (default OPENAI_API_KEY; against
  `alignkit serve --token` use api_key_env=ALIGNKIT_SERVE_TOKEN), sent as `Authorization: Bearer`;
- with `cache=FILE`, every answered request is appended to an on-disk cache (`cache.ResponseCache`)
  and the same request is answered from it thereafter: a rerun makes no call already made.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ..errors import AlignkitError, ConfigError
from .backends import Backend, labels_from_top
from .cache import ResponseCache, request_key


class JudgeServerError(AlignkitError):
    """A judge server that failed for good (after its retries) or refused a request."""


class Malformed(Exception):
    """An answer that is not what the protocol promises (not JSON, a field missing)."""


def _get(obj, *path):
    """obj[path[0]][path[1]]... or Malformed naming the first missing step ("choices[0].logprobs")."""
    where = ""
    for step in path:
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else step)
        try:
            obj = obj[step]
        except (KeyError, IndexError, TypeError):
            raise Malformed(f"no field {where}") from None
        if obj is None:
            raise Malformed(f"field {where} is null")
    return obj


def _server_message(raw: bytes) -> str:
    """The first line of an error body: OpenAI's {"error": {"message"}}, alignkit's {"error": "..."}."""
    text = raw.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error")
        text = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        pass
    line = next((s.strip() for s in text.splitlines() if s.strip()), "(empty body)")
    return line[:200]


class HTTPBackend(Backend):
    def __init__(self, url: str, model: str = "", chat: bool = True, timeout: float = 60.0, retries: int = 5,
                 concurrency: int = 4, api_key_env: str = "OPENAI_API_KEY", top_logprobs: int = 20,
                 cache: str = "", backoff: float = 0.5, max_backoff: float = 30.0, seed: int = 0,
                 sleep=time.sleep):
        super().__init__()
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"judge server {url!r}: expected http(s)://HOST[:PORT]/v1")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"judge server {url!r}: bad port") from None
        for name, value, low in (("timeout", timeout, 1e-3), ("retries", retries, 0), ("concurrency", concurrency, 1),
                                 ("top_logprobs", top_logprobs, 1), ("backoff", backoff, 0.0),
                                 ("max_backoff", max_backoff, 0.0)):
            if value < low:
                raise ConfigError(f"judge server {url}: {name} must be >= {low}, got {value}")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, port
        self.prefix = parts.path.rstrip("/") or "/v1"  # "http://host:8000" means its /v1, as OpenAI clients do
        self.base = f"{parts.scheme}://{parts.netloc}{self.prefix}"
        self.name = self.base
        self.model, self.chat = model, bool(chat)
        self.timeout, self.retries, self.concurrency = float(timeout), int(retries), int(concurrency)
        self.top_logprobs, self.backoff, self.max_backoff = int(top_logprobs), float(backoff), float(max_backoff)
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.cache = ResponseCache(cache) if cache else None
        self.sleep = sleep
        self.rng = random.Random(seed)  # jitter only; seeded so a test can predict the waits
        self.lock = threading.Lock()

    def use_cache(self, path) -> None:
        """Cache answers in `path` unless the spec already chose a cache file."""
        if self.cache is None:
            self.cache = ResponseCache(path)

    # ---- one request, with retries and the cache ---------------------------------------------------
    def _send(self, method: str, path: str, body: dict | None) -> tuple:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.request(method, self.prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Retry-After"), resp.read()
        finally:
            conn.close()

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        delay = self.rng.uniform(delay / 2, delay)
        if retry_after:
            try:
                delay = max(delay, min(self.max_backoff, float(retry_after)))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        self.count(retries=1)
        self.sleep(delay)

    def request(self, method: str, path: str, body: dict | None, check):
        """The checked answer to one request: `check(payload)` extracts what we need or raises
        Malformed (and the request is retried). POST answers are cached when a cache is set."""
        key = request_key(self.base + path, body) if (self.cache is not None and body is not None) else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    result = check(hit)
                    self.count(cache_hits=1)
                    return result
                except Malformed:
                    pass  # an entry from an older protocol: ask again
        last, retry_after = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                self._wait(attempt, retry_after)
            retry_after = None
            try:
                status, retry_after, raw = self._send(method, path, body)
            except TimeoutError:
                last = f"no answer within {self.timeout:g} s (timeout)"
                continue
            except (OSError, http.client.HTTPException) as e:
                last = f"connection failed: {type(e).__name__}" + (f": {e}" if str(e) else "")
                continue
            if status == 429 or status >= 500:
                last = f"HTTP {status}: {_server_message(raw)}"
                continue
            if status >= 400:
                raise JudgeServerError(f"{self.base}: {method} {path}: HTTP {status}: {_server_message(raw)} "
                                       "(not retried)")
            try:
                payload = json.loads(raw.decode("utf-8"))
                if not isinstance(payload, dict):
                    raise Malformed("the answer is not a JSON object")
                result = check(payload)
            except (UnicodeDecodeError, json.JSONDecodeError):
                last = f"malformed response: not JSON ({raw[:60]!r})"
                continue
            except Malformed as e:
                last = f"malformed response: {e}"
                continue
            usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
            self.count(calls=1, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                       completion_tokens=int(usage.get("completion_tokens") or 0))
            if key is not None:
                self.cache.put(key, payload)
            return result
        raise JudgeServerError(f"{self.base}: {method} {path} failed after {self.retries + 1} attempts; last: {last}")

    def map(self, fn, items: list) -> list:
        """[fn(x) for x in items] with at most `concurrency` in flight; the first error stops the rest
        (answers already received stay in the cache)."""
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        ex = ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)))
        try:
            futures = [ex.submit(fn, x) for x in items]
            return [f.result() for f in futures]
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            ex.shutdown(wait=True)

    # ---- the protocol ------------------------------------------------------------------------------
    def model_name(self) -> str:
        with self.lock:
            if not self.model:
                data = self.request("GET", "/models", None, lambda p: _get(p, "data"))
                ids = [m.get("id") for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
                if not ids:
                    raise JudgeServerError(f"{self.base}: GET /models lists no model; "
                                           "give model=NAME in the judge spec")
                self.model = ids[0]
            return self.model

    def _body(self, query, max_tokens: int, temperature: float, seed: int) -> tuple:
        body = {"model": self.model_name(), "max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        if self.chat:
            body["messages"] = [{"role": "user", "content": query}] if isinstance(query, str) else query
            return "/chat/completions", body
        if not isinstance(query, str):
            raise ConfigError(f"{self.base}: chat=0 sends plain text, but the judge built a conversation")
        body["prompt"] = query
        return "/completions", body

    def label_logprobs(self, queries: list, labels: tuple) -> list:
        k = self.top_logprobs

        def one(query):
            path, body = self._body(query, 1, 0.0, 0)
            if self.chat:
                body.update(logprobs=True, top_logprobs=k)

                def check(p):
                    top = _get(p, "choices", 0, "logprobs", "content", 0, "top_logprobs")
                    return [(str(_get(t, "token")), float(_get(t, "logprob"))) for t in top]
            else:
                body.update(logprobs=k)

                def check(p):
                    top = _get(p, "choices", 0, "logprobs", "top_logprobs", 0)
                    if not isinstance(top, dict):
                        raise Malformed("field choices[0].logprobs.top_logprobs[0] is not an object")
                    return [(str(t), float(lp)) for t, lp in top.items()]
            top = self.request("POST", path, body, check)
            top = [(t, lp) for t, lp in top if not math.isnan(lp)]
            logprobs, missing = labels_from_top(top, labels)
            if missing:
                self.count(labels_outside_top=1)
            return logprobs

        return self.map(one, queries)

    def generate(self, queries: list, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list:
        def one(query):
            path, body = self._body(query, max_new_tokens, temperature, seed)
            if self.chat:
                def check(p):
                    msg = _get(p, "choices", 0, "message")
                    content = msg.get("content") if isinstance(msg, dict) else None
                    if content is not None and not isinstance(content, str):
                        raise Malformed("field choices[0].message.content is not text")
                    return content or ""  # null content: a refusal or tool call, no text
            else:
                def check(p):
                    text = _get(p, "choices", 0, "text")
                    if not isinstance(text, str):
                        raise Malformed("field choices[0].text is not text")
                    return text
            return self.request("POST", path, body, check)

        return self.map(one, queries)
