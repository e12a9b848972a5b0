"""Cosine similarity of the DPO and SimPO gradients at the SFT model on the first 64 pairs of a labels file
(docs/results/bundled_task.md b):
  .venv/bin/python docs/results/scripts/gradient_similarity.py runs/s2/b_ln_0.2/seed1/labels_pairwise.jsonl"""
import sys

import torch, torch.nn.functional as F
from alignkit.data.readers import read_records
from alignkit.data.tokenize import Encoder
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.train.forward import collate, sequence_logps
torch.set_num_threads(2)
SFT = "/root/.cache/alignkit/synthetic/6e9c114b4b4d/sft"
m = load_causal_lm(SFT); tok = load_tokenizer(SFT); enc = Encoder(tok, 128)
recs, _ = read_records(sys.argv[1])
recs = recs[:64]
seqs = []
for r in recs:
    for c in (r.chosen, r.rejected):
        e = enc.encode(r.prompt, c); seqs.append((e.prompt_ids, e.completion_ids))
with torch.no_grad():
    ref, _ = sequence_logps(m, collate(seqs, 0))
    ref_sum = ref.sum()
def grad(loss_fn):
    m.zero_grad()
    lp, _ = sequence_logps(m, collate(seqs, 0))
    loss_fn(lp).mean().backward()
    return torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]).clone()
def dpo(lp):
    d = lp.sum() - ref_sum
    return -F.logsigmoid(0.1 * (d[0::2] - d[1::2]))
def simpo(lp, gamma=1.0):
    a = lp.mean()
    return -F.logsigmoid(2.0 * (a[0::2] - a[1::2]) - gamma)
lens = ref.lengths()
print("mean completion length", float(lens.mean()), "chosen", float(lens[0::2].mean()), "rejected", float(lens[1::2].mean()))
g_d, g_s = grad(dpo), grad(simpo)
print("cosine(grad DPO, grad SimPO) at the SFT model:", float(F.cosine_similarity(g_d, g_s, dim=0)), "norm ratio", float(g_s.norm() / g_d.norm()))
