"""Batched sampling with the KV cache, behind one small interface.

`Generator.generate(prompts_ids)` returns completion token ids per prompt; the default backend is
transformers' `generate` (CPU and GPU). A vLLM backend can implement the same method.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 64  # longest completion sampled
    temperature: float = 1.0  # 0 means greedy decoding
    top_p: float = 1.0  # nucleus sampling mass
    batch_size: int = 32  # prompts per generate call


class HFGenerator:
    """Left-padded batched sampling with transformers' generate (KV cache on)."""

    def __init__(self, model, tokenizer):
        self.model, self.tok = model, tokenizer

    @torch.no_grad()
    def generate(self, prompt_ids: list, cfg: SamplingConfig, seed: int | None = None) -> list:
        model = getattr(self.model, "module", self.model)
        was_training = model.training
        model.eval()
        pad = self.tok.pad_token_id
        eos = self.tok.eos_token_id
        device = next(model.parameters()).device
        if seed is not None:
            torch.manual_seed(seed)
        out_all = []
        for i in range(0, len(prompt_ids), cfg.batch_size):
            chunk = prompt_ids[i: i + cfg.batch_size]
            t = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), t), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), t), dtype=torch.long)
            for j, p in enumerate(chunk):
                ids[j, t - len(p):] = torch.tensor(p)
                att[j, t - len(p):] = 1
            kw = dict(max_new_tokens=cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos,
                      use_cache=True)
            if cfg.temperature > 0:
                kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            else:
                kw.update(do_sample=False)
            out = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), **kw)
            for row in out[:, t:].tolist():
                if eos in row:  # keep EOS, cut what follows
                    row = row[: row.index(eos) + 1]
                else:
                    while row and row[-1] == pad and pad != eos:
                        row.pop()
                out_all.append(row)
        if was_training:
            model.train()
        return out_all


def generate_texts(model, tokenizer, prompts: list, cfg: SamplingConfig, seed: int | None = None) -> list:
    """Prompts (text or conversations) -> completion strings (EOS stripped)."""
    from ..data.tokenize import Encoder
    enc = Encoder.untruncated(tokenizer)
    ids = [enc.prompt_ids(p) for p in prompts]
    outs = HFGenerator(model, tokenizer).generate(ids, cfg, seed=seed)
    return [tokenizer.decode(o, skip_special_tokens=True) for o in outs]
