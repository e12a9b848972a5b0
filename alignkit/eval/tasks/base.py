"""What an evaluation task is, and what every task shares: the model under evaluation, sampling,
log-likelihoods of given answers, and the registry.

A `Task` is a name, its options (a frozen config dataclass: each field is a `--task-option
TASK.FIELD=VALUE` of `alignkit leaderboard`), its items (prompts, or labelled items read from files),
how a model is scored on them, and the metrics that scoring returns:

    items(cfg, ctx) -> list                      what the model is scored on
    score(subject, items, cfg, ctx) -> dict      metric key -> value (plus "n": items scored)

`Subject` is the model under evaluation: a policy (a causal LM folder) or a reward model (a folder
written by `alignkit train rm`); a task declares which kinds it scores. `Context` carries what the
leaderboard decides for every task (seed, the baseline for win rates, the KL / implicit-reward
reference, sampling of generative tasks, the held-out pairs of the training data).

The registry `TASKS` is filled by static imports in alignkit/eval/tasks/__init__.py; a task plug-in
(e.g. the bundled task, alignkit/synthetic/plugin.py) calls `register_task`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ...config import build_config
from ...errors import ConfigError, DataError, ModelLoadError

SUBJECT_KINDS = ("policy", "reward")


@dataclass(frozen=True)
class Metric:
    key: str  # the key in the dict `score` returns
    label: str  # column header
    higher_is_better: Optional[bool] = True  # None: neither (a length, a KL)
    chart: bool = False  # drawn as a bar chart in the report


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    paper: str  # where the task or its metric comes from
    config: type  # the task's own frozen options dataclass
    metrics: tuple  # Metric, in column order
    primary: str  # the metric a leaderboard sorts by
    items: Callable  # items(cfg, ctx) -> list
    score: Callable  # score(subject, items, cfg, ctx) -> {metric key: value, "n": items scored}
    subjects: tuple = ("policy",)  # the kinds of model it scores (SUBJECT_KINDS)
    frontier: tuple = ()  # (reward metric, KL metric): the reward-KL frontier of a beta sweep
    setup: Optional[Callable] = None  # setup(cfg, budget, seed, log) -> TrainingSetup: what `--methods` trains on by default

    def __post_init__(self):
        keys = [m.key for m in self.metrics]
        if self.primary not in keys:
            raise ValueError(f"task {self.name}: primary metric {self.primary!r} is not one of {keys}")
        if not set(self.subjects) <= set(SUBJECT_KINDS):
            raise ValueError(f"task {self.name}: subjects must be among {SUBJECT_KINDS}")
        if self.frontier and not set(self.frontier) <= set(keys):
            raise ValueError(f"task {self.name}: frontier metrics {self.frontier} are not all metrics")


@dataclass(frozen=True)
class TrainingSetup:
    """What a task offers `alignkit leaderboard --methods` when no --model / --data is given."""
    model: str  # the starting (SFT) model
    base: str = ""  # the pre-trained model before SFT ("" = none)
    pairs: tuple = ()  # labelled Pairwise records (the label budget)
    prompts: tuple = ()  # training prompts for online methods
    description: str = ""  # how the data was made, for the report
    train_defaults: tuple = ()  # ((field, value), ...): run options that suit this task's models


@dataclass(frozen=True)
class Subject:
    """The model under evaluation."""
    name: str  # its row in the leaderboard
    path: str  # a local Hugging Face folder
    kind: str = "policy"  # policy | reward
    ref: str = ""  # the policy's reference (KL, implicit reward); "" = the context's


@dataclass(frozen=True)
class Context:
    seed: int = 0  # item draw and sampling seed
    baseline: str = ""  # a policy to compare against (win rates); "" = none
    reference: str = ""  # reference model for KL and implicit rewards when the subject names none
    heldout: str = ""  # held-out labelled pairs of the leaderboard's training data ("" = none)
    max_new_tokens: int = 64  # longest sampled response of generative tasks
    temperature: float = 0.0  # sampling temperature of generative tasks (0 = greedy)
    batch_size: int = 32  # prompts per generate call / sequences per scoring batch
    log: Callable = print


TASKS: dict = {}  # name -> Task


def register_task(task: Task) -> Task:
    if task.name in TASKS and TASKS[task.name] is not task:
        raise ValueError(f"two tasks named {task.name!r}")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_config(task: Task, options: dict, where: str = "task options"):
    """The task's config from {field: value} (strings from the command line are converted)."""
    return build_config(task.config, options, where=f"{where} of {task.name}")


def subject_kind(path: str) -> str:
    """policy or reward: a folder written by `alignkit train rm` (alignkit_reward.json) or a sequence
    classifier is a reward model. A missing folder is a one-line ModelLoadError."""
    p = Path(path)
    if not p.is_dir():
        raise ModelLoadError(f"{path}: model folder not found")
    if (p / "alignkit_reward.json").is_file():
        return "reward"
    cfg = p / "config.json"
    if not cfg.is_file():
        raise ModelLoadError(f"{path}: no config.json here; expected a Hugging Face model folder")
    try:
        arch = json.loads(cfg.read_text()).get("architectures") or []
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise ModelLoadError(f"{path}/config.json: not valid JSON ({e})") from None
    return "reward" if arch and all(a.endswith("ForSequenceClassification") for a in arch) else "policy"


def data_file(path: str, what: str, option: str) -> Path:
    """An existing data file, else a one-line DataError that says which option names it."""
    if not path:
        raise ConfigError(f"{what}: no data file given; set {option}=FILE")
    p = Path(path)
    if not p.is_file():
        raise DataError(str(p), None, None, f"no such file ({what}; set {option}=FILE)")
    return p


def device_of() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_policy(path: str):
    """(model in eval mode on the best device, tokenizer)."""
    from ...models.loading import load_causal_lm, load_tokenizer
    model = load_causal_lm(str(path), "fp32").eval().to(device_of())
    return model, load_tokenizer(str(path))


def generate(model, tok, prompts: list, ctx: Context, max_new_tokens: int | None = None,
             temperature: float | None = None) -> list:
    """One response per prompt (text or conversation), EOS stripped, seeded by ctx.seed."""
    from ...models.generate import SamplingConfig, generate_texts
    cfg = SamplingConfig(max_new_tokens=max_new_tokens or ctx.max_new_tokens,
                         temperature=ctx.temperature if temperature is None else temperature,
                         top_p=1.0, batch_size=ctx.batch_size)
    return [t.strip() for t in generate_texts(model, tok, prompts, cfg, seed=ctx.seed)]


def answer_logprobs(model, tok, prompts: list, answers: list, add_eos: bool = False,
                    batch_size: int = 32) -> list:
    """[(sum_t log pi(a_t | x, a_<t), |a| in tokens)] for each (prompt, answer), untruncated; an empty
    answer scores (0, 0). The answer is tokenized on its own after the rendered prompt, as training does."""
    import torch
    from ...data.tokenize import Encoder
    from ...train.forward import collate, sequence_logps
    enc = Encoder.untruncated(tok, add_eos=add_eos)
    seqs = [(enc.prompt_ids(p), enc.completion_ids(a)) for p, a in zip(prompts, answers)]
    out = [(0.0, 0)] * len(seqs)
    idx = sorted((i for i, (_, c) in enumerate(seqs) if c), key=lambda i: -sum(map(len, seqs[i])))
    device = next(model.parameters()).device
    with torch.no_grad():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s: s + batch_size]
            batch = collate([seqs[i] for i in chunk], tok.pad_token_id).to(device)
            lp, _ = sequence_logps(model, batch)
            for i, v, n in zip(chunk, lp.sum().tolist(), lp.lengths().tolist()):
                out[i] = (v, int(n))
    return out


def mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
