"""alignkit's decoder (models/decode.py) against transformers: the same logits (prefill and every
decode step, with the prompt's keys shared by its samples), the same tokens as `generate` for a fixed
seed with transformers' own draw, and an exact inverse-CDF draw."""
from __future__ import annotations

import pytest
import torch

from alignkit.models.decode import Decoder, _inverse_cdf, _norm
from alignkit.models.generate import HFGenerator, SamplingConfig


def _model(kind: str, vocab: int = 97, seed: int = 0):
    import transformers as tf
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=128, pad_token_id=0, bos_token_id=1,
                  eos_token_id=2, tie_word_embeddings=False)
    cfg = {"llama": lambda: tf.LlamaConfig(num_key_value_heads=4, **common),
           "llama-gqa": lambda: tf.LlamaConfig(num_key_value_heads=2, **common),
           "qwen2": lambda: tf.Qwen2Config(num_key_value_heads=2, **common),
           "qwen3": lambda: tf.Qwen3Config(num_key_value_heads=2, head_dim=8, **common)}[kind]()
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # non-trivial norms and biases, so the test sees them
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.2 * torch.randn_like(p))
    return model.eval()


PROMPTS = [[1, 5, 6, 7, 8, 9, 10], [1, 11, 12], [1, 13, 14, 15, 16]]  # different lengths: left padding


def _hf_logits(model, rows: list) -> torch.Tensor:
    """Next-token logits after each full row, one row at a time (no padding at all)."""
    with torch.no_grad():
        return torch.stack([model(torch.tensor([r])).logits[0, -1] for r in rows])


@pytest.mark.parametrize("fused", [False, True], ids=["modules", "fused"])
@pytest.mark.parametrize("kind", ["llama", "llama-gqa", "qwen2", "qwen3"])
def test_prefill_and_shared_decode_logits_match_transformers(kind, fused):
    model = _model(kind)
    dec = Decoder.for_model(model)
    assert dec is not None
    if fused:  # q|k|v and gate|up as one matmul each, torch's RMSNorm kernel
        dec._fuse()
        assert all(qkv is not None and gu is not None for qkv, gu in dec.fused)
    ids = torch.zeros(3, 7, dtype=torch.long)
    valid = torch.zeros(3, 7, dtype=torch.bool)
    for j, p in enumerate(PROMPTS):
        ids[j, 7 - len(p):] = torch.tensor(p)
        valid[j, 7 - len(p):] = True
    logits, prefix = dec.prefill(ids, valid)
    assert torch.allclose(logits, _hf_logits(model, PROMPTS), atol=1e-5)
    # three decode steps for 2 samples per prompt (rows 2j, 2j+1 share prompt j's keys), fed fixed tokens
    k_per, steps = 2, 3
    feed = torch.tensor([[20 + r, 40 + r, 60 + r] for r in range(6)])
    rows_of = [PROMPTS[r // k_per] for r in range(6)]
    pbias = torch.zeros(valid.shape).masked_fill_(~valid, float("-inf"))[:, None, None, :]
    kvh = prefix[0][0].shape[1]
    cache = [(torch.empty(6, kvh, steps, dec.head_dim), torch.empty(6, kvh, steps, dec.head_dim)) for _ in dec.layers]
    pos = torch.tensor([len(p) for p in rows_of])
    with torch.no_grad():
        for s in range(steps):
            x = dec.body.embed_tokens(feed[:, s: s + 1])
            cos, sin = dec.body.rotary_emb(x, (pos + s)[:, None])
            for layer, (qkv, gu), (pk, pv), (sk, sv) in zip(dec.layers, dec.fused, prefix, cache):
                q, k, v = dec._qkv(layer, _norm(layer.input_layernorm, x), cos, sin, qkv)
                sk[:, :, s: s + 1], sv[:, :, s: s + 1] = k, v
                x = dec._finish_layer(layer, x, dec._grouped_attention(q, pk, pv, pbias, sk, sv, s + 1, k_per), gu)
            got = dec._logits(x[:, -1])
            want = _hf_logits(model, [rows_of[r] + feed[r, : s + 1].tolist() for r in range(6)])
            assert torch.allclose(got, want, atol=1e-5), (s, (got - want).abs().max())


class _Tok:
    pad_token_id, eos_token_id = 0, 2


@pytest.mark.parametrize("form", ["flat", "grouped"])  # per-row prompt copies, or the shared prompt keys
@pytest.mark.parametrize("kind", ["llama", "qwen3"])
@pytest.mark.parametrize("k", [1, 3])
def test_same_tokens_as_generate_for_a_fixed_seed(kind, k, form, monkeypatch):
    monkeypatch.setattr("alignkit.models.decode.FLAT_PROMPT_KV", 10**12 if form == "flat" else 0)
    model = _model(kind)
    with torch.no_grad():
        model.lm_head.weight[2] *= 3  # EOS likely enough that some rows stop early and the rest run on
    ids = [p for p in PROMPTS for _ in range(k)]
    stopped, ran = False, False
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9), (0.0, 1.0)):
        cfg = SamplingConfig(max_new_tokens=24, temperature=temperature, top_p=top_p, batch_size=len(ids))
        want = HFGenerator(model, _Tok(), fast=False).generate(ids, cfg, seed=3)
        got = HFGenerator(model, _Tok(), draw="multinomial").generate(ids, cfg, seed=3)
        assert got == want, (temperature, top_p)
        stopped |= any(r and r[-1] == 2 and len(r) < 24 for r in want)
        ran |= any(len(r) == 24 for r in want)
    assert stopped and ran


def test_fused_weights_are_cast_once_under_autocast_with_the_same_tokens(monkeypatch):
    """bf16 autocast: the fused q|k|v and gate|up copies are made in bf16 once per call (not cast again
    at every decode step), and the tokens are those of fp32 copies that autocast casts itself."""
    import alignkit.models.decode as decode
    model = _model("llama")
    ids = [p for p in PROMPTS for _ in range(2)]
    cfg = SamplingConfig(max_new_tokens=16, temperature=1.0, batch_size=len(ids))

    def sample():
        gen = HFGenerator(model, _Tok())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = gen.generate(ids, cfg, seed=5)
        return out, Decoder.for_model(model) is not None

    seen = []
    fuse = decode.Decoder._fuse
    monkeypatch.setattr(decode.Decoder, "_fuse", lambda self: (fuse(self), seen.append(self.fused[0][0][0].dtype)))
    got, fast = sample()
    monkeypatch.setattr(decode, "_autocast_dtype", lambda device: None)  # the copies left in fp32
    want, _ = sample()
    assert fast and seen == [torch.bfloat16, torch.float32] and got == want


def test_unequal_groups_and_chunks_still_match(tiny_model_dir):
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    model, tok = load_causal_lm(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    ids = [[1, 40, 41]] * 3 + [[1, 50, 51, 52, 53]] * 2 + [[1, 60]]  # groups of 3, 2, 1
    cfg = SamplingConfig(max_new_tokens=10, temperature=1.0, batch_size=4)  # a chunk splits a group
    want = HFGenerator(model, tok, fast=False).generate(ids, cfg, seed=0)
    assert HFGenerator(model, tok, draw="multinomial").generate(ids, cfg, seed=0) == want


def test_lora_model_uses_its_adapters(tiny_model_dir):
    from alignkit.models.loading import LoraSettings, apply_lora, load_causal_lm, load_tokenizer
    model = apply_lora(load_causal_lm(str(tiny_model_dir)), LoraSettings(4, 8, 0.0, ("q_proj", "v_proj")))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # adapters that change the output
    tok = load_tokenizer(str(tiny_model_dir))
    assert Decoder.for_model(model) is not None
    ids = [[1, 40, 41, 42]] * 4
    cfg = SamplingConfig(max_new_tokens=8, temperature=1.0, batch_size=4)
    want = HFGenerator(model, tok, fast=False).generate(ids, cfg, seed=1)
    assert HFGenerator(model, tok, draw="multinomial").generate(ids, cfg, seed=1) == want


def test_unsupported_models_keep_transformers_generate():
    import transformers as tf
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2))
    assert Decoder.for_model(gpt2) is None
    model = _model("llama")
    model.generation_config.repetition_penalty = 1.3  # a processor the decoder does not apply
    assert Decoder.for_model(model) is None
    mistral = tf.MistralForCausalLM(tf.MistralConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
                                                     num_hidden_layers=1, num_attention_heads=2,
                                                     num_key_value_heads=2, sliding_window=8))
    assert Decoder.for_model(mistral) is None  # sliding-window attention


def test_inverse_cdf_draws_each_token_with_its_probability():
    torch.manual_seed(0)
    v = 300  # not a multiple of the block: the padded tail must never be drawn
    p = torch.rand(v) ** 4
    p[::7] = 0.0  # zero-probability entries (what top-p leaves) are never drawn
    p /= p.sum()
    n = 200_000
    draws = torch.cat([_inverse_cdf(p.expand(2000, v).contiguous()) for _ in range(n // 2000)])
    counts = torch.bincount(draws, minlength=v).double()
    assert counts.numel() == v and counts[::7].sum() == 0
    expected = p.double() * n
    keep = expected > 20
    chi2 = (((counts - expected) ** 2 / expected)[keep]).sum().item()
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 5 * (2 * dof) ** 0.5, (chi2, dof)  # about 5 standard deviations
    one_hot = torch.zeros(3, v)
    one_hot[0, 5], one_hot[1, 299], one_hot[2, 128] = 1.0, 1.0, 1.0
    assert _inverse_cdf(one_hot).tolist() == [5, 299, 128]
