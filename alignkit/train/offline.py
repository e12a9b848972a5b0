"""The offline loop: a fixed feedback dataset -> batches -> one forward -> the method's loss.

Nothing here branches on a method's name: the method's declaration (alignkit/method.py) says which feedback shape it eats
(so which sequences an example contributes), whether it needs reference log-probs (cached once),
full logits (reference run live), mismatched pairs, a value head, or a running state.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch

from ..config import to_dict
from ..errors import AlignkitError
from ..losses.base import LossOutput
from ..method import Method
from ..models.context import check_max_length
from ..models.loading import load_causal_lm, load_tokenizer, save_model, unwrap
from . import refcache, zero
from .config import MAX_LENGTH_DEFAULT, TrainConfig
from .forward import collate, sequence_logps
from .precision import quantization_config
from .run import Job, Run, load_split
from .shapes import shape_for
from .sharding import is_fsdp
from .steps import evaluate_and_log, run_steps, total_steps
from .zero import whole_model_loading


@dataclass
class Example:
    idx: int
    rec: object
    seqs: list  # [(prompt_ids, completion_ids)]


def encode_examples(records: list, shape, encoder, start_idx: int = 0) -> list:
    """Tokenize every sequence once; an example loses nothing silently: if one of its sequences
    has no completion token left after truncation, the example is dropped and counted."""
    out = []
    for i, rec in enumerate(records):
        encs = [encoder.encode(p, c) for p, c in shape.sequences(rec, i, records)]
        if any(e is None for e in encs):
            continue
        out.append(Example(start_idx + i, rec, [(e.prompt_ids, e.completion_ids) for e in encs]))
    return out


def encode_split(train_records: list, eval_records: list, shape, encoder, log=print) -> tuple:
    """(train examples, held-out examples), tokenized once; an empty training set is an error."""
    train_ex = encode_examples(train_records, shape, encoder)
    eval_ex = encode_examples(eval_records, shape, encoder, start_idx=len(train_records))
    log(encoder.report.summary())
    if not train_ex:
        raise AlignkitError("no training examples left after tokenization (all dropped by truncation?)")
    return train_ex, eval_ex


class OfflineObjective:
    """compute(examples) -> LossOutput for one micro-batch, for any registered loss."""

    def __init__(self, spec: Method, loss_cfg, shape, model, pad_id: int, ref_cache: dict | None,
                 live_ref=None, value_head=None):
        self.spec, self.loss_cfg, self.shape = spec, loss_cfg, shape
        self.model, self.pad_id = model, pad_id
        self.ref_cache, self.live_ref, self.value_head = ref_cache, live_ref, value_head
        self.state: dict = {}

    def _ref(self, batch: list, sb, policy):
        if not self.spec.reference:
            return None
        if isinstance(self.ref_cache, refcache.LazyReference) and not self.spec.needs_logits:
            return self.ref_cache.logps(batch, sb, policy)
        if self.ref_cache is not None and not self.spec.needs_logits:
            return refcache.cached_logps(self.ref_cache, batch, sb.comp_ids.shape[1], sb.comp_ids.device)
        with torch.no_grad(), refcache.reference_mode(self.live_ref) as ref_model:
            lp, _ = sequence_logps(ref_model, sb, want_logits=self.spec.needs_logits)
        return lp.detach()

    def compute(self, batch: list, state: dict | None = None) -> LossOutput:
        seqs = [s for ex in batch for s in ex.seqs]
        device = next(self.model.parameters()).device
        sb = collate(seqs, self.pad_id, share_prefix=True).to(device)  # shared prompts once, no padding
        policy, hidden = sequence_logps(self.model, sb, want_logits=self.spec.needs_logits,
                                        want_hidden=self.value_head is not None)
        extra = {}
        if self.value_head is not None:
            per = len(batch[0].seqs)
            extra["value"] = self.value_head(hidden[0::per].float()).squeeze(-1)  # (B,) V(x)
        inp = self.shape.build(policy, self._ref(batch, sb, policy), [ex.rec for ex in batch], extra)
        if self.spec.stateful:
            out = self.spec.loss(inp, self.loss_cfg, self.state if state is None else state)
        else:
            out = self.spec.loss(inp, self.loss_cfg)
        out.metrics = {**self.shape.data_metrics(policy, len(batch)), **out.metrics}
        return out


@torch.no_grad()
def evaluate(objective: OfflineObjective, examples: list, bs: int) -> dict:
    if not examples:
        return {}
    model = objective.model
    was = model.training
    model.eval()
    loss_sum = w_sum = 0.0
    sums, counts = {}, {}
    state = json.loads(json.dumps(objective.state))  # evaluation never moves running statistics
    for i in range(0, len(examples), bs):
        out = objective.compute(examples[i: i + bs], state=state)
        w = out.weight if out.weight is not None else torch.ones_like(out.loss)
        loss_sum += out.loss.sum().item()
        w_sum += w.sum().item()
        for k, v in out.metrics.items():
            v = v.detach().float()
            sums[k] = sums.get(k, 0.0) + (v.sum().item() if v.ndim else v.item() * len(out.loss))
            counts[k] = counts.get(k, 0) + (v.numel() if v.ndim else len(out.loss))
    if was:
        model.train()
    res = {"loss": loss_sum / max(w_sum, 1e-12)}
    res.update({k: sums[k] / counts[k] for k in sums})
    return res


def run_offline(job: Job) -> dict:
    """The flow of every registered loss: read and split the data, then the offline loop."""
    train, ev = load_split(job.data, job.cfg, job.method.feedback, job.log)
    return train_offline(job.method, job.method_cfg, job.cfg, job.model, train, ev, job.output, job.log,
                         record=job.record())


def reference_logps(spec: Method, cfg: TrainConfig, run: Run, model, model_path: str, tok, train_ex: list,
                    eval_ex: list, resumed: bool, total: int | None = None) -> tuple:
    """-> (cached reference log-probs or None, a live reference model or None). Computed up front
    (--ref-upfront, or sharded models), the cache holds the examples the run's `total` steps visit
    and the held-out ones when the run evaluates: a 5-step smoke run computes 5 steps' worth."""
    acc = run.acc
    if not spec.reference:
        return None, None
    if spec.needs_logits:  # full-vocabulary reference logits: run the reference live
        with whole_model_loading(acc):
            return None, (model if (cfg.lora_r > 0 and not cfg.ref) else load_causal_lm(
                cfg.ref or model_path, "fp32", cfg.trust_remote_code).to(acc.device).eval())
    from .progress import Progress
    ref_id = f"{cfg.ref or model_path}|lora={cfg.lora_r > 0}|{cfg.max_length}|{cfg.max_prompt_length}"
    all_ex = train_ex + eval_ex
    key = refcache.data_key(all_ex, ref_id)
    path = run.out / "ref_logps.safetensors"
    ref_cache = refcache.load_cache(path, key) if cfg.ref_cache == "disk" else None
    sharded = is_fsdp(acc) or (zero.is_deepspeed(acc) and zero.zero_stage(acc) == 3)
    if not sharded and not cfg.ref_upfront:  # lazily, batch by batch as training reaches them (LazyReference)
        lora_ref = cfg.lora_r > 0 and not cfg.ref
        fresh = (cfg.ref or resumed) and not lora_ref
        engine = run.engine_

        def load_reference():
            if not fresh and lora_ref:
                return model  # the policy with its adapter disabled (refcache.reference_mode)
            with whole_model_loading(acc):  # the initial weights (or --ref): the policy has moved
                return load_causal_lm(cfg.ref or model_path, "fp32", cfg.trust_remote_code).to(acc.device)
        same = not (fresh or lora_ref) and refcache.deterministic(model)
        return refcache.LazyReference(
            ref_cache or {}, load_reference, tok.pad_token_id, len(all_ex),
            policy_is_reference=lambda: same and engine.step == 0,
            path=path if (cfg.ref_cache == "disk" and acc.is_main_process) else None, key=key,
            autocast=run.autocast), None
    from .steps import visited_batches
    evaluates = bool(cfg.eval_every) or bool({"start", "end"} & set(cfg.eval_at))
    ref_cache = ref_cache or {}  # a cache on disk may hold another run's examples (lazy, or fewer steps)
    # in the training micro-batches' composition: the same float rounding as the policy's forward, so
    # at step 0 (policy == reference) the margins are exactly 0 under bf16 too
    groups = visited_batches(len(train_ex), cfg, total, acc.num_processes) if total else [range(len(train_ex))]
    todo_batches = [b for b in ([train_ex[i] for i in g if train_ex[i].idx not in ref_cache] for g in groups) if b]
    todo = [ex for b in todo_batches for ex in b]
    todo_eval = [ex for ex in eval_ex if ex.idx not in ref_cache] if evaluates else []
    if todo or todo_eval:
        # no --ref and no resume: the policy before its first step is the reference itself
        fresh = (cfg.ref or resumed) and not (cfg.lora_r > 0 and not cfg.ref)
        with whole_model_loading(acc):
            ref_model = load_causal_lm(cfg.ref or model_path, "fp32", cfg.trust_remote_code).to(
                acc.device) if fresh else model
        bar = Progress(sum(len(e.seqs) for e in todo + todo_eval), desc="reference log-probs", unit="sequence",
                       enabled=cfg.progress and acc.is_main_process, leave=False)
        with run.autocast():  # --bf16: the reference under the policy's own autocast
            for b in todo_batches:
                seqs = sum(len(e.seqs) for e in b) if total else 32
                ref_cache.update(refcache.compute_ref_logps(ref_model, b, tok.pad_token_id, seqs, bar))
            if todo_eval:  # in evaluate()'s batches: the same float rounding as the policy's pass, so at
                # step 0 (policy == reference) every held-out margin is exactly 0, accuracy exactly 0.5
                ref_cache.update(refcache.compute_ref_logps(ref_model, todo_eval, tok.pad_token_id,
                                                            cfg.batch_size * len(todo_eval[0].seqs), bar))
        bar.close()
        del ref_model
        if cfg.ref_cache == "disk" and acc.is_main_process:
            refcache.save_cache(ref_cache, path, key)
    return ref_cache, None


def train_offline(spec: Method, loss_cfg, cfg: TrainConfig, model_path: str, train_records: list,
                  eval_records: list, output: str, log=print, record: dict | None = None) -> dict:
    """Train `model_path` with `spec`'s loss on records; save an HF model in `output`. `record`: the
    job's config.yaml (Job.record); None for a recipe's stage (its config.yaml is built here)."""
    from ..data.tokenize import Encoder, is_conversational, use_chat_template

    run = Run(cfg, output, log, fsdp_ok=True, record=record)
    acc, log = run.acc, run.log
    with whole_model_loading(acc):  # ZeRO-3 partitions it in prepare, not at load
        model = load_causal_lm(model_path, "fp32", cfg.trust_remote_code,  # checks the folder first
                               quantization=quantization_config(cfg))  # --load-in-4bit: on its CUDA device already
    tok = load_tokenizer(model_path, cfg.trust_remote_code)
    note = use_chat_template(tok, cfg.chat_template, is_conversational(r.prompt for r in train_records + eval_records))
    if note:
        log(f"note: {note}")
    cfg = dataclasses.replace(cfg, max_length=check_max_length(model.config, cfg.max_length, model_path,
                                                               MAX_LENGTH_DEFAULT, log))
    model = run.lora(model)
    if not (is_fsdp(acc) or cfg.load_in_4bit):  # FSDP moves each process's shards to its device itself
        model.to(acc.device)
    model.train()

    for note in (spec.advice(train_records, loss_cfg) if spec.advice else []):
        log(f"note: {note}")
    shape = shape_for(spec, train_records + eval_records, loss_cfg)
    train_records = shape.prepare(train_records, model, tok, cfg.seed)
    eval_records = shape.prepare(eval_records, model, tok, cfg.seed + 1)
    encoder = Encoder(tok, cfg.max_length, cfg.max_prompt_length or None)
    train_ex, eval_ex = encode_split(train_records, eval_records, shape, encoder, log)
    total = total_steps(cfg, len(train_ex), acc.num_processes)

    value_head = None
    if spec.needs_value:
        value_head = torch.nn.Linear(unwrap(model).config.hidden_size, 1).to(acc.device)
        torch.nn.init.zeros_(value_head.weight)
        torch.nn.init.zeros_(value_head.bias)
    engine = run.engine(model, total, extra_params=value_head.parameters() if value_head else ())
    model = engine.model

    resume_ckpt = run.newest_checkpoint()
    ref_cache, live_ref = reference_logps(spec, cfg, run, model, model_path, tok, train_ex, eval_ex,
                                          resume_ckpt is not None, total)
    objective = OfflineObjective(spec, loss_cfg, shape, model, tok.pad_token_id, ref_cache, live_ref, value_head)

    def restore(state: dict) -> int:
        objective.state = state.get("loss_state", {})
        return engine.step

    first_eval = run.resume({"method": spec.name, "model": model_path, "train": to_dict(cfg),
                             "loss": dataclasses.asdict(loss_cfg)}, restore, checkpoint=resume_ckpt)
    held_out = lambda: evaluate(objective, eval_ex, cfg.batch_size)  # noqa: E731 ({} when nothing is held out)
    if engine.step == 0 and "start" in cfg.eval_at:
        first_eval = evaluate_and_log(0, held_out, run.mlog, log)
    def save_checkpoint():
        run.save_checkpoint({"loss_state": objective.state})
        if isinstance(ref_cache, refcache.LazyReference):
            ref_cache.save()  # the reference log-probs computed so far, for --resume

    last, interrupted = run_steps(engine, train_ex, cfg, total, objective.compute, held_out, save_checkpoint,
                                  run.mlog, log, desc=f"train {spec.name}")
    if interrupted:
        return run.interrupted()
    final_eval = evaluate_and_log(engine.step, held_out, run.mlog, log) if "end" in cfg.eval_at else {}
    if isinstance(ref_cache, refcache.LazyReference):
        ref_cache.save()
    full = engine.full_model_state()  # under FSDP: gathered whole (every process takes part)

    def save():
        save_model(model, tok, run.out, adapter_only=cfg.save_adapter_only, state_dict=full)
        if value_head is not None:
            from safetensors.torch import save_file
            save_file({k: v.cpu() for k, v in value_head.state_dict().items()}, str(run.out / "value_head.safetensors"))
    summary = {"method": spec.name, "steps": engine.step, "train_examples": len(train_ex),
               "eval_examples": len(eval_ex), "truncated": encoder.report.truncated,
               "dropped": encoder.report.dropped, "skipped_nonfinite": engine.nonfinite_total,
               "eval_start": first_eval, "eval_end": final_eval, "train_last": last}
    if isinstance(ref_cache, refcache.LazyReference):  # examples whose reference log-probs this run computed
        summary["reference_logps"] = dict(ref_cache.computed)
    if engine.delta_l1 is not None:  # --l1-delta: how far the final weights moved, and how sparsely
        summary["delta"] = {"l1_lambda": cfg.l1_delta, "threshold": engine.delta_l1.threshold,
                            **engine.delta_l1.report()}
    return run.finish(summary, save)
