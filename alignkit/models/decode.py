"""Fast batched sampling for Llama-family models: one prefill per distinct prompt, its KV cache shared
by every sample of that prompt, a preallocated (static) cache, and a lean decode loop.

An RL rollout samples K completions per prompt (GRPO, RLOO, ...), and quickstart K responses per
prompt. transformers' `generate` treats the K copies as K unrelated rows: it runs the prompt's prefill
K times, keeps K copies of its keys and values, reads all of them at every decode step (on CPU, the
attention over those copies was about a quarter of the sampling time, issue 21), grows its cache by
concatenation at every step, and draws each token with `torch.multinomial`, which on CPU spends one
exponential random number per vocabulary entry (64 rows x 8192 entries per step: a third of the
sampling time). `Decoder.sample` instead:

1. runs the prefill once per distinct prompt (left-padded, a causal + padding mask);
2. keeps that prompt's keys and values once; a decode step's attention of a group's K queries reads
   them once (one matmul per group) plus each row's own generated keys from a preallocated buffer,
   and merges the two with one softmax over both: the same attention, computed without copies (for
   short prompts on narrow models, where fewer operations matter more than fewer bytes, each row gets
   a copy and one attention operation per step instead: FLAT_PROMPT_KV);
3. draws each token by inverse CDF (one uniform per row: `draw="cdf"`, the default), or exactly as
   transformers does (`draw="multinomial"`: the same random stream, so for a fixed seed the same
   tokens as `generate` up to floating-point ties: tests/test_decode.py).

Temperature and top-p follow transformers' warpers (temperature, then top-p with its tie rule).
Supported: Llama, Mistral, Qwen2 and Qwen3 causal LMs without sliding-window attention, plain or
under LoRA (peft); `Decoder.for_model` returns None for anything else (callers then use `generate`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
# a prompt whose keys per row (tokens x kv heads x head dim) stay below this is copied per sample (one
# attention operation per step) rather than shared; measured (bench_sampling.py --flat-probe): sharing
# wins from a few dozen tokens on a 256-wide model (kv 4 x 64), nowhere up to 192 tokens on stories260K
# (kv 4 x 8); 8192 = 32 tokens on the first, 256 on the second
FLAT_PROMPT_KV = 8192
# generation-config fields whose non-default values make transformers' `generate` apply a logits
# processor this decoder does not: such a model keeps `generate`
_PROCESSORS = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0,
               "min_new_tokens": None, "suppress_tokens": None, "begin_suppress_tokens": None,
               "forced_bos_token_id": None, "forced_eos_token_id": None, "sequence_bias": None,
               "encoder_repetition_penalty": 1.0, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
               "min_p": None, "exponential_decay_length_penalty": None, "renormalize_logits": False}


def _active(value, default) -> bool:
    """Whether a generation-config value turns its processor on (None, the default, or an empty or
    zero value where the default is None, leave it off)."""
    if value is None or value == default:
        return False
    return not (default is None and not value)


_RMS_NORMS = ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")


def _norm(mod, x):
    """The model's RMSNorm as torch's one fused kernel (the same formula, x * rsqrt(mean x^2 + eps) * w,
    in fp32), else the module itself."""
    if (x.dtype == torch.float32 and type(mod).__name__ in _RMS_NORMS and hasattr(F, "rms_norm")
            and hasattr(mod, "variance_epsilon")):
        return F.rms_norm(x, (x.shape[-1],), mod.weight, mod.variance_epsilon)
    return mod(x)


def _rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def _rope(x, cos, sin):
    return x * cos + _rotate_half(x) * sin


def _autocast_dtype(device: torch.device):
    """The dtype of an autocast region active on this device's type, else None."""
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None


def _unwrap(model):
    m = getattr(model, "module", model)  # DDP / accelerate wrappers
    if hasattr(m, "get_base_model"):  # peft: the transformers model with the adapters injected
        m = m.get_base_model()
    return m


class Decoder:
    """A sampler over a supported model's own modules (its weights, adapters and RoPE)."""

    def __init__(self, model):
        self.lm = _unwrap(model)
        self.body = self.lm.model
        self.layers = list(self.body.layers)
        cfg = self.lm.config
        att = self.layers[0].self_attn
        self.head_dim = getattr(att, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.scale = getattr(att, "scaling", self.head_dim ** -0.5)
        self.qk_norm = hasattr(att, "q_norm")
        self.fused: list = [(None, None)] * len(self.layers)  # per layer: concatenated q|k|v and gate|up weights

    def _fuse(self):
        """Concatenate each layer's q, k, v projections and its MLP's gate and up projections into one
        matmul each (fewer, larger operations: what a small model's decode step is made of), where
        they are plain Linear layers (not under LoRA). Rebuilt at every sample() call: the weights
        move between calls. Under autocast they are made in its dtype here, once: autocast keeps its
        cast of a weight only for leaves that require grad, so these copies would be cast again at
        every decode step (the values are the ones its own cast gives, so the tokens are the same)."""
        lin = torch.nn.Linear
        dt = _autocast_dtype(next(self.lm.parameters()).device)

        def cat(mods):
            if not all(type(m) is lin for m in mods):
                return None
            bias = None
            if any(m.bias is not None for m in mods):
                bias = torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in mods])
            w = torch.cat([m.weight for m in mods])
            if dt is not None:
                w, bias = w.to(dt), None if bias is None else bias.to(dt)
            return w, bias, [m.out_features for m in mods]

        for i, layer in enumerate(self.layers):
            a, mlp = layer.self_attn, layer.mlp
            qkv = cat([a.q_proj, a.k_proj, a.v_proj])
            gu = cat([mlp.gate_proj, mlp.up_proj]) if hasattr(mlp, "gate_proj") and hasattr(mlp, "act_fn") else None
            self.fused[i] = (qkv, gu)

    @staticmethod
    def for_model(model) -> "Decoder | None":
        """A Decoder when the model is one this file implements exactly, else None."""
        m = _unwrap(model)
        cfg = getattr(m, "config", None)
        if cfg is None or getattr(cfg, "model_type", None) not in FAMILIES or not hasattr(m, "model"):
            return None
        if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
            return None
        if any(t != "full_attention" for t in (getattr(cfg, "layer_types", None) or ())):
            return None
        if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "attn_logit_softcapping", None):
            return None
        gc = getattr(m, "generation_config", None)
        if gc is not None and any(_active(getattr(gc, k, d), d) for k, d in _PROCESSORS.items()):
            return None
        if any(hasattr(p, "ds_id") or type(p).__name__ == "DTensor" for p in m.parameters()):
            return None  # ZeRO-3 / FSDP2 shards: their hooks need the model's own forward
        body = getattr(m, "model", None)
        if not hasattr(body, "layers") or not hasattr(body, "rotary_emb") or not hasattr(m, "lm_head"):
            return None
        return Decoder(m)

    # ---- the forward pieces -------------------------------------------------------------------
    def _qkv(self, layer, h, cos, sin, fused=None):
        a = layer.self_attn
        b, t, _ = h.shape
        if fused is not None and not self.qk_norm:  # RoPE on q and k together: one set of operations
            w, bias, sizes = fused
            y = F.linear(h, w, bias).view(b, t, -1, self.head_dim)  # (B, T, H + 2 KV, D)
            nq, nk = sizes[0] // self.head_dim, sizes[1] // self.head_dim
            qk = _rope(y[:, :, : nq + nk], cos.unsqueeze(2), sin.unsqueeze(2))
            return (qk[:, :, :nq].transpose(1, 2), qk[:, :, nq:].transpose(1, 2),
                    y[:, :, nq + nk:].transpose(1, 2))
        if fused is not None:
            w, bias, sizes = fused
            q, k, v = (y.view(b, t, -1, self.head_dim) for y in F.linear(h, w, bias).split(sizes, dim=-1))
        else:
            q = a.q_proj(h).view(b, t, -1, self.head_dim)
            k = a.k_proj(h).view(b, t, -1, self.head_dim)
            v = a.v_proj(h).view(b, t, -1, self.head_dim)
        if self.qk_norm:
            q, k = a.q_norm(q), a.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return _rope(q, cos, sin), _rope(k, cos, sin), v

    def _finish_layer(self, layer, x, attn, fused=None):
        """Residual stream after the attention output `attn` (B, T, heads * head_dim) and the MLP."""
        x = x + layer.self_attn.o_proj(attn)
        h = _norm(layer.post_attention_layernorm, x)
        if fused is None:
            return x + layer.mlp(h)
        w, bias, sizes = fused
        g, u = F.linear(h, w, bias).split(sizes, dim=-1)
        return x + layer.mlp.down_proj(layer.mlp.act_fn(g) * u)

    def _logits(self, x):
        return self.lm.lm_head(_norm(self.body.norm, x)).float()

    def prefill(self, ids: torch.Tensor, valid: torch.Tensor):
        """ids, valid: (P, T) left-padded prompts -> (logits of the last position (P, V), per layer (K, V) of
        shape (P, kv_heads, T, head_dim))."""
        p, t = ids.shape
        pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
        x = self.body.embed_tokens(ids)
        cos, sin = self.body.rotary_emb(x, pos)
        eye = torch.eye(t, dtype=torch.bool, device=ids.device)
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool, device=ids.device))
        # a padding query attends to itself only (no all-masked row, so no NaN in its keys and values)
        mask = ((causal & valid[:, None, None, :]) | eye)  # (P, 1, T, T)
        rep = self.n_heads // self.n_kv
        kv = []
        for layer, (qkv, gu) in zip(self.layers, self.fused):
            q, k, v = self._qkv(layer, _norm(layer.input_layernorm, x), cos, sin, qkv)
            kv.append((k, v))
            if rep > 1:
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
            x = self._finish_layer(layer, x, a.transpose(1, 2).reshape(p, t, -1), gu)
        return self._logits(x[:, -1]), kv

    def _grouped_attention(self, q, pk, pv, pbias, sk, sv, n: int, k_per: int):
        """One decode step's attention. q: (B, H, 1, D), B = P * k_per rows, row i in group i // k_per;
        pk, pv: (P, KV, Tp, D) the groups' prompt keys/values, pbias (P, 1, 1, Tp) 0 or -inf (padding);
        sk, sv: (B, KV, N, D) the rows' generated keys/values, the first n filled. -> (B, 1, H * D).
        The softmax over prompt and generated keys is merged from the two parts' maxima and sums, so
        nothing of the size of the prompt is copied or concatenated."""
        b = q.shape[0]
        p, kvh, tp, d = pk.shape
        rep = self.n_heads // kvh
        qh = q.reshape(b, kvh, rep, d)

        def to_group(x):  # (B, KV, rep, m) -> (P, KV, k_per * rep, m)
            return x.reshape(p, k_per, kvh, rep, -1).transpose(1, 2).reshape(p, kvh, k_per * rep, x.shape[-1])

        def to_rows(x):  # (P, KV, k_per * rep, m) -> (B, KV, rep, m)
            return x.reshape(p, kvh, k_per, rep, -1).transpose(1, 2).reshape(b, kvh, rep, x.shape[-1])

        s1 = torch.matmul(to_group(qh), pk.transpose(-1, -2)).mul_(self.scale).add_(pbias)  # (P, KV, k_per*rep, Tp)
        s2 = torch.matmul(qh, sk[:, :, :n].transpose(-1, -2)).mul_(self.scale)  # (B, KV, rep, n)
        m = torch.maximum(to_rows(s1.amax(-1, keepdim=True)), s2.amax(-1, keepdim=True))  # (B, KV, rep, 1)
        e1 = torch.exp_(s1.sub_(to_group(m)))
        e2 = torch.exp_(s2.sub_(m))
        z = to_rows(e1.sum(-1, keepdim=True)) + e2.sum(-1, keepdim=True)
        o = to_rows(torch.matmul(e1, pv)) + torch.matmul(e2, sv[:, :, :n])  # (B, KV, rep, D)
        return (o / z).reshape(b, 1, kvh * rep * d)

    def _flat_attention(self, q, kbuf, vbuf, bias, n: int):
        """One decode step's attention over per-row keys/values: kbuf, vbuf (B, KV, L, D) with the
        first n columns filled (the row's prompt copy, then its generated tokens), bias (B, 1, 1, L)
        0 or -inf. -> (B, 1, H * D). Fewer operations than the grouped form: the better choice when
        prompts are short (their copies are cheap) or no samples share one."""
        b, kvh, _, d = kbuf.shape
        rep = self.n_heads // kvh
        qh = q.reshape(b, kvh, rep, d) * self.scale
        w = torch.softmax(torch.matmul(qh, kbuf[:, :, :n].transpose(-1, -2)).add_(bias[..., :n]), dim=-1)
        return torch.matmul(w, vbuf[:, :, :n]).reshape(b, 1, kvh * rep * d)

    def _rope_table(self, x, length: int):
        """cos, sin (length, D) for positions 0..length-1 when the RoPE does not depend on the sequence
        seen so far (default, linear, llama3 scaling), else None (computed at each step)."""
        emb = self.body.rotary_emb
        if getattr(emb, "rope_type", "default") not in ("default", "linear", "llama3"):
            return None
        cos, sin = emb(x[:1], torch.arange(length, device=x.device)[None])
        return cos[0], sin[0]

    # ---- sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompt_ids: list, max_new_tokens: int, temperature: float, top_p: float, pad: int, eos,
               draw: str = "cdf") -> torch.Tensor:
        """Sample completions for left-padded `prompt_ids` (a list of token-id lists; identical prompts
        in contiguous runs of equal length share one prefill and one copy of their keys and values).
        -> (B, steps) token ids: after a row's EOS, pad. temperature 0: greedy."""
        if draw not in ("cdf", "multinomial"):
            raise ValueError(f"draw must be cdf or multinomial, not {draw!r}")
        device = next(self.lm.parameters()).device
        self._fuse()
        eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=device)
        groups, k_per = _groups(prompt_ids)
        uniq = [prompt_ids[g[0]] for g in groups]
        b, n_new, t = len(prompt_ids), max_new_tokens, max(len(u) for u in uniq)
        ids = torch.full((len(uniq), t), pad, dtype=torch.long)
        valid = torch.zeros((len(uniq), t), dtype=torch.bool)
        for j, u in enumerate(uniq):
            ids[j, t - len(u):] = torch.tensor(u, dtype=torch.long)
            valid[j, t - len(u):] = True
        ids, valid = ids.to(device), valid.to(device)
        logits, prefix = self.prefill(ids, valid)
        row_group = torch.tensor([j for j, g in enumerate(groups) for _ in g], device=device)
        if k_per == 1 and len(uniq) != b:  # unequal groups: one copy of the prefix per row instead
            prefix = [(k.index_select(0, row_group), v.index_select(0, row_group)) for k, v in prefix]
            valid = valid.index_select(0, row_group)
        logits = logits.index_select(0, row_group)
        pbias = torch.zeros(valid.shape, dtype=prefix[0][0].dtype, device=device)
        pbias = pbias.masked_fill_(~valid, float("-inf"))[:, None, None, :]
        pos = torch.tensor([len(prompt_ids[i]) for i in range(b)], device=device)
        kvh = prefix[0][0].shape[1]
        dt = prefix[0][0].dtype
        # short prompts (or no sharing): each row gets its own copy of its prompt's keys and one
        # attention operation per step; long shared prompts: the grouped attention reads them once
        flat = k_per == 1 or t * kvh * self.head_dim < FLAT_PROMPT_KV
        if flat:
            if len(prefix[0][0]) != b:
                prefix = [(k.index_select(0, row_group), v.index_select(0, row_group)) for k, v in prefix]
                pbias = pbias.index_select(0, row_group)
            cache = []
            for k, v in prefix:
                kb = torch.empty(b, kvh, t + n_new, self.head_dim, dtype=dt, device=device)
                vb = torch.empty_like(kb)
                kb[:, :, :t], vb[:, :, :t] = k, v
                cache.append((kb, vb))
            pbias = torch.cat([pbias, pbias.new_zeros(b, 1, 1, n_new)], dim=-1)
        else:
            cache = [(torch.empty(b, kvh, n_new, self.head_dim, dtype=dt, device=device),
                      torch.empty(b, kvh, n_new, self.head_dim, dtype=dt, device=device)) for _ in self.layers]
        table = self._rope_table(logits, int(pos.max()) + n_new)
        out = torch.full((b, n_new), pad, dtype=torch.long, device=device)
        unfinished = torch.ones(b, dtype=torch.bool, device=device)
        steps = 0
        for s in range(n_new):
            nxt = _draw(logits, temperature, top_p, draw)
            nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
            out[:, s] = nxt
            steps = s + 1
            if eos_ids.numel():
                unfinished &= ~torch.isin(nxt, eos_ids)
            if s + 1 == n_new or not bool(unfinished.any()):
                break
            x = self.body.embed_tokens(nxt[:, None])
            if table is not None:
                cos, sin = table[0][pos + s][:, None], table[1][pos + s][:, None]
            else:
                cos, sin = self.body.rotary_emb(x, (pos + s)[:, None])
            col = t + s if flat else s
            for layer, (qkv, gu), (pk, pv), (sk, sv) in zip(self.layers, self.fused, prefix, cache):
                q, k, v = self._qkv(layer, _norm(layer.input_layernorm, x), cos, sin, qkv)
                sk[:, :, col: col + 1] = k
                sv[:, :, col: col + 1] = v
                if flat:
                    a = self._flat_attention(q, sk, sv, pbias, col + 1)
                else:
                    a = self._grouped_attention(q, pk, pv, pbias, sk, sv, s + 1, k_per)
                x = self._finish_layer(layer, x, a, gu)
            logits = self._logits(x[:, -1])
        return out[:, :steps]


def _groups(prompt_ids: list) -> tuple:
    """Contiguous runs of identical prompts -> (list of row-index lists, rows per group when every run
    has the same length, else 1)."""
    groups = []
    for i, p in enumerate(prompt_ids):
        if groups and prompt_ids[groups[-1][0]] == p:
            groups[-1].append(i)
        else:
            groups.append([i])
    sizes = {len(g) for g in groups}
    return groups, (sizes.pop() if len(sizes) == 1 else 1)


def _draw(logits: torch.Tensor, temperature: float, top_p: float, draw: str) -> torch.Tensor:
    """Next tokens (B,) from fp32 logits (B, V): transformers' temperature and top-p warpers, then
    the draw."""
    if temperature <= 0:
        return logits.argmax(-1)
    scores = logits / temperature if temperature != 1.0 else logits
    if top_p < 1.0:  # transformers' TopPLogitsWarper, min_tokens_to_keep=1
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        remove = sorted_logits.softmax(-1).cumsum(-1) <= (1 - top_p)
        remove[..., -1:] = False
        scores = scores.masked_fill(remove.scatter(1, sorted_idx, remove), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if draw == "multinomial":
        return torch.multinomial(probs, num_samples=1).squeeze(1)
    return _inverse_cdf(probs)


def _inverse_cdf(probs: torch.Tensor, block: int = 128) -> torch.Tensor:
    """One draw per row of probs (B, V) from one uniform per row, in two levels: the block of `block`
    entries by the cumulative block masses, then the entry within it (a full cumulative sum over the
    vocabulary is sequential and was 10x slower on CPU). A zero-probability entry is never drawn."""
    b, v = probs.shape
    nb = -(-v // block)
    blocks = F.pad(probs, (0, nb * block - v)).view(b, nb, block) if nb * block != v else probs.view(b, nb, block)
    cum = blocks.sum(-1).double().cumsum(-1)  # (B, nb)
    x = torch.rand(b, 1, dtype=torch.float64, device=probs.device) * cum[:, -1:]
    j = torch.searchsorted(cum, x, right=True).clamp_(max=nb - 1)  # (B, 1)
    lo = torch.where(j > 0, cum.gather(1, (j - 1).clamp(min=0)), torch.zeros_like(x))
    frac = ((x - lo) / (cum.gather(1, j) - lo)).clamp_(0.0, 1.0 - 1e-12)  # where in the block's mass
    inner = blocks.gather(1, j[:, :, None].expand(b, 1, block)).squeeze(1).double().cumsum(-1)  # (B, block)
    i = torch.searchsorted(inner, frac * inner[:, -1:], right=True).clamp_(max=block - 1)
    return (j * block + i).squeeze(1)
