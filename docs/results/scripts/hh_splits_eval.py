"""docs/results/hh_pairwise.md, several splits: .venv/bin/python docs/results/scripts/hh_splits_eval.py
(after docs/results/scripts/hh_split.sh for each seed). Pools the held-out pairs of every hh split: per pair, does the model prefer chosen (summed log-probs, its
own preference; and for dpo the log-ratio to that split's SFT)? Paired against the SFT model (McNemar)."""
import json, math, sys
from pathlib import Path
import torch
from alignkit.data.convert import split_records
from alignkit.data.readers import read_records
from alignkit.data.tokenize import Encoder
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.train.forward import collate, sequence_logps
torch.set_num_threads(1)
H = "../shared/data/hh-rlhf/harmless-base-sample.jsonl"
recs, _ = read_records(H, on_bad_record="skip")
root = Path("runs/s3/hh")

def sums(model_dir, held, enc):
    m = load_causal_lm(str(model_dir)).eval()
    out = []
    for i in range(0, len(held), 16):
        seqs = [(e.prompt_ids, e.completion_ids) for r in held[i:i + 16]
                for e in (enc.encode(r.prompt, r.chosen), enc.encode(r.prompt, r.rejected))]
        with torch.no_grad():
            lp, _ = sequence_logps(m, collate(seqs, 0))
        out.append(torch.stack([lp.sum(), lp.lengths()], 1))
    s = torch.cat(out)
    return s[0::2, 0], s[1::2, 0], s[0::2, 1] - s[1::2, 1]

def score(d):
    return torch.where(d > 1e-6, 1.0, torch.where(d < -1e-6, 0.0, 0.5))

rows = {}
extra = {}
for sd in sorted(root.glob("s*")):
    seed = int(sd.name[1:])
    if not all((sd / m / "summary.json").exists() for m in ("sft", "slic", "cpo", "dpo")):
        continue
    _, held = split_records(recs, 0.1, seed)
    enc = Encoder(load_tokenizer(str(sd / "sft")), 256)
    sw, sl, dlen = sums(sd / "sft", held, enc)
    extra.setdefault("dlen", []).append(dlen)
    extra.setdefault("sft_margin", []).append(sw - sl)
    acc = {"sft": score(sw - sl)}
    for m in ("slic", "cpo", "dpo"):
        w, l, _ = sums(sd / m, held, enc)
        acc[m] = score(w - l)
        acc[m + "_ratio"] = score((w - sw) - (l - sl))
        extra.setdefault(m + "_move", []).append((w - sw) - (l - sl))
    for k, v in acc.items():
        rows.setdefault(k, []).append(v)
    print(seed, len(held), {k: round(v.mean().item(), 3) for k, v in acc.items()}, flush=True)

pooled = {k: torch.cat(v) for k, v in rows.items()}
n = len(pooled["sft"])
print(f"pooled over {len(rows['sft'])} splits, {n} held-out pairs")
for k, v in pooled.items():
    line = f"{k:10s} {v.mean().item():.4f}"
    if k != "sft":
        if k.endswith("_ratio"):  # log-ratio to SFT: pairs moved the right way vs the wrong way
            b, c = (v == 1).sum().item(), (v == 0).sum().item()
        else:  # own preference against the SFT model's, pair by pair
            b, c = (pooled["sft"] < v).sum().item(), (pooled["sft"] > v).sum().item()
        # two-sided sign test on the discordant pairs
        nn = b + c; kk = min(b, c)
        p = min(1.0, 2 * sum(math.comb(nn, i) for i in range(kk + 1)) / 2 ** nn) if nn else 1.0
        line += f"  right way {b}, wrong way {c} (sign test p = {p:.3g})"
    print(line)

def spearman(a, b):
    ra = a.argsort().argsort().double(); rb = b.argsort().argsort().double()
    ra -= ra.mean(); rb -= rb.mean()
    return (ra @ rb / (ra.norm() * rb.norm())).item()

ex = {k: torch.cat(v) for k, v in extra.items()}
m0 = ex["sft_margin"].abs()
print(f"SFT own margin |l_w - l_l| (nats): median {m0.median().item():.1f}; share within 1 / 5 nats: "
      f"{(m0 < 1).double().mean().item():.3f} / {(m0 < 5).double().mean().item():.3f}")
print(f"length difference chosen - rejected (tokens): median |d| {ex['dlen'].abs().median().item():.0f}")
for m in ("slic", "cpo", "dpo"):
    mv = ex[m + "_move"]
    print(f"{m}: margin move on held-out pairs: median |move| {mv.abs().median().item():.2f} nats; "
          f"rank corr(move, length diff) {spearman(mv, ex['dlen']):+.2f}")
neg = ex["sft_margin"] < -1
print(f"pairs with the chosen answer >1 nat less likely at SFT: {neg.double().mean().item():.3f}; "
      f"of them chosen longer: {(ex['dlen'][neg] > 0).double().mean().item():.3f}; "
      f"rank corr(SFT margin, length diff) {spearman(ex['sft_margin'], ex['dlen']):+.2f}")
