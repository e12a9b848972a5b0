"""Batched sampling with the KV cache, behind one small interface.

`Generator.generate(prompts_ids)` returns completion token ids per prompt. For Llama-family models
the default backend is alignkit's own decoder (models/decode.py: one prefill per distinct prompt, its
KV cache shared by the prompt's samples, a preallocated cache, inverse-CDF draws); for any other model,
or with `fast=False`, transformers' `generate` (CPU and GPU). A vLLM backend implements the same method.
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
    """Left-padded batched sampling with the KV cache: alignkit's decoder where it supports the model
    (`fast`, default), else transformers' generate. draw: cdf (one uniform per token; the default) or
    multinomial (transformers' own draw: for a fixed seed, the same tokens as `generate`)."""

    def __init__(self, model, tokenizer, fast: bool = True, draw: str = "cdf"):
        self.model, self.tok = model, tokenizer
        self.fast, self.draw = fast, draw

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
        from .decode import Decoder
        decoder = Decoder.for_model(model) if self.fast else None
        out_all = []
        for i in range(0, len(prompt_ids), cfg.batch_size):
            chunk = prompt_ids[i: i + cfg.batch_size]
            if decoder is not None and all(chunk):  # (an empty prompt has nothing to prefill: generate's path)
                rows = decoder.sample(chunk, cfg.max_new_tokens, cfg.temperature, cfg.top_p,
                                      pad if pad is not None else eos, eos, draw=self.draw)
                out_all += [_trim(row, pad, eos) for row in rows.tolist()]
                continue
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
            out_all += [_trim(row, pad, eos) for row in out[:, t:].tolist()]
        if was_training:
            model.train()
        return out_all


def _trim(row: list, pad, eos) -> list:
    """A sampled row without what follows its EOS (kept) or, without EOS, its trailing padding."""
    if eos in row:
        return row[: row.index(eos) + 1]
    while row and row[-1] == pad and pad != eos:
        row.pop()
    return row


def generate_texts(model, tokenizer, prompts: list, cfg: SamplingConfig, seed: int | None = None) -> list:
    """Prompts (text or conversations) -> completion strings (EOS stripped)."""
    from ..data.tokenize import Encoder
    from .context import check_prompts_fit
    enc = Encoder.untruncated(tokenizer)
    ids = [enc.prompt_ids(p) for p in prompts]
    check_prompts_fit(getattr(model, "config", None), map(len, ids), cfg.max_new_tokens)
    outs = HFGenerator(model, tokenizer).generate(ids, cfg, seed=seed)
    return [tokenizer.decode(o, skip_special_tokens=True) for o in outs]


# --- the geometric mixture of two policies (Nash-MD's alternative policy) -------------------------
def mixture_logprobs(policy_logits: torch.Tensor, ref_logits: torch.Tensor, coef: float) -> torch.Tensor:
    """log pi_mix(. | s) for pi_mix proportional to pi^(1 - coef) * pi_ref^coef over the last axis (Munos et
    al. 2023, arXiv 2312.00886, the geometric mixture of Nash-MD; TRL's GeometricMixtureWrapper mixes
    the raw logits, the same distribution after normalisation)."""
    mixed = (1.0 - coef) * torch.log_softmax(policy_logits.float(), -1) + coef * torch.log_softmax(ref_logits.float(), -1)
    return torch.log_softmax(mixed, -1)


def _adapter_off(model):
    """A context with a peft model's adapter disabled (its base weights), else nothing to do."""
    from contextlib import nullcontext
    m = getattr(model, "module", model)
    return m.disable_adapter() if hasattr(m, "peft_config") else nullcontext()


class _MixWithOther:
    """A transformers logits processor: the driving model's next-token logits `scores` mixed with those
    of another model, which runs incrementally beside it on the same tokens with its own KV cache.
    Runs before temperature and top_p, so the mixture is of the two models' own distributions."""

    def __init__(self, other, prompt_att: torch.Tensor, other_weight: float, adapter_off: bool):
        self.other, self.w, self.adapter_off = other, other_weight, adapter_off
        self.att = prompt_att  # (B, t0), grows by one column per generated token
        self.pos = None  # (B, 1) position of the last token fed
        self.cache = None
        self.fed = 0  # tokens of input_ids already in the other model's cache

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        from contextlib import nullcontext
        if self.fed == 0:  # the prompt: positions count real tokens only (left padding), as generate does
            ids, att = input_ids, self.att
            pos = (att.long().cumsum(-1) - 1).masked_fill(att == 0, 0)
        else:  # one new token per step (rows that ended keep receiving padding, as in generate)
            new = input_ids.shape[1] - self.fed
            ids = input_ids[:, -new:]
            self.att = torch.cat([self.att, self.att.new_ones(self.att.shape[0], new)], 1)
            att = self.att
            pos = self.pos + torch.arange(1, new + 1, device=ids.device)
        import inspect
        inner = getattr(self.other, "module", self.other)
        inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # peft forwards kwargs
        # transformers 5 names the KV cache `cache` (`past_key_values` before)
        key = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
        with (_adapter_off(self.other) if self.adapter_off else nullcontext()):
            out = self.other(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=True, logits_to_keep=1,
                             **{key: self.cache})
        cache = getattr(out, "cache", None)
        self.cache = cache if cache is not None else out.past_key_values
        self.pos, self.fed = pos[:, -1:], input_ids.shape[1]
        other = out.logits[:, -1].float()
        return mixture_logprobs(scores.float(), other, self.w).to(scores.dtype)


class GeometricMixtureGenerator:
    """Samples from the geometric mixture pi_mix(y_t | s_t) proportional to
    pi(y_t | s_t)^(1 - coef) * pi_ref(y_t | s_t)^coef, token by token from both models' logits (Nash-MD's
    alternative policy, Munos et al. 2023, arXiv 2312.00886), then temperature and top_p as plain
    sampling. Both models keep a KV cache. coef 0 is plain sampling of the policy and coef 1 of the
    reference (the other model does not run); under LoRA pass the policy as both models and the
    reference is its adapter-disabled base. Same interface and output as `HFGenerator`."""

    def __init__(self, policy, reference, tokenizer, coef: float):
        if not 0.0 <= coef <= 1.0:
            raise ValueError(f"mixture coefficient must be in [0, 1], got {coef}")
        self.policy, self.reference, self.tok, self.coef = policy, reference, tokenizer, coef

    @torch.no_grad()
    def generate(self, prompt_ids: list, cfg: SamplingConfig, seed: int | None = None) -> list:
        from contextlib import nullcontext
        from transformers import LogitsProcessor, LogitsProcessorList
        policy = getattr(self.policy, "module", self.policy)
        reference = getattr(self.reference, "module", self.reference)
        same = reference is policy  # LoRA: the reference is the adapter-disabled policy
        # the driver's own logits pass through generate untouched: coef 1 drives with the reference
        driver, other, w = (reference, policy, 0.0) if self.coef == 1.0 else (policy, reference, self.coef)
        driver_off = same and driver is reference and self.coef == 1.0
        was_training = policy.training
        policy.eval()
        reference.eval()
        pad, eos = self.tok.pad_token_id, self.tok.eos_token_id
        device = next(policy.parameters()).device
        if seed is not None:
            torch.manual_seed(seed)
        out_all = []

        class _Proc(LogitsProcessor):  # transformers calls only LogitsProcessor subclasses
            def __init__(self, inner):
                self.inner = inner

            def __call__(self, input_ids, scores):
                return self.inner(input_ids, scores)

        for i in range(0, len(prompt_ids), cfg.batch_size):
            chunk = prompt_ids[i: i + cfg.batch_size]
            t = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), t), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), t), dtype=torch.long)
            for j, p in enumerate(chunk):
                ids[j, t - len(p):] = torch.tensor(p)
                att[j, t - len(p):] = 1
            ids, att = ids.to(device), att.to(device)
            kw = dict(max_new_tokens=cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos, use_cache=True)
            if cfg.temperature > 0:
                kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            else:
                kw.update(do_sample=False)
            if 0.0 < self.coef < 1.0:
                kw["logits_processor"] = LogitsProcessorList([_Proc(_MixWithOther(other, att, w, same))])
            with (_adapter_off(driver) if driver_off else nullcontext()):
                out = driver.generate(input_ids=ids, attention_mask=att, **kw)
            for row in out[:, t:].tolist():
                if eos in row:  # keep EOS, cut what follows
                    row = row[: row.index(eos) + 1]
                else:
                    while row and row[-1] == pad and pad != eos:
                        row.pop()
                out_all.append(row)
        if was_training:
            policy.train()
        return out_all
