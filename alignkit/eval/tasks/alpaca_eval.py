"""AlpacaEval-style pairwise win rate against a reference output set, raw and length-controlled.

The model answers each instruction; a judge compares its output with the reference output for the same
instruction (`judge.compare(prompts, model outputs, reference outputs)` = P(model preferred)). Any judge
spec works: an LLM judge `llm-pair:hf:DIR` (RLAIF, position-debiased), a reward model `rm:DIR`
(Bradley-Terry: sigma(r_model - r_reference)), a rule `rule:...`.

- `win_rate`: the mean of P(model preferred), the judge's preference probability as a soft win
  (AlpacaEval 2.0's weighted win rate); `win_rate_hard` counts P > 0.5 as a win and P = 0.5 half.
- `win_rate_lc`: length-controlled (Dubois et al. 2024, "Length-Controlled AlpacaEval: A Simple Way to
  Debias Automatic Evaluators", arXiv 2404.04475): a logistic regression of the preference on the
  length difference, P(model preferred) = sigma(theta + phi * tanh(d / sd(d))) with d = len(model
  output) - len(reference output) in characters, fitted by maximum likelihood on the soft labels; the
  length-controlled win rate is the prediction at zero length difference, sigma(theta). (The paper's
  GLM also has an instruction-difficulty term fitted across many models; with one model at a time it
  is left out.)

The default reference set is AlpacaEval 2.0's (GPT-4 Turbo outputs on its 805 instructions, 803 here):
../shared/data/alpaca_eval/listwise_5models_vs_gpt4turbo_ref.jsonl.gz. Any JSON/JSONL(.gz) file of
records with an instruction (`instruction` or `prompt`) and an output (`output` or `reference`) works.
"""
from __future__ import annotations

import gzip
import json
import math
import random
from dataclasses import dataclass

from ...errors import ConfigError, DataError
from .base import Context, Metric, Subject, Task, data_file, generate, load_policy, mean

DEFAULT_REFERENCE = "../shared/data/alpaca_eval/listwise_5models_vs_gpt4turbo_ref.jsonl.gz"


@dataclass(frozen=True)
class AlpacaEvalConfig:
    reference: str = DEFAULT_REFERENCE  # reference outputs: JSON/JSONL(.gz) records with instruction|prompt and output|reference
    judge: str = ""  # judge spec comparing model and reference outputs (llm-pair:hf:DIR, rm:DIR, rule:...); required
    n: int = 100  # instructions drawn with the seed (0 = all)
    max_new_tokens: int = 128  # longest model output

    def __post_init__(self):
        if self.n < 0:
            raise ValueError(f"n: must be >= 0, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")


def read_reference(path) -> list:
    """[(instruction, reference output)] from JSON (a list) or JSONL, gzipped or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = list(enumerate(json.loads(stripped), 1))
        except json.JSONDecodeError as e:
            raise DataError(str(path), e.lineno, None, f"not valid JSON: {e.msg}") from None
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise DataError(str(path), i, None, f"not valid JSON: {e.msg}") from None
    out = []
    for i, row in rows:
        if not isinstance(row, dict):
            raise DataError(str(path), i, None, "expected a JSON object")
        inst = row.get("instruction", row.get("prompt"))
        ref = row.get("output", row.get("reference"))
        if not isinstance(inst, str) or not inst.strip():
            raise DataError(str(path), i, "instruction", "missing or empty (also read as 'prompt')")
        if not isinstance(ref, str):
            raise DataError(str(path), i, "output", "missing reference output (also read as 'reference')")
        out.append((inst, ref))
    if not out:
        raise DataError(str(path), None, None, "no records")
    return out


def _items(cfg: AlpacaEvalConfig, ctx: Context) -> list:
    if not cfg.judge:
        raise ConfigError("alpaca_eval needs a judge: --task-option alpaca_eval.judge=SPEC "
                          "(llm-pair:hf:DIR, rm:DIR, rule:NAME, ...)")
    rows = read_reference(data_file(cfg.reference, "alpaca_eval reference outputs", "--task-option alpaca_eval.reference"))
    if cfg.n and cfg.n < len(rows):
        rows = random.Random(f"alpaca_eval|{ctx.seed}").sample(rows, cfg.n)
    return rows


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def fit_length_logistic(prefs: list, length_diffs: list, l2: float = 1e-3, iters: int = 100) -> tuple:
    """(theta, phi) maximising sum_i p_i log s_i + (1 - p_i) log(1 - s_i) - l2 (theta^2 + phi^2) / 2 with
    s_i = sigma(theta + phi * x_i), x_i = tanh(d_i / sd(d)): Newton's method on two parameters. The small
    L2 term keeps the fit finite when the preferences are separable (all 0 or all 1)."""
    if len(prefs) != len(length_diffs) or not prefs:
        raise ValueError("one preference per length difference, at least one")
    n = len(prefs)
    mu = sum(length_diffs) / n
    sd = math.sqrt(sum((d - mu) ** 2 for d in length_diffs) / n)
    xs = [math.tanh(d / sd) if sd > 0 else 0.0 for d in length_diffs]
    theta = phi = 0.0
    for _ in range(iters):
        g0, g1 = -l2 * n * theta, -l2 * n * phi
        h00 = h01 = h11 = l2 * n
        for p, x in zip(prefs, xs):
            s = _sigmoid(theta + phi * x)
            r, w = p - s, s * (1 - s)
            g0, g1 = g0 + r, g1 + r * x
            h00, h01, h11 = h00 + w, h01 + w * x, h11 + w * x * x
        det = h00 * h11 - h01 * h01
        d0, d1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        theta, phi = theta + d0, phi + d1
        if abs(d0) + abs(d1) < 1e-10:
            break
    return theta, phi


def win_rates(prefs: list, model_lengths: list, ref_lengths: list) -> dict:
    """Raw (soft and hard) and length-controlled win rates from P(model preferred) per instruction."""
    diffs = [a - b for a, b in zip(model_lengths, ref_lengths)]
    theta, phi = fit_length_logistic(prefs, diffs)
    return {"win_rate": mean(prefs), "win_rate_hard": mean(1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0 for p in prefs),
            "win_rate_lc": _sigmoid(theta), "lc_length_coef": phi,
            "length_chars": mean(model_lengths), "ref_length_chars": mean(ref_lengths), "n": len(prefs)}


def _score(subject: Subject, rows: list, cfg: AlpacaEvalConfig, ctx: Context) -> dict:
    from ...rewards.specs import judge_from_spec
    judge = judge_from_spec(cfg.judge)
    model, tok = load_policy(subject.path)
    prompts = [inst for inst, _ in rows]
    outputs = generate(model, tok, [[{"role": "user", "content": p}] for p in prompts], ctx, cfg.max_new_tokens)
    del model
    refs = [ref for _, ref in rows]
    prefs = [min(1.0, max(0.0, float(p))) for p in judge.compare(prompts, outputs, refs)]
    return win_rates(prefs, [len(o) for o in outputs], [len(r) for r in refs])


TASK = Task(
    name="alpaca_eval",
    description="AlpacaEval-style win rate of the model's outputs against reference outputs under a judge, raw "
                "and length-controlled",
    paper="Li et al. 2023 (AlpacaEval); Dubois et al. 2024, arXiv 2404.04475 (length control)",
    config=AlpacaEvalConfig,
    metrics=(Metric("win_rate_lc", "AE win rate (LC)", True, chart=True), Metric("win_rate", "AE win rate", True, chart=True),
             Metric("win_rate_hard", "AE win rate (hard)", True), Metric("length_chars", "AE length (chars)", None)),
    primary="win_rate_lc",
    items=_items,
    score=_score,
)
