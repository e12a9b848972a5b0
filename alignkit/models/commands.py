"""`alignkit tiny-model`: a small Llama + BPE tokenizer trained on your texts, for tests and demos."""
from __future__ import annotations


def cmd_tiny(args) -> int:
    from ..data.readers import read_records
    from ..data.records import prompt_text
    from .tiny import TinyLlamaConfig, make_tiny_model
    records, report = read_records(args.data, on_bad_record="skip")  # texts only: bad rows just drop out
    texts = []
    for r in records:
        texts.append(prompt_text(r.prompt))
        for field in ("completion", "chosen", "rejected"):
            if hasattr(r, field):
                texts.append(getattr(r, field))
        texts.extend(getattr(r, "completions", ()))
    cfg = TinyLlamaConfig(hidden_size=args.hidden_size, num_layers=args.layers, num_heads=args.heads,
                          intermediate_size=args.intermediate_size, max_position_embeddings=args.max_positions)
    out = make_tiny_model(texts, args.output, vocab_size=args.vocab_size, cfg=cfg, seed=args.seed)
    from .loading import load_causal_lm
    n = sum(p.numel() for p in load_causal_lm(str(out)).parameters())
    print(f"{report.summary()}\nwrote a {n / 1e6:.2f}M-parameter Llama and a {args.vocab_size}-token BPE tokenizer to {out}")
    return 0


def register(sub):
    p = sub.add_parser("tiny-model", help="build a small Llama + BPE tokenizer trained on a data file's texts",
                       description="Train a byte-level BPE tokenizer on every text of a data file, build a randomly "
                                   "initialised Llama-architecture model of the given size, save both in Hugging "
                                   "Face format (for tests, demos and benchmarks; no download).")
    p.add_argument("--data", required=True, help="any file alignkit reads (its prompts and responses train the tokenizer)")
    p.add_argument("--output", required=True, help="folder to write the model and tokenizer to")
    p.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary size (default 1024)")
    p.add_argument("--hidden-size", type=int, default=64, help="model width (default 64)")
    p.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--intermediate-size", type=int, default=172, help="MLP width (default 172)")
    p.add_argument("--max-positions", type=int, default=1024, help="longest sequence (default 1024)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    p.set_defaults(func=cmd_tiny)
