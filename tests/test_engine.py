"""Engine invariants: gradient accumulation equals one big batch, a resumed run ends with the same
weights as an uninterrupted one, SFT lowers held-out loss and saves a folder transformers loads."""
import json

import pytest
import torch
from safetensors.torch import load_file

from alignkit.losses.registry import get_loss
from alignkit.train.config import TrainConfig
from alignkit.train.engine import Engine
from alignkit.train.offline import train_offline

from conftest import make_demos, make_pairs


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def _max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("method,records", [("dpo", make_pairs(16)), ("sft", make_demos(16))])
def test_grad_accum_equals_big_batch(tiny_model_dir, tmp_path, method, records, monkeypatch):
    # Adam's first step hides gradient scale, so compare the gradients themselves too.
    grads = []
    adam_step = torch.optim.AdamW.step

    def recording_step(self, *a, **kw):
        grads.append([p.grad.clone() for g in self.param_groups for p in g["params"] if p.grad is not None])
        return adam_step(self, *a, **kw)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    spec = get_loss(method)
    common = dict(max_steps=1, learning_rate=1e-2, progress=False, eval_fraction=0, max_grad_norm=0,
                  ref_cache="memory", seed=3)
    big = train_offline(spec, spec.config(), TrainConfig(batch_size=8, grad_accum=1, **common),
                        str(tiny_model_dir), records, [], str(tmp_path / "big"), log=lambda *a: None)
    small = train_offline(spec, spec.config(), TrainConfig(batch_size=1, grad_accum=8, **common),
                          str(tiny_model_dir), records, [], str(tmp_path / "small"), log=lambda *a: None)
    assert abs(big["train_last"]["loss"] - small["train_last"]["loss"]) < 1e-5
    assert len(grads) == 2 and all((a - b).abs().max() < 1e-5 for a, b in zip(*grads))
    assert max(g.abs().max().item() for g in grads[0]) > 1e-3
    assert _max_diff(_weights(tmp_path / "big"), _weights(tmp_path / "small")) < 1e-5
    start = load_file(str(tiny_model_dir / "model.safetensors"))
    assert _max_diff(_weights(tmp_path / "big"), start) > 1e-4  # the step did something


def test_resume_matches_uninterrupted(tiny_model_dir, tmp_path, monkeypatch):
    spec = get_loss("dpo")
    cfg = TrainConfig(max_steps=6, batch_size=4, learning_rate=5e-3, progress=False, eval_fraction=0,
                      save_every=3, seed=1)
    records = make_pairs(24)
    quiet = dict(log=lambda *a: None)
    train_offline(spec, spec.config(), cfg, str(tiny_model_dir), records, [], str(tmp_path / "full"), **quiet)

    original = Engine.optimizer_step

    def stop_after_three(self, *a, **kw):
        out = original(self, *a, **kw)
        if self.step == 3:
            self.stop_requested = True  # what SIGINT/SIGTERM do
        return out

    monkeypatch.setattr(Engine, "optimizer_step", stop_after_three)
    res = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), records, [], str(tmp_path / "part"), **quiet)
    assert res["interrupted"] and res["step"] == 3
    monkeypatch.setattr(Engine, "optimizer_step", original)
    resumed_cfg = TrainConfig(**{**cfg.__dict__, "resume": True})
    res2 = train_offline(spec, spec.config(), resumed_cfg, str(tiny_model_dir), records, [], str(tmp_path / "part"), **quiet)
    assert res2["steps"] == 6
    assert _max_diff(_weights(tmp_path / "full"), _weights(tmp_path / "part")) < 1e-6
    steps = [json.loads(l)["step"] for l in open(tmp_path / "part" / "metrics.jsonl") if '"train"' in l]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_sft_lowers_heldout_loss_and_saves_hf_model(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    spec = get_loss("sft")
    demos = make_demos(60)
    cfg = TrainConfig(epochs=3, batch_size=8, learning_rate=3e-3, progress=False, warmup_steps=2)
    res = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), demos[:50], demos[50:],
                        str(tmp_path / "sft"), log=lambda *a: None)
    assert res["eval_end"]["loss"] < res["eval_start"]["loss"] - 0.5
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "sft")
    tok = AutoTokenizer.from_pretrained(tmp_path / "sft")
    assert model.config.vocab_size == len(tok)
    assert (tmp_path / "sft" / "config.yaml").is_file()
    rows = [json.loads(l) for l in open(tmp_path / "sft" / "metrics.jsonl")]
    assert {r["split"] for r in rows} == {"train", "eval"}


def test_nonfinite_steps_are_skipped_then_stop(tiny_model_dir, tmp_path):
    from alignkit.losses.base import LossOutput
    from alignkit.train.engine import TrainingStopped
    from alignkit.models.loading import load_causal_lm
    model = load_causal_lm(str(tiny_model_dir))
    eng = Engine(model, TrainConfig(max_nonfinite=3), tmp_path, total_steps=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def nan_loss(_):
        p = next(model.parameters())
        return LossOutput((p.sum() * float("nan")).reshape(1))

    for i in range(2):
        m = eng.optimizer_step([None], nan_loss)
        assert m["skipped_nonfinite"] == i + 1
    assert eng.step == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(TrainingStopped, match="3 non-finite"):
        eng.optimizer_step([None], nan_loss)


def test_fused_adamw_is_the_same_update(tiny_model_dir, tmp_path):
    from alignkit.losses.base import LossOutput
    from alignkit.models.loading import load_causal_lm
    states = {}
    for fused in (True, False):
        torch.manual_seed(0)
        model = load_causal_lm(str(tiny_model_dir))
        eng = Engine(model, TrainConfig(fused_adamw=fused, learning_rate=1e-2, weight_decay=0.1), tmp_path / str(fused),
                     total_steps=3)
        assert bool(eng.opt.param_groups[0]["fused"]) is fused

        def loss(_):
            return LossOutput((sum((p.float() ** 2).sum() for p in model.parameters()) * 1e-3).reshape(1))

        for _ in range(3):
            eng.optimizer_step([None], loss)
        states[fused] = {k: v.clone() for k, v in model.state_dict().items()}
    assert _max_diff(states[True], states[False]) < 1e-6


def test_logged_logps_and_lengths_match_a_direct_pass(tiny_model_dir, tmp_path):
    """Every step and evaluation logs the policy's summed log-probs and lengths of chosen and rejected,
    whatever the loss: at step 0 (before any update) they equal a plain forward pass over the held-out pairs."""
    from alignkit.data.tokenize import Encoder
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    from alignkit.train.forward import collate, sequence_logps
    spec = get_loss("ipo")
    pairs = make_pairs(20)
    cfg = TrainConfig(max_steps=2, batch_size=4, learning_rate=1e-3, progress=False, max_length=64)
    res = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), pairs[:12], pairs[12:],
                        str(tmp_path / "ipo"), log=lambda *a: None)
    enc = Encoder(load_tokenizer(str(tiny_model_dir)), 64)
    model = load_causal_lm(str(tiny_model_dir)).eval()
    want = {}
    for role in ("chosen", "rejected"):
        seqs = [(e.prompt_ids, e.completion_ids) for e in (enc.encode(r.prompt, getattr(r, role)) for r in pairs[12:])]
        with torch.no_grad():
            lp, _ = sequence_logps(model, collate(seqs, 0))
        want[f"logps/{role}"] = lp.sum().mean().item()
        want[f"length/{role}"] = lp.lengths().mean().item()
    for key, value in want.items():
        assert res["eval_start"][key] == pytest.approx(value, rel=1e-4), key
    assert want["length/chosen"] != want["length/rejected"]  # the check can tell the two apart
    rows = [json.loads(l) for l in open(tmp_path / "ipo" / "metrics.jsonl") if '"train"' in l]
    assert all({"logps/chosen", "logps/rejected", "length/chosen", "length/rejected"} <= set(r) for r in rows)


def test_step0_heldout_margins_are_exactly_zero(tiny_model_dir, tmp_path):
    """At step 0 the policy is its own reference: the held-out reference log-probs are computed in the
    evaluation's own batches, so every implicit reward is exactly 0 and the accuracy exactly 0.5 (float
    noise from differently composed batches used to give e.g. 0.486)."""
    spec = get_loss("dpo")
    pairs = make_pairs(60)
    cfg = TrainConfig(max_steps=1, batch_size=5, learning_rate=1e-3, progress=False, max_length=64, ref_cache="memory")
    res = train_offline(spec, spec.config(), cfg, str(tiny_model_dir), pairs[:20], pairs[20:],
                        str(tmp_path / "dpo"), log=lambda *a: None)
    assert res["eval_start"]["rewards/margin"] == 0.0 and res["eval_start"]["rewards/chosen"] == 0.0
    assert res["eval_start"]["rewards/accuracy"] == 0.5
