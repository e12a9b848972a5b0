"""Every flag the README names exists: each `alignkit ...` line of its code blocks uses only options of
that command (of that method, for `alignkit train METHOD`), and every other `--flag` in its prose is an
option of some alignkit command or of the benchmark scripts (README.md once said `--threads 1`, which
no alignkit command has)."""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")


def _options(p: argparse.ArgumentParser, deep: bool = True) -> set:
    out = {o for a in p._actions for o in a.option_strings if o.startswith("--")}
    for a in p._actions:
        if deep and isinstance(a, argparse._SubParsersAction):
            for sp in a.choices.values():
                out |= _options(sp)
    return out


def _sub(p: argparse.ArgumentParser, word: str):
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction) and word in a.choices:
            return a.choices[word]
    return None


def _command_lines(text: str) -> list:
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("#")[0].rstrip() for b in blocks for line in re.sub(r"\\\n", " ", b).splitlines()]
    return [line.strip() for line in lines if line.startswith("alignkit ")]  # continued lines joined


def test_each_readme_command_line_uses_its_own_options():
    from alignkit.commands import build_parser
    from alignkit.commands.train import train_parser
    from alignkit.registry import METHODS
    root, _ = build_parser()
    lines = _command_lines((ROOT / "README.md").read_text())
    assert len(lines) > 20
    for line in lines:
        words = shlex.split(line.replace("|", " | "))[1:]
        flags = [w.split("=")[0] for w in words if w.startswith("--")]
        if words[0] == "train" and words[1] in METHODS:
            known = _options(train_parser(words[1], words[2:]))
        else:
            p = root
            for w in words:
                if w.startswith("-") or w in ("|", "...") or _sub(p, w) is None:
                    break
                p = _sub(p, w)
            known = _options(p, deep=False) | {"--help"}
        assert set(flags) <= known, f"{line}: {sorted(set(flags) - known)} not options of that command"


def unknown_flags(text: str) -> list:
    """Flags of `text` that are no alignkit option; a benchmark script's own flag counts where the text
    just before it names the benchmarks."""
    from alignkit.commands import build_parser
    from alignkit.commands.train import train_parser
    from alignkit.registry import METHODS
    known = _options(build_parser()[0]) - {"--threads"}  # the leaderboard's deprecated alias of --num-threads
    for m in METHODS:
        known |= _options(train_parser(m))
    scripts = {}  # a script's own flags count where the text just before it names those scripts
    for where, folder in (("bench", "benchmarks"), ("scripts/", "docs/results/scripts")):
        scripts[where] = {f for script in (ROOT / folder).glob("*.py")
                          for f in re.findall(r"add_argument\(\s*\"(--[a-z0-9_-]+)\"", script.read_text())}
    return sorted({m.group(0) for m in FLAG.finditer(text) if m.group(0) not in known
                   and not any(m.group(0) in flags and where in text[max(0, m.start() - 80): m.start()]
                               for where, flags in scripts.items())})


def test_every_flag_in_the_readme_exists():
    assert unknown_flags((ROOT / "README.md").read_text()) == []
    # what the README once said about alignkit's own thread count (`--threads`: only the leaderboard's
    # deprecated spelling of --num-threads, and the benchmark scripts' flag)
    assert unknown_flags("(`--num-threads 0`, the default; `--threads 1` for the benchmark scripts)") == ["--threads"]
