"""Reading a score out of a judge's written verdict.

Self-Rewarding LMs (Yuan et al. 2024, arXiv 2401.10020, sec. 2.3 and fig. 2) ask the judge to justify
its rating and end with "Score: <total points>"; models do not always comply ("4/5", "a score of 3
points", "**Score:** 4", "I award four points"). `parse_score` tries, in order, and within each rule
the *last* match in the text (a verdict ends with its conclusion; rubric lines quoted earlier also
hold numbers):

1. the word "score" (or "rating", "total") followed within a few words by a number, optionally "/ D"
   or "out of D";
2. a fraction anywhere: "N/D", "N out of D";
3. "N point(s)";
4. the last number in the text.

A fraction over a denominator other than the scale's top ("8/10" on a 0-5 scale) is rescaled to the
scale. A number outside [low, high] is not a score under that rule; if no rule finds one, the result
is None (the judge then falls back to label probabilities, see `pointwise.py`). Number words zero to
ten count as numbers. Markdown emphasis (*, _, `) is ignored.
"""
from __future__ import annotations

import re

WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10}
NUM = r"(\d+(?:\.\d+)?|" + "|".join(WORDS) + r")"
FRACTION = rf"{NUM}\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?)"
RULES = (
    re.compile(rf"\b(?:score|rating|total)\b[^\d\n]{{0,40}}?\b{NUM}(?:\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?", re.I),
    re.compile(rf"\b{FRACTION}", re.I),
    re.compile(rf"\b{NUM}\s*points?\b", re.I),
    re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.]*\d)"),
)


def _value(token: str) -> float:
    return float(WORDS.get(token.lower(), token))


def parse_score(text: str, low: float = 0.0, high: float = 5.0) -> float | None:
    """The score a written verdict gives on the scale [low, high], or None."""
    if not isinstance(text, str):
        return None
    text = re.sub(r"[*_`]", "", text)
    for rule in RULES:
        for m in reversed(list(rule.finditer(text))):
            value = _value(m.group(1))
            den = m.group(2) if m.re.groups >= 2 else None
            if den is not None:
                d = float(den)
                if d <= 0 or value > d:
                    continue
                if d != high:
                    value = low + (high - low) * value / d
            if low <= value <= high:
                return value
    return None
