"""Batched, deterministic scoring with a reward model, and `RewardModelJudge` (the "rm:DIR" judge).

Responses are tokenized exactly as in training (alignkit/data/tokenize.py: the prompt through the chat
template, the response with EOS), sorted by length into batches to waste little padding, scored in
eval mode without gradients, and returned in the caller's order. The score of a response does not
depend on its batch-mates beyond float rounding (left padding is masked and the score is read at the
last real token), and the same call always returns the same numbers.
"""
from __future__ import annotations

import torch

from ..data.tokenize import Encoder, trained_max_length
from ..train.forward import collate
from .judge import Judge
from .model import RewardModel, load_reward_model, read_info


def encode_for_scoring(encoder: Encoder, prompts: list, responses: list) -> list:
    """[(prompt_ids, completion_ids)]; a response nothing of which fits keeps the prompt's end only."""
    seqs = []
    for p, r in zip(prompts, responses):
        enc = encoder.encode(p, r)
        if enc is None:
            seqs.append((encoder.prompt_ids(p)[-encoder.max_length:], []))
        else:
            seqs.append((enc.prompt_ids, enc.completion_ids))
    return seqs


def length_batches(seqs: list, batch_size: int) -> list:
    """Index lists, longest rows first, `batch_size` rows each."""
    order = sorted(range(len(seqs)), key=lambda i: -(len(seqs[i][0]) + len(seqs[i][1])))
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def score_sequences(rm: RewardModel, seqs: list, pad_id: int, batch_size: int = 16) -> list:
    """Reward of each (prompt_ids, completion_ids) row, in input order (floats)."""
    if not seqs:
        return []
    was = rm.training
    rm.eval()
    device = next(rm.parameters()).device
    out = [0.0] * len(seqs)
    for idx in length_batches(seqs, batch_size):
        sb = collate([seqs[i] for i in idx], pad_id)
        r = rm(sb.input_ids.to(device), sb.attention_mask.to(device))  # (n,)
        for i, v in zip(idx, r.cpu().tolist()):
            out[i] = v
    if was:
        rm.train()
    return out


class RewardModelJudge(Judge):
    """An explicit reward model as a Judge: score = r(x, y), compare = sigma(r_a - r_b) (Bradley-Terry).

    A model trained by `alignkit train rm-pointwise` with label normalisation outputs z-scores; its
    scores are mapped back to label units with the mean and std saved next to it."""

    def __init__(self, path: str, batch_size: int = 16, max_length: int | None = None, device: str | None = None,
                 dtype: str = "fp32", trust_remote_code: bool = False):
        hf, self.tok = load_reward_model(path, dtype, trust_remote_code)
        info = read_info(path)
        self.rm = RewardModel(hf).eval()
        if device:
            self.rm.to(device)
        elif torch.cuda.is_available():
            self.rm.to("cuda")
        self.encoder = Encoder(self.tok, *trained_max_length(max_length, info, hf.config))
        self.scale = float(info.get("label_std", 1.0))
        self.shift = float(info.get("label_mean", 0.0))
        self.batch_size = batch_size
        self.name = f"rm:{path}"

    def score(self, prompts: list, responses: list) -> list:
        seqs = encode_for_scoring(self.encoder, prompts, responses)
        raw = score_sequences(self.rm, seqs, self.tok.pad_token_id, self.batch_size)
        return [v * self.scale + self.shift for v in raw]
