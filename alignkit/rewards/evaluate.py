"""A judge on held-out preference pairs: accuracy, calibration, and agreement with another judge.

Used by `alignkit rewards eval`, `alignkit eval preferences` and the Python API's evaluate (their
options: PreferenceOptions); the metrics themselves are the pure functions of calibration.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import check_value, option
from ..data.records import Binary, Listwise, Pairwise, Scored
from ..errors import DataError
from . import calibration as C


@dataclass(frozen=True)
class PreferenceOptions:
    bins: int = option(10, ge=1)  # bins of the reliability table
    eval_fraction: float = option(0.0, ge=0, lt=1)  # evaluate only the held-out part of the seeded split `alignkit train` makes with this --eval-fraction and --seed (0: the whole file)
    seed: int = 0  # seed of that split
    on_bad_record: str = option("error", choices=("error", "skip"))  # error: stop at the first bad record, naming file, line and field | skip: leave it out and count it, as `alignkit train --on-bad-record skip` does, so the held-out split is the same
    max_pairs: int = option(0, ge=0)  # evaluate the first N pairs only (0: all)
    columns: str = ""  # other field names mapped to the ones the formats read: prompt=question,chosen=good,rejected=bad

    def __post_init__(self):  # the declared ranges and choices when built in Python too
        for f in dataclasses.fields(PreferenceOptions):
            problem = check_value(f, getattr(self, f.name))
            if problem:
                raise ValueError(problem)
        if self.columns:
            from ..data.formats import parse_columns
            parse_columns(self.columns)


def heldout_records(data, eval_fraction: float = 0.0, seed: int = 0, on_bad_record: str = "error",
                    columns: str = "", log=print) -> list:
    """Records of `data` (a path or name, a list of dicts or records, a datasets.Dataset); with
    eval_fraction > 0 only the held-out part of the seeded split that `alignkit train ...
    --eval-fraction F --seed S [--on-bad-record skip]` makes of the same data."""
    from ..data.convert import split_records
    from ..data.readers import read_data
    records, report = read_data(data, on_bad_record=on_bad_record, columns=columns)
    log(report.summary())
    if eval_fraction > 0:
        _, records = split_records(records, eval_fraction, seed)
        log(f"evaluating the held-out {len(records)} records (eval_fraction={eval_fraction}, seed={seed})")
    return records


def as_pairs(records: list, path: str = "data") -> list:
    """Pairwise records; listwise and scored records become pairs (alignkit/data/convert.py)."""
    from ..data.convert import listwise_to_pairwise, scored_to_pairwise
    if not records:
        return []
    if all(isinstance(r, Pairwise) for r in records):
        return list(records)
    if all(isinstance(r, Listwise) for r in records):
        return listwise_to_pairwise(records)
    if all(isinstance(r, Scored) for r in records):
        return scored_to_pairwise(records)
    raise DataError(path, None, None, f"preference evaluation needs pairwise, listwise or scored records, "
                                      f"got {type(records[0]).__name__}")


def is_binary(records: list) -> bool:
    """Thumbs-up/down records (KTO/BCO data): judged by AUC, not pair accuracy."""
    return bool(records) and all(isinstance(r, Binary) for r in records)


def binary_report(judge, records: list) -> dict:
    """{"judge", "responses", "thumbs_up", "auc", "reward_gap"}: how well the judge's score separates
    thumbs-up from thumbs-down responses (AUC; 0.5 = chance, e.g. a policy that is its own reference)
    and mean(score | up) - mean(score | down)."""
    scores = judge.score([r.prompt for r in records], [r.completion for r in records])
    labels = [bool(r.label) for r in records]
    up = [s for s, y in zip(scores, labels) if y]
    down = [s for s, y in zip(scores, labels) if not y]
    gap = (sum(up) / len(up) - sum(down) / len(down)) if up and down else float("nan")
    return {"judge": judge.name, "responses": len(records), "thumbs_up": len(up),
            "auc": C.binary_auc(scores, labels), "reward_gap": gap}


def format_binary_report(report: dict) -> str:
    return (f"{report['judge']}: {report['responses']} thumbs-labelled responses ({report['thumbs_up']} up)\n"
            f"  AUC {report['auc']:.4f} (thumbs-up scored above thumbs-down; 0.5 = chance)\n"
            f"  reward gap {report['reward_gap']:.4f} (mean up - mean down)")


def judge_probs(judge, pairs: list) -> list:
    """P(chosen preferred) for each pair, from the judge's own `compare`."""
    return judge.compare([p.prompt for p in pairs], [p.chosen for p in pairs], [p.rejected for p in pairs])


def preference_report(judge, pairs: list, against=None, n_bins: int = 10) -> dict:
    """{"judge", "pairs", "accuracy", "ties", "ece", "reliability", ["against": {...}]}. Soft labels
    (Pairwise.weight != 1) are used as P(chosen preferred) in accuracy and calibration."""
    labels = [float(p.weight) for p in pairs]
    probs = judge_probs(judge, pairs)
    table = C.reliability_table(probs, labels, n_bins)
    report = {"judge": judge.name, "pairs": len(pairs), "accuracy": C.preference_accuracy(probs, labels),
              "ties": sum(C.decision(p) == 0 for p in probs), "ece": C.expected_calibration_error(table),
              "reliability": table}
    if against is not None:
        other = judge_probs(against, pairs)
        report["against"] = {"judge": against.name, "accuracy_on_labels": C.preference_accuracy(other, labels),
                             **C.agreement(probs, other)}
    return report


def preference_results(judge, records: list, against=None, bins: int = 10, max_pairs: int = 0,
                       label: str = "data") -> dict:
    """The judge's report on records (`alignkit eval preferences`, `alignkit rewards eval`, the Python
    API's evaluate): thumbs (binary) records -> binary_report (AUC); pairwise, listwise or scored ->
    preference_report (accuracy, calibration, agreement with `against`). max_pairs > 0 keeps the first N."""
    if is_binary(records):  # thumbs labels: AUC of the score, not pair accuracy
        if against is not None:
            raise DataError(label, None, None, "--against needs pairwise, listwise or scored records")
        return binary_report(judge, records[: max_pairs] if max_pairs else records)
    pairs = as_pairs(records, label)
    if max_pairs:
        pairs = pairs[: max_pairs]
    if not pairs:
        raise DataError(label, None, None, "no preference pairs to evaluate")
    return preference_report(judge, pairs, against, bins)


def reward_rows(judge, records: list) -> list:
    """TRL-style rows of `records` with the judge's rewards added: `reward` for one response,
    `reward_chosen`/`reward_rejected` for a pair, `rewards` for a list. One batched score call."""
    from ..data.convert import to_trl_dict
    prompts, texts = [], []
    for r in records:
        if isinstance(r, Pairwise):
            items = [r.chosen, r.rejected]
        elif isinstance(r, Listwise):
            items = list(r.completions)
        else:
            items = [r.completion]
        prompts += [r.prompt] * len(items)
        texts += items
    scores = judge.score(prompts, texts)
    rows, k = [], 0
    for r in records:
        row = to_trl_dict(r)
        if isinstance(r, Pairwise):
            row["reward_chosen"], row["reward_rejected"] = scores[k], scores[k + 1]
            k += 2
        elif isinstance(r, Listwise):
            row["rewards"] = scores[k: k + len(r.completions)]
            k += len(r.completions)
        else:
            row["reward"] = scores[k]
            k += 1
        rows.append(row)
    return rows


def format_report(report: dict) -> str:
    lines = [f"{report['judge']}: {report['pairs']} pairs",
             f"  preference accuracy {report['accuracy']:.4f} ({report['ties']} ties, counted half)",
             f"  expected calibration error {report['ece']:.4f} (each pair in both orders)",
             C.format_table(report["reliability"])]
    if "against" in report:
        a = report["against"]
        lines.append(f"  agreement with {a['judge']}: {a['accuracy']:.4f}, Cohen's kappa {a['kappa']:.4f} "
                     f"(its own accuracy on the labels {a['accuracy_on_labels']:.4f})")
    return "\n".join(lines)
