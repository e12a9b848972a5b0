"""Conversions between feedback shapes, a train/dev split, and writing records back as TRL data.

- listwise -> pairwise: every ordered pair (mode="all", as in the Plackett-Luce / InstructGPT
  "K choose 2" comparisons) or the best against each other (mode="best_vs_rest").
- scored -> pairwise: responses to the same prompt, the higher score chosen.
  In both, margin = the score gap, as the reader does for TRL's score_chosen - score_rejected.
  Ties, and pairs with identical text, are no preference and are left out.
- pairwise -> binary (KTO's unpaired data: chosen is thumbs up, rejected thumbs down) and
  pairwise -> demonstrations (the chosen side, for SFT before DPO).
- to_trl_dict / write_jsonl: TRL's standard format (conversational when the prompt is messages);
  read_records reads it back to equal records.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from alignkit.data.records import Binary, Demonstration, Listwise, Pairwise, Scored, shape_of
from alignkit.errors import ConfigError


def _expect(records, cls) -> list:
    records = list(records)
    for r in records:
        if not isinstance(r, cls):
            raise TypeError(f"expected {cls.__name__} records, got {type(r).__name__} ({r.source or 'no source'})")
    return records


def _prompt_key(prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def listwise_to_pairwise(records, mode: str = "all") -> list:
    """Pairs (chosen, rejected) from ranked completions, best pairs first within each record."""
    if mode not in ("all", "best_vs_rest"):
        raise ConfigError(f"mode must be 'all' or 'best_vs_rest', got {mode!r}")
    out = []
    for rec in _expect(records, Listwise):
        order = sorted(range(len(rec.completions)), key=lambda i: -rec.scores[i])  # best first, stable
        winners = order if mode == "all" else order[:1]
        for pos, i in enumerate(winners):
            for j in order[pos + 1:]:
                gap = rec.scores[i] - rec.scores[j]
                if gap > 0 and rec.completions[i] != rec.completions[j]:
                    out.append(Pairwise(rec.prompt, rec.completions[i], rec.completions[j],
                                        margin=float(gap), source=rec.source))
    return out


def pairwise_to_binary(records) -> list:
    """Each pair -> (chosen, label True), (rejected, label False)."""
    out = []
    for rec in _expect(records, Pairwise):
        out.append(Binary(rec.prompt, rec.chosen, True, source=rec.source))
        out.append(Binary(rec.prompt, rec.rejected, False, source=rec.source))
    return out


def pairwise_to_unpaired(records) -> list:
    """KTO's unpaired form of pairwise data (Ethayarajh et al. 2024, sec. 4: each preference pair
    gives a desirable and an undesirable example), in blocks of two pairs: chosen_i, chosen_i+1,
    rejected_i, rejected_i+1 (the last block takes three pairs when their number is odd). So the
    example after each one, whose completion KTO's KL estimate pairs with its prompt (train/shapes.py
    BinaryShape), answers another prompt, and in any first N examples the counts of the two labels
    differ by at most three."""
    records = _expect(records, Pairwise)
    n, out, i = len(records), [], 0
    while i < n:
        size = 3 if n - i == 3 else 2
        block = records[i: i + size]
        out += [Binary(r.prompt, r.chosen, True, source=r.source) for r in block]
        out += [Binary(r.prompt, r.rejected, False, source=r.source) for r in block]
        i += size
    return out


# A method's feedback shape -> (another shape it accepts, the conversion, what the note says).
ACCEPTED_CONVERSIONS = {
    "binary": ("pairwise", pairwise_to_unpaired,
               "each pair became a desirable (chosen) and an undesirable (rejected) example"),
}


def scored_to_pairwise(records, min_gap: float = 0.0) -> list:
    """Group by prompt; every pair whose score gap is > min_gap, the higher score chosen.
    Prompts keep their first-seen order; within one, pairs go best first."""
    if min_gap < 0:
        raise ConfigError(f"min_gap must be >= 0, got {min_gap}")
    groups: dict = {}
    for rec in _expect(records, Scored):
        groups.setdefault(_prompt_key(rec.prompt), []).append(rec)
    out = []
    for group in groups.values():
        ranked = sorted(group, key=lambda r: -r.score)
        for pos, hi in enumerate(ranked):
            for lo in ranked[pos + 1:]:
                gap = hi.score - lo.score
                if gap > min_gap and hi.completion != lo.completion:
                    source = f"{hi.source} vs {lo.source}" if hi.source and lo.source else hi.source or lo.source
                    out.append(Pairwise(hi.prompt, hi.completion, lo.completion, margin=gap, source=source))
    return out


def demonstrations_from_pairwise(records) -> list:
    """The chosen side of each pair as a demonstration."""
    return [Demonstration(r.prompt, r.chosen, source=r.source) for r in _expect(records, Pairwise)]


def split_records(records, dev_fraction: float, seed: int = 0) -> tuple[list, list]:
    """A deterministic (train, dev) split for `seed`, keeping input order inside each part.

    Records that share a prompt stay on the same side (pairs made from one listwise record would
    otherwise leak their prompt into dev), so dev holds about dev_fraction of the records:
    whole prompts are drawn until it has round(dev_fraction * n) or more, and at least one when
    dev_fraction > 0; a prompt that would leave train empty is not drawn."""
    if not 0.0 <= dev_fraction < 1.0:
        raise ConfigError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    records = list(records)
    groups: dict = {}
    for i, rec in enumerate(records):
        groups.setdefault(_prompt_key(rec.prompt), []).append(i)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    want = round(dev_fraction * len(records))
    if dev_fraction > 0:
        want = max(want, 1)
    dev: set = set()
    for key in keys:
        if len(dev) >= want:
            break
        if len(dev) + len(groups[key]) < len(records):
            dev.update(groups[key])
    train = [r for i, r in enumerate(records) if i not in dev]
    return train, [r for i, r in enumerate(records) if i in dev]


def to_trl_dict(record) -> dict:
    """One record as a TRL row: prompt/completion, prompt/chosen/rejected, prompt/completion/label
    (TRL "unpaired preference"), and, beyond TRL, prompt/completion/score and
    prompt/completions/scores. A conversational prompt makes completions one assistant message;
    an empty prompt (a text corpus) makes {"text": ...}. The source is not written."""
    conversational = not isinstance(record.prompt, str)

    def answer(text):
        return [{"role": "assistant", "content": text}] if conversational else text

    shape = shape_of(record)
    if shape == "demonstration":
        if record.prompt == "":
            return {"text": record.completion}
        return {"prompt": record.prompt, "completion": answer(record.completion)}
    if shape == "pairwise":
        row = {"prompt": record.prompt, "chosen": answer(record.chosen), "rejected": answer(record.rejected)}
        if record.margin != 0.0:
            row["margin"] = record.margin
        if record.weight != 1.0:
            row["weight"] = record.weight
        return row
    if shape == "binary":
        return {"prompt": record.prompt, "completion": answer(record.completion), "label": bool(record.label)}
    if shape == "scored":
        return {"prompt": record.prompt, "completion": answer(record.completion), "score": record.score}
    return {"prompt": record.prompt, "completions": list(record.completions), "scores": list(record.scores)}


def write_jsonl(records, path) -> Path:
    """Write records as TRL JSONL (one to_trl_dict per line, UTF-8). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(to_trl_dict(rec), ensure_ascii=False) + "\n")
    return path

