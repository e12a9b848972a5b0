"""Self-rewarding's M1 data (Yuan et al. 2024, arXiv 2401.10020, sec. 2.2 and 3.1): the seed instruction data (IFT)
and the evaluation fine-tuning data (EFT) in one SFT set. M1 is the SFT model fine-tuned on it; the self-rewarding
rounds then start from M1, which answers and judges from round 1 on.

    .venv/bin/python docs/results/scripts/sr_m1_data.py --model SFT --ift runs/term/export/sft.jsonl \
        --eft runs/term/eft.jsonl --judge-options "chat=0,cot=0,template=docs/results/scripts/judge_compact.txt" \
        --output runs/h17/m1.jsonl

Each EFT judgment (prompt, response, score 0-5) becomes the self-judge's query for (prompt, response) -> the rubric's
label nearest the score (alignkit.online.self_rewarding.eft_demonstrations, the same query the judge sends). With
chat=0 in the judge options the query is plain text ending in "Score:", never a chat turn, so the score digits are
trained as continuations of the rubric and not as an assistant's answer (trained inside the chat turn, the 0.5M
model began answering questions with bare digits: termination.md). The IFT records keep the chat format.
"""
from __future__ import annotations

import argparse
import json
import random

from alignkit.data.readers import read_records
from alignkit.judges.specs import llm_judge
from alignkit.online.self_rewarding import eft_demonstrations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ift", required=True)
    ap.add_argument("--eft", required=True)
    ap.add_argument("--judge-options", default="chat=0,cot=0")
    ap.add_argument("--output", required=True)
    ap.add_argument("--eft-repeat", type=int, default=1, help="each EFT example this many times")
    ap.add_argument("--ift-limit", type=int, default=0, help="the first N IFT records (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    judge = llm_judge("llm-score", f"hf:{a.model},{a.judge_options}")
    eft, _ = read_records(a.eft, shape="scored")
    ift, _ = read_records(a.ift, shape="demonstration")
    ift = ift[:a.ift_limit] if a.ift_limit else ift
    rows = [{"prompt": d.prompt, "completion": d.completion} for d in eft_demonstrations(judge, eft)] * a.eft_repeat
    rows += [{"prompt": d.prompt, "completion": d.completion} for d in ift]
    random.Random(a.seed).shuffle(rows)
    with open(a.output, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"{a.output}: {len(eft)} EFT (x{a.eft_repeat}) + {len(ift)} IFT records; an EFT example:\n{json.dumps(rows[[isinstance(r['prompt'], str) for r in rows].index(True)])[:600]}")


if __name__ == "__main__":
    main()
