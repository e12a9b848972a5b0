"""`alignkit label`: AI feedback (RLAIF, Lee et al. 2023, arXiv 2309.00267) as training data.

Input: prompts with two or more responses, in any format `read_records` reads (pairwise records;
listwise `prompt/completions/scores`; scored `prompt/completion/score` rows, grouped by prompt), or a
JSONL of unlabelled samples `{"prompt": ..., "completions": [...]}`. Existing labels are used only to
measure the judge's agreement with them (AI-annotator agreement), never to label.

Output (TRL formats that `alignkit train` reads back), by --mode:
- pairwise: one pair per judged comparison (every two responses of a prompt), chosen = the response
  the judge prefers; `judge_probability` = P(chosen > rejected), and with soft_labels the same number
  as the pair's `weight`, the soft label `train rm` fits (RLAIF's distilled reward model, sec. 2.3);
- pointwise: thumbs (`prompt/completion/label`, KTO's data): label = score >= threshold, with
  `judge_score`; needs a judge that scores (llm-score:..., rm:DIR, ...);
- rank: listwise `prompt/completions/scores`: the judge's scores, or for a pairwise-only judge each
  response's expected wins over the others.

Resumable. Items are judged in chunks of `batch_size`; after each chunk its rows are appended to the
output and a line to OUTPUT's `.progress.jsonl` (the byte length of the output, that chunk's
statistics). A restarted run checks that the config is the same, cuts the output back to the last
recorded length (rows of a chunk cut short by a kill) and goes on with the next chunk, so a
killed-and-restarted run writes the same file as an uninterrupted one. HTTP judges also cache every
answer (`.cache.jsonl` beside the output unless the spec gives cache=FILE), so the calls of the cut
chunk are not paid twice. The report (`.report.json`) sums all chunks: agreement with existing labels,
agreement of a single order before swap-and-average, the position-consistency rate and the mean
probability of preferring the first-shown response (position bias), calls and tokens.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import ConfigError, DataError
from .resumable import ResumableOutput, file_sha256, side_paths

MODES = ("pairwise", "pointwise", "rank")


@dataclass(frozen=True)
class LabelConfig:
    judge: str = ""  # judge spec: llm-pair:BACKEND, llm-score:BACKEND, rm:DIR, ... (required)
    data: str = ""  # prompts with 2+ responses: pairwise, listwise, scored or {"prompt", "completions"} rows (required)
    output: str = ""  # output JSONL; its .report.json, .progress.jsonl and .cache.jsonl go beside it (required)
    mode: str = option("pairwise", choices=MODES)  # pairwise (chosen/rejected) | pointwise (thumbs from scores) | rank (listwise scores)
    threshold: float = 3.0  # pointwise: thumbs up when the judge's score is >= this (3 on the 0-5 rubric)
    soft_labels: bool = True  # pairwise: also write P(chosen > rejected) as the weight (the soft label train rm fits)
    min_confidence: float = option(0.0, ge=0, lt=0.5)  # pairwise: leave out pairs whose probability is within this of 0.5
    batch_size: int = option(8, ge=1)  # items per judge call and per resumable chunk
    limit: int = option(0, ge=0)  # label the first N items only; 0 = all
    seed: int = 0  # which response a judge sees first when it judges one order only
    cache: str = ""  # on-disk answer cache for HTTP judges (default: OUTPUT's .cache.jsonl; "none" = off)
    on_bad_record: str = option("error", choices=("error", "skip"))  # error | skip: what a bad input record does
    overwrite: bool = False  # start over even when OUTPUT holds a finished or partial run

    def __post_init__(self):
        for name in ("judge", "data", "output"):
            if not getattr(self, name):
                raise ValueError(f"field {name!r}: required (--{name} ...)")
        if self.mode not in MODES:
            raise ValueError(f"field 'mode': expected one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.min_confidence < 0.5:
            raise ValueError(f"field 'min_confidence': expected a value in [0, 0.5), got {self.min_confidence}")
        if self.batch_size < 1:
            raise ValueError(f"field 'batch_size': expected >= 1, got {self.batch_size}")
        if self.limit < 0:
            raise ValueError(f"field 'limit': expected >= 0, got {self.limit}")
        if self.on_bad_record not in ("error", "skip"):
            raise ValueError(f"field 'on_bad_record': expected error or skip, got {self.on_bad_record!r}")


@dataclass(frozen=True)
class Item:
    prompt: object  # text or a list of messages
    responses: tuple  # two or more
    scores: tuple | None  # the existing labels (higher is better), or None when unlabelled
    source: str = ""




# ---- input ---------------------------------------------------------------------------------------
def _is_unlabelled(path: Path) -> bool:
    """A JSONL whose first row is {"prompt", "completions" | "responses"} without scores: unlabelled
    samples, which `read_records` (feedback data only) does not take."""
    if path.suffix not in (".jsonl", ".ndjson") or not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return (isinstance(row, dict) and "prompt" in row and ("completions" in row or "responses" in row)
            and "scores" not in row and "ranking" not in row)


def _completion_text(value, where: str, path: str, line: int) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0].get("content")  # a conversational completion: one assistant message
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, line, where, "expected a non-empty string")
    return value


def _read_unlabelled(path: Path, on_bad_record: str) -> list:
    items, name = [], str(path)
    with open(path, encoding="utf-8") as f:
        for line, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
                if not isinstance(row, dict):
                    raise DataError(name, line, None, "expected a JSON object")
                prompt = row.get("prompt")
                ok = (isinstance(prompt, str) and prompt.strip()) or (isinstance(prompt, list) and prompt and all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in prompt))
                if not ok:
                    raise DataError(name, line, "prompt",
                                    "expected a non-empty string or a list of {role, content} messages")
                key = "completions" if "completions" in row else "responses"
                values = row.get(key)
                if not isinstance(values, list) or len(values) < 2:
                    raise DataError(name, line, key, "expected a list of two or more responses")
                texts = tuple(_completion_text(v, f"{key}[{i}]", name, line) for i, v in enumerate(values))
                items.append(Item(prompt, texts, None, f"{name}:{line}"))
            except json.JSONDecodeError as e:
                if on_bad_record == "error":
                    raise DataError(name, line, None, f"malformed JSON: {e.msg} (column {e.colno})") from None
            except DataError:
                if on_bad_record == "error":
                    raise
    if not items:
        raise DataError(name, None, None, "no items with two or more responses")
    return items


def read_items(path: str, on_bad_record: str = "error", log=print) -> list:
    """Prompts with two or more responses, and their existing labels when the file has any."""
    from ..data.readers import read_records
    from ..data.records import Listwise, Pairwise, Scored
    p = Path(path)
    if not p.exists():
        raise DataError(str(path), None, None, "no such file")
    if _is_unlabelled(p):
        return _read_unlabelled(p, on_bad_record)
    records, report = read_records(str(path), on_bad_record=on_bad_record)
    if report.skipped:
        log(report.summary())
    items, groups = [], {}
    for r in records:
        if isinstance(r, Pairwise):
            items.append(Item(r.prompt, (r.chosen, r.rejected), (1.0, 0.0), r.source))
        elif isinstance(r, Listwise):
            items.append(Item(r.prompt, tuple(r.completions), tuple(float(s) for s in r.scores), r.source))
        elif isinstance(r, Scored):
            key = r.prompt if isinstance(r.prompt, str) else json.dumps(r.prompt, sort_keys=True)
            groups.setdefault(key, []).append(r)
        else:
            raise DataError(str(path), None, None, f"{type(r).__name__.lower()} records have one response per prompt; "
                            "label needs two or more: pairwise, listwise, scored (grouped by prompt) or "
                            '{"prompt", "completions"} rows')
    for group in groups.values():
        if len(group) >= 2:
            items.append(Item(group[0].prompt, tuple(g.completion for g in group),
                              tuple(float(g.score) for g in group), group[0].source))
    if not items:
        raise DataError(str(path), None, None, "no prompt has two or more responses")
    return items


# ---- judging one chunk ---------------------------------------------------------------------------
class Stats(dict):
    """Counters summed over chunks (and over a killed run and its restart)."""

    def add(self, key: str, value: float = 1.0):
        self[key] = self.get(key, 0) + value

    def merge(self, other: dict):
        for k, v in other.items():
            self.add(k, v)


def _agreement(stats: Stats, item: Item, i: int, j: int, p_i: float, key: str = "agreement"):
    """Count whether the judge's P(response i > response j) agrees with the existing labels."""
    if item.scores is None or item.scores[i] == item.scores[j]:
        return
    truth = 1.0 if item.scores[i] > item.scores[j] else 0.0
    stats.add(f"{key}_pairs")
    stats.add(f"{key}_agree", 0.5 if p_i == 0.5 else float((p_i > 0.5) == (truth == 1.0)))


def _pairs(judge, items: list, cfg: LabelConfig, chunk_start: int, stats: Stats) -> list:
    """Every two responses of each item judged; [(item, i, j, P(i > j), principle judged under or "")]."""
    todo = []
    for k, item in enumerate(items):
        for i in range(len(item.responses)):
            for j in range(i + 1, len(item.responses)):
                if item.responses[i] == item.responses[j]:
                    stats.add("identical_pairs")
                    continue
                # a judge that sees one order only must not see the file's order (chosen first)
                swap = random.Random(f"{cfg.seed}:{chunk_start + k}:{i}:{j}").random() < 0.5
                todo.append((item, i, j, swap))
    if not todo:
        return []
    prompts = [t[0].prompt for t in todo]
    firsts = [t[0].responses[t[2] if t[3] else t[1]] for t in todo]
    seconds = [t[0].responses[t[1] if t[3] else t[2]] for t in todo]
    details = judge.judge_pairs(prompts, firsts, seconds) if hasattr(judge, "judge_pairs") else None
    probs = [d.probability for d in details] if details else judge.compare(prompts, firsts, seconds)
    out = []
    for n, (item, i, j, swap) in enumerate(todo):
        p_i = 1.0 - probs[n] if swap else probs[n]
        out.append((item, i, j, p_i, details[n].principle if details else ""))
        _agreement(stats, item, i, j, p_i)
        stats.add("comparisons")
        if details:
            d = details[n]
            _agreement(stats, item, i, j, 1.0 - d.forward if swap else d.forward, "agreement_one_order")
            for first in d.first_preferred:
                stats.add("first_position_n")
                stats.add("first_position_sum", first)
            if d.agree is not None:
                stats.add("consistency_n")
                stats.add("consistency_agree", float(d.agree))
    return out


def _scores(judge, items: list) -> list | None:
    prompts = [it.prompt for it in items for _ in it.responses]
    texts = [r for it in items for r in it.responses]
    try:
        flat = judge.score(prompts, texts)
    except NotImplementedError:
        return None
    out, k = [], 0
    for it in items:
        out.append([float(s) for s in flat[k: k + len(it.responses)]])
        k += len(it.responses)
    return out


def label_chunk(judge, items: list, cfg: LabelConfig, chunk_start: int) -> tuple:
    """(records, extra fields per record, Stats) for one chunk of items."""
    from ..data.records import Binary, Listwise, Pairwise
    stats = Stats(items=len(items))
    records, extras = [], []
    if cfg.mode == "pairwise":
        for item, i, j, p_i, principle in _pairs(judge, items, cfg, chunk_start, stats):
            win, lose, p = (i, j, p_i) if p_i >= 0.5 else (j, i, 1.0 - p_i)
            if p - 0.5 < cfg.min_confidence:
                stats.add("low_confidence_pairs")
                continue
            records.append(Pairwise(item.prompt, item.responses[win], item.responses[lose],
                                    weight=p if cfg.soft_labels else 1.0))
            extras.append({"judge_probability": p, **({"judge_principle": principle} if principle else {})})
        return records, extras, stats
    scores = _scores(judge, items)
    if cfg.mode == "pointwise":
        if scores is None:
            raise ConfigError(f"--mode pointwise needs a judge that scores each response (llm-score:..., rm:DIR, ...); "
                              f"{getattr(judge, 'name', cfg.judge)} only compares pairs: use --mode pairwise or rank")
        for item, s in zip(items, scores):
            for k, (text, v) in enumerate(zip(item.responses, s)):
                records.append(Binary(item.prompt, text, v >= cfg.threshold))
                extras.append({"judge_score": v})
                stats.add("thumbs_up", float(v >= cfg.threshold))
                stats.add("responses")
            for i in range(len(s)):
                for j in range(i + 1, len(s)):
                    _agreement(stats, item, i, j, 0.5 if s[i] == s[j] else float(s[i] > s[j]))
        return records, extras, stats
    if scores is None:  # a pairwise-only judge ranks by expected wins (Judge.rank's rule), batched
        scores = [[0.0] * len(it.responses) for it in items]
        index = {id(it): n for n, it in enumerate(items)}
        for item, i, j, p_i, _ in _pairs(judge, items, cfg, chunk_start, stats):
            row = scores[index[id(item)]]
            row[i] += p_i
            row[j] += 1.0 - p_i
    else:
        for item, s in zip(items, scores):
            for i in range(len(s)):
                for j in range(i + 1, len(s)):
                    _agreement(stats, item, i, j, 0.5 if s[i] == s[j] else float(s[i] > s[j]))
    for item, s in zip(items, scores):
        records.append(Listwise(item.prompt, tuple(item.responses), tuple(s)))
        extras.append({})
    return records, extras, stats


# ---- resumable output ----------------------------------------------------------------------------
def _fingerprint(cfg: LabelConfig) -> dict:
    keep = ("judge", "mode", "threshold", "soft_labels", "min_confidence", "limit", "seed", "on_bad_record")
    return {**{k: getattr(cfg, k) for k in keep}, "data": str(cfg.data), "data_sha256": file_sha256(cfg.data)}


def _http_backends(judge) -> list:
    from .client import HTTPBackend
    parts = [j for _, j in getattr(judge, "parts", [])] or [judge]
    return [j.backend for j in parts if isinstance(getattr(j, "backend", None), HTTPBackend)]


def _report(cfg: LabelConfig, judge_name: str, chunks: list, total_items: int, start: int, seconds: float) -> dict:
    s = Stats()
    usage = Stats()
    for c in chunks:
        s.merge(c["stats"])
        usage.merge(c.get("usage", {}))
    rate = lambda a, n: (s.get(a, 0) / s[n]) if s.get(n) else None  # noqa: E731

    def part(count: str, hits: str, name: str):
        return {name: int(s[count]), "rate": rate(hits, count)} if s.get(count) else None

    rep = {
        "judge": cfg.judge, "judge_name": judge_name, "data": cfg.data, "output": cfg.output, "mode": cfg.mode,
        "items": total_items, "items_labelled": int(s.get("items", 0)), "resumed_at_item": start,
        "rows": sum(c["rows"] for c in chunks),
        "agreement": {"pairs": int(s.get("agreement_pairs", 0)), "rate": rate("agreement_agree", "agreement_pairs")},
        "agreement_one_order": part("agreement_one_order_pairs", "agreement_one_order_agree", "pairs"),
        "position_consistency": part("consistency_n", "consistency_agree", "comparisons"),
        "first_position_preferred": rate("first_position_sum", "first_position_n"),
        "comparisons": int(s.get("comparisons", 0)), "identical_pairs": int(s.get("identical_pairs", 0)),
        "usage": {k: int(v) for k, v in usage.items()},
        "seconds_this_run": round(seconds, 3),
    }
    if cfg.mode == "pairwise":
        rep["low_confidence_pairs"] = int(s.get("low_confidence_pairs", 0))
    if cfg.mode == "pointwise":
        rep["thumbs_up_rate"] = rate("thumbs_up", "responses")
    return rep


def run_label(cfg: LabelConfig, log=print) -> dict:
    """Label cfg.data with cfg.judge into cfg.output (resuming a cut-short run); returns the report."""
    from ..data.convert import to_trl_dict
    from ..rewards.specs import judge_from_spec  # the llm-pair and llm-score kinds: registered by this package
    from ..train.progress import Progress  # a bar on a terminal, plain lines through `log` otherwise
    t0 = time.monotonic()
    out, side = Path(cfg.output), side_paths(cfg.output)
    if out.is_dir():
        raise ConfigError(f"--output {out}: is a folder; give a file such as pairs.jsonl")
    items = read_items(cfg.data, cfg.on_bad_record, log)
    if cfg.limit:
        items = items[: cfg.limit]
    sink = ResumableOutput(cfg.output, _fingerprint(cfg), "alignkit label", cfg.overwrite, "pairs.jsonl")
    chunks = sink.chunks
    start = chunks[-1]["done"] if chunks else 0
    if start >= len(items):
        log(f"label: {out} is complete ({len(items)} items); nothing to do")
    judge = judge_from_spec(cfg.judge) if start < len(items) else None
    if judge is not None and cfg.cache.lower() != "none":
        for backend in _http_backends(judge):
            backend.use_cache(cfg.cache or side["cache"])
    usage_of = (lambda: judge.usage()) if judge is not None and hasattr(judge, "usage") else (lambda: {})
    if 0 < start < len(items):
        log(f"label: resuming {out} at item {start} of {len(items)}")
    progress = Progress(len(items), initial=start, desc="label", unit="item", log=log, every_seconds=10)
    for lo in range(start, len(items), cfg.batch_size):
        chunk = items[lo: lo + cfg.batch_size]
        before = usage_of()
        records, extras, stats = label_chunk(judge, chunk, cfg, lo)
        after = usage_of()
        sink.append([{**to_trl_dict(r), **x} for r, x in zip(records, extras)], lo + len(chunk), stats,
                    {k: after[k] - before.get(k, 0) for k in after if isinstance(after[k], (int, float))})
        progress.update(len(chunk))
    progress.close()
    report = _report(cfg, getattr(judge, "name", cfg.judge), chunks, len(items), start, time.monotonic() - t0)
    side["report"].write_text(json.dumps(report, indent=1) + "\n")
    agree, consistency = report["agreement"], report["position_consistency"]
    log(f"label: wrote {report['rows']} rows to {out}; agreement with existing labels "
        + (f"{agree['rate']:.3f} over {agree['pairs']} pairs" if agree["rate"] is not None else "n/a (no labels)")
        + (f", position consistency {consistency['rate']:.3f}" if consistency else "")
        + f"; report {side['report']}")
    return report
