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
import math
from dataclasses import dataclass

import torch

from ..config import option, to_dict
from ..data.records import Listwise, Pairwise, Scored
from ..data.tokenize import Encoder, is_conversational, use_chat_template
from ..errors import ConfigError, DataError
from ..models.context import check_max_length
from ..models.loading import unwrap
from ..train.config import MAX_LENGTH_DEFAULT, TrainConfig
from ..train.forward import collate
from ..train.offline import encode_split, evaluate
from ..train.packing import PackedBatch, attention_mask
from ..train.run import Run
from ..train.shapes import ListShape, PairShape, ScoredShape, ranked_subset
from ..train.steps import evaluate_and_log, fmt_metrics, run_steps, total_steps
from . import losses
from .model import RewardModel, apply_lora_seq_cls, load_reward_model, save_reward_model


# --- method configs (their fields become `alignkit train rm ... --FIELD` flags) -----------------------
@dataclass(frozen=True)
class RMConfig:
    margin: bool = False  # subtract each pair's margin (the data's `margin` field, e.g. Llama 2's rating gap) inside the sigmoid
    center_coef: float = option(0.0, ge=0)  # eta of the centring term eta*(r_w + r_l)^2 that keeps rewards near 0 (TRL suggests 0.01)


@dataclass(frozen=True)
class PointwiseRMConfig:
    normalize: bool = True  # regress on z-scored labels (training mean/std); scores are mapped back to label units when judging


@dataclass(frozen=True)
class ListwiseRMConfig:
    max_list: int = option(0, ge=0)  # score at most this many responses per list (best, worst and evenly spaced ranks); 0 = all


# --- tasks: a feedback shape (which sequences a record contributes) + a reward-model loss ------------
def _check_records(records: list, cls, method: str):
    for r in records:
        if not isinstance(r, cls):
            raise DataError(r.source or "data", None, None,
                            f"{method} trains on {cls.__name__.lower()} records, got {type(r).__name__}")


class PairTask:
    name, record_type = "rm", Pairwise

    def __init__(self, cfg: RMConfig):
        self.cfg, self.shape = cfg, PairShape()

    def fit(self, records: list):
        pass

    def loss(self, r: torch.Tensor, batch: list) -> losses.LossOutput:
        recs = [ex.rec for ex in batch]  # r: (2B,) rows chosen, rejected, chosen, ...
        margin = torch.tensor([x.margin for x in recs], device=r.device) if self.cfg.margin else None
        weights = [x.weight for x in recs]
        label = torch.tensor(weights, device=r.device) if any(w != 1.0 for w in weights) else None
        return losses.bradley_terry(r[0::2], r[1::2], margin, self.cfg.center_coef, label)

    def info(self) -> dict:
        return {}


class PointTask:
    name, record_type = "rm-pointwise", Scored

    def __init__(self, cfg: PointwiseRMConfig):
        self.cfg, self.shape = cfg, ScoredShape()
        self.mean, self.std = 0.0, 1.0

    def fit(self, records: list):
        if self.cfg.normalize and records:
            s = [r.score for r in records]
            self.mean = sum(s) / len(s)
            var = sum((x - self.mean) ** 2 for x in s) / len(s)
            self.std = math.sqrt(var) if var > 0 else 1.0

    def loss(self, r: torch.Tensor, batch: list) -> losses.LossOutput:
        s = torch.tensor([ex.rec.score for ex in batch], device=r.device, dtype=r.dtype)  # (B,)
        out = losses.pointwise(r, (s - self.mean) / self.std)
        out.metrics["rewards/abs_error_label"] = (r.detach() * self.std + self.mean - s).abs()
        return out

    def info(self) -> dict:
        return {"label_mean": self.mean, "label_std": self.std}


class ListTask:
    name, record_type = "rm-listwise", Listwise

    def __init__(self, cfg: ListwiseRMConfig):
        self.cfg, self.shape = cfg, ListShape(k=cfg.max_list)

    def fit(self, records: list):
        pass

    def loss(self, r: torch.Tensor, batch: list) -> losses.LossOutput:
        counts = [len(ex.seqs) for ex in batch]
        b, k = len(batch), max(counts)
        rewards = r.new_zeros(b, k)  # (B, K), padded lists
        scores = torch.zeros(b, k, device=r.device)
        mask = torch.zeros(b, k, dtype=torch.bool, device=r.device)
        start = 0
        for i, (ex, n) in enumerate(zip(batch, counts)):
            rewards[i, :n] = r[start: start + n]
            scores[i, :n] = torch.tensor([float(ex.rec.scores[j]) for j in ranked_subset(ex.rec.scores, self.cfg.max_list)],
                                         device=r.device)
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
                       output: str, log=print, record: dict | None = None) -> dict:
    """Train a reward model from `model_path` on records; save it (HF format) in `output`. `record`:
    the job's config.yaml (Job.record)."""
    _check_records(train_records + eval_records, task.record_type, task.name)
    if cfg.load_in_4bit:
        raise ConfigError("--load-in-4bit is for policies (offline and RL trainers); a reward model trains its "
                          "head in full precision: use --lora-r alone")
    run = Run(cfg, output, log, record=record)  # seeds torch: the new head's initialisation
    acc, log = run.acc, run.log

    hf, tok = load_reward_model(model_path, "fp32", cfg.trust_remote_code)
    cfg = dataclasses.replace(cfg, max_length=check_max_length(hf.config, cfg.max_length, model_path,
                                                               MAX_LENGTH_DEFAULT, log))
    note = use_chat_template(tok, cfg.chat_template, is_conversational(r.prompt for r in train_records + eval_records))
    if note:
        log(f"note: {note}")
    rm = RewardModel(run.lora(hf, apply_lora_seq_cls)).to(acc.device)
    rm.train()

    task.fit(train_records)
    encoder = Encoder(tok, cfg.max_length, cfg.max_prompt_length or None)
    train_ex, eval_ex = encode_split(train_records, eval_records, task.shape, encoder, log)
    total = total_steps(cfg, len(train_ex), acc.num_processes)
    engine = run.engine(rm, total)
    objective = RewardObjective(task, engine.model, tok.pad_token_id)

    first_eval = run.resume({"method": task.name, "model": model_path, "train": to_dict(cfg),
                             "reward": dataclasses.asdict(task.cfg)})
    held_out = lambda: evaluate(objective, eval_ex, cfg.batch_size)  # noqa: E731 ({} when nothing is held out)
    if engine.step == 0 and "start" in cfg.eval_at:
        first_eval = evaluate_and_log(0, held_out, run.mlog, log, _fmt)
    last, interrupted = run_steps(engine, train_ex, cfg, total, objective.compute, held_out,
                                  run.save_checkpoint, run.mlog, log, desc=f"train {task.name}", fmt=_fmt)
    if interrupted:
        return run.interrupted()
    final_eval = evaluate_and_log(engine.step, held_out, run.mlog, log, _fmt) if "end" in cfg.eval_at else {}
    info = {"method": task.name, "base_model": model_path, "max_length": cfg.max_length,
            "max_prompt_length": cfg.max_prompt_length, "score_at": "last real token", **task.info()}
    summary = {"method": task.name, "steps": engine.step, "train_examples": len(train_ex),
               "eval_examples": len(eval_ex), "truncated": encoder.report.truncated,
               "dropped": encoder.report.dropped, "skipped_nonfinite": engine.nonfinite_total,
               "eval_start": first_eval, "eval_end": final_eval, "train_last": last}
    if "rewards/accuracy" in final_eval:
        start = first_eval.get("rewards/accuracy")
        summary["heldout_accuracy"] = {"start": start, "end": final_eval["rewards/accuracy"]}
        log(f"held-out accuracy: {'n/a' if start is None else f'{start:.4f}'} at the start, "
            f"{final_eval['rewards/accuracy']:.4f} at the end ({len(eval_ex)} examples)")
    return run.finish(summary, lambda: save_reward_model(engine.model, tok, run.out, info,
                                                         adapter_only=cfg.save_adapter_only))
