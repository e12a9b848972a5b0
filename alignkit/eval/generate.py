"""Generation from a prompts file, optionally scored by a judge: the core of `alignkit generate`.

    items = read_prompt_file("question.jsonl")              # PromptItem per row (file:line kept)
    records = generate_records(model, tok, items, GenerateSettings(samples_per_prompt=2))
    scores = score_completions(records, "rm:runs/rm")           # any judge spec (rewards/specs.py)
    write_jsonl_atomic("answers.jsonl", records)

Prompt files: .jsonl, .json, .csv, .parquet (rows read by data/readers.py) or .txt (one prompt per
non-empty line). A row holds one of
- `prompt`: text, or a conversation (a list of {role, content} messages; TRL "conversational");
- `messages`: a conversation; a trailing assistant message (a demonstration) is dropped, so the model
  answers the last user turn;
- `turns`: MT-Bench's list of user turns (Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench",
  arXiv 2306.05685). `turns="first"` answers the first turn only; `turns="all"` answers turn 1, then
  asks turn 2 in the conversation [user 1, the model's own answer 1, user 2], and so on, as MT-Bench's
  second-turn questions are asked;
- `instruction` (AlpacaEval's field name) as a text prompt.
Every other field of the row (question_id, category, ...) is copied to its records.

Records are TRL's prompt-completion format: {"prompt", "completion"} with the prompt as the model saw it
(text, or a conversation: then the completion is one assistant message), plus "sample" (0..K-1), "turn"
(for multi-turn rows, 1-based) and, when scored, "score". The file is thus directly a `scored` dataset
(prompt/completion/score) for alignkit's readers.

Text prompts go through the model's chat template when it has one (`as_chat="auto"`): an instruct
model is asked the way it was trained; a base model without a template continues the text as it is.
Sampling is the project's batched sampler (models/generate.py: alignkit's decoder for Llama-family
models, transformers' generate otherwise); identical prompts (the K samples of a row) sit next to each
other so they share one prefill.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import check_value, option
from ..errors import ConfigError, DataError

AS_CHAT = ("auto", "always", "never")
TURNS = ("first", "all")
PROMPT_FIELDS = ("prompt", "messages", "turns", "instruction")
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptItem:
    """One row of a prompts file: its first prompt, the later user turns (MT-Bench), the row's other
    fields, and where it came from (file:line)."""
    prompt: object  # text or a list of {role, content} messages
    later_turns: tuple = ()  # further user turns, asked after the model's own answers
    extra: dict = field(default_factory=dict)  # the row's other fields, copied to its records
    source: str = ""  # FILE:LINE


@dataclass(frozen=True)
class GenerateSettings:
    max_new_tokens: int = option(256, ge=1)  # longest completion sampled (capped per prompt at the model's context)
    temperature: float = option(0.7, ge=0)  # sampling temperature; 0 is greedy
    top_p: float = option(1.0, gt=0, le=1)  # nucleus sampling mass
    samples_per_prompt: int = option(1, ge=1, aliases=("num_samples",))  # completions per prompt (and per turn)
    seed: int = 0  # sampling seed
    batch_size: int = option(32, ge=1)  # sequences per sampling call
    turns: str = option("first", choices=TURNS)  # multi-turn rows (MT-Bench `turns`): first (answer turn 1) | all (each later turn asked after the model's own answers)
    as_chat: str = option("auto", choices=AS_CHAT)  # text prompts as a user message of the chat template: auto (when the model has one) | always | never

    def __post_init__(self):  # the same checks when built in Python (build_config makes them one-line errors)
        for f in dataclasses.fields(self):
            problem = check_value(f, getattr(self, f.name))
            if problem:
                raise ValueError(problem)


# ---- reading ---------------------------------------------------------------------------------------
def _messages(value, where: str) -> list:
    from ..data.validate import messages_value
    msgs = messages_value(value, where)
    for i, m in enumerate(msgs):
        if m["role"] not in ROLES:
            from ..data.validate import RecordError
            raise RecordError(f"{where}[{i}].role", f"{m['role']!r} is not one of {', '.join(ROLES)}")
    return msgs


def parse_prompt_row(row: dict) -> tuple:
    """A row -> (prompt, later user turns, other fields). Raises RecordError naming the field."""
    from ..data.validate import RecordError, type_name
    if not isinstance(row, dict):
        raise RecordError(None, f"expected an object, got {type_name(row)}")
    key = next((k for k in PROMPT_FIELDS if k in row), None)
    if key is None:
        raise RecordError(None, f"no prompt field: found keys {sorted(row)}, expected one of "
                                f"{', '.join(PROMPT_FIELDS)}")
    value = row[key]
    extra = {k: v for k, v in row.items() if k != key}
    later: tuple = ()
    if key in ("prompt", "instruction") and isinstance(value, str):
        prompt = value
    elif key == "prompt" and isinstance(value, (list, tuple)):
        prompt = _messages(value, key)
    elif key == "messages":
        prompt = _messages(value, key)
        if prompt and prompt[-1]["role"] == "assistant":
            prompt = prompt[:-1]  # a demonstration's answer: the model answers the turn before it
        if not prompt or prompt[-1]["role"] != "user":
            raise RecordError(key, "the conversation must end with a user message (after any final "
                                   "assistant message is dropped)")
    elif key == "turns":
        if not isinstance(value, (list, tuple)) or not value:
            raise RecordError(key, f"expected a non-empty list of user turns (strings), got {type_name(value)}")
        for i, t in enumerate(value):
            if not isinstance(t, str) or not t.strip():
                raise RecordError(f"{key}[{i}]", f"expected a non-empty string, got {type_name(t)}")
        prompt, later = [{"role": "user", "content": value[0]}], tuple(value[1:])
    else:
        raise RecordError(key, f"expected a string or a list of messages, got {type_name(value)}")
    if isinstance(prompt, str) and not prompt.strip():
        raise RecordError(key, "empty prompt")
    return prompt, later, extra


def read_prompt_file(path: str, limit: int = 0) -> list:
    """PromptItems of a prompts file, a hub-style folder or a cached dataset's `NAME[:SPLIT]` (data/hub.py);
    a bad row raises DataError(FILE, LINE, FIELD, what is wrong)."""
    from ..data.readers import data_sources
    from ..data.validate import RecordError
    p = Path(path)
    name = str(path)
    items = []
    if p.suffix.lower() == ".txt" and p.is_file():
        try:
            lines = p.read_bytes().decode("utf-8").removeprefix("\ufeff").splitlines()
        except UnicodeDecodeError as e:
            raise DataError(name, None, None, f"invalid UTF-8: {e}") from None
        items = [PromptItem(text.strip(), source=f"{name}:{n}") for n, text in enumerate(lines, 1) if text.strip()]
    else:
        for source, rows in data_sources(path):
            for line, row in rows:
                try:
                    if isinstance(row, RecordError):
                        raise row
                    prompt, later, extra = parse_prompt_row(row)
                except RecordError as e:
                    raise DataError(source, line, e.field, e.message) from None
                items.append(PromptItem(prompt, later, extra, f"{source}:{line}"))
                if limit and len(items) >= limit:
                    break
            if limit and len(items) >= limit:
                break
    if not items:
        raise DataError(name, None, None, "the file has no prompts")
    return items[:limit] if limit else items


# ---- generating ------------------------------------------------------------------------------------
def _as_model_prompt(prompt, tok, as_chat: str):
    """The prompt the model is asked: a text prompt becomes a user message under as_chat=always, or
    under auto when the tokenizer has a chat template."""
    if isinstance(prompt, str) and (as_chat == "always" or (as_chat == "auto" and getattr(tok, "chat_template", None))):
        return [{"role": "user", "content": prompt}]
    return prompt


def context_length(model) -> int | None:
    from ..models.context import context_length as positions
    return positions(getattr(getattr(model, "module", model), "config", None))


def sample_completions(model, tok, prompts: list, cfg: GenerateSettings, seed: int, sources: list | None = None,
                       log=None) -> list:
    """One completion string per prompt (text or conversation), None for a prompt that fills the
    model's context (a note names them). Each prompt's budget is min(max_new_tokens, context - prompt
    tokens), so no completion runs past the context."""
    from ..data.tokenize import Encoder
    from ..models.generate import HFGenerator, SamplingConfig
    enc = Encoder.untruncated(tok)
    ids = [enc.prompt_ids(p) for p in prompts]
    ctx = context_length(model)
    budgets = [cfg.max_new_tokens] * len(ids)
    if ctx:
        budgets = [min(cfg.max_new_tokens, ctx - len(p)) for p in ids]
        full = [i for i, b in enumerate(budgets) if b < 1]
        if full and log:
            where = sorted({sources[i] if sources else f"prompt {i}" for i in full})
            log(f"note: left out {len(full)} of {len(ids)} prompts that fill the model's context of {ctx} tokens "
                f"(longest {max(len(ids[i]) for i in full)}): {', '.join(where[:5])}{' ...' if len(where) > 5 else ''}")
        capped = sum(0 < b < cfg.max_new_tokens for b in budgets)
        if capped and log:
            log(f"note: {capped} of {len(ids)} prompts leave fewer than --max-new-tokens {cfg.max_new_tokens} "
                f"tokens of the model's context ({ctx}); their completions stop at the context")
    gen = HFGenerator(model, tok)
    out = [None] * len(ids)
    for k, budget in enumerate(sorted({b for b in budgets if b >= 1}, reverse=True)):
        idx = [i for i, b in enumerate(budgets) if b == budget]
        sampling = SamplingConfig(max_new_tokens=budget, temperature=cfg.temperature, top_p=cfg.top_p,
                                  batch_size=cfg.batch_size)
        rows = gen.generate([ids[i] for i in idx], sampling, seed=seed + k)
        for i, r in zip(idx, rows):
            out[i] = tok.decode(r, skip_special_tokens=True)
    return out


def generate_records(model, tok, items: list, cfg: GenerateSettings, log=None) -> list:
    """Records {prompt, completion, sample, [turn], **row fields} for every item, sample and turn, in
    that order. A prompt that fills the model's context is left out (with a note), and so are a
    conversation's later turns once it fills the context; nothing left at all is an error."""
    k = cfg.samples_per_prompt
    # one conversation per (item, sample): the K samples of an item sit together (one shared prefill)
    convs = [_as_model_prompt(it.prompt, tok, cfg.as_chat) for it in items for _ in range(k)]
    owners = [(i, s) for i in range(len(items)) for s in range(k)]
    multi = cfg.turns == "all" and any(it.later_turns for it in items)
    n_turns = 1 + (max(len(it.later_turns) for it in items) if multi else 0)
    records, ended = [], set()  # ended: conversations that no longer fit the context
    for turn in range(n_turns):
        live = [j for j, (i, _) in enumerate(owners)
                if j not in ended and (turn == 0 or turn <= len(items[i].later_turns))]
        if not live:
            break
        if turn:
            for j in live:
                convs[j] = convs[j] + [{"role": "user", "content": items[owners[j][0]].later_turns[turn - 1]}]
        texts = sample_completions(model, tok, [convs[j] for j in live], cfg, cfg.seed + 1000 * turn,
                                   [f"{items[owners[j][0]].source} (turn {turn + 1})" if multi else items[owners[j][0]].source
                                    for j in live], log)
        for j, text in zip(live, texts):
            if text is None:
                ended.add(j)
                continue
            i, s = owners[j]
            prompt = convs[j]
            completion = text if isinstance(prompt, str) else [{"role": "assistant", "content": text}]
            rec = {"prompt": prompt, "completion": completion, "sample": s}
            if items[i].later_turns or multi:
                rec["turn"] = turn + 1
            records.append(((i, s, turn), {**items[i].extra, **rec}))
            if not isinstance(prompt, str):
                convs[j] = prompt + [{"role": "assistant", "content": text}]
    if not records:
        raise ConfigError(f"{items[0].source.rpartition(':')[0] or 'the prompts'}: every prompt fills the model's "
                          f"context of {context_length(model)} tokens: nothing to generate")
    return [r for _, r in sorted(records, key=lambda kr: kr[0])]  # by row, then sample, then turn


def completion_text(record: dict) -> str:
    c = record["completion"]
    return c if isinstance(c, str) else c[0]["content"]


# ---- scoring and writing ---------------------------------------------------------------------------
def score_completions(records: list, judge, batch_size: int = 64) -> list:
    """judge (a spec string or a Judge) -> one score per record, also stored as record["score"]."""
    from ..rewards.specs import judge_from_spec
    j = judge_from_spec(judge)
    scores = []
    try:
        for s in range(0, len(records), batch_size):
            chunk = records[s: s + batch_size]
            scores += [float(x) for x in j.score([r["prompt"] for r in chunk], [completion_text(r) for r in chunk])]
    except NotImplementedError:
        raise ConfigError(f"judge {judge if isinstance(judge, str) else j.name!r} compares pairs only; scoring "
                          "completions one by one needs a pointwise judge (rm:DIR, rule:NAME, llm-score:..., "
                          "truth, file:PATH.py:FN)") from None
    for r, x in zip(records, scores):
        r["score"] = x
    return scores


def score_summary(records: list) -> dict:
    """Mean score overall, and per turn for multi-turn records."""
    scored = [r for r in records if "score" in r]
    if not scored:
        return {}
    out = {"n": len(scored), "mean_score": sum(r["score"] for r in scored) / len(scored)}
    turns = sorted({r["turn"] for r in scored if "turn" in r})
    if len(turns) > 1:
        out["mean_score_by_turn"] = {t: sum(r["score"] for r in scored if r.get("turn") == t)
                                     / sum(1 for r in scored if r.get("turn") == t) for t in turns}
    return out


def write_jsonl_atomic(path: str, records: list) -> None:
    """Write every record as one JSON line to a temporary file next to `path`, then rename it into
    place: a crash or Ctrl-C never leaves a half-written output."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
