"""Every curl example of docs/serve.md and of `alignkit serve --help`, posted as written to a server
started in-process on a free port: each answers 200 (the error example: 400) with the keys its
documented answer shows."""
from __future__ import annotations

import json
import re
import shlex
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "serve.md"


def examples_of(text: str) -> list:
    """(curl argv, documented answer) for every `curl ...` line followed by a `# -> ANSWER` or `-> ANSWER` line."""
    text = re.sub(r"\s*\\\n\s*", " ", text)  # shell line continuations
    lines = [line.strip() for line in text.splitlines()]
    out = []
    for i, line in enumerate(lines):
        if line.startswith("curl "):
            answer = lines[i + 1].removeprefix("#").strip()
            assert answer.startswith("-> "), f"no documented answer after: {line}"
            out.append((shlex.split(line), json.loads(answer[3:])))
    return out


def same_keys(doc, got, where="answer"):
    """The documented answer's keys are the actual answer's (recursively through dicts and first list items)."""
    if isinstance(doc, dict) and not (where.endswith("top_logprobs[0]") and "token" not in doc):
        assert isinstance(got, dict) and set(doc) == set(got), f"{where}: documented {sorted(doc)}, got {got!r}"
        for k in doc:
            same_keys(doc[k], got[k], f"{where}.{k}")
    elif isinstance(doc, list) and doc and isinstance(doc[0], (dict, list)):
        assert isinstance(got, list) and got, f"{where}: documented a list, got {got!r}"
        same_keys(doc[0], got[0], f"{where}[0]")


def post(argv: list, port: int) -> tuple:
    url = next(a for a in argv if a.startswith("http://")).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    data = argv[argv.index("-d") + 1].encode() if "-d" in argv else None
    headers = dict(h.split(": ", 1) for h in (argv[i + 1] for i, a in enumerate(argv) if a == "-H"))
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    from alignkit.serve import load_service, make_server
    service = load_service("rule:words", str(tiny_model_dir), max_new_tokens=64, model_name="my-model")
    srv = make_server(service, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _check(examples: list, port: int):
    paths = set()
    for argv, doc in examples:
        status, got = post(argv, port)
        assert status == (400 if "error" in doc else 200), (argv, got)
        same_keys(doc, got)
        if "scores" in doc:  # rule:words: the documented scores are the true ones
            assert got == doc
        paths.add(next(a for a in argv if a.startswith("http://")).split("8000", 1)[1])
    return paths


def test_every_example_in_docs_serve_md_works(server):
    examples = examples_of(DOC.read_text())
    assert _check(examples, server) == {"/health", "/score", "/generate", "/v1/models", "/v1/completions",
                                        "/v1/chat/completions"}


def test_every_example_in_serve_help_works(server, capsys):
    from alignkit.cli import main
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert len(_check(examples_of(capsys.readouterr().out), server)) == 6


def test_the_help_and_the_page_show_the_same_bodies():
    from alignkit.serve import ERROR_EXAMPLE, EXAMPLES, curl
    page = re.sub(r"\s*\\\n\s*", " ", DOC.read_text())
    for method, path, body, answer in EXAMPLES + (ERROR_EXAMPLE,):
        assert curl(method, path, body) in page and json.dumps(answer) in page
