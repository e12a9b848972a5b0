"""--bf16: bf16 autocast with fp32 master weights, for the offline, reward-model and RL trainers.
Losses agree with fp32 to a bf16 tolerance, step-0 held-out margins stay exactly 0 (the reference
runs under the same autocast), the matmuls really run in bf16, the weights stay fp32."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from alignkit.losses.registry import get_loss
from alignkit.train.config import TrainConfig
from alignkit.train.offline import train_offline

from conftest import make_demos, make_pairs

TOL = 3e-2  # bf16 keeps 8 bits of mantissa: losses of order 1 agree to a few 1e-2


def _losses(out):
    return [json.loads(l)["loss"] for l in open(out / "metrics.jsonl") if '"train"' in l]




@pytest.mark.parametrize("name", ["dpo", "ipo", "simpo", "orpo", "sft"])
def test_offline_losses_match_fp32_at_bf16_tolerance(name, tiny_model_dir, tmp_path, monkeypatch):
    spec = get_loss(name)
    data = make_demos(48) if name == "sft" else make_pairs(48)
    seen = set()
    real_linear = torch.nn.functional.linear

    def spy(x, w, b=None):
        y = real_linear(x, w, b)
        seen.add(y.dtype)
        return y
    res = {}
    for bf16 in (False, True):
        seen.clear()
        monkeypatch.setattr(torch.nn.functional, "linear", spy)
        cfg = TrainConfig(max_steps=4, batch_size=4, learning_rate=1e-3, progress=False, max_length=64, seed=2,
                          bf16=bf16)
        out = tmp_path / f"{name}-{bf16}"
        res[bf16] = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), data[:40], data[40:], str(out),
                                  log=lambda *a: None)
        monkeypatch.undo()
        assert (torch.bfloat16 in seen) == bf16  # autocast really ran the matmuls in bf16
        assert all(t.dtype == torch.float32 for t in load_file(str(out / "model.safetensors")).values())
        res[bf16]["losses"] = _losses(out)
    for a, b in zip(res[False]["losses"], res[True]["losses"]):
        assert b == pytest.approx(a, abs=TOL, rel=TOL)
    assert res[True]["eval_end"]["loss"] == pytest.approx(res[False]["eval_end"]["loss"], abs=TOL, rel=TOL)
    if spec.reference:  # the reference runs under the same autocast: at step 0 it is the policy exactly
        assert res[True]["eval_start"]["rewards/margin"] == 0.0
        assert res[True]["eval_start"]["rewards/accuracy"] == 0.5


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_reference_up_front_gives_log2_at_step_0_under_bf16(grad_accum, tmp_path):
    # the up-front reference pass runs in the training micro-batches: the policy's first forward has the
    # same bf16 rounding, so the first step's DPO loss is log 2 (in chunks of 32 sequences it was not).
    # A model wide enough that a matmul's bf16 rounding depends on the rows packed with it.
    import math
    from alignkit.models.tiny import TinyLlamaConfig, make_tiny_model
    from conftest import synthetic_texts
    model = make_tiny_model(synthetic_texts(), tmp_path / "model", vocab_size=300,
                            cfg=TinyLlamaConfig(hidden_size=256, num_layers=2, num_heads=4, intermediate_size=512))
    spec = get_loss("dpo")
    data = make_pairs(40)
    cfg = TrainConfig(max_steps=2, batch_size=3, grad_accum=grad_accum, learning_rate=1e-3, progress=False,
                      max_length=64, seed=4, bf16=True, ref_upfront=True, eval_at=("none",))
    out = tmp_path / "upfront"
    train_offline(spec, spec.config(), cfg, str(model), data, [], str(out), log=lambda *a: None)
    assert _losses(out)[0] == pytest.approx(math.log(2), abs=1e-6)


def test_reward_model_loss_matches_fp32_at_bf16_tolerance(tiny_model_dir, tmp_path):
    from alignkit.api import run_train
    pairs = make_pairs(40)
    losses = {}
    for bf16 in (False, True):
        out = tmp_path / f"rm-{bf16}"
        run_train("rm", str(tiny_model_dir), pairs, str(out), {"max_steps": 4, "batch_size": 4, "progress": False,
                                                                "learning_rate": 1e-3, "bf16": bf16},
                  log=lambda *a: None)
        losses[bf16] = _losses(out)
    assert len(losses[True]) == 4
    for a, b in zip(losses[False], losses[True]):
        assert b == pytest.approx(a, abs=TOL, rel=TOL)


def test_grpo_runs_sampling_and_reference_under_autocast(tiny_model_dir, tmp_path, monkeypatch):
    from alignkit.rl import methods as R
    from alignkit.rl import rollout
    from alignkit.rl.trainer import train_rl
    prompts = [p.prompt for p in make_pairs(8)]
    modes = []
    real = rollout.score_forward

    def spy(*a, **k):
        modes.append(torch.is_autocast_enabled("cpu"))
        return real(*a, **k)
    monkeypatch.setattr(rollout, "score_forward", spy)
    mcfg = R.GRPOConfig(reward="rule:words", samples_per_prompt=4, prompts_per_step=2, max_new_tokens=6, eval_samples=2)
    cfg = TrainConfig(max_steps=2, batch_size=4, learning_rate=1e-3, progress=False, eval_fraction=0.25, seed=0,
                      bf16=True)
    s = train_rl(R.GRPO, cfg, mcfg, str(tiny_model_dir), prompts, str(tmp_path / "grpo"), log=lambda *a: None)
    assert modes and all(modes)
    assert s["iterations"] == 2 and all(torch.isfinite(t).all() and t.dtype == torch.float32
                                        for t in load_file(str(tmp_path / "grpo" / "model.safetensors")).values())


def test_upfront_reference_under_bf16_keeps_step0_margins_exactly_zero(tiny_model_dir, tmp_path):
    spec = get_loss("dpo")
    pairs = make_pairs(30)
    # --ref: a separate reference model (the same weights), computed before training under the autocast
    cfg = TrainConfig(max_steps=1, batch_size=4, learning_rate=1e-3, progress=False, max_length=64, bf16=True,
                      ref_upfront=True, ref=str(tiny_model_dir))
    res = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), pairs[:20], pairs[20:], str(tmp_path / "u"),
                        log=lambda *a: None)
    assert res["eval_start"]["rewards/margin"] == 0.0 and res["eval_start"]["rewards/accuracy"] == 0.5
