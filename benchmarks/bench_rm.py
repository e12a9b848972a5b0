"""Reward model, side by side: TRL's RewardTrainer vs `alignkit train rm` (Bradley-Terry) on the same
model folder, pairs, batch size, max length and steps. Not part of the test suite.

    .venv/bin/python benchmarks/bench_rm.py [--rounds 3] [--steps 12] [--batch-size 8]

TRL is given alignkit's token ids (its pre-tokenized `chosen_ids`/`rejected_ids` columns), so both
sides score the same sequences; both load the folder as a sequence classifier with a fresh scalar
head drawn from the same seed, so the step-0 loss is the same non-trivial number on both sides.
Both: fp32, no gradient checkpointing, AdamW, linear decay, clipping at 1.0, no centring term.

What is timed: end of optimizer step 1 -> end of the last step (steps 2..N: forward, backward,
optimizer, logging). Not timed, on both sides: imports, loading, tokenization, step 1.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LR = 1e-5


def encoded(model_dir: str, pairs: list, max_length: int) -> list:
    """alignkit's token ids for each pair: (prompt + chosen, prompt + rejected)."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_tokenizer
    enc = Encoder(load_tokenizer(model_dir), max_length)
    out = []
    for p, c, r in pairs:
        a, b = enc.encode(p, c), enc.encode(p, r)
        out.append((a.prompt_ids + a.completion_ids, b.prompt_ids + b.completion_ids))
    return out


def child_trl(a) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    if a.threads:
        torch.set_num_threads(a.threads)
    pairs = json.loads(Path(a.data).read_text())
    ds = Dataset.from_list([{"chosen_ids": c, "rejected_ids": r} for c, r in encoded(a.model, pairs, a.max_length)])
    torch.manual_seed(0)  # the fresh score head: the same draw as alignkit's (seed 0, then loading)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=1, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    model.config.pad_token_id = tok.pad_token_id
    args = RewardConfig(
        output_dir=a.out, per_device_train_batch_size=a.batch_size, max_steps=a.steps, learning_rate=LR,
        lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        max_length=a.max_length, bf16=a.dtype == "bf16", fp16=False, gradient_checkpointing=False,
        train_sampling_strategy="sequential", use_cpu=not torch.cuda.is_available(), logging_steps=1, save_strategy="no",
        report_to="none", disable_tqdm=True, seed=0, dataloader_num_workers=0)
    times, losses = [], []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append((time.perf_counter(), time.process_time()))

    class Recording(RewardTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            losses.append((loss[0] if isinstance(loss, tuple) else loss).detach().item())
            return loss

    trainer = Recording(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()])
    assert len(trainer.train_dataset) == len(pairs), "TRL dropped pairs"
    trainer.train()
    return {"times": times, "losses": losses}


def child_alignkit(a) -> dict:
    from alignkit.data.records import Pairwise
    from alignkit.api import run_train

    pairs = json.loads(Path(a.data).read_text())
    times = common.clock_engine()
    overrides = dict(batch_size=a.batch_size, max_steps=a.steps, learning_rate=LR, lr_scheduler="linear",
                     warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, max_length=a.max_length,
                     dtype=a.dtype, seed=0, eval_fraction=0.0, progress=False, num_threads=a.threads)
    overrides.update(common.child_overrides(a))
    run_train("rm", a.model, [Pairwise(p, c, r) for p, c, r in pairs], a.out, overrides, log=lambda *x: None)
    rows = [json.loads(line) for line in (Path(a.out) / "metrics.jsonl").read_text().splitlines()]
    return {"times": times, "losses": [r["loss"] for r in rows if r["split"] == "train"]}


def main():
    p = common.parser(__doc__)
    a = p.parse_args()
    if a.lora_r:
        p.error("--lora-r: the reward-model benchmark compares full fine-tuning only")
    if a.child:
        return common.child(a, child_trl if a.child == "trl" else child_alignkit)
    common.compare(Path(__file__), a, "rm")


if __name__ == "__main__":
    main()
