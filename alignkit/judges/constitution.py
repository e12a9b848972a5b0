"""Constitutional AI (Bai et al. 2022, arXiv 2212.08073): a constitution, its supervised stage and its
AI-preference stage.

A constitution is a list of principles. Each has a critique request, a revision request (sec. 3.1)
and a multiple-choice phrasing for comparing two responses (sec. 4.1), and is meant for
harmlessness or for helpfulness. The file is JSONL, one principle a line (lines starting with # and
blank lines are skipped):

    {"name": "harm", "kind": "harmless", "critique": "...", "revision": "...", "choice": "Which ...?"}

alignkit ships a default one (constitutions/default.jsonl, in our own words); `read_constitution`
checks a user's file and names the file, line and field of any problem in one line.

1. The supervised stage (SL-CAI, sec. 3): for each prompt a response is sampled from the model; then,
   for N rounds, a principle is drawn at random (seeded by the item and the round), the model
   critiques its response against the principle's critique request and rewrites it following the
   revision request. The last revision becomes a demonstration (prompt, revision): SFT data.
   A chat backend gets the conversation as turns (user prompt, assistant response, user critique
   request, assistant critique, user revision request); a completion backend gets the paper's text
   ("Human: ...", "Assistant: ...", "Critique Request: ...", "Critique:", ...). Each round starts
   from the prompt and the current response (the paper keeps appending to one growing transcript;
   a fresh start keeps the context short and gives the same revision requests). The critic may be
   another model than the one that answers (`critic`); in the paper both are the same helpful model.
2. The AI-preference stage (RL-CAI, sec. 4): a feedback model is shown the conversation and two
   responses and asked the principle's multiple-choice question; the preference is its probability of
   each option's label (the pairwise judge, label probabilities normalised over the two, both orders
   averaged: pairwise.py). A principle is drawn per comparison (from a hash of the prompt and the two
   responses, so both orders and a resumed run get the same one). The pairs, with P(chosen >
   rejected) as the soft label, are preference data for `train rm` (the paper's preference model),
   `train dpo`, ...

Both stages write their output in resumable chunks (resumable.py): a killed run restarted with the
same command writes the same file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import ConfigError, DataError
from .exemplars import context_text
from .pairwise import PairwiseLLMJudge

KINDS = ("harmless", "helpful")
FIELDS = ("name", "kind", "critique", "revision", "choice")
CONSTITUTION_DIR = Path(__file__).parent / "constitutions"
BUILTIN = ("default",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Principle:
    name: str  # unique short name
    kind: str  # harmless | helpful
    critique: str  # the critique request (sec. 3.1)
    revision: str  # the revision request (sec. 3.1)
    choice: str  # the principle as a multiple-choice question between two responses (sec. 4.1)


@dataclass(frozen=True)
class Constitution:
    principles: tuple  # Principle, in file order
    source: str  # the file it came from

    def select(self, which: str) -> tuple:
        """harmless | helpful | all | NAME[+NAME...] -> those principles (in file order)."""
        which = (which or "").strip()
        if which == "all":
            return self.principles
        if which in KINDS:
            pool = tuple(p for p in self.principles if p.kind == which)
            if not pool:
                raise ConfigError(f"constitution {self.source}: no {which} principle; choose another --principles")
            return pool
        names = [n.strip() for n in which.split("+") if n.strip()]
        known = {p.name: p for p in self.principles}
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise ConfigError(f"principles {which!r}: expected harmless, helpful, all or principle names joined by + "
                              f"(this constitution has {', '.join(known)})")
        return tuple(known[n] for n in dict.fromkeys(names))


def parse_constitution(text: str, source: str) -> Constitution:
    """A Constitution from a JSONL text; any problem is a DataError naming `source`, the line and the field."""
    principles, names = [], {}
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(source, line, None, f"malformed JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict):
            raise DataError(source, line, None, f"expected a JSON object with fields {', '.join(FIELDS)}")
        for key in row:
            if key not in FIELDS:
                raise DataError(source, line, key, f"unknown field; a principle has {', '.join(FIELDS)}")
        for key in FIELDS:
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                raise DataError(source, line, key, "missing" if key not in row else "expected a non-empty string")
            if "\n" in value.strip() and key in ("name", "kind"):
                raise DataError(source, line, key, "expected one line")
        name = row["name"].strip()
        if not _NAME.match(name):
            raise DataError(source, line, "name", f"{name!r}: use letters, digits, - and _ only")
        if name in names:
            raise DataError(source, line, "name", f"{name!r} is already the name of the principle on line {names[name]}")
        if row["kind"].strip() not in KINDS:
            raise DataError(source, line, "kind", f"expected {' or '.join(KINDS)}, got {row['kind']!r}")
        names[name] = line
        principles.append(Principle(name, row["kind"].strip(), row["critique"].strip(), row["revision"].strip(),
                                    row["choice"].strip()))
    if not principles:
        raise DataError(source, None, None, "the constitution has no principles")
    return Constitution(tuple(principles), source)


def read_constitution(name: str = "default") -> Constitution:
    """`default` (shipped) or the path of a constitution file."""
    path = CONSTITUTION_DIR / f"{name}.jsonl" if name in BUILTIN else Path(name)
    if not path.is_file():
        raise ConfigError(f"constitution {name}: no such file, and not a built-in one ({', '.join(BUILTIN)})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"constitution {path}: cannot read: {e}") from None
    return parse_constitution(text, str(path))


def draw(pool: tuple, *key) -> Principle:
    """A principle drawn uniformly from `pool`, seeded by `key` (the same key, the same principle)."""
    digest = hashlib.sha256("\x1f".join(map(str, key)).encode("utf-8")).digest()
    return pool[random.Random(digest).randrange(len(pool))]


# ---- the AI-preference stage: a pairwise judge under drawn principles ------------------------------------
class ConstitutionalJudge(PairwiseLLMJudge):
    """The pairwise judge with the principle's multiple-choice question in the prompt (template with
    {principle}, by default the built-in `constitution`); each comparison is judged under a principle
    drawn from `pool` by a hash of (seed, prompt, the two responses as a set), so both orders and
    every rerun use the same one. judge_pairs() reports the principle's name per pair."""

    def __init__(self, backend, template, constitution: Constitution, principles: str = "harmless", **kw):
        if not template.uses_principle:
            raise ConfigError(f"template {template.source} has no {{principle}} placeholder; a constitution "
                              "judge needs one (template=constitution)")
        kw.setdefault("name", f"llm-cai:{backend.name}")
        super().__init__(backend, template, **kw)
        self.constitution = constitution
        self.pool = constitution.select(principles)

    def principle_for(self, prompt, a: str, b: str) -> Principle:
        return draw(self.pool, "preference", self.seed, context_text(prompt), *sorted((a, b)))

    def judge_pairs(self, prompts: list, a: list, b: list, principles: list | None = None) -> list:
        if principles is not None:
            return super().judge_pairs(prompts, a, b, principles)
        drawn = [self.principle_for(p, x, y) for p, x, y in zip(prompts, a, b)]
        out = super().judge_pairs(prompts, a, b, [d.choice for d in drawn])
        return [dataclasses.replace(j, principle=d.name) for j, d in zip(out, drawn)]


# ---- the supervised stage: critique and revise ---------------------------------------------------------
STOPS = ("\nHuman:", "\nAssistant:", "\nCritique Request:", "\nCritique:", "\nRevision Request:", "\nRevision:")


def messages_of(prompt) -> list:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]


def transcript(messages: list) -> str:
    """The paper's text form of a conversation: "Human: ..." and "Assistant: ..." turns."""
    who = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "\n\n".join(f"{who.get(m.get('role'), str(m.get('role')).capitalize())}: {m.get('content', '')}"
                       for m in messages)


def clean(text: str) -> str:
    """A generation cut where a completion model starts the next turn, stripped."""
    cut = min([i for i in (text.find(s) for s in STOPS) if i >= 0], default=len(text))
    return text[:cut].strip()


def response_query(chat: bool, prompt):
    msgs = messages_of(prompt)
    return msgs if chat else transcript(msgs) + "\n\nAssistant:"


def critique_query(chat: bool, prompt, response: str, principle: Principle):
    msgs = messages_of(prompt) + [{"role": "assistant", "content": response},
                                  {"role": "user", "content": principle.critique}]
    if chat:
        return msgs
    return transcript(msgs[:-1]) + f"\n\nCritique Request: {principle.critique}\n\nCritique:"


def revision_query(chat: bool, prompt, response: str, principle: Principle, critique: str):
    if chat:
        return critique_query(True, prompt, response, principle) + [
            {"role": "assistant", "content": critique}, {"role": "user", "content": principle.revision}]
    return (critique_query(False, prompt, response, principle) + f" {critique}\n\nRevision Request: "
            f"{principle.revision}\n\nRevision:")


@dataclass(frozen=True)
class ReviseConfig:
    model: str = ""  # the model that answers the prompts: hf:DIR or http(s)://HOST:PORT/v1, options after commas (hf:DIR,batch_size=16), or an LLM judge spec (its model) (required)
    critic: str = ""  # the model that critiques and revises, same forms; "" = the answering model itself, as in the paper
    data: str = ""  # prompts: JSONL rows with "prompt" (text or messages), or any data file `alignkit train` reads (required)
    output: str = ""  # demonstrations JSONL (prompt/completion) for `alignkit train sft`; .report.json and .progress.jsonl go beside it (required)
    constitution: str = "default"  # default (the shipped one) or a constitution file (JSONL)
    principles: str = "harmless"  # which principles are drawn: harmless | helpful | all | NAME[+NAME...]
    rounds: int = option(1, ge=1)  # critique-and-revision rounds per response, each under a freshly drawn principle
    max_tokens: int = option(128, ge=1)  # longest response, critique and revision, in tokens
    temperature: float = option(1.0, ge=0)  # sampling temperature of the first response
    critic_temperature: float = option(0.0, ge=0)  # sampling temperature of critiques and revisions (0 = greedy)
    batch_size: int = option(8, ge=1)  # prompts per model call and per resumable chunk
    limit: int = option(0, ge=0)  # the first N prompts only; 0 = all
    seed: int = 0  # principle draws and sampling
    overwrite: bool = False  # start over even when OUTPUT holds a finished or partial run

    def __post_init__(self):
        for name in ("model", "data", "output"):
            if not getattr(self, name):
                raise ValueError(f"field {name!r}: required (--{name} ...)")
        for name, low in (("rounds", 1), ("max_tokens", 1), ("batch_size", 1), ("limit", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"field {name!r}: expected >= {low}, got {getattr(self, name)}")
        for name in ("temperature", "critic_temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"field {name!r}: expected >= 0, got {getattr(self, name)}")


def _prompts(path: str, limit: int) -> list:
    from ..data.prompts import read_prompts
    prompts = read_prompts(path)
    if not prompts:
        raise DataError(path, None, None, "no prompts")
    return prompts[:limit] if limit else prompts


def is_backend_spec(spec: str) -> bool:
    return spec.strip().startswith(("hf:", "http://", "https://"))


def _backend(spec: str):
    """A model to sample from: hf:DIR[,options], http(s)://...[,options], or the spec of an LLM judge
    (e.g. a task plug-in's judge kind), whose model is then used."""
    from .specs import backend_with_options
    if is_backend_spec(spec):
        return backend_with_options(spec)
    from ..rewards.specs import judge_from_spec
    backend = getattr(judge_from_spec(spec), "backend", None)
    if backend is None:
        raise ConfigError(f"{spec}: not a model; expected hf:DIR, http(s)://HOST:PORT/v1 or the spec of an LLM judge "
                          "(whose model is used)")
    return backend


def _usage(backends: list) -> dict:
    out: dict = {}
    for b in {id(b): b for b in backends}.values():
        for k, v in b.usage().items():
            out[k] = out.get(k, 0) + v
    return out


def _delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after}


def revise_chunk(model, critic, prompts: list, start: int, cfg: ReviseConfig, pool: tuple) -> tuple:
    """(rows, stats) for prompts[i] = item start + i: sample, then cfg.rounds critiques and revisions."""
    from ..data.convert import to_trl_dict
    from ..data.records import Demonstration
    stats: dict = {"items": len(prompts)}
    first = [clean(t) for t in model.generate([response_query(model.chat, p) for p in prompts], cfg.max_tokens,
                                              cfg.temperature, cfg.seed * 1_000_003 + start)]
    current, history = list(first), [[] for _ in prompts]
    for r in range(cfg.rounds):
        drawn = [draw(pool, "revision", cfg.seed, start + i, r) for i in range(len(prompts))]
        seed = cfg.seed * 1_000_003 + start + 7919 * (r + 1)
        crits = [clean(t) for t in critic.generate(
            [critique_query(critic.chat, p, y, pr) for p, y, pr in zip(prompts, current, drawn)],
            cfg.max_tokens, cfg.critic_temperature, seed)]
        revs = [clean(t) for t in critic.generate(
            [revision_query(critic.chat, p, y, pr, c) for p, y, pr, c in zip(prompts, current, drawn, crits)],
            cfg.max_tokens, cfg.critic_temperature, seed + 1)]
        for i, (pr, c, v) in enumerate(zip(drawn, crits, revs)):
            history[i].append({"principle": pr.name, "critique": c, "revision": v})
            stats[f"principle/{pr.name}"] = stats.get(f"principle/{pr.name}", 0) + 1
            if v:
                stats["revisions_changed"] = stats.get("revisions_changed", 0) + int(v != current[i])
                current[i] = v
            else:  # nothing written: the response stands
                stats["empty_revisions"] = stats.get("empty_revisions", 0) + 1
    rows = []
    for p, y0, y, h in zip(prompts, first, current, history):
        stats["changed"] = stats.get("changed", 0) + int(y != y0)
        rows.append({**to_trl_dict(Demonstration(p, y)), "initial_response": y0, "revisions": h})
    return rows, stats


def run_revise(cfg: ReviseConfig, log=print) -> dict:
    """The supervised stage: OUTPUT gets one demonstration per prompt, its last revision; -> the report."""
    from .resumable import ResumableOutput, file_sha256
    t0 = time.monotonic()
    constitution = read_constitution(cfg.constitution)
    pool = constitution.select(cfg.principles)
    prompts = _prompts(cfg.data, cfg.limit)
    fingerprint = {**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "overwrite"},
                   "data_sha256": file_sha256(cfg.data), "constitution_principles": [dataclasses.asdict(p) for p in pool]}
    sink = ResumableOutput(cfg.output, fingerprint, "alignkit constitution revise", cfg.overwrite, "sl-cai.jsonl")
    start = sink.done
    if start >= len(prompts):
        log(f"constitution revise: {sink.path} is complete ({len(prompts)} prompts); nothing to do")
    else:
        if start:
            log(f"constitution revise: resuming {sink.path} at prompt {start} of {len(prompts)}")
        model = _backend(cfg.model)
        critic = _backend(cfg.critic) if cfg.critic and cfg.critic != cfg.model else model
        log(f"constitution revise: {len(prompts) - start} prompts, {cfg.rounds} round(s) each, principles drawn from "
            f"{', '.join(p.name for p in pool)} ({constitution.source})")
        for lo in range(start, len(prompts), cfg.batch_size):
            chunk = prompts[lo: lo + cfg.batch_size]
            before = _usage([model, critic])
            rows, stats = revise_chunk(model, critic, chunk, lo, cfg, pool)
            sink.append(rows, lo + len(chunk), stats, _delta(_usage([model, critic]), before))
            log(f"constitution revise: {lo + len(chunk)}/{len(prompts)} prompts")
    stats, usage, rows = sink.totals()
    n = max(stats.get("items", 0), 1)
    report = {"model": cfg.model, "critic": cfg.critic or cfg.model, "data": cfg.data, "output": cfg.output,
              "constitution": constitution.source, "principles": [p.name for p in pool], "rounds": cfg.rounds,
              "items": len(prompts), "rows": rows, "resumed_at_item": start,
              "changed_rate": stats.get("changed", 0) / n,
              "revisions_changed": int(stats.get("revisions_changed", 0)),
              "empty_revisions": int(stats.get("empty_revisions", 0)),
              "principle_counts": {k.split("/", 1)[1]: int(v) for k, v in stats.items() if k.startswith("principle/")},
              "usage": {k: int(v) for k, v in usage.items()}, "seconds_this_run": round(time.monotonic() - t0, 3)}
    sink.side["report"].write_text(json.dumps(report, indent=1) + "\n")
    log(f"constitution revise: wrote {rows} demonstrations to {sink.path} ({report['changed_rate']:.3f} of them differ "
        f"from the first response); report {sink.side['report']}")
    return report


# ---- the AI-preference stage: sample (optionally), then label under the constitution ---------------------
@dataclass(frozen=True)
class PreferenceConfig:
    feedback: str = ""  # the feedback model that chooses: hf:DIR or http(s)://HOST:PORT/v1, options after commas, or an LLM judge spec (its model) (required)
    data: str = ""  # prompts with two or more responses (any file `alignkit label` reads), or prompts only with --policy (required)
    output: str = ""  # pairwise JSONL: prompt/chosen/rejected, weight = P(chosen > rejected), judge_principle (required)
    policy: str = ""  # sample --samples responses per prompt from this model first (same forms as --feedback); "" = data holds the responses
    samples: int = option(2, ge=2)  # responses sampled per prompt with --policy; every two of a prompt are compared
    max_tokens: int = option(128, ge=1)  # longest sampled response, in tokens
    temperature: float = option(1.0, ge=0)  # sampling temperature of the policy
    constitution: str = "default"  # default (the shipped one) or a constitution file (JSONL)
    principles: str = "harmless"  # which principles are drawn: harmless | helpful | all | NAME[+NAME...]
    template: str = "constitution"  # a pairwise template with {principle}: constitution (built in) or a file
    cot: bool = False  # chain of thought before the choice (sec. 4.1's CoT prompting); needs cot sections in the template
    debias: bool = True  # judge both orders and average (position bias)
    soft_labels: bool = True  # write P(chosen > rejected) as the weight (the paper's preference model trains on these)
    batch_size: int = option(8, ge=1)  # items per call and per resumable chunk
    limit: int = option(0, ge=0)  # the first N items (prompts with --policy) only; 0 = all
    seed: int = 0  # principle draws and sampling
    overwrite: bool = False  # start over even when OUTPUT holds a finished or partial run

    def __post_init__(self):
        for name in ("feedback", "data", "output"):
            if not getattr(self, name):
                raise ValueError(f"field {name!r}: required (--{name} ...)")
        for name, low in (("samples", 2), ("max_tokens", 1), ("batch_size", 1), ("limit", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"field {name!r}: expected >= {low}, got {getattr(self, name)}")
        if self.temperature < 0:
            raise ValueError(f"field 'temperature': expected >= 0, got {self.temperature}")
        for name in ("constitution", "template", "principles"):
            if "," in getattr(self, name):
                raise ValueError(f"field {name!r}: may not contain a comma (it goes into a judge spec)")


def sample_responses(cfg: PreferenceConfig, path: Path, log=print) -> Path:
    """{"prompt", "completions"} rows at `path`: cfg.samples responses per prompt from cfg.policy (resumable)."""
    from .resumable import ResumableOutput, file_sha256
    prompts = _prompts(cfg.data, cfg.limit)
    fp = {"policy": cfg.policy, "data": cfg.data, "data_sha256": file_sha256(cfg.data), "samples": cfg.samples,
          "max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "limit": cfg.limit, "seed": cfg.seed}
    sink = ResumableOutput(str(path), fp, "alignkit constitution prefs (sampling)", cfg.overwrite)
    if sink.done < len(prompts):
        policy = _backend(cfg.policy)
        log(f"constitution prefs: sampling {cfg.samples} responses for each of {len(prompts) - sink.done} prompts "
            f"from {cfg.policy} -> {path}")
        for lo in range(sink.done, len(prompts), cfg.batch_size):
            chunk = prompts[lo: lo + cfg.batch_size]
            queries = [response_query(policy.chat, p) for p in chunk for _ in range(cfg.samples)]
            texts = [clean(t) for t in policy.generate(queries, cfg.max_tokens, cfg.temperature,
                                                       cfg.seed * 1_000_003 + lo)]
            rows = [{"prompt": p, "completions": texts[k * cfg.samples: (k + 1) * cfg.samples]}
                    for k, p in enumerate(chunk)]
            sink.append(rows, lo + len(chunk), {"items": len(chunk)})
    return path


def preference_judge_spec(cfg: PreferenceConfig) -> str:
    """The llm-cai judge spec the preference stage labels with (a judge spec as --feedback: its model)."""
    feedback = cfg.feedback if is_backend_spec(cfg.feedback) else _backend(cfg.feedback).name
    return (f"llm-cai:{feedback},constitution={cfg.constitution},principles={cfg.principles},"
            f"template={cfg.template},cot={int(cfg.cot)},debias={int(cfg.debias)},seed={cfg.seed}")


def run_preferences(cfg: PreferenceConfig, log=print) -> dict:
    """The AI-preference stage: OUTPUT gets one pair per comparison, chosen = the response the feedback
    model prefers under the drawn principle; -> the `alignkit label` report."""
    from .label import LabelConfig, run_label
    from .resumable import side_paths
    read_constitution(cfg.constitution).select(cfg.principles)  # errors before any sampling
    data, limit = cfg.data, cfg.limit
    if cfg.policy:
        data, limit = str(sample_responses(cfg, side_paths(cfg.output)["samples"], log)), 0
    label = LabelConfig(judge=preference_judge_spec(cfg), data=data, output=cfg.output, mode="pairwise",
                        soft_labels=cfg.soft_labels, batch_size=cfg.batch_size, limit=limit, seed=cfg.seed,
                        overwrite=cfg.overwrite)
    return run_label(label, log)
