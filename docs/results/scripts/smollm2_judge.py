"""SmolLM2-135M-Instruct as a local LLM judge, against real labels (docs/results/smollm2.md, part 1).

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/scripts/smollm2_judge.py \
        --model runs/smollm2-135m-instruct --n 200 --cot-n 30 --out runs/smollm2_judge

Two labelled sets from ../shared/data, a seeded subset of each (--n pairs, --seed):
- alpaca_eval: AlpacaEval pairs (alpaca-7b vs text-davinci-003) with GPT-4's verdict as the label,
  judged with the `helpful` pairwise template;
- hh: Anthropic HH-RLHF harmless-base pairs with the human label, judged with the `harmless` template.

The judge is the library's pairwise LLM judge (`llm-pair:hf:MODEL,template=T`, RLAIF's label
probabilities: P(first) = p("1") / (p("1") + p("2")), Lee et al. 2023 sec. 2.1), every pair judged in
both presentation orders (labelled first, then labelled second). Reported per set: agreement with the
label in each order and with one order drawn at random per pair (what a one-order judge gives),
P(first shown preferred) and the share of "first" verdicts (position bias), the share of pairs whose
verdict flips under the swap, agreement after swap-and-average (sec. 2.1.1), and the same with
chain of thought (cot=1: a generated rationale, then the label probabilities; sec. 2.1.2) on the
first --cot-n pairs of the subset. Also the pointwise 0-5 judge (`llm-score`, direct, no rationale)
on the same pairs: a pair's verdict is the higher expected score. Wilson 95% intervals throughout.
Writes OUT/results.json (figures) and OUT/judgments.jsonl (per pair); a finished part is reused.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from alignkit.data.readers import read_records  # noqa: E402
from alignkit.judges.specs import llm_judge  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SETS = {"alpaca_eval": (DATA / "alpaca_eval" / "pairwise_alpaca7b_vs_davinci003_gpt4judge.jsonl", "helpful"),
        "hh": (DATA / "hh-rlhf" / "harmless-base-sample.jsonl", "harmless")}


def wilson(k: float, n: int, z: float = 1.96) -> tuple:
    """Wilson score interval of a proportion k/n (ties counted as half a success)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (round(c - h, 3), round(c + h, 3))


def rate(values: list) -> dict:
    """A proportion of 0/0.5/1 outcomes with its Wilson interval."""
    k, n = sum(values), len(values)
    return {"rate": round(k / n, 3) if n else None, "ci95": wilson(k, n), "n": n}


def hit(p: float) -> float:
    """1 if P(labelled preferred) > 0.5, 0 if < 0.5, a tie counts half."""
    return 1.0 if p > 0.5 else (0.0 if p < 0.5 else 0.5)


def load_pairs(name: str, n: int, seed: int) -> list:
    path, _ = SETS[name]
    records, report = read_records(str(path), "pairwise", on_bad_record="skip")
    rng = random.Random(f"smollm2-judge|{name}|{seed}")
    idx = sorted(rng.sample(range(len(records)), min(n, len(records))))
    return [(i, records[i]) for i in idx]


def pairwise_part(judge, pairs: list, seed: int) -> tuple:
    t0 = time.time()
    js = judge.judge_pairs([r.prompt for _, r in pairs], [r.chosen for _, r in pairs],
                           [r.rejected for _, r in pairs])
    secs = time.time() - t0
    rng = random.Random(f"one-order|{seed}")
    fwd = [hit(j.forward) for j in js]  # labelled response shown first
    bwd = [hit(j.backward) for j in js]  # labelled response shown second
    one = [f if rng.random() < 0.5 else b for f, b in zip(fwd, bwd)]
    firsts = [p for j in js for p in j.first_preferred]
    out = {
        "agreement_labelled_first": rate(fwd),
        "agreement_labelled_second": rate(bwd),
        "agreement_one_random_order": rate(one),
        "agreement_swap_averaged": rate([hit(j.probability) for j in js]),
        "first_verdict_share": rate([hit(p) for p in firsts]),
        "mean_p_first": round(sum(firsts) / len(firsts), 3),
        "flips_under_swap": rate([0.0 if j.agree else 1.0 for j in js]),
        "flips_first_wins_both": sum(1 for j in js if not j.agree and j.forward > 0.5 and j.backward < 0.5),
        "flips_second_wins_both": sum(1 for j in js if not j.agree and j.forward < 0.5 and j.backward > 0.5),
        "mean_abs_p_minus_half": round(sum(abs(j.forward - 0.5) + abs(j.backward - 0.5) for j in js) / (2 * len(js)), 4),
        "seconds": round(secs, 1),
        "seconds_per_judgment": round(secs / (2 * len(js)), 2),
    }
    rows = [{"index": i, "forward": j.forward, "backward": j.backward, "probability": j.probability,
             "rationales": list(j.rationales)} for (i, _), j in zip(pairs, js)]
    return out, rows


def pointwise_part(judge, pairs: list) -> tuple:
    t0 = time.time()
    prompts = [r.prompt for _, r in pairs]
    sc = judge.score(prompts * 2, [r.chosen for _, r in pairs] + [r.rejected for _, r in pairs])
    n = len(pairs)
    secs = time.time() - t0
    win = [1.0 if sc[i] > sc[n + i] else (0.0 if sc[i] < sc[n + i] else 0.5) for i in range(n)]
    out = {"agreement": rate(win), "mean_score_labelled": round(sum(sc[:n]) / n, 3),
           "mean_score_other": round(sum(sc[n:]) / n, 3), "seconds": round(secs, 1)}
    return out, [{"index": i, "score_labelled": sc[k], "score_other": sc[n + k]} for k, (i, _) in enumerate(pairs)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "runs" / "smollm2-135m-instruct"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--cot-n", type=int, default=30)
    ap.add_argument("--cot-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="alpaca_eval,hh")
    ap.add_argument("--parts", default="direct,pointwise,cot")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "runs" / "smollm2_judge"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {}
    results["config"] = {k: v for k, v in vars(args).items() if k != "out"}
    backend = None
    for name in args.sets.split(","):
        pairs = load_pairs(name, args.n, args.seed)
        template = SETS[name][1]
        for part in args.parts.split(","):
            key = f"{name}/{part}"
            if key in results:
                continue
            sub = pairs[: args.cot_n] if part == "cot" else pairs
            if backend is None:
                from alignkit.judges.backends import backend_from_spec
                backend = backend_from_spec(f"hf:{args.model}", batch_size=args.batch_size)
            if part == "pointwise":
                judge = llm_judge("llm-score", f"hf:{args.model},template={template},cot=0", backend=backend)
                res, rows = pointwise_part(judge, sub)
            else:
                spec = f"hf:{args.model},template={template},cot={int(part == 'cot')},max_tokens={args.cot_tokens}"
                judge = llm_judge("llm-pair", spec, backend=backend)
                res, rows = pairwise_part(judge, sub, args.seed)
            res["n_pairs"] = len(sub)
            results[key] = res
            with open(out / "judgments.jsonl", "a") as f:
                for r in rows:
                    f.write(json.dumps({"set": name, "part": part, **r}) + "\n")
            res_path.write_text(json.dumps(results, indent=1))
            print(key, json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
