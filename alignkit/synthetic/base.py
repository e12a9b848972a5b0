"""The bundled task's base model: a tiny Llama pre-trained on the world's corpus, then SFT'd.

Three stages, each through the library's own pieces:
1. a byte-level BPE tokenizer on the world's phrases (`alignkit.models.tiny.train_tokenizer`);
2. pre-training: `run_train("sft", ...)` on Demonstration records with an empty prompt and a whole
   transcript as the completion (so the loss covers every token: plain language modelling);
3. SFT: `run_train("sft", ...)` on (prompt, response) demonstrations, completion-only loss.

Both corpora mix desired and undesired behaviour (see corpus.py), so the SFT model often refuses
harmful requests and sometimes complies, often gets sums right and sometimes wrong, and now and then
is rude, rambles or over-refuses. The result is cached under `cache_root() / <hash of the config>`
(ALIGNKIT_CACHE, default ~/.cache/alignkit, then world/<hash>), so later runs reuse it.

The default world's model also ships with the package (assets/base: 2 MB of safetensors, its
tokenizer and manifest.json), so a fresh clone's quickstart starts in seconds instead of building
for minutes (issue 21). It is exactly what `alignkit world base --output alignkit/synthetic/assets/base`
writes, and is used only while its manifest's `config_hash` equals this code's (an edit to the
corpus, the prompts or this recipe changes the hash, and the test of the shipped model asks for a
rebuild). The build runs on BUILD_THREADS threads: at a fixed thread count it is deterministic (a
rebuild on the same machine gives a byte-identical model.safetensors), and the manifest records
the training losses and the SFT model's task metrics that a rebuild must reproduce.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..data.records import Demonstration
from . import corpus
from .prompts import as_chat

MAX_LENGTH = 128  # tokens: every prompt + response of the task fits; the base model and every run use it
BUILD_THREADS = 1  # torch threads of the build: fixed, so a rebuild reproduces the shipped model
SHIPPED = Path(__file__).parent / "assets" / "base"  # the default world's model, shipped with the package
MANIFEST = "manifest.json"  # in the model folder: config hash, metrics, sha256 of the weights
EVAL_PROMPTS = 200  # held-out prompts for the SFT model's task metrics in the manifest
CORPUS_VERSION = 1  # part of the cache key, with the source of the files that define what the model learns
_KEY_FILES = ("corpus.py", "prompts.py", "base.py")


@dataclass(frozen=True)
class WorldConfig:
    vocab_size: int = 1024  # BPE vocabulary size
    hidden_size: int = 128  # model width
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # attention heads
    intermediate_size: int = 344  # MLP width
    pretrain_examples: int = 24000  # transcripts in the pre-training corpus
    pretrain_epochs: float = 1.0  # passes over it
    pretrain_lr: float = 3e-3  # peak learning rate (cosine schedule, 3% warm-up)
    sft_examples: int = 3000  # SFT demonstrations
    sft_epochs: float = 1.0  # passes over them
    sft_lr: float = 1e-3  # peak learning rate (cosine)
    batch_size: int = 32  # sequences per optimizer step
    seed: int = 0  # corpus, initialisation and data order


TINY_WORLD = WorldConfig(vocab_size=512, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                         pretrain_examples=400, sft_examples=200, batch_size=32)  # for smoke tests


def config_hash(cfg: WorldConfig) -> str:
    """Cache key: the config, and the code that generates the corpus (an edit there rebuilds)."""
    here = Path(__file__).parent
    code = "".join(hashlib.sha256((here / f).read_bytes()).hexdigest() for f in _KEY_FILES)
    blob = json.dumps({"version": CORPUS_VERSION, "code": code, **dataclasses.asdict(cfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_root(cache_dir: str | None = None) -> Path:
    """--cache-dir, else $ALIGNKIT_CACHE, else ~/.cache/alignkit; the world lives in <root>/world."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("ALIGNKIT_CACHE") or "~/.cache/alignkit").expanduser()


def base_dir(cfg: WorldConfig, cache_dir: str | None = None) -> Path:
    return cache_root(cache_dir) / "world" / config_hash(cfg)


def _train_overrides(cfg: WorldConfig, lr: float, epochs: float) -> dict:
    return {"learning_rate": lr, "epochs": epochs, "batch_size": cfg.batch_size, "lr_scheduler": "cosine",
            "warmup_ratio": 0.03, "eval_fraction": 0.0, "max_length": MAX_LENGTH, "seed": cfg.seed,
            "ref_cache": "none", "weight_decay": 0.0}


def read_manifest(folder: Path) -> dict:
    """The manifest.json of a base model folder ({} when absent or unreadable)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def shipped_base(cfg: WorldConfig) -> Path | None:
    """The shipped model folder when it was built from `cfg` by this code (its manifest's hash) and its
    weights are intact (their sha256: not, say, a Git LFS pointer), else None."""
    man = read_manifest(SHIPPED)
    weights = SHIPPED / "model.safetensors"
    if man.get("config_hash") != config_hash(cfg) or not weights.is_file():
        return None
    return SHIPPED if file_sha256(weights) == man.get("sha256", {}).get("model.safetensors") else None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def task_metrics(model_dir: Path, n_prompts: int = EVAL_PROMPTS, seed: int = 0) -> dict:
    """The SFT model's metrics under r* on held-out prompts (one sample each, temperature 1)."""
    from .evaluate import evaluate_policy
    m = evaluate_policy(str(model_dir), n_prompts=n_prompts, seed=seed, split="heldout", log=lambda *a, **k: None)
    keep = ("mean_reward", "harmlessness", "over_refusal", "accuracy", "rude", "on_topic", "length_tokens", "demo_nll")
    return {k: m["policy"][k] for k in keep if m["policy"].get(k) is not None}


def build_base(cfg: WorldConfig = WorldConfig(), cache_dir: str | None = None, force: bool = False,
               log=print, threads: int = BUILD_THREADS) -> Path:
    """The SFT'd base model folder: the cached one when present, else the shipped one when it was
    built from this config, else built (minutes) on `threads` torch threads and cached. force: build."""
    from ..models.tiny import TinyLlamaConfig, build_tiny_llama, train_tokenizer
    from ..registry import run_train

    final = base_dir(cfg, cache_dir)
    if (final / "sft" / "config.json").is_file() and not force:
        log(f"base model: reusing {final / 'sft'}")
        return final / "sft"
    shipped = None if force else shipped_base(cfg)
    if shipped is not None:
        log(f"base model: the shipped one ({shipped}; `alignkit world base --force` rebuilds it)")
        return shipped
    work = final.parent / f"{final.name}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.time()
    import torch
    threads_before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        log(f"base model: building in {final} (pre-training then SFT on {threads} thread(s); cached for later runs)")
        pre_texts = corpus.pretraining_texts(cfg.pretrain_examples, cfg.seed)
        tok = train_tokenizer(corpus.tokenizer_texts() + pre_texts[:4000], cfg.vocab_size)
        model = build_tiny_llama(tok, TinyLlamaConfig(cfg.hidden_size, cfg.num_layers, cfg.num_heads,
                                                      cfg.intermediate_size, 256), seed=cfg.seed)
        init = work / "init"
        model.save_pretrained(init, safe_serialization=True)
        tok.save_pretrained(init)
        n_params = sum(p.numel() for p in model.parameters())
        log(f"[base 1/2] pre-training a {n_params / 1e6:.2f}M-parameter Llama on {len(pre_texts)} transcripts")
        pre = [Demonstration("", t) for t in pre_texts]
        pre_summary = run_train("sft", str(init), pre, str(work / "pretrained"),
                                {**_train_overrides(cfg, cfg.pretrain_lr, cfg.pretrain_epochs), "num_threads": threads},
                                log=_quiet(log))
        _check(pre_summary)
        demos = [Demonstration(as_chat(p), r) for p, r in corpus.sft_pairs(cfg.sft_examples, cfg.seed)]
        log(f"[base 2/2] SFT on {len(demos)} demonstrations")
        sft_summary = run_train("sft", str(work / "pretrained"), demos, str(work / "sft"),
                                {**_train_overrides(cfg, cfg.sft_lr, cfg.sft_epochs), "num_threads": threads},
                                log=_quiet(log))
        _check(sft_summary)
        shutil.rmtree(init)
        build_seconds = round(time.time() - t0, 1)
        log(f"[base] task metrics of the SFT model on {EVAL_PROMPTS} held-out prompts")
        manifest = {
            "config_hash": config_hash(cfg), "config": dataclasses.asdict(cfg), "version": CORPUS_VERSION,
            "parameters": n_params, "threads": threads, "torch": torch.__version__,
            "build_seconds": build_seconds,
            "metrics": {"pretrain_loss": pre_summary["train_last"]["loss"],
                        "pretrain_steps": pre_summary["steps"], "sft_loss": sft_summary["train_last"]["loss"],
                        "sft_steps": sft_summary["steps"], "heldout": task_metrics(work / "sft", seed=cfg.seed)},
            "sha256": {"model.safetensors": file_sha256(work / "sft" / "model.safetensors")},
        }
        (work / "sft" / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        (work / "world.json").write_text(json.dumps(manifest, indent=1))
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads_before)
    log(f"base model: built in {time.time() - t0:.0f}s -> {final / 'sft'}")
    return final / "sft"


def _check(summary: dict):
    """A stage stopped by a signal leaves no model: stop the build (nothing half-built is cached)."""
    if summary.get("interrupted"):
        raise KeyboardInterrupt


def _quiet(log):
    """The trainer's per-stage chatter (tokenization counts) is noise here; keep eval lines only."""
    def f(msg, *a, **k):
        if str(msg).startswith("eval"):
            log(msg, *a, **k)
    return f
