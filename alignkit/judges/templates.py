"""Prompt templates for LLM judges: plain text files with named sections, editable by users.

    # comment lines before the first section are ignored
    === preamble ===
    What the judge is to do, and the criteria.
    === sample ===
    Conversation:
    {context}
    Response {label_a}:
    {response_a}
    ...

Sections (each a block of text under a `=== name ===` line):
- preamble      instructions and criteria (RLAIF's "preamble", Lee et al. 2023, arXiv 2309.00267, sec. 2.1)
- sample        one item to judge. Pairwise: {context}, {response_a}, {response_b}; pointwise:
                {context}, {response}. These placeholders are required.
- ending        asks for the verdict directly; the judge reads its label probabilities right after it
- cot_ending    asks for reasoning first (chain of thought, RLAIF sec. 2.1.2); needed with cot=1
- verdict       after the reasoning, asks for the label; needed with cot=1
- labels        the answer labels, separated by spaces: two for pairwise ("1 2", "A B"), the score
                values for pointwise ("0 1 2 3 4 5", as in the additive rubric of Self-Rewarding LMs,
                Yuan et al. 2024, arXiv 2401.10020, fig. 2)
Every section may also use {label_a} and {label_b} (pairwise) or {min_score} and {max_score}
(pointwise), so the labels are written once. A pairwise template may also use {principle}, in any
section: the principle of a constitution the comparison is judged under, phrased as a question
(Constitutional AI, Bai et al. 2022, arXiv 2212.08073, sec. 4.1: "[PRINCIPLE FOR MULTIPLE CHOICE
EVALUATION]"); such a template is judged with a principle per comparison (constitution.py).
Any other {name} is an error (a typo caught early); other braces are plain text. Substitution is a
single pass: a response containing "{context}" stays as it is.

A prompt is the preamble, the few-shot exemplars (if any), the sample and the ending (or cot_ending),
separated by blank lines. Built-in templates: `helpful` and `harmless`, for each kind, and the
pairwise `constitution` (the paper's multiple-choice comparison under a principle), in
alignkit/judges/templates/; `template=FILE` takes a user's file, checked by the same rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

TEMPLATE_DIR = Path(__file__).parent / "templates"
BUILTIN = {"pairwise": ("helpful", "harmless", "constitution"), "pointwise": ("helpful", "harmless")}
SECTIONS = ("preamble", "sample", "ending", "cot_ending", "verdict", "labels")
REQUIRED_SECTIONS = ("preamble", "sample", "ending", "labels")
SAMPLE_FIELDS = {"pairwise": ("context", "response_a", "response_b"), "pointwise": ("context", "response")}
LABEL_FIELDS = {"pairwise": ("label_a", "label_b"), "pointwise": ("min_score", "max_score")}
SHARED_FIELDS = {"pairwise": ("principle",), "pointwise": ()}  # per-judgment values any section may use
_HEADER = re.compile(r"^===\s*([A-Za-z_]+)\s*===\s*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(text: str, values: dict) -> str:
    """Replace {name} by values[name] in one pass (inserted text is never scanned again)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class Template:
    kind: str  # "pairwise" | "pointwise"
    sections: dict  # section name -> text (no leading or trailing blank lines)
    labels: tuple  # answer labels: the response shown first, the second; or the score values
    source: str  # the file it came from, for error messages

    def values(self) -> dict:
        if self.kind == "pairwise":
            return {"label_a": self.labels[0], "label_b": self.labels[1]}
        nums = [float(x) for x in self.labels]
        show = lambda v: str(int(v)) if v == int(v) else str(v)  # noqa: E731
        return {"min_score": show(min(nums)), "max_score": show(max(nums))}

    def section(self, name: str, **fields) -> str:
        return fill(self.sections[name], {**self.values(), **fields})

    def require_cot(self) -> None:
        missing = [s for s in ("cot_ending", "verdict") if not self.sections.get(s)]
        if missing:
            raise ConfigError(f"template {self.source}: no section {', '.join(repr(m) for m in missing)}, "
                              "which chain of thought (cot=1) needs")

    def scores(self) -> list:
        return [float(x) for x in self.labels]

    @property
    def uses_principle(self) -> bool:
        """Does some section ask for {principle} (a constitution's multiple-choice question)?"""
        return any("{principle}" in body for body in self.sections.values())


def parse_template(text: str, source: str, kind: str) -> Template:
    """A Template from a file's text; any problem is one ConfigError naming `source`."""
    sections: dict = {}
    current = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            current = m.group(1).lower()
            if current not in SECTIONS:
                raise ConfigError(f"template {source}: unknown section {current!r}; sections are {', '.join(SECTIONS)}")
            if current in sections:
                raise ConfigError(f"template {source}: section {current!r} appears twice")
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise ConfigError(f"template {source}: text before the first section; start with '=== preamble ==='")
    sections = {k: "\n".join(v).strip("\n") for k, v in sections.items()}
    missing = [s for s in REQUIRED_SECTIONS if not sections.get(s, "").strip()]
    if missing:
        raise ConfigError(f"template {source}: missing section {', '.join(repr(m) for m in missing)} "
                          f"(a template has {', '.join(REQUIRED_SECTIONS)}, and cot_ending, verdict for cot=1)")
    sample = sections["sample"]
    other = "pointwise" if kind == "pairwise" else "pairwise"
    if all("{" + f + "}" in sample for f in SAMPLE_FIELDS[other]) and not all(
            "{" + f + "}" in sample for f in SAMPLE_FIELDS[kind]):
        raise ConfigError(f"template {source}: a {other} template (its sample has "
                          f"{', '.join('{' + f + '}' for f in SAMPLE_FIELDS[other])}); this judge is {kind}")
    absent = [f for f in SAMPLE_FIELDS[kind] if "{" + f + "}" not in sample]
    if absent:
        raise ConfigError(f"template {source}: section 'sample' lacks the placeholder "
                          f"{', '.join('{' + f + '}' for f in absent)}")
    allowed = set(SAMPLE_FIELDS[kind]) | set(LABEL_FIELDS[kind]) | set(SHARED_FIELDS[kind])
    for name, body in sections.items():
        for m in _PLACEHOLDER.finditer(body):
            if m.group(1) not in allowed:
                raise ConfigError(f"template {source}: section {name!r} has an unknown placeholder "
                                  f"{{{m.group(1)}}}; allowed: {', '.join('{' + a + '}' for a in sorted(allowed))}")
        if name != "sample":
            for f in SAMPLE_FIELDS[kind]:
                if "{" + f + "}" in body:
                    raise ConfigError(f"template {source}: {{{f}}} belongs in section 'sample', not {name!r}")
    labels = tuple(sections["labels"].split())
    if kind == "pairwise":
        if len(labels) != 2 or labels[0] == labels[1]:
            raise ConfigError(f"template {source}: section 'labels' must hold two different labels "
                              f"(e.g. '1 2' or 'A B'), got {sections['labels']!r}")
    else:
        try:
            values = [float(x) for x in labels]
        except ValueError:
            raise ConfigError(f"template {source}: section 'labels' must hold score values such as "
                              f"'0 1 2 3 4 5', got {sections['labels']!r}") from None
        if len(labels) < 2 or len(set(values)) != len(values):
            raise ConfigError(f"template {source}: section 'labels' needs two or more different score values, "
                              f"got {sections['labels']!r}")
    return Template(kind, sections, labels, source)


def load_template(name: str, kind: str) -> Template:
    """`helpful`, `harmless` (built in) or a path to a user's template file."""
    if kind not in SAMPLE_FIELDS:
        raise ValueError(f"kind must be 'pairwise' or 'pointwise', got {kind!r}")
    if name in BUILTIN[kind]:
        path = TEMPLATE_DIR / f"{kind}_{name}.txt"
    else:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"template {name}: no such file, and not a built-in {kind} template "
                              f"({', '.join(BUILTIN[kind])})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"template {path}: cannot read: {e}") from None
    return parse_template(text, str(path), kind)
