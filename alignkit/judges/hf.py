"""A local Hugging Face model as a judge backend (`hf:DIR`), and batched generation that also returns
per-token log-probs (which `alignkit serve`'s OpenAI-compatible endpoints answer with).

Label log-probs. A label's probability is read from the model, never from sampled text. Each label
is tried as written and with a leading space ("1" and " 1": after "Preferred response:" a model may
put either), and its log-prob is the log-sum-exp over those spellings. When every spelling is a
single token (the usual case: "1", "2", "A", "B", "0".."5"), one forward pass of the query gives all
of them from the next-token distribution. Otherwise each spelling's *full-sequence* log-prob
(sum over its tokens, teacher-forced after the query) is used, one row per spelling, so multi-token
labels ("Yes"/"No" in a small vocabulary) are exact rather than cut to their first token.

Queries are rendered as the training code renders prompts (`alignkit.data.tokenize.Encoder`): text
as it is, a conversation through the tokenizer's chat template with the generation prompt, BOS
prepended when the tokenizer has one. A query longer than the model's context is an error, not a
silent truncation of the judging instructions.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .backends import Backend, logsumexp


@dataclass(frozen=True)
class Generated:
    ids: list  # completion token ids, EOS cut off
    logprobs: list  # log P(token) under the model's own distribution (before temperature), per id
    top: list  # per position: [(token_id, logprob), ...] best first (empty when not asked)
    finish_reason: str  # "stop" (EOS) or "length"


def _left_pad(rows: list, pad: int, device) -> tuple:
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), pad, dtype=torch.long)
    att = torch.zeros((len(rows), t), dtype=torch.long)
    for j, r in enumerate(rows):
        ids[j, t - len(r):] = torch.tensor(r, dtype=torch.long)
        att[j, t - len(r):] = 1
    # positions count real tokens only, so a left-padded row sees the positions it would alone
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), att.to(device), pos.to(device)


@torch.no_grad()
def generate_with_logprobs(model, tokenizer, prompt_ids: list, max_new_tokens: int, temperature: float = 0.0,
                           top_p: float = 1.0, top_logprobs: int = 0, seed: int | None = None,
                           batch_size: int = 16, logprobs: bool = True) -> list:
    """Batched sampling (greedy at temperature 0) with the KV cache. With `logprobs`, per generated
    token its log-prob under the model's raw distribution (log-softmax of the logits, before
    temperature and top-p, as vLLM reports by default) and, when `top_logprobs` > 0, the best
    `top_logprobs` alternatives. Without, no logits are kept (a long rationale over a large
    vocabulary would otherwise hold steps x vocabulary floats per sequence)."""
    device = next(model.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    if seed is not None:
        torch.manual_seed(seed)
    out = []
    for i in range(0, len(prompt_ids), batch_size):
        chunk = prompt_ids[i: i + batch_size]
        ids, att, _ = _left_pad(chunk, pad, device)
        kw = dict(max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=eos, use_cache=True,
                  output_logits=logprobs, return_dict_in_generate=True)
        if temperature > 0:
            kw.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        else:
            kw.update(do_sample=False)
        res = model.generate(input_ids=ids, attention_mask=att, **kw)
        new = res.sequences[:, ids.shape[1]:]  # (B, S)
        rows, finish = [], []
        for j in range(len(chunk)):
            row = new[j].tolist()
            if eos is not None and eos in row:
                rows.append(row[: row.index(eos)])
                finish.append("stop")
            else:
                rows.append(row)
                finish.append("length")
        lps = [[] for _ in chunk]
        tops = [[] for _ in chunk]
        if logprobs:
            for step, logits in enumerate(res.logits):  # one (B, V) step at a time
                lp = logits.float().log_softmax(-1)
                k = min(top_logprobs, lp.shape[-1])
                live = [j for j in range(len(chunk)) if step < len(rows[j])]
                if not live:
                    break
                if k > 0:
                    vals, idx = lp[live].topk(k, -1)
                for n, j in enumerate(live):
                    lps[j].append(float(lp[j, rows[j][step]]))
                    if k > 0:
                        tops[j].append(list(zip(idx[n].tolist(), vals[n].tolist())))
        out += [Generated(r, lp, top, f) for r, lp, top, f in zip(rows, lps, tops, finish)]
    return out


class HFBackend(Backend):
    """`hf:DIR`: a local causal LM (safetensors only, `alignkit.models.loading`)."""

    def __init__(self, path: str, dtype: str = "fp32", device: str = "auto", batch_size: int = 8,
                 chat: str = "auto", trust_remote_code: bool = False):
        super().__init__()
        from ..models.context import context_length
        from ..models.loading import DTYPES, load_causal_lm, load_tokenizer
        if not path:
            raise ConfigError("hf: needs a model folder: hf:DIR")
        if dtype not in DTYPES:
            raise ConfigError(f"hf:{path}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if chat not in ("auto", True, False):
            raise ConfigError(f"hf:{path}: chat must be auto, 1 or 0, got {chat!r}")
        if batch_size < 1:
            raise ConfigError(f"hf:{path}: batch_size must be >= 1, got {batch_size}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.name = f"hf:{path}"
        self.model = load_causal_lm(path, dtype, trust_remote_code).to(device).eval()
        self.tok = load_tokenizer(path, trust_remote_code)
        self.model.config.use_cache = True
        self.batch_size = batch_size
        self.chat = bool(getattr(self.tok, "chat_template", None)) if chat == "auto" else chat
        self.context = context_length(self.model.config)
        self.lock = threading.Lock()  # one forward at a time: judges may be called from threads

    def _ids(self, query, extra: int = 0) -> list:
        from ..data.tokenize import Encoder
        # a fresh encoder each time: its prompt cache would otherwise hold every judging prompt of a run
        ids = Encoder.untruncated(self.tok).prompt_ids(query)
        if self.context and len(ids) + extra > self.context:
            raise ConfigError(f"{self.name}: a judge prompt of {len(ids) + extra} tokens is longer than the "
                              f"model's context of {self.context}; shorten the template, exemplars or responses")
        return ids

    def _spellings(self, labels: tuple) -> list:
        out = []
        for label in labels:
            seqs = []
            for text in (label, " " + label):
                ids = tuple(self.tok(text, add_special_tokens=False)["input_ids"])
                if ids and ids not in seqs:
                    seqs.append(ids)
            if not seqs:
                raise ConfigError(f"{self.name}: the label {label!r} has no tokens")
            out.append(seqs)
        return out

    def _logits(self, rows: list, keep: int):
        """Logits at the last `keep` positions of left-padded rows, (B, keep, V): the LM head runs on
        those positions only where the model supports it (a judging prompt is long, a vocabulary large)."""
        ids, att, pos = _left_pad(rows, self.tok.pad_token_id, next(self.model.parameters()).device)
        try:
            logits = self.model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=keep).logits
        except TypeError:  # an architecture without logits_to_keep
            logits = self.model(input_ids=ids, attention_mask=att, position_ids=pos).logits
        return logits[:, -keep:], ids

    def _multi_token(self, rows: list, spell: list) -> list:
        """Label log-probs when some spelling has several tokens (" 1" is " " + "1" in a tokenizer that
        splits digits): the prompt runs once, with the KV cache, and each distinct proper prefix of a
        spelling (usually just " ") is then fed after it; log P(spelling) = sum over its tokens of
        log p(token | prompt, the tokens before it). One long forward per batch, not one per spelling."""
        import copy
        import inspect
        ids, att, pos = _left_pad(rows, self.tok.pad_token_id, next(self.model.parameters()).device)
        kw = dict(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=True)
        try:
            res = self.model(**kw, logits_to_keep=1)
        except TypeError:  # an architecture without logits_to_keep
            res = self.model(**kw)
        nxt = {(): res.logits[:, -1].float().log_softmax(-1)}  # prefix -> (B, V) next-token log-probs
        prompt_cache = getattr(res, "cache", None)
        prompt_cache = res.past_key_values if prompt_cache is None else prompt_cache
        # transformers 5 names the KV cache argument `cache` (`past_key_values` before)
        key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        prefixes = sorted({s[:k] for seqs in spell for s in seqs for k in range(1, len(s))}, key=lambda p: (len(p), p))
        for n, prefix in enumerate(prefixes):  # the last one may extend the prompt's cache in place
            cache = prompt_cache if n == len(prefixes) - 1 else copy.deepcopy(prompt_cache)
            ext = torch.tensor(prefix, dtype=torch.long, device=ids.device).expand(len(rows), len(prefix))
            step = torch.arange(1, len(prefix) + 1, device=ids.device)
            o = self.model(input_ids=ext, attention_mask=torch.cat([att, torch.ones_like(ext)], 1),
                           position_ids=pos[:, -1:] + step, use_cache=True, **{key: cache})
            nxt[prefix] = o.logits[:, -1].float().log_softmax(-1)
        return [[logsumexp([sum(float(nxt[s[:k]][j, t]) for k, t in enumerate(s)) for s in seqs]) for seqs in spell]
                for j in range(len(rows))]

    @torch.no_grad()
    def label_logprobs(self, queries: list, labels: tuple) -> list:
        spell = self._spellings(labels)
        longest = max(len(s) for seqs in spell for s in seqs)
        prompts = [self._ids(q, longest) for q in queries]
        out = []
        with self.lock:
            if all(len(s) == 1 for seqs in spell for s in seqs):
                needed = sorted({s[0] for seqs in spell for s in seqs})
                col = {t: k for k, t in enumerate(needed)}
                for i in range(0, len(prompts), self.batch_size):
                    logits, _ = self._logits(prompts[i: i + self.batch_size], 1)
                    lp = logits[:, -1].float().log_softmax(-1)[:, needed].tolist()  # (B, len(needed))
                    out += [[logsumexp([row[col[s[0]]] for s in seqs]) for seqs in spell] for row in lp]
            else:
                for i in range(0, len(prompts), self.batch_size):
                    out += self._multi_token(prompts[i: i + self.batch_size], spell)
        self.count(calls=len(prompts), prompt_tokens=sum(len(p) for p in prompts))
        return out

    def generate(self, queries: list, max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> list:
        prompts = [self._ids(q, max_new_tokens) for q in queries]
        with self.lock:
            gens = generate_with_logprobs(self.model, self.tok, prompts, max_new_tokens, temperature,
                                          seed=seed, batch_size=self.batch_size, logprobs=False)
        self.count(calls=len(prompts), prompt_tokens=sum(len(p) for p in prompts),
                   completion_tokens=sum(len(g.ids) for g in gens))
        return [self.tok.decode(g.ids, skip_special_tokens=True) for g in gens]
