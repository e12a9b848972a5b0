"""The Python API: what `alignkit train`, `alignkit eval preferences`, `alignkit rewards score` and
`alignkit generate` do, callable from Python (docs/python_api.md, every example there is tested).

    from alignkit.api import train, evaluate, score, generate
    summary = train("dpo", "models/sft", "pairs.jsonl", "out/dpo", beta=0.1, max_steps=100)
    report = evaluate("out/dpo", "heldout.jsonl")                  # implicit-reward preference accuracy
    rows = score("rule:words", [{"prompt": "Hi", "completion": "Hello there"}])
    records = generate("out/dpo", ["Write a haiku about rain."], max_new_tokens=32)

`data` is anything `alignkit train --data` takes (a JSONL/JSON/Parquet/CSV file, a `save_to_disk`
folder, a hub-style folder of shards, a dataset name in the local Hugging Face cache, `NAME:SPLIT`), or
a list of dicts in those row formats, a `datasets.Dataset`, or a list of records (alignkit.data.records);
for online methods, prompts. A model is a local folder or a model name in the local Hugging Face cache.
Options are the config fields (`alignkit train METHOD --help`); the checks are the command line's, and
a mistake raises alignkit.errors.AlignkitError with the same one-line message. Each function calls the
code its command calls. Importing this module loads the plug-ins (the bundled task's `truth` judge and
prompts).
"""
from __future__ import annotations

import os

from . import plugins  # noqa: F401
from .config import build_config, flag
from .errors import ConfigError
from .registry import METHODS, get_method, method_rows, resolve_job
from .registry import run_train as _registry_run_train

__all__ = ["train", "run_train", "evaluate", "score", "generate", "resolve_job", "get_method", "method_rows",
           "METHODS"]


def run_train(method: str | None, model: str | None, data, output: str | None, overrides: dict | None = None,
              config_file: str | None = None, log=print) -> dict:
    """Train `model` with `method` on `data`; the output folder gets the model, its tokenizer,
    config.yaml, metrics.jsonl and summary.json. `overrides`: config fields ({"beta": 0.1}), as the
    `--FIELD` flags; `config_file`: a YAML file of them (overrides win), or a run's own config.yaml,
    which also names the method, model, data and output (the arguments given win). Returns the summary."""
    from .data.readers import check_data_kind
    check_data_kind(data, allow_none=True)  # model, output (also from config_file) are checked by resolve_job
    return _registry_run_train(method, model, data, output, overrides, config_file, log)


def train(method: str, model: str, data, output: str, config: str | None = None, log=print, **options) -> dict:
    """run_train with the config fields as keyword arguments: train("dpo", m, d, out, beta=0.1)."""
    return run_train(method, model, data, output, options, config, log)


def evaluate(model: str, data, ref: str | None = None, beta: float | None = None, eval_fraction: float = 0.0,
             seed: int = 0, bins: int = 10, max_pairs: int = 0, on_bad_record: str = "error",
             columns=None) -> dict:
    """Held-out preferences (`alignkit eval preferences`): the implicit reward beta * (log pi - log
    pi_ref) of `model` on labelled pairs -> {"pairs", "accuracy", "ties", "ece", "reliability", ...};
    on thumbs (binary) data {"responses", "auc", "reward_gap", ...}. ref and beta default to the ones
    in the model's config.yaml; eval_fraction > 0 keeps only the held-out part of the split that
    `train` makes with the same eval_fraction and seed."""
    from .rewards.evaluate import PreferenceOptions, heldout_records, preference_results
    from .rewards.implicit import ImplicitRewardJudge
    opts = build_config(PreferenceOptions, {"bins": bins, "eval_fraction": eval_fraction, "seed": seed,
                                            "on_bad_record": on_bad_record, "max_pairs": max_pairs,
                                            "columns": _columns_text(columns)}, where="evaluate")
    if beta is not None and not beta > 0:
        raise ConfigError(f"evaluate: {flag('beta')} must be > 0, got {beta!r}")
    records = heldout_records(data, opts.eval_fraction, opts.seed, opts.on_bad_record, opts.columns,
                              log=lambda *a: None)
    judge = ImplicitRewardJudge(str(model), ref, beta)
    return preference_results(judge, records, None, opts.bins, opts.max_pairs,
                              str(data) if isinstance(data, (str, os.PathLike)) else "data")


def _columns_text(columns) -> str:
    """columns as the flag's text: {"prompt": "question"} -> "prompt=question"."""
    if isinstance(columns, dict):
        return ",".join(f"{k}={v}" for k, v in columns.items())
    return columns or ""


def score(reward: str, data, columns=None) -> list:
    """Score every response of `data` with a judge spec (`alignkit rewards score`: rm:DIR, rule:NAME,
    implicit:POLICY[,REF], llm-score:..., truth, file:F.py:FN, weighted sums). -> TRL-style rows with
    `reward` (one response), `reward_chosen`/`reward_rejected` (a pair) or `rewards` (a list)."""
    from .data.readers import read_data
    from .rewards.evaluate import reward_rows
    from .rewards.specs import judge_from_spec
    judge = judge_from_spec(reward)
    records, _ = read_data(data, columns=columns)
    return reward_rows(judge, records)


def generate(model: str, prompts, judge: str | None = None, trust_remote_code: bool = False, **settings) -> list:
    """Completions (`alignkit generate`): prompts are a prompts file (.jsonl/.json/.csv/.parquet/.txt,
    MT-Bench's `turns` too) or a list of prompts (text, a list of messages, or rows {"prompt": ...},
    {"turns": [...]}); settings are GenerateSettings fields (max_new_tokens, temperature, top_p,
    samples_per_prompt, seed, batch_size, turns, as_chat). -> records {"prompt", "completion", "sample", ...},
    with "score" under `judge` (a judge spec)."""
    from .errors import DataError
    from .eval.generate import (GenerateSettings, PromptItem, generate_records, parse_prompt_row,
                                read_prompt_file, score_completions)
    from .models.loading import load_causal_lm, load_tokenizer
    cfg = build_config(GenerateSettings, settings, where="generate")
    if isinstance(prompts, str) or hasattr(prompts, "__fspath__"):
        items = read_prompt_file(str(prompts))
    else:
        from .data.validate import RecordError
        items = []
        for n, p in enumerate(prompts, 1):
            try:
                prompt, later, extra = parse_prompt_row(p if isinstance(p, dict) else {"prompt": p})
            except RecordError as e:
                raise DataError("prompts", n, e.field, e.message) from None
            items.append(PromptItem(prompt, later, extra, f"prompts:{n}"))
        if not items:
            raise DataError("prompts", None, None, "no prompts")
    model_ = load_causal_lm(str(model), "fp32", trust_remote_code).eval()
    tok = load_tokenizer(str(model), trust_remote_code)
    records = generate_records(model_, tok, items, cfg)
    if judge:
        score_completions(records, judge)
    return records
