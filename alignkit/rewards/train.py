"""Reward-model training: records -> (prompt, response) rows -> one forward of the reward model (all
rows of a micro-batch together: chosen and rejected, or the K responses of a list) -> the feedback
shape's loss (losses.py), on the shared Engine (alignkit/train/engine.py: optimiser, exact gradient
accumulation, clipping, non-finite guards, checkpoints, signals, metrics.jsonl).

A "task" says what a record contributes and how scores become a loss:
    PairTask  pairwise records -> Bradley-Terry (optional margin, centring, soft labels)
    PointTask scored records   -> squared error on (optionally z-scored) labels
    ListTask  listwise records -> Plackett-Luce over each list
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import to_dict
from ..data.records import Listwise, Pairwise, Scored
from ..data.tokenize import Encoder
from ..errors import DataError
from ..models.loading import LoraSettings, unwrap
from ..train.config import TrainConfig
from ..train.engine import Engine, MetricLog
from ..train.forward import collate
from ..train.packing import PackedBatch, attention_mask
from ..train.loop import evaluate_and_log, fmt_metrics, resume_or_start, run_steps, start_run, total_steps
from ..train.offline import encode_split, evaluate
from . import losses
from .model import RewardModel, apply_lora_seq_cls, load_reward_model, save_reward_model


# --- method configs (their fields become `alignkit train rm ... --FIELD` flags) -----------------------
@dataclass(frozen=True)
class RMConfig:
    margin: bool = False  # subtract each pair's margin (the data's `margin` field, e.g. Llama 2's rating gap) inside the sigmoid
    center_coef: float = 0.0  # eta of the centring term eta*(r_w + r_l)^2 that keeps rewards near 0 (TRL suggests 0.01)


@dataclass(frozen=True)
class PointwiseRMConfig:
    normalize: bool = True  # regress on z-scored labels (training mean/std); scores are mapped back to label units when judging


@dataclass(frozen=True)
class ListwiseRMConfig:
    max_list: int = 0  # score at most this many responses per list (best, worst and evenly spaced ranks); 0 = all


# --- tasks --------------------------------------------------------------------------------------------
def _check_records(records: list, cls, method: str):
    for r in records:
        if not isinstance(r, cls):
            raise DataError(r.source or "data", None, None,
                            f"{method} trains on {cls.__name__.lower()} records, got {type(r).__name__}")


class PairTask:
    name, feedback, record_type = "rm", "pairwise", Pairwise

    def __init__(self, cfg: RMConfig):
        self.cfg = cfg

    def fit(self, records: list):
        pass

    def sequences(self, rec, idx, data):
        return [(rec.prompt, rec.chosen), (rec.prompt, rec.rejected)]

    def loss(self, r: torch.Tensor, batch: list) -> losses.LossOutput:
        recs = [ex.rec for ex in batch]  # r: (2B,) rows chosen, rejected, chosen, ...
        margin = torch.tensor([x.margin for x in recs], device=r.device) if self.cfg.margin else None
        weights = [x.weight for x in recs]
        label = torch.tensor(weights, device=r.device) if any(w != 1.0 for w in weights) else None
        return losses.bradley_terry(r[0::2], r[1::2], margin, self.cfg.center_coef, label)

    def info(self) -> dict:
        return {}


class PointTask:
    name, feedback, record_type = "rm-pointwise", "scored", Scored

    def __init__(self, cfg: PointwiseRMConfig):
        self.cfg = cfg
        self.mean, self.std = 0.0, 1.0

    def fit(self, records: list):
        if self.cfg.normalize and records:
            s = [r.score for r in records]
            self.mean = sum(s) / len(s)
            var = sum((x - self.mean) ** 2 for x in s) / len(s)
            self.std = math.sqrt(var) if var > 0 else 1.0

    def sequences(self, rec, idx, data):
        return [(rec.prompt, rec.completion)]

    def loss(self, r: torch.Tensor, batch: list) -> losses.LossOutput:
        s = torch.tensor([ex.rec.score for ex in batch], device=r.device, dtype=r.dtype)  # (B,)
        out = losses.pointwise(r, (s - self.mean) / self.std)
        out.metrics["rewards/abs_error_label"] = (r.detach() * self.std + self.mean - s).abs()
        return out

    def info(self) -> dict:
        return {"label_mean": self.mean, "label_std": self.std}


class ListTask:
    name, feedback, record_type = "rm-listwise", "listwise", Listwise

    def __init__(self, cfg: ListwiseRMConfig):
        self.cfg = cfg

    def fit(self, records: list):
        pass

    def pick(self, rec) -> list:
        """Indices of the responses used: all, or max_list of them spread over the ranking."""
        n, k = len(rec.completions), self.cfg.max_list
        order = sorted(range(n), key=lambda i: -rec.scores[i])
        if k <= 0 or n <= k:
            return order
        if k == 1:
            return order[:1]
        return [order[round(j * (n - 1) / (k - 1))] for j in range(k)]

    def sequences(self, rec, idx, data):
        return [(rec.prompt, rec.completions[i]) for i in self.pick(rec)]

    def loss(self, r: torch.Tensor, batch: list) -> losses.LossOutput:
        counts = [len(ex.seqs) for ex in batch]
        b, k = len(batch), max(counts)
        rewards = r.new_zeros(b, k)  # (B, K), padded lists
        scores = torch.zeros(b, k, device=r.device)
        mask = torch.zeros(b, k, dtype=torch.bool, device=r.device)
        start = 0
        for i, (ex, n) in enumerate(zip(batch, counts)):
            rewards[i, :n] = r[start: start + n]
            scores[i, :n] = torch.tensor([float(ex.rec.scores[j]) for j in self.pick(ex.rec)], device=r.device)
            mask[i, :n] = True
            start += n
        return losses.plackett_luce(rewards, scores, mask)

    def info(self) -> dict:
        return {}


class RewardObjective:
    """compute(examples) -> LossOutput: every row of the micro-batch in one forward. Has the
    `model` / `state` / `compute(batch, state)` surface that alignkit.train.offline.evaluate uses."""

    def __init__(self, task, model, pad_id: int):
        self.task, self.model, self.pad_id = task, model, pad_id
        self.state: dict = {}

    def compute(self, batch: list, state: dict | None = None) -> losses.LossOutput:
        device = next(self.model.parameters()).device
        seqs, rm = [s for ex in batch for s in ex.seqs], unwrap(self.model)
        pb = collate(seqs, self.pad_id, share_prefix=True) if rm.packs() else None
        if isinstance(pb, PackedBatch):  # shared prompts once, no padding (alignkit/train/packing.py)
            pb = pb.to(device)
            r = self.model(pb.input_ids, attention_mask(rm.inner(), pb), pb.position_ids, pb.last)  # (N,)
        else:
            sb = collate(seqs, self.pad_id)
            r = self.model(sb.input_ids.to(device), sb.attention_mask.to(device))  # (N,)
        return self.task.loss(r, batch)


def _fmt(m: dict) -> str:
    return fmt_metrics(m, ("loss", "rewards/accuracy", "rewards/margin", "rewards/abs_error_label"))


def train_reward_model(task, cfg: TrainConfig, model_path: str, train_records: list, eval_records: list,
                       output: str, log=print) -> dict:
    """Train a reward model from `model_path` on records; save it (HF format) in `output`."""
    _check_records(train_records + eval_records, task.record_type, task.name)
    out, acc, log = start_run(cfg, output, log)  # seeds torch: the new head's initialisation

    hf, tok = load_reward_model(model_path, "fp32", cfg.trust_remote_code)
    if cfg.lora_r > 0:
        hf = apply_lora_seq_cls(hf, LoraSettings(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout,
                                                 tuple(cfg.lora_target_modules)))
    rm = RewardModel(hf).to(acc.device)
    rm.train()

    task.fit(train_records)
    encoder = Encoder(tok, cfg.max_length, cfg.max_prompt_length or None)
    train_ex, eval_ex = encode_split(train_records, eval_records, task, encoder, log)
    total = total_steps(cfg, len(train_ex), acc.num_processes)
    engine = Engine(rm, cfg, out, total, accelerator=acc)
    objective = RewardObjective(task, engine.model, tok.pad_token_id)

    def save_trainable(folder: Path):
        from safetensors.torch import save_file
        params = {n: p.detach().cpu().contiguous() for n, p in unwrap(engine.model).named_parameters()
                  if p.requires_grad}
        save_file(params, str(folder / "trainable.safetensors"))

    mlog = MetricLog(out, cfg.report_to, acc.is_main_process, to_dict(cfg))

    def restore(ckpt) -> int:
        from safetensors.torch import load_file
        unwrap(engine.model).load_state_dict(load_file(str(ckpt / "trainable.safetensors")), strict=False)
        engine.load_trainer_state(ckpt)
        return engine.step

    first_eval = resume_or_start(out, cfg, acc, mlog, Engine.newest_checkpoint(out) if cfg.resume else None, restore,
                                 {"method": task.name, "model": model_path, "train": to_dict(cfg),
                                  "reward": dataclasses.asdict(task.cfg)}, log)
    held_out = lambda: evaluate(objective, eval_ex, cfg.batch_size)  # noqa: E731 ({} when nothing is held out)
    if engine.step == 0:
        first_eval = evaluate_and_log(0, held_out, mlog, log, _fmt)
    last, interrupted = run_steps(engine, train_ex, cfg, total, objective.compute, held_out,
                                  lambda: engine.save_checkpoint(save_trainable, {}), mlog, log,
                                  desc=f"train {task.name}", fmt=_fmt)
    if interrupted:
        return {"interrupted": True, "step": engine.step, "checkpoint": str(engine.last_checkpoint)}
    final_eval = evaluate_and_log(engine.step, held_out, mlog, log, _fmt)
    info = {"method": task.name, "base_model": model_path, "max_length": cfg.max_length,
            "max_prompt_length": cfg.max_prompt_length, "score_at": "last real token", **task.info()}
    if acc.is_main_process:
        save_reward_model(engine.model, tok, out, info, adapter_only=cfg.save_adapter_only)
    summary = {"method": task.name, "steps": engine.step, "train_examples": len(train_ex),
               "eval_examples": len(eval_ex), "truncated": encoder.report.truncated,
               "dropped": encoder.report.dropped, "skipped_nonfinite": engine.nonfinite_total,
               "eval_start": first_eval, "eval_end": final_eval, "train_last": last}
    if "rewards/accuracy" in final_eval:
        start = first_eval.get("rewards/accuracy")
        summary["heldout_accuracy"] = {"start": start, "end": final_eval["rewards/accuracy"]}
        log(f"held-out accuracy: {'n/a' if start is None else f'{start:.4f}'} at the start, "
            f"{final_eval['rewards/accuracy']:.4f} at the end ({len(eval_ex)} examples)")
    if acc.is_main_process:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    acc.wait_for_everyone()
    return summary
