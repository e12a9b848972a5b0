"""Model merging: each operation against hand-computed values, the streaming merge against the same
formula on whole state dicts, the output loaded by transformers, LoRA adapters against their
merge_and_unload'ed models, and the one-line errors."""
import argparse
import copy
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from alignkit.errors import AlignkitError, ConfigError, ModelLoadError
from alignkit.merge import ops
from alignkit.merge.config import MergeConfig
from alignkit.merge.run import dare_generator, merge_tensor, run_merge
from alignkit.merge.sparsity import base_snapshot, l1_delta_penalty, l1_delta_sparsity

T = torch.tensor
quiet = lambda *a: None  # noqa: E731


def close(a, b, tol=1e-6):
    return torch.allclose(a, b, atol=tol, rtol=0)


# ---------------------------------------------------------------- operations on hand-made tensors
def test_task_arithmetic_by_hand():
    base, d1, d2 = T([1., 2., 3.]), T([1., 0., -1.]), T([0., 2., 2.])
    # base + 2 * (1 * d1 + 0.5 * d2) = [1, 2, 3] + 2 * [1, 1, 0]
    assert close(ops.task_arithmetic(base, [d1, d2], (1.0, 0.5), scale=2.0), T([3., 4., 3.]))
    assert close(ops.task_arithmetic(base, [d1], (-1.0,)), T([0., 2., 4.]))  # negation forgets a task


def test_linear_by_hand():
    # (1 * [1, 2] + 3 * [3, 6]) / 4
    assert close(ops.linear([T([1., 2.]), T([3., 6.])], (1.0, 3.0)), T([2.5, 5.0]))
    with pytest.raises(ValueError):
        ops.linear([T([1.])], (0.0,))


def test_trim_keeps_top_k_by_magnitude():
    d = T([0.1, -0.5, 0.3, -0.05, 0.4])
    assert close(ops.trim(d, 0.4), T([0., -0.5, 0., 0., 0.4]))  # k = 2
    assert close(ops.trim(d, 0.5), T([0., -0.5, 0.3, 0., 0.4]))  # k = ceil(2.5) = 3
    assert close(ops.trim(d, 0.01), T([0., -0.5, 0., 0., 0.]))  # any density > 0 keeps one entry
    assert close(ops.trim(d, 1.0), d)
    m = T([[3., -1.], [0.5, -4.]])  # shape is kept
    assert close(ops.trim(m, 0.5), T([[3., 0.], [0., -4.]]))


def test_ties_by_hand():
    d1 = T([1.0, -2.0, 0.5, 3.0])
    d2 = T([-3.0, -1.0, 0.2, -1.2])
    d3 = T([2.0, 4.0, -0.1, -1.5])
    # density 0.5 keeps 2 of 4 per model: d1 -> [0, -2, 0, 3], d2 -> [-3, 0, 0, -1.2], d3 -> [2, 4, 0, 0]
    # summed: [-1, 2, 0, 1.8] -> elected signs [-, +, 0, +]
    # disjoint means: [-3 (d2 only), 4 (d3; d1's -2 disagrees), 0 (nothing kept), 3 (d1; d2's -1.2 disagrees)]
    base = torch.ones(4)
    out = ops.ties(base, [d1, d2, d3], (1.0, 1.0, 1.0), density=0.5, scale=0.5)
    assert close(out, base + 0.5 * T([-3.0, 4.0, 0.0, 3.0]))
    # no trimming: sums [0, 1, 0.6, 0.3] -> signs [0, +, +, +]; means [0, 4, (0.5+0.2)/2, 3]
    out = ops.ties(torch.zeros(4), [d1, d2, d3], (1.0, 1.0, 1.0), density=1.0)
    assert close(out, T([0.0, 4.0, 0.35, 3.0]))
    assert close(ops.elect_sign([d1, d2, d3], (1.0, 1.0, 1.0)), T([0., 1., 1., 1.]))


def test_ties_weights_and_negation_by_hand():
    d1, d2 = T([1.0, -2.0]), T([-3.0, -1.0])
    # weighted deltas [1, -2], [-6, -2]; sum [-5, -4] -> signs [-, -]
    # entry 0: only d2 agrees: -6 / 2 = -3; entry 1: both: (-2 - 2) / (1 + 2) = -4/3
    out = ops.ties(torch.zeros(2), [d1, d2], (1.0, 2.0), density=1.0)
    assert close(out, T([-3.0, -4.0 / 3.0]))
    # a negative weight negates the task vector before the vote: [2] and [-1] -> sign +, d1 alone: 2 / 2
    assert close(ops.ties(torch.zeros(1), [T([1.0]), T([1.0])], (2.0, -1.0), density=1.0), T([1.0]))


def test_dare_fixed_seed_by_hand():
    # torch.manual_seed(0) draws rand(4) = [0.4963, 0.7682, 0.0885, 0.1320]: with p = 0.5 only entry 1
    # survives (u >= p keeps), rescaled by 1 / (1 - 0.5)
    g = torch.Generator().manual_seed(0)
    assert close(ops.dare(T([2.0, 4.0, 6.0, 8.0]), 0.5, g), T([0.0, 8.0, 0.0, 0.0]))
    # p = 0.25: entries 0 and 1 survive, times 4/3
    g = torch.Generator().manual_seed(0)
    assert close(ops.dare(T([3.0, 6.0, 9.0, 12.0]), 0.25, g), T([4.0, 8.0, 0.0, 0.0]))
    assert close(ops.dare(T([1.0, 2.0]), 0.0), T([1.0, 2.0]))
    with pytest.raises(ValueError):
        ops.dare(T([1.0]), 1.0)


def test_dare_rescaling_keeps_the_expectation():
    d = torch.full((20000,), 0.3)
    out = ops.dare(d, 0.9, torch.Generator().manual_seed(1))
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.1) < 0.01  # drops ~p
    assert close(out[kept], torch.full((int(kept.sum()),), 3.0), 1e-5)  # survivors x 1/(1-p)
    assert abs(out.mean().item() - 0.3) < 0.03  # E[delta_hat] = delta
    again = ops.dare(d, 0.9, torch.Generator().manual_seed(1))
    other = ops.dare(d, 0.9, torch.Generator().manual_seed(2))
    assert torch.equal(out, again) and not torch.equal(out, other)


def test_dare_methods_compose_with_task_arithmetic_and_ties():
    base = T([0.5, 0.5, 0.5, 0.5])
    d1, d2 = T([1.0, -2.0, 0.5, 3.0]), T([-3.0, -1.0, 0.2, -1.2])
    cfg = MergeConfig(method="dare_linear", drop_rate=0.5, seed=7, scale=2.0, models=("a", "b"))
    out, used = merge_tensor(cfg, "w", base, [d1, d2], (1.0, 0.5))
    dropped = [ops.dare(d, 0.5, dare_generator(7, i, "w")) for i, d in enumerate((d1, d2))]
    assert close(out, base + 2.0 * (dropped[0] + 0.5 * dropped[1]))
    assert all(torch.equal(u, x) for u, x in zip(used, dropped))
    cfg = MergeConfig(method="dare_ties", drop_rate=0.5, density=0.5, seed=7, models=("a", "b"))
    out, _ = merge_tensor(cfg, "w", base, [d1, d2], (1.0, 1.0))
    assert close(out, ops.ties(base, dropped, (1.0, 1.0), density=0.5))
    # a tensor's mask depends on (seed, model, name) only
    draw = lambda *key: torch.rand(8, generator=dare_generator(*key))  # noqa: E731
    assert torch.equal(draw(7, 0, "w"), draw(7, 0, "w"))
    assert not torch.equal(draw(7, 0, "w"), draw(7, 1, "w")) and not torch.equal(draw(7, 0, "w"), draw(7, 0, "v"))


# ---------------------------------------------------------------- config
def test_config_validation_is_one_line():
    from alignkit.config import build_config
    with pytest.raises(ConfigError) as e:
        build_config(MergeConfig, {"models": "a,b,c", "weights": "1,2"}, where="merge")
    assert "weights" in str(e.value) and "3 models" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="method"):
        build_config(MergeConfig, {"method": "slerp"})
    with pytest.raises(ConfigError, match="density"):
        build_config(MergeConfig, {"density": 0})
    with pytest.raises(ConfigError, match=r"--drop-rate must be in \[0, 1\), got 1.0"):
        build_config(MergeConfig, {"drop_rate": 1.0})
    with pytest.raises(ConfigError, match="scale"):
        build_config(MergeConfig, {"method": "linear", "scale": 2})
    cfg = build_config(MergeConfig, {"models": "a,b", "weights": "0.5,1"})
    assert cfg.models == ("a", "b") and cfg.weights == (0.5, 1.0) and cfg.model_weights() == (0.5, 1.0)


# ---------------------------------------------------------------- streaming merges of tiny models
def _perturbed(base_dir, out, seed, scale=0.02, shard=None):
    """A 'fine-tuned' model: the base plus seeded noise, saved like any checkpoint (sharded if asked)."""
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(base_dir)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    kw = {"max_shard_size": shard} if shard else {}
    m.save_pretrained(out, safe_serialization=True, **kw)
    return out


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge-inputs")
    a = _perturbed(tiny_model_dir, root / "a", 1)
    b = _perturbed(tiny_model_dir, root / "b", 2, shard="20KB")  # sharded, with an index
    return tiny_model_dir, a, b


def _state(folder):
    from alignkit.merge.sources import ModelFolder
    f = ModelFolder(str(folder))
    return {n: f.tensor(n) for n in f.names()}


def _expected(cfg, base, thetas, weights):
    """The same formula on whole state dicts, in memory."""
    out = {}
    for name, b in base.items():
        if cfg.method == "linear":
            out[name] = ops.linear([t[name] for t in thetas], weights)
            continue
        deltas = [t[name] - b for t in thetas]
        if cfg.method.startswith("dare_"):
            deltas = [ops.dare(d, cfg.drop_rate, dare_generator(cfg.seed, i, name)) for i, d in enumerate(deltas)]
        if cfg.method in ("ties", "dare_ties"):
            out[name] = ops.ties(b, deltas, weights, cfg.density, cfg.scale)
        else:
            out[name] = ops.task_arithmetic(b, deltas, weights, cfg.scale)
    return out


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare_ties", "dare_linear", "linear"])
def test_streaming_merge_equals_in_memory_formula(models, tmp_path, method):
    base_dir, a, b = models
    cfg = MergeConfig(method=method, base=str(base_dir), models=(str(a), str(b)), weights=(0.7, 0.4),
                      scale=1.0 if method == "linear" else 0.8, density=0.3, drop_rate=0.5, seed=3,
                      output=str(tmp_path / "out"))
    summary = run_merge(cfg, log=quiet)
    got = load_file(str(tmp_path / "out" / "model.safetensors"))
    base = _state(base_dir)
    want = _expected(cfg, base, [_state(a), _state(b)], (0.7, 0.4))
    assert set(got) == set(base) and "lm_head.weight" not in got  # tied head stored once, as the base does
    for name in base:
        assert close(got[name], want[name]), name
    info = json.loads((tmp_path / "out" / "merge.json").read_text())
    assert info == {k: v for k, v in summary.items() if k != "output"}
    assert info["method"] == method and [m["weight"] for m in info["models"]] == [0.7, 0.4]
    kept = [m["kept_fraction"] for m in info["models"]]
    if method in ("ties", "dare_ties"):
        assert all(0.25 < k <= 0.35 for k in kept)  # density 0.3 per tensor (ceil adds a little)
    elif method == "dare_linear":
        assert all(0.45 < k < 0.55 for k in kept)  # drop rate 0.5
    else:
        assert all(k == 1.0 for k in kept)
    assert all(m["sparsity"] == 0.0 for m in info["models"])  # noise moved every entry


def test_output_loads_in_transformers(models, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    base_dir, a, b = models
    out = tmp_path / "merged"
    run_merge(MergeConfig(method="ties", base=str(base_dir), models=(str(a), str(b)), output=str(out),
                          max_shard_gb=30e-6), log=quiet)  # 30 KB shards: the output is sharded too
    assert (out / "model.safetensors.index.json").is_file() and not (out / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    merged = {}
    for shard in sorted(out.glob("model-*.safetensors")):
        merged.update(load_file(str(shard)))
    sd = model.state_dict()
    for name, t in merged.items():
        assert torch.equal(sd[name], t), name
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied again
    ids = tok("the cat sat", return_tensors="pt").input_ids
    assert torch.isfinite(model(ids).logits).all()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("model")) == sorted(
        ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
         "chat_template.jinja", "merge.json"])


def test_linear_without_base_and_bf16_output(models, tmp_path):
    from transformers import AutoModelForCausalLM
    _, a, b = models
    out = tmp_path / "soup"
    info = run_merge(MergeConfig(method="linear", models=(str(a), str(b)), output=str(out), dtype="bf16"), log=quiet)
    got = load_file(str(out / "model.safetensors"))
    sa, sb = _state(a), _state(b)
    for name, t in got.items():
        assert t.dtype == torch.bfloat16
        assert close(t.float(), ((sa[name] + sb[name]) / 2).bfloat16().float()), name
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert info["models"][0]["sparsity"] is None  # no base: no delta to measure
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16


def test_merge_from_the_command_line(models, tmp_path):
    from alignkit.merge.commands import register
    base_dir, a, b = models
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    assert "share of each delta tensor kept" in p._subparsers._group_actions[0].choices["merge"].format_help()
    (tmp_path / "m.yaml").write_text("method: ties\ndensity: 0.5\n")
    args = p.parse_args(["merge", "--config", str(tmp_path / "m.yaml"), "--base", str(base_dir),
                         "--models", f"{a},{b}", "--weights", "1,0.5", "--drop-rate", "0.2",
                         "--output", str(tmp_path / "cli")])
    assert args.func(args) == 0
    cfg = json.loads((tmp_path / "cli" / "merge.json").read_text())["config"]
    assert (cfg["method"], cfg["density"], cfg["weights"], cfg["drop_rate"]) == ("ties", 0.5, [1.0, 0.5], 0.2)


# ---------------------------------------------------------------- LoRA adapters
@pytest.mark.parametrize("targets,rslora", [(("q_proj", "v_proj"), False),
                                            (("q_proj", "o_proj", "down_proj", "embed_tokens"), True)])
@pytest.mark.parametrize("method", ["task_arithmetic", "ties"])
def test_lora_adapter_equals_its_merged_full_model(models, tmp_path, targets, rslora, method):
    import warnings
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    base_dir, a, _ = models
    torch.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's notes on tied embeddings
        pm = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(
            r=4, lora_alpha=8, target_modules=list(targets), use_rslora=rslora,
            init_lora_weights=False, alpha_pattern={"o_proj": 2}))  # random B: a non-zero delta
        pm.save_pretrained(tmp_path / "adapter")
        copy.deepcopy(pm).merge_and_unload().save_pretrained(tmp_path / "full", safe_serialization=True)
    common = dict(method=method, base=str(base_dir), weights=(0.8, 0.6), density=0.4)
    for first, out in (("adapter", "via-lora"), ("full", "via-full")):
        run_merge(MergeConfig(models=(str(tmp_path / first), str(a)), output=str(tmp_path / out), **common), log=quiet)
    x = load_file(str(tmp_path / "via-lora" / "model.safetensors"))
    y = load_file(str(tmp_path / "via-full" / "model.safetensors"))
    assert set(x) == set(y)
    for name in x:
        assert close(x[name], y[name], 1e-5), name
    info = json.loads((tmp_path / "via-lora" / "merge.json").read_text())["models"][0]
    assert info["kind"] == "lora" and 0 < info["sparsity"] < 1  # untouched tensors are exact zeros


def test_lora_on_conv1d_layers_gpt2(tmp_path):
    """GPT-2 stores its projections transposed (Conv1D, peft's fan_in_fan_out): the delta is (B @ A)^T."""
    import warnings
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    base = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    base.save_pretrained(tmp_path / "base", safe_serialization=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft: "fan_in_fan_out is set to True" for Conv1D
        pm = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn", "c_proj"],
                                             fan_in_fan_out=True, bias="all", init_lora_weights=False))
        with torch.no_grad():
            pm.base_model.model.transformer.h[0].attn.c_attn.bias.add_(0.5)  # a trained bias: saved whole
        pm.save_pretrained(tmp_path / "adapter")
        copy.deepcopy(pm).merge_and_unload().save_pretrained(tmp_path / "full", safe_serialization=True)
    for first in ("adapter", "full"):
        run_merge(MergeConfig(base=str(tmp_path / "base"), models=(str(tmp_path / first),), weights=(0.5,),
                              output=str(tmp_path / f"via-{first}")), log=quiet)
    x = load_file(str(tmp_path / "via-adapter" / "model.safetensors"))
    y = load_file(str(tmp_path / "via-full" / "model.safetensors"))
    assert set(x) == set(y) and all(close(x[n], y[n], 1e-5) for n in x)
    b = load_file(str(tmp_path / "base" / "model.safetensors"))
    assert not close(x["transformer.h.0.attn.c_attn.weight"], b["transformer.h.0.attn.c_attn.weight"], 1e-3)


# ---------------------------------------------------------------- errors and safety
def _one_line(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert str(n) in msg, msg


def test_mismatched_shapes_name_model_and_tensor(models, tmp_path):
    from alignkit.models.tiny import TinyLlamaConfig, make_tiny_model
    from conftest import synthetic_texts
    base_dir, a, _ = models
    other = make_tiny_model(synthetic_texts(), tmp_path / "wide", vocab_size=300,
                            cfg=TinyLlamaConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=80))
    with pytest.raises(ModelLoadError) as e:
        run_merge(MergeConfig(base=str(base_dir), models=(str(a), str(other)), output=str(tmp_path / "o")), log=quiet)
    _one_line(e, other, "model.layers.0.mlp.down_proj.weight", "[32, 80]", "[32, 64]")
    assert not (tmp_path / "o").exists()


def test_architecture_and_missing_tensor_errors(models, tmp_path):
    base_dir, a, _ = models
    odd = tmp_path / "odd"
    shutil.copytree(a, odd)
    cfg = json.loads((odd / "config.json").read_text())
    cfg.update(architectures=["MistralForCausalLM"], model_type="mistral")
    (odd / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as e:
        run_merge(MergeConfig(base=str(base_dir), models=(str(odd),), output=str(tmp_path / "o")), log=quiet)
    _one_line(e, odd, "MistralForCausalLM", "LlamaForCausalLM")
    from safetensors.torch import save_file
    short = tmp_path / "short"
    shutil.copytree(a, short)
    sd = load_file(str(short / "model.safetensors"))
    sd.pop("model.norm.weight")
    save_file(sd, str(short / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as e:
        run_merge(MergeConfig(base=str(base_dir), models=(str(short),), output=str(tmp_path / "o")), log=quiet)
    _one_line(e, short, "model.norm.weight", "missing")


def test_missing_folder_and_pickle_only_folder(models, tmp_path):
    base_dir, a, _ = models
    with pytest.raises(ModelLoadError) as e:
        run_merge(MergeConfig(base=str(base_dir), models=(str(tmp_path / "nope"),), output=str(tmp_path / "o")),
                  log=quiet)
    _one_line(e, tmp_path / "nope", "not found")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(base_dir / "config.json", pickled)
    torch.save({"x": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as e:
        run_merge(MergeConfig(base=str(base_dir), models=(str(pickled),), output=str(tmp_path / "o")), log=quiet)
    _one_line(e, pickled, "pytorch_model.bin", "unpickle")


def test_output_folder_rules(models, tmp_path):
    base_dir, a, b = models
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    cfg = MergeConfig(base=str(base_dir), models=(str(a),), output=str(out))
    with pytest.raises(ConfigError) as e:
        run_merge(cfg, log=quiet)
    _one_line(e, out, "--overwrite")
    run_merge(dataclass_replace(cfg, overwrite=True), log=quiet)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    with pytest.raises(ConfigError):  # never write over an input
        run_merge(MergeConfig(base=str(base_dir), models=(str(a),), output=str(a), overwrite=True), log=quiet)
    with pytest.raises(ConfigError, match="base"):
        run_merge(MergeConfig(method="ties", models=(str(a),), output=str(tmp_path / "x")), log=quiet)


def dataclass_replace(cfg, **kw):
    import dataclasses
    return dataclasses.replace(cfg, **kw)


def test_failure_mid_merge_leaves_nothing(models, tmp_path, monkeypatch):
    import alignkit.merge.run as run_mod
    base_dir, a, b = models
    calls = {"n": 0}
    real = run_mod.merge_tensor

    def failing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(run_mod, "merge_tensor", failing)
    with pytest.raises(RuntimeError):
        run_merge(MergeConfig(base=str(base_dir), models=(str(a), str(b)), output=str(tmp_path / "o")), log=quiet)
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary folder


def test_errors_are_alignkit_errors():
    assert issubclass(ModelLoadError, AlignkitError) and issubclass(ConfigError, AlignkitError)


# ---------------------------------------------------------------- delta sparsity (for PAFT)
def test_l1_delta_penalty_and_sparsity_by_hand():
    lin = torch.nn.Linear(2, 2, bias=True)
    with torch.no_grad():
        lin.weight.copy_(T([[1.0, 2.0], [3.0, 0.0]]))  # 0 where the tiny move goes: exact in fp32
        lin.bias.copy_(T([0.0, 0.0]))
    base = base_snapshot(lin)
    with torch.no_grad():
        lin.weight.add_(T([[0.5, 0.0], [0.0, -1e-7]]))
        lin.bias.add_(T([-2.0, 0.0]))
    penalty = l1_delta_penalty(lin, base)
    assert abs(penalty.item() - (0.5 + 1e-7 + 2.0)) < 1e-6
    penalty.backward()
    assert torch.equal(lin.bias.grad, T([-1.0, 0.0]))  # subgradient sign(delta), 0 at 0
    assert l1_delta_sparsity(lin, base) == 3 / 6  # exact zeros: weight (0,1), (1,0) and bias 1
    assert l1_delta_sparsity(lin, base, threshold=1e-6) == 4 / 6  # plus the 1e-7 move
    assert l1_delta_sparsity(dict(lin.named_parameters()), base) == 3 / 6  # a state dict works too
