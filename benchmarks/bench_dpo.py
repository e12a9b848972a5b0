"""DPO, side by side: TRL's DPOTrainer vs `alignkit train dpo` on the same model folder, pairs, batch
size, max length and steps. Not part of the test suite.

    .venv/bin/python benchmarks/bench_dpo.py [--rounds 3] [--steps 12] [--batch-size 8] [--dtype bf16]
        [--model DIR] [--lora-r 8]

Each run is a fresh subprocess (its own peak RSS); runs alternate TRL, alignkit, TRL, ... so that
drift of the machine hits both. Both sides: fp32 (or bf16 autocast with --dtype bf16), no gradient
checkpointing, AdamW at the same learning rate, linear decay, clipping at 1.0, beta 0.1, reference
log-probs precomputed once before training (TRL `precompute_ref_log_probs=True`, alignkit's
reference cache). Both see the same token ids (common.select_pairs) and the same batches in the same
order, so their losses agree step by step: at step 0 (policy = reference, log 2) and after updates.

What is timed: end of optimizer step 1 -> end of the last step (steps 2..N: forward, backward,
optimizer, logging). Not timed, on both sides: imports, model loading, tokenization, the reference
pass, step 1 (warm-up). pairs/s = (N - 1) * batch size / that time.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LR = 1e-5
BETA = 0.1


def child_trl(a) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    pairs = json.loads(Path(a.data).read_text())
    ds = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in pairs])
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    args = DPOConfig(
        output_dir=a.out, per_device_train_batch_size=a.batch_size, max_steps=a.steps,
        learning_rate=LR, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        beta=BETA, max_length=a.max_length, bf16=a.dtype == "bf16", fp16=False, gradient_checkpointing=False,
        precompute_ref_log_probs=True, train_sampling_strategy="sequential", use_cpu=not torch.cuda.is_available(),
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
        dataloader_num_workers=0)
    times, losses = [], []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append((time.perf_counter(), time.process_time()))

    class Recording(DPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            losses.append((loss[0] if isinstance(loss, tuple) else loss).detach().item())
            return loss

    trainer = Recording(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()],
                        peft_config=common.trl_peft_config(a))
    # TRL tokenized the text itself: check that its ids are alignkit's, pair by pair
    from alignkit.data.tokenize import Encoder
    enc = Encoder(tok, a.max_length)
    assert len(trainer.train_dataset) == len(pairs), "TRL dropped pairs"
    for row, (p, c, r) in zip(trainer.train_dataset, pairs):
        ec, er = enc.encode(p, c), enc.encode(p, r)
        assert (row["prompt_ids"], row["chosen_ids"], row["rejected_ids"]) == (
            ec.prompt_ids, ec.completion_ids, er.completion_ids), "token ids differ"
    trainer.train()
    return {"times": times, "losses": losses}


def child_alignkit(a) -> dict:
    from alignkit.data.records import Pairwise
    from alignkit.api import run_train

    pairs = json.loads(Path(a.data).read_text())
    times = common.clock_engine()
    overrides = dict(batch_size=a.batch_size, max_steps=a.steps, learning_rate=LR, lr_scheduler="linear",
                     warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=BETA, max_length=a.max_length,
                     dtype=a.dtype, seed=0, eval_fraction=0.0, progress=False, ref_cache="memory",
                     ref_upfront=True, num_threads=a.threads,  # reference before step 1, as TRL's precompute
                     lora_r=a.lora_r)
    overrides.update(common.child_overrides(a))
    run_train("dpo", a.model, [Pairwise(p, c, r) for p, c, r in pairs], a.out, overrides, log=lambda *x: None)
    rows = [json.loads(line) for line in (Path(a.out) / "metrics.jsonl").read_text().splitlines()]
    return {"times": times, "losses": [r["loss"] for r in rows if r["split"] == "train"]}


def main():
    a = common.parser(__doc__).parse_args()
    if a.child:
        return common.child(a, child_trl if a.child == "trl" else child_alignkit)
    common.compare(Path(__file__), a, "dpo")


if __name__ == "__main__":
    main()
