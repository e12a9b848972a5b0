"""Preference metrics of a judge on labelled pairs: accuracy, agreement, calibration. Pure functions of
probabilities p_i = P(first response of pair i preferred), as `Judge.compare` returns them.

- Accuracy (RM accuracy; for an AI judge, the "AI labeler alignment" of Lee et al. 2023, arXiv 2309.00267,
  sec. 2.3): share of pairs where the judge prefers the labelled-better response; a tie (p = 1/2) counts
  half.
- Agreement between two judges: share of pairs on which their decisions (first / tie / second) agree,
  and Cohen's kappa (Cohen 1960) = (p_o - p_e) / (1 - p_e), with p_e the agreement expected by chance
  from each judge's own decision rates.
- Calibration: a reliability table (DeGroot & Fienberg 1983) and the expected calibration error
  ECE = sum_b (n_b / N) |freq_b - conf_b| (Naeini et al. 2015; Guo et al. 2017, arXiv 1706.04599).
- Thumbs (binary) labels have no pairs: a reward there is judged by its AUC, P(reward of a random
  thumbs-up response > reward of a random thumbs-down one), ties half (the Mann-Whitney U statistic).

Pair files list the better response first, so "the first wins" is always the label; binned as it is,
that says nothing about calibration (every bin's frequency would be 1). Each pair is therefore counted
in both orders: (p, y) and (1 - p, 1 - y), where y is the label (1, or a soft label P(first better)).
The reliability table then covers [0, 1] symmetrically, and kappa no longer depends on which side a
file lists first.
"""
from __future__ import annotations

TIE_TOL = 1e-9


def decision(p: float) -> int:
    """+1: the first response is preferred, -1: the second, 0: a tie."""
    if p > 0.5 + TIE_TOL:
        return 1
    if p < 0.5 - TIE_TOL:
        return -1
    return 0


def preference_accuracy(probs: list, labels: list | None = None) -> float:
    """Share of pairs decided as labelled (labels: P(first better), default 1); ties count half.
    A pair whose label is itself a tie (0.5) counts as right only when the judge ties too."""
    if not probs:
        return float("nan")
    labels = [1.0] * len(probs) if labels is None else labels
    right = 0.0
    for p, y in zip(probs, labels):
        d, t = decision(p), decision(y)
        right += 1.0 if d == t else (0.5 if d == 0 or t == 0 else 0.0)
    return right / len(probs)


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa between two lists of categorical decisions (same length)."""
    n = len(a)
    if n == 0:
        return float("nan")
    cats = sorted(set(a) | set(b))
    p_o = sum(x == y for x, y in zip(a, b)) / n
    p_e = sum((a.count(c) / n) * (b.count(c) / n) for c in cats)
    if p_e >= 1.0:  # both judges always say the same single thing: agreement is not informative
        return 1.0 if p_o == 1.0 else 0.0
    return (p_o - p_e) / (1.0 - p_e)


def agreement(probs_a: list, probs_b: list) -> dict:
    """Decision agreement of two judges on the same pairs, each pair counted in both orders."""
    da = [decision(p) for p in probs_a]
    db = [decision(p) for p in probs_b]
    both_a, both_b = da + [-d for d in da], db + [-d for d in db]
    n = len(da)
    return {"pairs": n, "accuracy": sum(x == y for x, y in zip(da, db)) / n if n else float("nan"),
            "kappa": cohen_kappa(both_a, both_b)}


def reliability_table(probs: list, labels: list | None = None, n_bins: int = 10) -> list:
    """Bins of the predicted P(first preferred) over [0, 1], both orders of each pair:
    [{"lo", "hi", "count", "confidence" (mean p), "frequency" (mean label)}] for non-empty bins."""
    labels = [1.0] * len(probs) if labels is None else labels
    points = [(p, y) for p, y in zip(probs, labels)] + [(1.0 - p, 1.0 - y) for p, y in zip(probs, labels)]
    bins = [[] for _ in range(n_bins)]
    for p, y in points:
        bins[min(int(p * n_bins), n_bins - 1)].append((p, y))
    table = []
    for b, items in enumerate(bins):
        if items:
            table.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": len(items),
                          "confidence": sum(p for p, _ in items) / len(items),
                          "frequency": sum(y for _, y in items) / len(items)})
    return table


def expected_calibration_error(table: list) -> float:
    total = sum(row["count"] for row in table)
    if total == 0:
        return float("nan")
    return sum(row["count"] / total * abs(row["frequency"] - row["confidence"]) for row in table)


def format_table(table: list) -> str:
    lines = ["  P(first)      pairs  mean P  observed"]
    for r in table:
        lines.append(f"  [{r['lo']:.1f}, {r['hi']:.1f})  {r['count']:6d}  {r['confidence']:.3f}   {r['frequency']:.3f}")
    return "\n".join(lines)


def binary_auc(scores: list, labels: list) -> float:
    """AUC of `scores` separating label True from label False; ties count half. nan without both classes."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    neg_sorted = sorted(neg)
    import bisect
    total = 0.0
    for s in pos:  # O((P + N) log N): below counts 1, equal counts half
        lo, hi = bisect.bisect_left(neg_sorted, s), bisect.bisect_right(neg_sorted, s)
        total += lo + 0.5 * (hi - lo)
    return total / (len(pos) * len(neg))
