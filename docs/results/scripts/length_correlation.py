"""Correlation between each method's implicit reward margin and the length difference of held-out
pairs (the SimPO paper's length analysis), on a `world compare` output folder with arms dpo, simpo and
simpo_noln (docs/results/bundled_task.md b):  .venv/bin/python docs/results/scripts/length_correlation.py runs/s2/b_ln_0.2"""
import sys
from pathlib import Path
import torch
from alignkit.data.convert import split_records
from alignkit.data.readers import read_records
from alignkit.data.tokenize import Encoder
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.train.forward import collate, sequence_logps

SFT = "/root/.cache/alignkit/synthetic/6e9c114b4b4d/sft"
root = Path(sys.argv[1])

@torch.no_grad()
def logps(model_dir, seqs):
    m = load_causal_lm(model_dir).eval()
    out = []
    for i in range(0, len(seqs), 32):
        lp, _ = sequence_logps(m, collate(seqs[i:i + 32], 0))
        out.append(torch.stack([lp.sum(), lp.lengths()], 1))
    return torch.cat(out)

def pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))

def spearman(a, b):
    return pearson(a.argsort().argsort().double(), b.argsort().argsort().double())

tok = load_tokenizer(SFT); enc = Encoder(tok, 128)
res = {}
for s in (1, 2, 3):
    recs, _ = read_records(str(root / f"seed{s}" / "labels_pairwise.jsonl"))
    _, held = split_records(recs, 0.1, s)
    seqs = []
    for r in held:
        for c in (r.chosen, r.rejected):
            e = enc.encode(r.prompt, c); seqs.append((e.prompt_ids, e.completion_ids))
    ref = logps(SFT, seqs)
    for arm, kind, beta in (("dpo", "ratio", 0.1), ("simpo", "mean", 2.0), ("simpo_noln", "sum", 0.1)):
        lp = logps(str(root / f"seed{s}" / arm), seqs)
        sums, lens = lp[:, 0].double(), lp[:, 1].double()
        r = beta * {"ratio": sums - ref[:, 0].double(), "mean": sums / lens, "sum": sums}[kind]
        margin, dlen = r[0::2] - r[1::2], lens[0::2] - lens[1::2]
        res.setdefault(arm, []).append((spearman(margin, dlen), float((margin > 0).double().mean())))
for arm, v in res.items():
    print(arm, "spearman(margin, len_w - len_l) per seed", [round(x[0], 3) for x in v], "accuracy", [round(x[1], 3) for x in v])
