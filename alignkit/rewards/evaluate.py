"""A judge on held-out preference pairs: accuracy, calibration, and agreement with another judge.

Used by `alignkit rewards eval` and `alignkit eval preferences`; the metrics themselves are the pure
functions of calibration.py.
"""
from __future__ import annotations

from ..data.records import Listwise, Pairwise, Scored
from ..errors import DataError
from . import calibration as C


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
