"""The leaderboard's options (every field is a flag of `alignkit leaderboard`) and its presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import option


@dataclass(frozen=True)
class LeaderboardConfig:
    output: str = ""  # output folder: leaderboard.md/.csv/.json, report.html, runs/, cells/ (a rerun resumes there)
    models: tuple[str, ...] = ()  # models to score: DIR or LABEL=DIR, comma-separated (policies or reward models)
    methods: tuple[str, ...] = ()  # methods to train and then score: METHOD or LABEL=METHOD, comma-separated (`alignkit methods`)
    tasks: tuple[str, ...] = ("bundled",)  # evaluation tasks, comma-separated: bundled, preferences, truthfulqa, xstest, alpaca_eval
    task_option: tuple[str, ...] = field(default=(), metadata={"repeat": True})  # TASK.FIELD=VALUE, one per flag (e.g. xstest.n=450, alpaca_eval.judge=llm-pair:hf:DIR)
    preset: str = ""  # a comparison from the survey: sft-vs-base | ppo-vs-dpo (fills the fields left at their defaults)
    seeds: tuple[int, ...] = (0,)  # one training run and one evaluation per seed; the tables show the spread
    model: str = ""  # --methods: the starting (SFT) model ("" = the first task's set-up, e.g. the bundled task's SFT model)
    base_model: str = ""  # --methods with starts base: the pre-trained model before SFT ("" = the task set-up's)
    starts: tuple[str, ...] = ("model",)  # --methods: start each method from model (the SFT model) and/or base (the pre-trained one)
    data: str = ""  # --methods: labelled pairs to train on ("" = the task set-up's labels)
    label_budget: int = option(600, ge=0)  # --methods: labelled pairs used: the first N of --data (0 = all), or N training prompts the task set-up labels
    eval_fraction: float = option(0.1, ge=0, lt=1)  # --methods: share of the pairs held out (the preferences task's default data, the runs' eval rows)
    max_steps: int = option(0, ge=0)  # --methods: optimizer steps of every offline method (0 = --epochs); online methods take --set METHOD.iterations=N
    epochs: float = option(2.0, gt=0)  # --methods: passes over the pairs when max_steps is 0
    learning_rate: float = option(2e-4, gt=0)  # --methods: peak learning rate of every method (cosine schedule, warm-up over the first tenth of the steps)
    batch_size: int = option(16, ge=1)  # --methods: examples per optimizer step
    reward: str = ""  # --methods: the judge of online methods (ppo, iterative-dpo, ...); "" = a Bradley-Terry reward model trained on the same pairs
    set: tuple[str, ...] = field(default=(), metadata={"repeat": True})  # [METHOD.]FIELD=VALUE: a run or method option for every method (or one), one per flag
    sweep: tuple[str, ...] = field(default=(), metadata={"repeat": True})  # [METHOD.]FIELD=V1,V2,...: extra runs per value (e.g. dpo.beta=0.05,0.3,1) for the reward-KL frontier
    baseline: str = ""  # the policy win rates are measured against ("" = the starting model when training, else none)
    reference: str = ""  # the reference model for KL and implicit rewards of models that name none ("" = the baseline)
    max_new_tokens: int = option(64, ge=1)  # generative tasks: longest response (tasks may set their own)
    temperature: float = option(0.0, ge=0)  # generative tasks: sampling temperature (0 = greedy; the bundled task always samples at 1)
    num_threads: int = option(1, ge=0, aliases=("threads",))  # torch CPU threads per cell (the name of every command's thread flag; --threads still works)
    isolate: bool = True  # run each cell in its own process: its own peak memory, and a crash stays in its cell
    timeout: float = option(0.0, ge=0)  # seconds a cell may take before it is stopped with an error (0 = no limit)

    def __post_init__(self):
        if not self.output:
            raise ValueError("output: required (--output DIR)")
        if self.models and self.methods:
            raise ValueError("--models and --methods exclude each other")
        if not self.models and not self.methods and not self.preset:
            raise ValueError("give either --models (score them) or --methods (train, then score), or a --preset")
        if not self.tasks:
            raise ValueError("tasks: at least one task")
        if self.preset and self.preset not in PRESETS:
            raise ValueError(f"preset: {self.preset!r} is not one of {', '.join(PRESETS)}")
        if not self.seeds:
            raise ValueError("seeds: at least one seed")
        bad = [s for s in self.starts if s not in STARTS]
        if bad or not self.starts:
            raise ValueError(f"starts: {', '.join(bad) or 'none'}: expected model and/or base")
        if self.label_budget < 0 or self.max_steps < 0 or self.epochs <= 0 or self.batch_size < 1:
            raise ValueError("label_budget and max_steps must be >= 0, epochs > 0, batch_size >= 1")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction: must be in [0, 1), got {self.eval_fraction}")
        if self.learning_rate <= 0 or self.max_new_tokens < 1 or self.temperature < 0:
            raise ValueError("learning_rate must be > 0, max_new_tokens >= 1, temperature >= 0")
        if self.num_threads < 0 or self.timeout < 0:
            raise ValueError("num_threads and timeout must be >= 0")
        for name in ("task_option", "set", "sweep"):
            for item in getattr(self, name):
                if "=" not in item:
                    raise ValueError(f"{name}: {item!r} is not KEY=VALUE")


STARTS = ("model", "base")


@dataclass(frozen=True)
class Preset:
    description: str  # what it compares
    claim: str  # what the survey says, to be checked
    fields: dict  # LeaderboardConfig fields it sets (the ones the user left at their defaults)


# The comparisons of the survey's discussion (Wang et al. 2024, "A Comprehensive Survey of LLM Alignment
# Techniques: RLHF, RLAIF, PPO, DPO and More", arXiv 2407.16216, sec. 4/5).
PRESETS = {
    "sft-vs-base": Preset(
        "DPO, IPO, KTO and CPO, each started from the SFT model and from the pre-trained base model, on the same "
        "labelled pairs",
        "KTO and CPO can skip SFT (start from the pre-trained model); DPO and IPO need an SFT model first",
        {"methods": ("dpo", "ipo", "kto", "cpo"), "starts": ("model", "base"),
         "tasks": ("bundled", "preferences")}),
    "ppo-vs-dpo": Preset(
        "PPO and iterative (online) DPO, both judged by a Bradley-Terry reward model trained on the pairs, against "
        "offline DPO on the pairs themselves; a beta / KL-coefficient sweep draws the reward-KL frontier",
        "PPO (online RL with a reward model) can beat DPO when tuned; iterative/online DPO closes much of the gap to PPO",
        {"methods": ("dpo", "iterative-dpo", "ppo"), "tasks": ("bundled", "preferences"),
         # iterative DPO: 3 rounds of 200 prompts x 4 samples (docs/results/bundled_task.md g); PPO: 40
         # rollout batches of 16 prompts, about one pass over the training prompts
         "set": ("iterative-dpo.prompts_per_iteration=200", "iterative-dpo.temperature=0.7",
                 "iterative-dpo.max_new_tokens=48", "ppo.iterations=40", "ppo.prompts_per_step=16",
                 "ppo.max_new_tokens=48"),
         "sweep": ("dpo.beta=0.03,1.0", "ppo.kl_coef=0.2")}),
}


def apply_preset(cfg: LeaderboardConfig) -> LeaderboardConfig:
    """The preset's fields, where cfg still has the default."""
    if not cfg.preset:
        return cfg
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(cfg)}
    changes = {k: v for k, v in PRESETS[cfg.preset].fields.items() if getattr(cfg, k) == defaults[k]}
    return dataclasses.replace(cfg, **changes)
