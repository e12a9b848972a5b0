"""Tiny models for tests and the bundled task: a byte-level BPE tokenizer trained on given texts and
a small Llama-architecture model built from a config, both saved in Hugging Face format so that
`AutoTokenizer` / `AutoModelForCausalLM.from_pretrained` load them like any other checkpoint."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.tokenize import DEFAULT_CHAT_TEMPLATE

SPECIAL = ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>"]


def train_tokenizer(texts, vocab_size: int = 512):
    """Byte-level BPE on `texts` (an iterable of strings) -> PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|bos|>",
                                   eos_token="<|eos|>")
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


@dataclass(frozen=True)
class TinyLlamaConfig:
    hidden_size: int = 64  # model width
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # attention heads
    intermediate_size: int = 172  # MLP width
    max_position_embeddings: int = 512  # longest sequence


def build_tiny_llama(tokenizer, cfg: TinyLlamaConfig = TinyLlamaConfig(), seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True, use_cache=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def make_tiny_model(texts, out_dir, vocab_size: int = 512, cfg: TinyLlamaConfig = TinyLlamaConfig(),
                    seed: int = 0) -> Path:
    """Train a tokenizer on `texts`, build a random tiny Llama, save both to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts, vocab_size)
    model = build_tiny_llama(tok, cfg, seed)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
