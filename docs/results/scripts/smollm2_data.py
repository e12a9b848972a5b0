"""The shared HH-RLHF pairs as conversations, for a chat model (docs/results/smollm2.md, part 2).

    .venv/bin/python docs/results/scripts/smollm2_data.py --out runs/smollm2_policy/hh_chat.jsonl

The raw HH format ("\\n\\nHuman: ... \\n\\nAssistant: ...") is plain text: a chat model trained on it
never sees its own chat template, while the XSTest and TruthfulQA evaluations query it through that
template. Each dialogue becomes {"prompt": [user/assistant turns], "chosen": [{"role": "assistant",
...}], "rejected": [...]}, so `alignkit train` renders the prompt with the model's chat template and
the completions end with its end-of-turn token. Pairs with an empty reply are kept as they are:
`--on-bad-record skip` leaves them out in training and in `alignkit eval preferences` alike (same split).
With --truthfulqa FILE it converts the TruthfulQA binary labels instead (thumbs-up/down answers, for KTO).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-sample.jsonl"
TURN = re.compile(r"\n\n(Human|Assistant): ?")


def turns(text: str) -> list:
    """'\\n\\nHuman: a\\n\\nAssistant: b' -> [("user", "a"), ("assistant", "b")]."""
    parts = TURN.split(text)
    out = []
    for role, content in zip(parts[1::2], parts[2::2]):
        out.append({"role": "user" if role == "Human" else "assistant", "content": content.strip()})
    return out


def convert(row: dict) -> dict:
    c, r = turns(row["chosen"]), turns(row["rejected"])
    if len(c) != len(r) or c[:-1] != r[:-1] or c[-1]["role"] != "assistant":
        raise ValueError("chosen and rejected differ before the last assistant turn")
    return {"prompt": c[:-1], "chosen": [c[-1]], "rejected": [r[-1]]}


def truthfulqa(path: str, out: str) -> None:
    """finetune_truth.jsonl ("Q: ...\nA: ...\nTrue:" + " yes"/" no") as thumbs-up/down chat records for
    KTO: {"prompt": [user: question], "completion": answer, "label": true|false}."""
    n = 0
    with open(path) as f, open(out, "w") as g:
        for line in f:
            row = json.loads(line)
            q, _, a = row["prompt"].partition("\nA: ")
            a = a.rsplit("\nTrue:", 1)[0]
            g.write(json.dumps({"prompt": [{"role": "user", "content": q.removeprefix("Q: ").strip()}],
                                "completion": a.strip(), "label": row["completion"].strip() == "yes"}) + "\n")
            n += 1
    print(f"{n} labelled answers written to {out}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(HH))
    ap.add_argument("--out", required=True)
    ap.add_argument("--truthfulqa", default="", help="instead: convert this finetune_truth.jsonl for KTO")
    args = ap.parse_args()
    if args.truthfulqa:
        return truthfulqa(args.truthfulqa, args.out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    n = bad = 0
    with open(args.data) as f, open(args.out, "w") as g:
        for line in f:
            row = json.loads(line)
            try:
                rec = convert(row)
            except ValueError:
                bad += 1
                rec = row  # left for --on-bad-record to count, so line numbers and the split stay aligned
            g.write(json.dumps(rec) + "\n")
            n += 1
    print(f"{n} pairs written to {args.out} ({bad} kept in the raw format: they differ before the last reply)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
