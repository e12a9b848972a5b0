"""Every flag is validated where it is declared (alignkit/config.py `option`): each numeric field of
every config that becomes flags (TrainConfig, every method's config, every command's) declares its
range, each choice field its choices, or is in ALLOWED with the reason any value is fine. Out-of-range
values and wrong choices are one-line ConfigErrors naming the flag as typed. Then the rows of the
first-day table run as written on a tiny model (64 positions): each exits 2 with one line naming the
flag. Then fp16/QLoRA's device checks (with a fake device), --gradient-checkpointing (same loss as
without), the context checks and the deprecated sampling-flag aliases."""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import typing

import pytest
import torch

import alignkit.config as C
from alignkit.errors import ConfigError

# a field whose every value is meaningful: (class name, field) -> why no range is declared
ALLOWED = {
    ("TrainConfig", "seed"): "a seed: every int seeds torch and random",
    ("PolicyEvalConfig", "seed"): "a seed",
    ("PreferencesConfig", "seed"): "a seed", ("RewardEvalConfig", "seed"): "a seed",
    ("TinyModelConfig", "seed"): "a seed", ("ExportOptions", "seed"): "a seed",
    ("LabelerConfig", "seed"): "a seed", ("CompareLabeler", "seed"): "a seed",
    ("QuickstartSettings", "seed"): "a seed", ("UnlearnSettings", "seed"): "a seed",
    ("CompareSettings", "seeds"): "seeds", ("LeaderboardConfig", "seeds"): "seeds",
    ("ReviseConfig", "seed"): "a seed", ("PreferenceConfig", "seed"): "a seed",
    ("LabelConfig", "seed"): "a seed", ("MergeConfig", "seed"): "a seed",
    ("GenerateSettings", "seed"): "a seed", ("CringeConfig", "sample_seed"): "a seed",
    ("BetaDPOConfig", "filter_seed"): "a seed",
    ("LabelerConfig", "length_bias"): "a utility bonus per word: negative prefers shorter answers",
    ("CompareLabeler", "length_bias"): "a utility bonus per word: negative prefers shorter answers",
    ("LabelerConfig", "threshold"): "a utility threshold on the task's real-valued utility scale",
    ("CompareLabeler", "threshold"): "a utility threshold on the task's real-valued utility scale",
    ("LabelConfig", "threshold"): "a score threshold on the judge's own scale",
    ("IterativeCringeConfig", "bad_below"): "a score threshold on the judge's own scale (unset: per prompt)",
    ("MergeConfig", "weights"): "merge weights: negative weights subtract a model's delta (task arithmetic)",
    # free text whose help lists examples, checked where it is read (a principle name, a preset name)
    ("ShowOptions", "principles"): "harmless | helpful | all | NAME[+NAME...]: names are checked against the constitution file",
    ("ReviseConfig", "principles"): "as above", ("PreferenceConfig", "principles"): "as above",
    ("LeaderboardConfig", "preset"): "'' or a preset name; checked in __post_init__ against PRESETS",
}


def config_classes() -> dict:
    """Every config class that becomes flags -> the command it belongs to: those `add_dataclass_args`
    is called with while every command's parser and every method's `train` parser is built, plus
    TrainConfig and every method's config."""
    seen = {}
    orig = C.add_dataclass_args

    def spy(parser, cls, *a, **k):
        seen.setdefault(cls, parser.prog)
        return orig(parser, cls, *a, **k)

    patched = [m for n, m in list(sys.modules.items())
               if n.startswith("alignkit") and getattr(m, "add_dataclass_args", None) is orig]
    for m in patched + [C]:
        m.add_dataclass_args = spy
    try:
        from alignkit.commands import build_parser
        from alignkit.commands.train import train_parser
        from alignkit.registry import METHODS
        build_parser()
        for name in METHODS:
            train_parser(name, [])
    finally:
        for m in patched + [C]:
            m.add_dataclass_args = orig
    from alignkit.train.config import TrainConfig
    seen.setdefault(TrainConfig, "alignkit train")
    for name, m in METHODS.items():
        seen.setdefault(m.config, f"alignkit train {name}")
    return seen


CLASSES = config_classes()


def _scalar_type(cls, f):
    t = C._field_type(cls, f)
    if typing.get_origin(t) in (tuple, list):
        return (typing.get_args(t) or (str,))[0], True
    return t, False


def declared_fields():
    """(cls, field, base type, is a tuple) for every field with a declared range or choices."""
    out = []
    for cls in CLASSES:
        for f in dataclasses.fields(cls):
            if any(k in f.metadata for k in ("ge", "gt", "le", "lt", "choices")):
                t, many = _scalar_type(cls, f)
                out.append(pytest.param(cls, f, t, many, id=f"{cls.__name__}.{f.name}"))
    return out


def test_the_walk_finds_every_kind_of_config():
    names = {c.__name__ for c in CLASSES}
    assert {"TrainConfig", "DPOConfig", "GRPOConfig", "NashMDConfig", "IterativeConfig", "RSORecipeConfig",
            "PAFTConfig", "RMConfig", "ServeConfig", "TinyModelConfig", "LabelConfig", "MergeConfig",
            "LeaderboardConfig", "GenerateSettings"} <= names
    assert len(CLASSES) >= 60


def test_every_numeric_or_choice_field_declares_what_it_accepts():
    missing = []
    for cls in CLASSES:
        docs = C.field_docs(cls)
        for f in dataclasses.fields(cls):
            if any(k in f.metadata for k in ("ge", "gt", "le", "lt", "choices")) or (cls.__name__, f.name) in ALLOWED:
                continue
            t, _ = _scalar_type(cls, f)
            lists_choices = t is str and re.search(r"\w \| \w", docs.get(f.name, ""))
            if t in (int, float) or lists_choices:
                missing.append(f"{cls.__module__}.{cls.__name__}.{f.name}")
    assert not missing, "declare option(..., ge=/gt=/choices=) or justify in ALLOWED: " + ", ".join(missing)


def test_allowed_entries_exist():
    fields = {(c.__name__, f.name) for c in CLASSES for f in dataclasses.fields(c)}
    assert not set(ALLOWED) - fields, set(ALLOWED) - fields


def _bad_values(f, t) -> list:
    m = f.metadata
    if "choices" in m:
        return ["not-a-choice" if t is str else 987654]
    step = 1 if t is int else 0.5
    bad = []
    if "ge" in m:
        bad.append(m["ge"] - step)
    if "gt" in m:
        bad.append(m["gt"])
    if "le" in m:
        bad.append(m["le"] + step)
    if "lt" in m:
        bad.append(m["lt"])
    return [t(v) if t is int else float(v) for v in bad]


@pytest.mark.parametrize("cls,f,t,many", declared_fields())
def test_an_out_of_range_value_or_wrong_choice_is_one_line_naming_the_flag(cls, f, t, many):
    assert C.check_value(f, f.default) is None, f"the default {f.default!r} breaks its own declaration"
    flag = "--" + f.name.replace("_", "-")
    for bad in _bad_values(f, t):
        value = (bad,) if many else bad
        with pytest.raises(ConfigError) as e:
            C.build_config(cls, {f.name: value}, where="test")
        msg = str(e.value)
        assert "\n" not in msg and f"{flag} must be" in msg and repr(bad) in msg, msg
        assert C.accepted(f) in msg  # the accepted values
    for edge in ("ge", "le"):  # a closed bound is accepted
        if edge in f.metadata:
            assert C.check_value(f, t(f.metadata[edge])) is None


def test_help_shows_the_accepted_values(capsys):
    from alignkit.cli import main
    with pytest.raises(SystemExit):
        main(["train", "dpo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--lr-scheduler {linear,cosine,constant}" in out and "--dtype {fp32,bf16,fp16}" in out
    assert "--report-to {none,tensorboard,wandb}" in out
    assert "(default: 8; >= 1)" in out and "(default: 0.1; in [0, 1))" in out  # --batch-size, --eval-fraction
    assert "(default: 0.1; > 0)" in out  # --beta


# ---- the first-day table, run as written -----------------------------------------------------------
def cli(argv: list) -> int:
    """alignkit's exit status for argv (a usage error exits through argparse with status 2)."""
    from alignkit.cli import main
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def small_context(tmp_path_factory):
    """A tiny model with 64 positions and a pairwise file."""
    from conftest import make_pairs, synthetic_texts

    from alignkit.models.tiny import TinyLlamaConfig, make_tiny_model
    d = tmp_path_factory.mktemp("ctx64")
    model = make_tiny_model(synthetic_texts(), d / "model", vocab_size=300,
                            cfg=TinyLlamaConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                                max_position_embeddings=64))
    data = d / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in make_pairs(12)))
    prompts = d / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p.prompt}) + "\n" for p in make_pairs(8)))
    return model, data, prompts, d


ROWS = [  # (flags as the issue wrote them, what the one line names)
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--learning-rate", "-1"], "--learning-rate must be > 0, got -1.0"),
    (["--num-threads", "-2"], "--num-threads must be >= 0, got -2"),
    (["--grad-accum", "0"], "--grad-accum must be >= 1, got 0"),
    (["--max-steps", "-3"], "--max-steps must be >= 0, got -3"),
    (["--epochs", "0"], "--epochs must be > 0, got 0.0"),
    (["--beta", "-1"], "--beta must be > 0, got -1.0"),
    (["--lora-r", "-4"], "--lora-r must be >= 0, got -4"),
    (["--lr-scheduler", "foo"], "--lr-scheduler"),
    (["--report-to", "mlflow"], "--report-to"),
    (["--eval-fraction", "1.5"], "--eval-fraction must be in [0, 1), got 1.5"),
    (["--batch-size", "eight"], "--batch-size"),
    (["--load-in-4bit"], "--load-in-4bit needs --lora-r > 0"),
    (["--max-length", "2048"], "--max-length 2048 is past the context"),
]


@pytest.mark.parametrize("flags,names", ROWS, ids=[" ".join(r[0]) for r in ROWS])
def test_first_day_rows_exit_2_with_one_line(small_context, tmp_path, capsys, flags, names):
    from alignkit.cli import main
    model, data, _, _ = small_context
    out = tmp_path / "out"
    rc = cli(["train", "dpo", "--model", str(model), "--data", str(data), "--output", str(out),
               "--num-threads", "1", "--progress", "false", "--max-steps", "1", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and names in err[0], err
    assert not (out / "model.safetensors").exists() and not (out / "summary.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs on CUDA")
def test_fp16_and_4bit_on_cpu_are_one_line_errors(small_context, tmp_path, capsys):
    from alignkit.cli import main
    model, data, _, _ = small_context
    for flags, text in ((["--dtype", "fp16"], "--dtype fp16 needs CUDA"),
                        (["--lora-r", "4", "--load-in-4bit"], "--load-in-4bit needs CUDA")):
        rc = main(["train", "dpo", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "o"),
                   "--num-threads", "1", "--progress", "false", *flags])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and text in err[0], err


def test_precision_selection_with_a_fake_device():
    from alignkit.train.config import TrainConfig
    from alignkit.train.precision import autocast_dtype, check_device, mixed_precision, quantization_config
    cuda, cpu = (lambda: True), (lambda: False)
    fp16 = TrainConfig(dtype="fp16")
    assert mixed_precision(fp16) == "fp16" and autocast_dtype(fp16) is torch.float16
    assert mixed_precision(TrainConfig(bf16=True)) == "bf16" and mixed_precision(TrainConfig()) == "no"
    assert autocast_dtype(TrainConfig()) is None
    check_device(fp16, cuda_available=cuda, sharded=False)  # wired on CUDA
    with pytest.raises(ConfigError, match="--dtype fp16 needs CUDA"):
        check_device(fp16, cuda_available=cpu, sharded=False)
    with pytest.raises(ConfigError, match="under FSDP or DeepSpeed use --dtype bf16"):
        check_device(fp16, cuda_available=cuda, sharded=True)
    q = TrainConfig(lora_r=8, load_in_4bit=True)
    check_device(q, cuda_available=cuda, has_bitsandbytes=lambda: True, sharded=False)
    with pytest.raises(ConfigError, match="pip install bitsandbytes"):
        check_device(q, cuda_available=cuda, has_bitsandbytes=lambda: False, sharded=False)
    with pytest.raises(ConfigError, match="--load-in-4bit needs CUDA"):
        check_device(q, cuda_available=cpu, has_bitsandbytes=lambda: True, sharded=False)
    with pytest.raises(ConfigError, match="--load-in-4bit needs --lora-r > 0"):
        C.build_config(TrainConfig, {"load_in_4bit": True}, where="test")
    with pytest.raises(ConfigError, match="--bf16 and --dtype fp16 exclude each other"):
        C.build_config(TrainConfig, {"bf16": True, "dtype": "fp16"}, where="test")
    assert quantization_config(TrainConfig()) is None
    bnb = quantization_config(q)  # QLoRA's NF4 with double quantization and bf16 compute
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16


def test_report_to_a_missing_logger_names_the_extra():
    from alignkit.train.engine import check_reporter
    check_reporter("none")
    for name in ("tensorboard", "wandb"):
        try:
            check_reporter(name)
        except ConfigError as e:
            assert f"pip install 'alignkit[{name}]'" in str(e) and "\n" not in str(e)
    text = open(__file__.replace("tests/test_flag_validation.py", "pyproject.toml")).read()
    assert re.search(r"^tensorboard = \[", text, re.M) and re.search(r"^wandb = \[", text, re.M)


# ---- gradient checkpointing ------------------------------------------------------------------------
def _losses(out) -> list:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("split") == "train"]


@pytest.mark.parametrize("lora", [0, 4])
def test_gradient_checkpointing_trains_with_the_same_losses(small_context, tmp_path, lora):
    from alignkit.api import run_train
    model, data, _, _ = small_context
    common = dict(max_steps=3, batch_size=4, learning_rate=1e-3, progress=False, eval_fraction=0, seed=0,
                  num_threads=1, max_length=64, lora_r=lora, ref_cache="memory")
    losses = []
    for gc in (False, True):
        out = tmp_path / f"gc{gc}"
        run_train("dpo", str(model), str(data), str(out), {**common, "gradient_checkpointing": gc},
                  log=lambda *a, **k: None)
        losses.append(_losses(out))
    assert len(losses[0]) == 3 and losses[0] != [losses[0][0]] * 3  # it trains
    assert losses[1] == pytest.approx(losses[0], rel=1e-5, abs=1e-6)


def test_gradient_checkpointing_is_switched_on(small_context):
    from alignkit.models.loading import load_causal_lm
    from alignkit.train.precision import enable_checkpointing
    model = load_causal_lm(str(small_context[0]))
    enable_checkpointing(model, lora=True)
    on = getattr(model, "is_activation_checkpointing", None)
    assert (on if on is not None else model.is_gradient_checkpointing) and model.config.use_cache is False
    emb_out = model.get_input_embeddings()(torch.tensor([[1, 2]]))
    assert emb_out.requires_grad  # enable_input_require_grads: LoRA's frozen embeddings feed checkpointed blocks


# ---- context length ----------------------------------------------------------------------------------
def test_context_checks(small_context, tmp_path, capsys):
    from alignkit.cli import main
    from alignkit.models.context import check_max_length, check_prompts_fit, context_length
    from transformers import AutoConfig
    model, data, prompts, _ = small_context
    cfg = AutoConfig.from_pretrained(str(model))
    assert context_length(cfg) == 64
    notes = []
    assert check_max_length(cfg, 512, "m", default=512, log=notes.append) == 64 and "the default 512" in notes[0]
    assert check_max_length(cfg, 48, "m", default=512) == 48
    with pytest.raises(ConfigError, match=r"--max-length 100 is past the context of m \(64 positions\)"):
        check_max_length(cfg, 100, "m", default=512)
    with pytest.raises(ConfigError, match="--max-new-tokens 60: the longest prompt .10 tokens. plus 60"):
        check_prompts_fit(cfg, [4, 10], 60)
    check_prompts_fit(cfg, [4, 10], 54)
    # RL: --max-new-tokens 600 on a 64-position model
    rc = main(["train", "grpo", "--model", str(model), "--data", str(prompts), "--output", str(tmp_path / "g"),
               "--reward", "rule:words", "--num-threads", "1", "--progress", "false", "--max-new-tokens", "600"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--max-new-tokens 600 leaves no room for the prompt" in err[0], err
    # an iterative recipe's sampling: prompt + new tokens past the context
    rc = main(["train", "iterative-dpo", "--model", str(model), "--data", str(prompts), "--output",
               str(tmp_path / "it"), "--reward", "rule:words", "--num-threads", "1", "--progress", "false",
               "--max-new-tokens", "63", "--iterations", "1", "--max-length", "64"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--max-new-tokens 63: the longest prompt" in err[0], err


# ---- one naming of the sampling flags; the old names still work ------------------------------------
def test_sampling_flags_share_one_naming_and_old_names_are_hidden_aliases(tmp_path, capsys):
    from alignkit.commands.train import train_parser
    from alignkit.registry import METHODS, resolve_job
    sampling = {"samples_per_prompt", "temperature", "max_new_tokens"}
    old = {"num_samples", "sample_temperature", "num_candidates", "sample_max_tokens"}
    for name, m in METHODS.items():
        fields = {f.name for f in dataclasses.fields(m.config)}
        assert not fields & old, (name, fields & old)
        if m.feedback == "online" and m.theme == "RL" or name in ("iterative-dpo", "rso", "self-rewarding", "dno"):
            assert "samples_per_prompt" in fields and "max_new_tokens" in fields, name
    for name in ("grpo", "rloo", "nash-md", "iterative-dpo", "rso"):
        text = train_parser(name, []).format_help()
        assert "--samples-per-prompt" in text and "--num-samples" not in text and "--sample-temperature" not in text
    assert resolve_job("grpo", "m", None, "o", {"num_samples": 3}).method_cfg.samples_per_prompt == 3
    assert resolve_job("iterative-dpo", "m", None, "o", {"sample_temperature": 0.3}).method_cfg.temperature == 0.3
    assert resolve_job("rso", "m", None, "o", {"num_candidates": 6}).method_cfg.samples_per_prompt == 6
    assert resolve_job("d2o", "m", None, "o", {"sample_max_tokens": 9}).method_cfg.max_new_tokens == 9
    y = tmp_path / "old.yaml"
    y.write_text("num_samples: 5\n")
    assert resolve_job("nash-md", "m", None, "o", {}, str(y)).method_cfg.samples_per_prompt == 5
    with pytest.raises(ConfigError, match="--samples-per-prompt must be >= 2, got 1"):
        resolve_job("grpo", "m", None, "o", {"num_samples": 1})
    args = train_parser("grpo", []).parse_args(["grpo", "--num-samples", "4", "--model", "m", "--output", "o"])
    assert args.samples_per_prompt == 4


def test_a_wrong_type_names_the_flag():
    from alignkit.train.config import TrainConfig
    with pytest.raises(ConfigError, match="--batch-size: cannot read 'eight' as int"):
        C.build_config(TrainConfig, {"batch_size": "eight"}, where="run.yaml")


# ---- the engine's fp16 path, with a CPU GradScaler standing in for accelerate's CUDA one -------------
def _scaled_engine(tmp_path, scale: float):
    from accelerate import Accelerator

    from alignkit.train.config import TrainConfig
    from alignkit.train.engine import Engine
    from accelerate.state import AcceleratorState
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    AcceleratorState._reset_state()
    acc = Accelerator(cpu=True, mixed_precision="fp16" if scale else "no")
    if scale:  # what accelerate sets up for fp16 on CUDA: a GradScaler that backward, unscale and step use
        acc.scaler = torch.amp.GradScaler("cpu", init_scale=scale)
    engine = Engine(model, TrainConfig(learning_rate=0.1, max_grad_norm=0.5, fused_adamw=False), tmp_path, 5,
                    accelerator=acc)
    acc.native_amp = bool(scale)  # after prepare: the forward stays fp32 here (CPU), only the scaling is tested
    return engine, model


def test_fp16_engine_unscales_before_clipping_and_skips_an_overflow(tmp_path):
    from alignkit.losses.base import LossOutput
    x = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])

    def compute(model):
        return lambda mb: LossOutput(loss=(model(x).squeeze(-1) - 1.0) ** 2)
    plain, m0 = _scaled_engine(tmp_path / "a", 0)
    scaled, m1 = _scaled_engine(tmp_path / "b", 2.0 ** 12)
    assert scaled.fp16 and not plain.fp16
    r0, r1 = plain.optimizer_step([None], compute(m0)), scaled.optimizer_step([None], compute(m1))
    # the scaled run's gradient norm and update are those of the unscaled loss (S divided out first)
    assert r1["grad_norm"] == pytest.approx(r0["grad_norm"], rel=1e-5) and scaled.step == plain.step == 1
    for p0, p1 in zip(m0.parameters(), m1.parameters()):
        assert torch.allclose(p0, p1, atol=1e-6)
    # a finite loss whose scaled gradient overflows: no update, no step counted, the scale lowered
    before = [p.detach().clone() for p in m1.parameters()]
    s_before = scaled.acc.scaler.get_scale()
    r = scaled.optimizer_step([None], lambda mb: LossOutput(loss=torch.sqrt(m1.weight.sum() - m1.weight.sum().detach()).reshape(1)))
    assert r["fp16_overflow"] == 1.0 and scaled.step == 1 and scaled.nonfinite_in_row == 0
    assert scaled.acc.scaler.get_scale() < s_before
    assert all(torch.equal(a, b) for a, b in zip(before, m1.parameters()))
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state()  # the next test's accelerator starts afresh


# ---- every accepted choice of --lr-scheduler and --report-to is used -----------------------------
def test_every_lr_scheduler_choice_has_its_own_schedule():
    import math

    from alignkit.train.config import TrainConfig
    from alignkit.train.engine import lr_lambda
    choices = dict((f.name, f) for f in dataclasses.fields(TrainConfig))["lr_scheduler"].metadata["choices"]
    at_step_2_of_10 = {kind: lr_lambda(kind, 0, 10)(2) for kind in choices}
    assert at_step_2_of_10 == pytest.approx({"linear": 0.8, "cosine": 0.5 * (1 + math.cos(0.2 * math.pi)),
                                             "constant": 1.0})
    assert lr_lambda("cosine", 4, 10)(1) == pytest.approx(0.5)  # linear warm-up first, whatever the kind


def test_report_to_writes_to_the_logger(tmp_path, monkeypatch):
    """tensorboard and wandb stand-ins record what MetricLog hands them (neither package is installed here)."""
    import types

    from alignkit.train.engine import MetricLog
    calls = []

    class Writer:
        def __init__(self, logdir):
            calls.append(("tb-dir", logdir))

        def add_scalar(self, tag, value, step):
            calls.append(("tb", tag, value, step))

        def flush(self):
            calls.append(("tb-flush",))
    tb = types.ModuleType("torch.utils.tensorboard")
    tb.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", tb)
    wandb = types.ModuleType("wandb")
    run = types.SimpleNamespace(log=lambda d, step: calls.append(("wandb", d, step)))
    wandb.init = lambda **kw: calls.append(("wandb-init", kw["project"])) or run
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    for kind in ("tensorboard", "wandb"):
        (tmp_path / kind).mkdir()
        log = MetricLog(tmp_path / kind, kind, True, {"seed": 0})
        log.write(3, "train", {"loss": 0.5, "note": "text"})
    assert ("tb", "train/loss", 0.5, 3) in calls and ("tb-flush",) in calls
    assert ("wandb-init", "alignkit") in calls and ("wandb", {"train/loss": 0.5, "train/note": "text"}, 3) in calls
    assert json.loads((tmp_path / "wandb" / "metrics.jsonl").read_text())["loss"] == 0.5
