"""Judge specs for LLM judges, registered with `alignkit.rewards.specs` so that every `--reward`,
`--judge` or `--against` accepts them (alone or in weighted sums):

    llm-pair:BACKEND[,OPTION=VALUE...]    pairwise judge (RLAIF, Lee et al. 2023): compare() and rank()
    llm-score:BACKEND[,OPTION=VALUE...]   pointwise 0-5 judge (Self-Rewarding LMs, Yuan et al. 2024):
                                          score() as a reward, compare(), rank()
    BACKEND := hf:DIR | http://HOST[:PORT]/v1 | https://...

Judge options: template=helpful|harmless|FILE (default helpful), exemplars=FILE (few-shot JSONL),
cot=0|1 (llm-pair default 0, llm-score default 1), max_tokens=N (longest reasoning, default 256),
temperature=T (of the reasoning, default 0), seed=S; llm-pair: debias=0|1 (both orders averaged,
default 1); llm-score: samples=N (verdicts averaged; needs temperature > 0).
hf options: dtype=fp32|bf16|fp16, device=auto|cpu|cuda, batch_size=N, chat=auto|0|1,
trust_remote_code=0|1. http options: model=NAME (default: the server's first), chat=1|0 (chat or
plain completions endpoint, default 1), timeout=S, retries=N, concurrency=N, api_key_env=VAR,
top_logprobs=K, cache=FILE, backoff=S, max_backoff=S.

Examples:
    llm-pair:hf:runs/judge,template=harmless,cot=1
    llm-score:http://127.0.0.1:8000/v1,model=judge,cache=runs/judge-cache.jsonl
    0.5*llm-score:hf:runs/judge+0.5*rule:words
"""
from __future__ import annotations

from ..errors import ConfigError
from ..rewards.specs import register_judge_kind


def _bool(v: str) -> bool:
    s = v.strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected 0 or 1, got {v!r}")


def _chat(v: str):
    return "auto" if v.strip().lower() == "auto" else _bool(v)


JUDGE_OPTIONS = {"template": str, "exemplars": str, "cot": _bool, "max_tokens": int, "temperature": float,
                 "seed": int}
KIND_OPTIONS = {"llm-pair": {"debias": _bool}, "llm-score": {"samples": int}}
HF_OPTIONS = {"dtype": str, "device": str, "batch_size": int, "chat": _chat, "trust_remote_code": _bool}
HTTP_OPTIONS = {"model": str, "chat": _bool, "timeout": float, "retries": int, "concurrency": int,
                "api_key_env": str, "top_logprobs": int, "cache": str, "backoff": float, "max_backoff": float}


def parse_llm_spec(kind: str, arg: str) -> tuple:
    """'hf:DIR,cot=1' -> ('hf:DIR', {judge options}, {backend options}), values converted. A piece
    without '=' (or with a key that is no option) is part of the backend (a folder with a comma)."""
    if not arg.strip():
        raise ConfigError(f"{kind}: needs a backend: {kind}:hf:DIR or {kind}:http://HOST:PORT/v1")
    pieces = arg.split(",")
    backend = pieces[0].strip()
    http = backend.startswith(("http://", "https://"))
    backend_opts = HTTP_OPTIONS if http else HF_OPTIONS
    known = {**JUDGE_OPTIONS, **KIND_OPTIONS[kind], **backend_opts}
    judge_kw, backend_kw = {}, {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        key = key.strip()
        if not eq or (key not in known and not key.isidentifier()):
            backend += "," + piece  # a comma inside a folder name
            continue
        if key not in known:
            raise ConfigError(f"{kind}:{arg}: unknown option {key!r}; "
                              f"options for this backend: {', '.join(sorted(known))}")
        try:
            converted = known[key](value.strip())
        except ValueError as e:
            raise ConfigError(f"{kind}:{arg}: option {key}: {e}") from None
        (backend_kw if key in backend_opts else judge_kw)[key] = converted
    return backend, judge_kw, backend_kw


def llm_judge(kind: str, arg: str, backend=None):
    """The judge a spec names; `backend` (a Backend) replaces the one the spec names (tests, reuse)."""
    from .backends import backend_from_spec
    from .exemplars import read_exemplars
    from .pairwise import PairwiseLLMJudge
    from .pointwise import PointwiseLLMJudge
    from .templates import load_template
    backend_spec, kw, bkw = parse_llm_spec(kind, arg)
    ttype = "pairwise" if kind == "llm-pair" else "pointwise"
    template = load_template(kw.pop("template", "helpful"), ttype)
    exemplars = read_exemplars(kw.pop("exemplars"), ttype, template.labels) if "exemplars" in kw else ()
    if "max_tokens" in kw:
        kw["max_new_tokens"] = kw.pop("max_tokens")
    if backend is None:
        backend = backend_from_spec(backend_spec, **bkw)
    cls = PairwiseLLMJudge if kind == "llm-pair" else PointwiseLLMJudge
    try:
        return cls(backend, template, exemplars, **kw)
    except ValueError as e:
        raise ConfigError(f"{kind}:{arg}: {e}") from None


register_judge_kind("llm-pair", lambda arg: llm_judge("llm-pair", arg))
register_judge_kind("llm-score", lambda arg: llm_judge("llm-score", arg))
