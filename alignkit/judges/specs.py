"""Judge specs for LLM judges, registered with `alignkit.rewards.specs` so that every `--reward`,
`--judge` or `--against` accepts them (alone or in weighted sums):

    llm-pair:BACKEND[,OPTION=VALUE...]    pairwise judge (RLAIF, Lee et al. 2023): compare() and rank()
    llm-score:BACKEND[,OPTION=VALUE...]   pointwise 0-5 judge (Self-Rewarding LMs, Yuan et al. 2024):
                                          score() as a reward, compare(), rank()
    llm-cai:BACKEND[,OPTION=VALUE...]     pairwise judge under a constitution's principles, one drawn per
                                          comparison (Constitutional AI, Bai et al. 2022, sec. 4.1)
    BACKEND := hf:DIR | http://HOST[:PORT]/v1 | https://...
             | smollm2                    the default local judge, SmolLM2-135M-Instruct, from the folder
                                          runs/smollm2-135m-instruct (`alignkit models get`, `make smollm2`)

Judge options: template=helpful|harmless|FILE (default helpful), exemplars=FILE (few-shot JSONL),
cot=0|1 (llm-pair default 0, llm-score default 1), max_tokens=N (longest reasoning, default 256),
temperature=T (of the reasoning, default 0), seed=S; llm-pair: debias=0|1 (both orders averaged,
default 1), baseline=DIR|hf:DIR|URL (score() = P(response > that model's greedy answer): a
pairwise judge as a reward, "direct" RLAIF), baseline_tokens=N (its longest answer, default 128);
llm-score: samples=N (verdicts averaged; needs temperature > 0); llm-cai: the llm-pair options and
constitution=default|FILE, principles=harmless|helpful|all|NAME+NAME (default harmless), template
(default constitution).
hf options: dtype=fp32|bf16|fp16, device=auto|cpu|cuda, batch_size=N, chat=auto|0|1,
trust_remote_code=0|1. http options: model=NAME (default: the server's first), chat=1|0 (chat or
plain completions endpoint, default 1), timeout=S, retries=N, concurrency=N, api_key_env=VAR,
top_logprobs=K, cache=FILE, backoff=S, max_backoff=S.

Examples:
    llm-pair:hf:runs/judge,template=harmless,cot=1
    llm-score:http://127.0.0.1:8000/v1,model=judge,cache=runs/judge-cache.jsonl
    0.5*llm-score:hf:runs/judge+0.5*rule:words
    llm-pair:hf:runs/judge,baseline=runs/sft          (a reward for grpo/rloo: P(y > the SFT answer))
    llm-cai:hf:runs/feedback,principles=harmless
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
KIND_OPTIONS = {"llm-pair": {"debias": _bool, "baseline": str, "baseline_tokens": int},
                "llm-score": {"samples": int},
                "llm-cai": {"debias": _bool, "constitution": str, "principles": str, "baseline": str,
                            "baseline_tokens": int}}
HF_OPTIONS = {"dtype": str, "device": str, "batch_size": int, "chat": _chat, "trust_remote_code": _bool}
HTTP_OPTIONS = {"model": str, "chat": _bool, "timeout": float, "retries": int, "concurrency": int,
                "api_key_env": str, "top_logprobs": int, "cache": str, "backoff": float, "max_backoff": float}


def parse_llm_spec(kind: str, arg: str) -> tuple:
    """'hf:DIR,cot=1' -> ('hf:DIR', {judge options}, {backend options}), values converted. A piece
    without '=' (or with a key that is no option) is part of the backend (a folder with a comma)."""
    if not arg.strip():
        raise ConfigError(f"{kind}: needs a backend: {kind}:hf:DIR, {kind}:http://HOST:PORT/v1 or "
                          f"{kind}:smollm2 (the default local judge)"
                          if kind != "backend" else "a model is needed: hf:DIR or http://HOST:PORT/v1")
    pieces = arg.split(",")
    backend = pieces[0].strip()
    http = backend.startswith(("http://", "https://"))
    backend_opts = HTTP_OPTIONS if http else HF_OPTIONS
    known = {**backend_opts} if kind == "backend" else {**JUDGE_OPTIONS, **KIND_OPTIONS[kind], **backend_opts}
    judge_kw, backend_kw = {}, {}
    for piece in pieces[1:]:
        key, eq, value = piece.partition("=")
        key = key.strip()
        if not eq or (key not in known and not key.isidentifier()):
            backend += "," + piece  # a comma inside a folder name
            continue
        where = arg if kind == "backend" else f"{kind}:{arg}"
        if key not in known:
            raise ConfigError(f"{where}: unknown option {key!r}; "
                              f"options for this backend: {', '.join(sorted(known))}")
        try:
            converted = known[key](value.strip())
        except ValueError as e:
            raise ConfigError(f"{where}: option {key}: {e}") from None
        (backend_kw if key in backend_opts else judge_kw)[key] = converted
    return backend, judge_kw, backend_kw


def backend_with_options(spec: str):
    """A Backend from 'hf:DIR[,OPTION=VALUE...]' or 'http(s)://HOST:PORT/v1[,OPTION=VALUE...]' (the
    backend options above), for commands that sample from a model (alignkit constitution)."""
    from .backends import backend_from_spec
    backend_spec, _, bkw = parse_llm_spec("backend", spec)
    return backend_from_spec(backend_spec, **bkw)


def _baseline_backend(value: str):
    """baseline=DIR | hf:DIR | http(s)://...: the model whose greedy answers a response is judged against."""
    from .backends import LOCAL_MODELS, backend_from_spec
    value = value.strip()
    named = value.startswith(("hf:", "http://", "https://")) or value in LOCAL_MODELS
    return backend_from_spec(value if named else "hf:" + value)


def llm_judge(kind: str, arg: str, backend=None):
    """The judge a spec names; `backend` (a Backend) replaces the one the spec names (tests, reuse)."""
    from .backends import backend_from_spec
    from .constitution import ConstitutionalJudge, read_constitution
    from .exemplars import read_exemplars
    from .pairwise import PairwiseLLMJudge
    from .pointwise import PointwiseLLMJudge
    from .templates import load_template
    backend_spec, kw, bkw = parse_llm_spec(kind, arg)
    ttype = "pointwise" if kind == "llm-score" else "pairwise"
    template = load_template(kw.pop("template", "constitution" if kind == "llm-cai" else "helpful"), ttype)
    exemplars = read_exemplars(kw.pop("exemplars"), ttype, template.labels) if "exemplars" in kw else ()
    if "max_tokens" in kw:
        kw["max_new_tokens"] = kw.pop("max_tokens")
    extra = {}
    if kind == "llm-cai":
        extra["constitution"] = read_constitution(kw.pop("constitution", "default"))
    if "baseline" in kw:
        kw["baseline"] = _baseline_backend(kw["baseline"])
    if backend is None:
        backend = backend_from_spec(backend_spec, **bkw)
    cls = {"llm-pair": PairwiseLLMJudge, "llm-score": PointwiseLLMJudge, "llm-cai": ConstitutionalJudge}[kind]
    try:
        return cls(backend, template, exemplars=exemplars, **extra, **kw)
    except ValueError as e:
        raise ConfigError(f"{kind}:{arg}: {e}") from None


register_judge_kind("llm-pair", lambda arg: llm_judge("llm-pair", arg))
register_judge_kind("llm-score", lambda arg: llm_judge("llm-score", arg))
register_judge_kind("llm-cai", lambda arg: llm_judge("llm-cai", arg))
