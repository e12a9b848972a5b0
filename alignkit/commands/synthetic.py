"""The bundled synthetic task's commands (alignkit/synthetic): `alignkit quickstart` and
`alignkit synthetic base|export|compare|unlearn` (`alignkit world ...` is the same group).

The experiments' own configs (QuickstartConfig, CompareConfig, UnlearnConfig, LabelerConfig) are the
flags, with the choices and ranges checked here; `--mini` (hidden) swaps in the seconds-long miniature
of each experiment and of the task's world, for tests.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import option
from ..synthetic.base import TINY_WORLD, WorldConfig
from ..synthetic.experiments import MINI_COMPARE, CompareConfig
from ..synthetic.labelers import LabelerConfig
from ..synthetic.quickstart import MINI, QuickstartConfig
from ..synthetic.unlearn import MINI_UNLEARN, UnlearnConfig
from .common import Options, add_command, add_group, at_least, one_of, required


@dataclass(frozen=True)
class TaskOptions:
    cache_dir: str = ""  # where the task's base model is cached ("": $ALIGNKIT_CACHE, else ~/.cache/alignkit)
    mini: bool = field(default=False, metadata={"hidden": True})  # a seconds-long miniature (tiny world and sizes), for tests

    def world(self) -> WorldConfig:
        return TINY_WORLD if self.mini else WorldConfig()


@dataclass(frozen=True)
class RunOptions(TaskOptions):
    base_model: str = ""  # start from this SFT model folder instead of the task's own base model
    no_progress: bool = False  # no progress bars


def _mini(cls, mini_cfg):
    """The base layer of `cls`'s config: the miniature's values under --mini."""
    return lambda c, built: dataclasses.asdict(mini_cfg) if c is cls and built and built[0].mini else {}


def _plain(base_cls, cfg):
    """A checked subclass instance as its library class (the experiments take those)."""
    return base_cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(base_cls)})


def _at_least_one(cfg, *names):
    for n in names:
        at_least(cfg, n, 1)


# ---- quickstart ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuickstartOptions(RunOptions):
    output: str = ""  # keep the models here and write results.json ("": a temporary folder)


@dataclass(frozen=True)
class QuickstartSettings(QuickstartConfig):
    def __post_init__(self):
        _at_least_one(self, "train_prompts", "max_new_tokens", "batch_size", "eval_prompts")
        at_least(self, "samples_per_prompt", 2)
        at_least(self, "labeler_temperature", 0.0)
        at_least(self, "labeler_noise", 0.0, 1.0)
        for n in ("beta", "learning_rate", "epochs"):
            if getattr(self, n) <= 0:
                raise ValueError(f"{n}: must be > 0, got {getattr(self, n)!r}")


def cmd_quickstart(opts: QuickstartOptions, settings: QuickstartSettings) -> int:
    from ..synthetic.quickstart import run_quickstart
    run_quickstart(_plain(QuickstartConfig, settings), opts.world(), output=opts.output or None,
                   cache_dir=opts.cache_dir or None, progress=not opts.no_progress, base_model=opts.base_model or None)
    return 0


# ---- base -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseOptions(TaskOptions):
    output: str = ""  # also copy the model folder here
    force: bool = False  # rebuild even when a cached model exists


def cmd_base(opts: BaseOptions) -> int:
    import shutil
    from ..synthetic.base import build_base
    path = build_base(opts.world(), cache_dir=opts.cache_dir or None, force=opts.force)
    if opts.output:
        shutil.copytree(path, opts.output, dirs_exist_ok=True)
        print(f"copied the base model to {opts.output}")
    else:
        print(path)
    return 0


# ---- export -----------------------------------------------------------------------------------
EXPORT_SOURCES = ("corpus", "base")


@dataclass(frozen=True)
class ExportOptions(TaskOptions):
    output: str = ""  # folder to write the files to
    n_prompts: int = option(400, ge=1)  # training prompts to label
    samples_per_prompt: int = option(4, ge=1)  # candidates per prompt
    source: str = option("corpus", choices=EXPORT_SOURCES)  # candidates: corpus (the corpus's behaviour mix; fast) | base (sampled from the base model)
    seed: int = 0  # prompt draw, candidates and the labeler's random stream

    def __post_init__(self):
        required(self, "output")
        one_of(self, "source", EXPORT_SOURCES)
        _at_least_one(self, "n_prompts", "samples_per_prompt")


def cmd_export(opts: ExportOptions, labeler: LabelerConfig) -> int:
    from ..synthetic.export import export_world
    export_world(opts.output, n_prompts=opts.n_prompts, k=opts.samples_per_prompt, source=opts.source,
                 labeler=dataclasses.replace(labeler, seed=opts.seed), seed=opts.seed, world=opts.world(),
                 cache_dir=opts.cache_dir or None)
    return 0


# ---- compare ----------------------------------------------------------------------------------
COMPARE_SOURCES = ("model", "corpus")
PAIRS = ("best-worst", "disjoint")


@dataclass(frozen=True)
class CompareOptions(RunOptions):
    methods: str = ""  # comma-separated losses, e.g. dpo,simpo,kto; LABEL=METHOD adds a second arm of one method
    output: str = ""  # folder for candidates, models, results.json, results.md
    set: tuple[str, ...] = field(default=(), metadata={"repeat": True})  # a run or method option for every arm (KEY=VALUE) or one arm (ARM.KEY=VALUE); repeatable

    def __post_init__(self):
        required(self, "methods", "output")


@dataclass(frozen=True)
class CompareSettings(CompareConfig):
    seeds: tuple[int, ...] = CompareConfig.seeds  # comma-separated seeds, one full run each; tables report the median

    def __post_init__(self):
        one_of(self, "source", COMPARE_SOURCES)
        one_of(self, "pairs", PAIRS)
        _at_least_one(self, "train_prompts", "samples_per_prompt", "max_new_tokens", "eval_prompts")
        if not self.seeds:
            raise ValueError("seeds: at least one seed")


@dataclass(frozen=True)
class CompareLabeler(LabelerConfig):
    temperature: float = option(0.3, ge=0)  # Bradley-Terry / Plackett-Luce / thumbs temperature on utility gaps; 0 = deterministic


def cmd_compare(opts: CompareOptions, settings: CompareSettings, labeler: CompareLabeler) -> int:
    from ..synthetic.experiments import parse_arms, parse_sets, run_compare
    glob, arms = parse_sets(list(opts.set), parse_arms(opts.methods))
    cfg = dataclasses.replace(_plain(CompareConfig, settings), train={**settings.train, **glob})
    run_compare(arms, cfg, _plain(LabelerConfig, labeler), output=opts.output, world=opts.world(),
                cache_dir=opts.cache_dir or None, base_model=opts.base_model or None, progress=not opts.no_progress)
    return 0


# ---- unlearn ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnlearnOptions(RunOptions):
    output: str = ""  # folder for the NPO model, unlearn.json and unlearn.md
    set: tuple[str, ...] = field(default=(), metadata={"repeat": True})  # an NPO run or method option (KEY=VALUE); repeatable

    def __post_init__(self):
        required(self, "output")


@dataclass(frozen=True)
class UnlearnSettings(UnlearnConfig):
    def __post_init__(self):
        one_of(self, "source", COMPARE_SOURCES)
        _at_least_one(self, "forget_prompts", "heldout_prompts", "samples_per_prompt", "max_new_tokens",
                      "retain_prompts", "eval_prompts")


def cmd_unlearn(opts: UnlearnOptions, settings: UnlearnSettings) -> int:
    from ..synthetic.experiments import parse_sets
    from ..synthetic.unlearn import run_unlearn
    glob, _ = parse_sets(list(opts.set), [])
    cfg = dataclasses.replace(_plain(UnlearnConfig, settings), train={**settings.train, **glob})
    run_unlearn(cfg, output=opts.output, world=opts.world(), cache_dir=opts.cache_dir or None,
                base_model=opts.base_model or None, progress=not opts.no_progress)
    return 0


def register(sub):
    add_command(
        sub, "quickstart", cmd_quickstart, Options(QuickstartOptions, "quickstart options"),
        Options(QuickstartSettings, "the loop's settings"), base=_mini(QuickstartSettings, MINI),
        help="the whole loop on the bundled task: base model, sampling, labels, DPO, before/after table",
        description="Build (or reuse) the bundled task's SFT'd tiny Llama, sample responses on training prompts, "
                    "label best-vs-worst pairs with a simulated labeler on the ground-truth reward r*, align with "
                    "DPO, and compare SFT and aligned models on held-out prompts under r*: mean reward, win rate, "
                    "harmlessness, over-refusal, accuracy, KL, length. About 5-10 minutes on two CPU cores the "
                    "first time (the base model is cached afterwards).")

    _, task = add_group(sub, "synthetic", aliases=("world",),
                        help="the bundled synthetic task (also `alignkit world`): its base model, data, experiments",
                        description="The bundled alignment task with a known reward: prompts in four families "
                                    "(arithmetic, harmful, benign-but-risky-looking, open requests), a ground-truth "
                                    "reward r*, simulated labelers and a tiny base model.")
    add_command(task, "base", cmd_base, Options(BaseOptions, "base options"),
                help="build (or reuse) the task's pre-trained + SFT'd tiny Llama",
                description="Pre-train a tiny Llama on the task's generated corpus, then SFT it (about 3 minutes on "
                            "two CPU cores); cached under the cache folder, keyed by its config.")
    add_command(task, "export", cmd_export, Options(ExportOptions, "export options"),
                Options(LabelerConfig, "simulated labeler", skip=("seed",)),
                help="write prompts and labelled data (pairwise, binary, listwise, scored, SFT) as TRL JSONL",
                description="Write the task's prompts and simulated-labeler data in TRL-compatible JSONL: "
                            "prompts_{train,heldout}.jsonl, sft.jsonl, pairwise.jsonl, binary.jsonl, "
                            "listwise.jsonl, scored.jsonl and manifest.json.")
    add_command(task, "compare", cmd_compare, Options(CompareOptions, "compare options"),
                Options(CompareSettings, "the comparison's settings", skip=("train",)),
                Options(CompareLabeler, "simulated labeler", skip=("score_noise", "seed", "population")),
                base=_mini(CompareSettings, MINI_COMPARE),
                help="train several methods on the same on-policy labels; compare them under r*",
                description="Sample K responses per training prompt from the SFT model once per seed (cached in the "
                            "output folder), label them with a simulated labeler in each method's feedback shape "
                            "(pairwise, binary, listwise, negative-only) at one label budget, train every method, "
                            "evaluate each against the SFT model on held-out prompts, and write results.json and "
                            "results.md (median over seeds). Finished arms are reused when rerun.")
    add_command(task, "unlearn", cmd_unlearn, Options(UnlearnOptions, "unlearn options"),
                Options(UnlearnSettings, "the experiment's settings", skip=("train",)),
                base=_mini(UnlearnSettings, MINI_UNLEARN),
                help="NPO on the SFT model's harmful compliances: forget-set likelihood vs retained accuracy",
                description="Sample the SFT model on harmful training prompts, keep its harmful compliances as a "
                            "forget set, unlearn them with NPO, and report the forget set's log-likelihood "
                            "(trained-on and held-out prompts) before and after, the answer accuracy on held-out "
                            "arithmetic prompts, and evaluate_policy against the SFT model. Writes unlearn.json "
                            "and unlearn.md.")
