"""How the pairs an iterative run trained on look under the bundled task's r*: per round, the share of
(chosen, rejected) pairs that r* orders the same way (pairs r* ties left out) and the mean r*(chosen) - r*(rejected)
(a judge right on the pairs with large r* gaps and wrong on the small ones has a near-chance share but a positive gap).

    .venv/bin/python docs/results/scripts/sr_pairs_truth.py RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from alignkit.synthetic.reward import true_reward


def text(x) -> str:
    return x[-1]["content"] if isinstance(x, list) else x


def round_truth(f: Path) -> tuple:
    agree = strict = 0
    gaps = []
    for line in f.read_text().splitlines():
        r = json.loads(line)
        p = text(r["prompt"])
        gap = true_reward(p, text(r["chosen"])) - true_reward(p, text(r["rejected"]))
        gaps.append(gap)
        if gap:
            strict += 1
            agree += gap > 0
    return agree / max(1, strict), sum(gaps) / max(1, len(gaps)), len(gaps)


def main() -> None:
    print("| run | rounds 1 / 2 / 3: share of trained pairs r* agrees with; mean r*(chosen) - r*(rejected) |")
    print("|---|---|")
    for run in sys.argv[1:]:
        cells = []
        for rd in sorted(Path(run).glob("round-*/pairs.jsonl"), key=lambda f: int(f.parent.name.split("-")[1])):
            a, g, n = round_truth(rd)
            cells.append(f"{a:.2f}; {g:+.3f} ({n} pairs)")
        print(f"| {run} | {' / '.join(cells)} |")


if __name__ == "__main__":
    main()
