"""The online loop end to end on the tiny synthetic model: every RL method runs, logs reward / KL /
length per iteration, saves a model, a value function (PPO) and the reward-vs-KL plot; reference-free
mode loads no reference; --resume continues to the same weights; the CLI and config errors."""
import json

import pytest
import torch
from safetensors.torch import load_file

from alignkit.errors import ConfigError
from alignkit.rl import methods as R
from alignkit.rl.trainer import train_rl
from alignkit.train.config import TrainConfig
from alignkit.train.engine import Engine

from conftest import synthetic_texts

QUIET = dict(log=lambda *a: None)


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("rl-prompts") / "prompts.jsonl"
    texts = synthetic_texts(12, seed=5)
    p.write_text("".join(json.dumps({"prompt": " ".join(t.split()[:4])}) + "\n" for t in texts))
    return p


def _cfg(**kw):
    base = dict(max_steps=2, batch_size=4, learning_rate=1e-3, progress=False, eval_fraction=0.25, seed=0)
    return TrainConfig(**{**base, **kw})


def _rows(out, split="train"):
    return [r for r in (json.loads(line) for line in open(out / "metrics.jsonl")) if r["split"] == split]


METHODS = {"ppo": (R.PPO, R.PPOConfig, "vf_loss"), "reinforce": (R.REINFORCE, R.ReinforceConfig, "baseline"),
           "rloo": (R.RLOO, R.RLOOConfig, "advantage_std"), "remax": (R.REMAX, R.ReMaxConfig, "greedy_reward"),
           "grpo": (R.GRPO, R.GRPOConfig, "kl_loss")}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_runs_logs_and_saves(name, tiny_model_dir, prompts_file, tmp_path):
    method, cfg_cls, own_metric = METHODS[name]
    mcfg = cfg_cls(reward="rule:words", samples_per_prompt=2, prompts_per_step=2, max_new_tokens=6, eval_samples=2,
                   kl_coef=0.1)
    out = tmp_path / name
    s = train_rl(method, _cfg(), mcfg, str(tiny_model_dir), str(prompts_file), str(out), **QUIET)
    assert s["iterations"] == 2 and s["samples"] == 8
    assert s["steps"] == 2 * mcfg.ppo_epochs * mcfg.num_minibatches
    rows = _rows(out)
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("reward", "task_reward", "kl", "kl_coef", "entropy", "length/mean", "length/max", "eos_rate",
                "loss", "grad_norm", own_metric):
        assert key in rows[-1], key
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # the first rollout comes from the reference itself
    assert all(1 <= r["length/mean"] <= 6 for r in rows)
    assert {"reward", "kl", "length/mean"} <= set(s["eval_start"]) and {"reward", "kl"} <= set(s["eval_end"])
    assert (out / "reward_vs_kl.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "model.safetensors").is_file() and (out / "summary.json").is_file()
    assert (out / "value.safetensors").is_file() == (name == "ppo")
    start, end = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert max((start[k] - end[k]).abs().max().item() for k in start) > 0  # the policy moved


def test_reference_free_loads_no_reference(tiny_model_dir, prompts_file, tmp_path, monkeypatch):
    import alignkit.rl.trainer as loop
    loads = []
    real = loop.load_causal_lm
    monkeypatch.setattr(loop, "load_causal_lm", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    mcfg = R.GRPOConfig(reward="rule:words", samples_per_prompt=2, prompts_per_step=2, max_new_tokens=6,
                        reference_free=True)
    train_rl(R.GRPO, _cfg(), mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "g"), **QUIET)
    assert loads == [str(tiny_model_dir)]  # the policy only
    rows = _rows(tmp_path / "g")
    assert all("kl" not in r and "kl_loss" not in r for r in rows)
    assert (tmp_path / "g" / "reward_vs_kl.png").is_file()  # reward against iteration instead


def test_lora_reference_is_the_adapter_disabled_policy(tiny_model_dir, prompts_file, tmp_path):
    mcfg = R.RLOOConfig(reward="rule:words", samples_per_prompt=2, prompts_per_step=2, max_new_tokens=6, kl_coef=0.1)
    cfg = _cfg(lora_r=4, lora_target_modules=("q_proj", "v_proj"), learning_rate=5e-2, max_steps=3)
    train_rl(R.RLOO, cfg, mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "lora"), **QUIET)
    rows = _rows(tmp_path / "lora")
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-5) and abs(rows[-1]["kl"]) > 1e-4


def test_length_controls_in_the_reward(tiny_model_dir, prompts_file, tmp_path):
    mcfg = R.ReinforceConfig(reward="rule:words", prompts_per_step=4, max_new_tokens=3, missing_eos_penalty=2.0,
                             length_penalty=0.5)
    train_rl(R.REINFORCE, _cfg(max_steps=1), mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "len"), **QUIET)
    r = _rows(tmp_path / "len")[0]
    want = r["reward"] - 0.5 * r["length/mean"] - 2.0 * (1 - r["eos_rate"])
    assert r["task_reward"] == pytest.approx(want, abs=1e-5)


def test_ppo_ptx_mixes_demonstrations_into_each_step(tiny_model_dir, prompts_file, tmp_path):
    from conftest import make_demos
    demos = tmp_path / "demos.jsonl"
    demos.write_text("".join(json.dumps({"prompt": d.prompt, "completion": d.completion}) + "\n" for d in make_demos(8)))
    mcfg = R.PPOPtxConfig(reward="rule:words", prompts_per_step=2, samples_per_prompt=2, max_new_tokens=6, ppo_epochs=1,
                          ptx_data=str(demos), ptx_coef=0.5, ptx_batch_size=3)
    from alignkit.api import run_train
    s = run_train("ppo-ptx", str(tiny_model_dir), str(prompts_file), str(tmp_path / "ptx"),
                  {**{k: getattr(mcfg, k) for k in ("reward", "prompts_per_step", "samples_per_prompt", "max_new_tokens",
                                                     "ppo_epochs", "ptx_data", "ptx_coef", "ptx_batch_size")},
                   "max_steps": 2, "batch_size": 4, "progress": False}, log=lambda *a: None)
    assert s["iterations"] == 2
    assert all(r["ptx_nll"] > 0 for r in _rows(tmp_path / "ptx"))
    with pytest.raises(ConfigError, match="ptx-data"):
        run_train("ppo-ptx", str(tiny_model_dir), str(prompts_file), str(tmp_path / "ptx2"), {"reward": "rule:words"},
                  log=lambda *a: None)


def test_ptx_term_is_exactly_coef_times_token_mean_nll(tiny_model_dir):
    from alignkit.models.loading import load_causal_lm
    from alignkit.rl.ptx import PtxMicroBatch, ptx_loss
    from alignkit.train.forward import collate, sequence_logps
    model = load_causal_lm(str(tiny_model_dir))
    seqs = [([1, 5, 6], [7, 8, 2]), ([1, 9], [10, 2])]  # 5 demonstration tokens in the step
    parts = [PtxMicroBatch(seqs[:1], 5), PtxMicroBatch(seqs[1:], 5)]
    rl_weight = 7.0  # e.g. 7 RL tokens already in this step with a token-mean loss
    outs = [ptx_loss(model, mb, 0, 0.5, rl_weight) for mb in parts]
    with torch.no_grad():
        lp, _ = sequence_logps(model, collate(seqs, 0))
    token_mean_nll = (-lp.sum().sum() / 5).item()
    # the engine divides by the step's weight (RL only); the ptx rows add 0.5 * token-mean NLL
    assert sum(o.loss.sum().item() for o in outs) / rl_weight == pytest.approx(0.5 * token_mean_nll, rel=1e-5)
    assert all(o.weight.sum().item() == 0 for o in outs)


def test_resume_matches_uninterrupted(tiny_model_dir, prompts_file, tmp_path, monkeypatch):
    mcfg = R.RLOOConfig(reward="rule:words", samples_per_prompt=2, prompts_per_step=2, max_new_tokens=6, kl_coef=0.1,
                        adaptive_kl=True, kl_target=0.1, kl_horizon=10)
    cfg = _cfg(max_steps=4, save_every=2, eval_fraction=0.25)
    res0 = train_rl(R.RLOO, cfg, mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "full"), **QUIET)
    original = Engine.optimizer_step

    def stop_after_two(self, *a, **kw):
        out = original(self, *a, **kw)
        if self.step == 2:
            self.stop_requested = True  # what SIGINT/SIGTERM do
        return out

    monkeypatch.setattr(Engine, "optimizer_step", stop_after_two)
    res = train_rl(R.RLOO, cfg, mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "part"), **QUIET)
    assert res["interrupted"] and res["iteration"] == 2
    monkeypatch.setattr(Engine, "optimizer_step", original)
    with pytest.raises(ConfigError, match="--resume"):
        train_rl(R.RLOO, cfg, mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "part"), **QUIET)
    cfg2 = TrainConfig(**{**cfg.__dict__, "resume": True})
    res2 = train_rl(R.RLOO, cfg2, mcfg, str(tiny_model_dir), str(prompts_file), str(tmp_path / "part"), **QUIET)
    assert res2["iterations"] == 4 and res2["samples"] == 16
    assert res2["eval_start"] and res2["eval_start"] == pytest.approx(res0["eval_start"])  # kept from before the stop
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "part" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    full, part = _rows(tmp_path / "full"), _rows(tmp_path / "part")
    assert [r["step"] for r in part] == [1, 2, 3, 4]
    assert [r["kl_coef"] for r in part] == pytest.approx([r["kl_coef"] for r in full])  # controller state resumed
    assert full[-1]["kl_coef"] != 0.1


def test_cli_and_methods_table(tiny_model_dir, prompts_file, tmp_path, capsys):
    from alignkit.cli import main
    rc = main(["train", "rloo", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output",
               str(tmp_path / "cli"), "--reward", "rule:words", "--max-steps", "1", "--num-samples", "2",
               "--max-new-tokens", "5", "--progress", "false"])
    assert rc == 0 and (tmp_path / "cli" / "reward_vs_kl.png").is_file()
    capsys.readouterr()
    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name in ("ppo", "ppo-ptx", "reinforce", "rloo", "remax", "grpo"):
        assert rows[name]["theme"] == "RL" and rows[name]["feedback"] == "online" and rows[name]["reference"]
    # user errors are one line, exit 2
    rc = main(["train", "rloo", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output",
               str(tmp_path / "bad"), "--reward", "rule:words", "--num-samples", "1"])
    assert rc == 2 and "--samples-per-prompt must be >= 2, got 1" in capsys.readouterr().err
    rc = main(["train", "grpo", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output",
               str(tmp_path / "bad"), "--reward", "rule:words", "--kl-estimator", "k9"])
    assert rc == 2 and "--kl-estimator must be one of k1, k2, k3, got 'k9'" in capsys.readouterr().err
    rc = main(["train", "rloo", "--model", str(tiny_model_dir), "--data", str(prompts_file), "--output",
               str(tmp_path / "bad")])
    assert rc == 2 and "--reward" in capsys.readouterr().err


def test_generator_backend_selection(tiny_model_dir):
    from alignkit.models.loading import load_causal_lm, load_tokenizer
    from alignkit.rl.rollout import HFBackend, make_generator
    model, tok = load_causal_lm(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    if not torch.cuda.is_available():
        assert isinstance(make_generator("auto", model, tok, str(tiny_model_dir)), HFBackend)
        with pytest.raises(ConfigError, match="vllm"):
            make_generator("vllm", model, tok, str(tiny_model_dir))
    assert isinstance(make_generator("hf", model, tok, str(tiny_model_dir)), HFBackend)


@pytest.mark.parametrize("name,extra", [("grpo", {}), ("ppo", {}), ("ppo", {"value_model": "shared"})],
                         ids=["grpo", "ppo-value-model", "ppo-shared-head"])
def test_shared_prompts_train_the_same_weights_as_plain_rows(name, extra, tiny_model_dir, prompts_file, tmp_path,
                                                             monkeypatch):
    """Each group's prompt run once (packed) or a padded row per sample: the same samples, the same
    log-probs, values and KL, the same update (PPO's value model and head too). Packing is forced here
    (share_prompts lets the batch's shapes choose; these tiny rows would choose plain)."""
    monkeypatch.setattr("alignkit.rl.rollout.prefer_packed", lambda seqs, config: True)
    method, cfg_cls, _ = METHODS[name]
    weights, rows = {}, {}
    for share in (True, False):
        mcfg = cfg_cls(reward="rule:words", samples_per_prompt=4, prompts_per_step=2, max_new_tokens=6, eval_samples=2,
                       kl_coef=0.1, share_prompts=share, **extra)
        out = tmp_path / f"share-{share}"
        train_rl(method, _cfg(eval_fraction=0.0), mcfg, str(tiny_model_dir), str(prompts_file), str(out), **QUIET)
        weights[share], rows[share] = load_file(str(out / "model.safetensors")), _rows(out)
        if (out / "value.safetensors").exists():
            weights[share].update({"value." + k: v for k, v in load_file(str(out / "value.safetensors")).items()})
    assert weights[True].keys() == weights[False].keys()
    assert max((weights[True][k] - weights[False][k]).abs().max().item() for k in weights[True]) < 1e-5
    for a, b in zip(rows[True], rows[False]):
        assert a["reward"] == b["reward"] and a["length/mean"] == b["length/mean"]  # the same samples
        assert a["kl"] == pytest.approx(b["kl"], abs=1e-5) and a["loss"] == pytest.approx(b["loss"], abs=1e-5)


def test_one_update_per_batch_skips_the_old_logprob_pass_with_the_same_result(tiny_model_dir, prompts_file,
                                                                              tmp_path, monkeypatch):
    """GRPO with one update per rollout batch takes pi_old's log-probs from the update's own forward
    (no separate no-grad pass, as TRL does): the same weights, loss, KL and entropy as with the pass."""
    import dataclasses
    from alignkit.rl import rollout
    passes = []
    real = rollout.score_forward

    def spy(*a, **kw):
        passes.append(kw.get("policy_pass", True))
        return real(*a, **kw)
    monkeypatch.setattr(rollout, "score_forward", spy)
    weights, rows = {}, {}
    for lazy in (True, False):
        method = R.GRPO if lazy else dataclasses.replace(R.GRPO, kl_in_loss=False)  # False: the loop keeps the pass
        mcfg = R.GRPOConfig(reward="rule:words", samples_per_prompt=4, prompts_per_step=2, max_new_tokens=6, eval_samples=2)
        out = tmp_path / f"lazy-{lazy}"
        passes.clear()
        train_rl(method, _cfg(max_steps=3, eval_fraction=0.0), mcfg, str(tiny_model_dir), str(prompts_file),
                 str(out), **QUIET)
        assert passes == [not lazy] * 3
        weights[lazy], rows[lazy] = load_file(str(out / "model.safetensors")), _rows(out)
    assert max((weights[True][k] - weights[False][k]).abs().max().item() for k in weights[True]) < 1e-5
    for a, b in zip(rows[True], rows[False]):
        assert a["reward"] == b["reward"]
        for k in ("loss", "kl", "kl_k3", "entropy", "kl_loss"):
            assert a[k] == pytest.approx(b[k], abs=1e-5), k


def test_packing_is_chosen_by_the_batch_shapes():
    """Long shared prompts: packed rows are cheaper; short prompts and short completions on a narrow
    model: plain rows are (their attention is over short rows, not ~512-token packed ones)."""
    from types import SimpleNamespace
    from alignkit.train.packing import layout_costs, prefer_packed
    wide = SimpleNamespace(hidden_size=256, num_attention_heads=4, num_key_value_heads=4, intermediate_size=688)
    narrow = SimpleNamespace(hidden_size=64, num_attention_heads=8, num_key_value_heads=4, head_dim=8,
                             intermediate_size=172)
    long_prompts = [([1] + [5 + g] * 150, [7] * 60) for g in range(2) for _ in range(8)]
    short_prompts = [([1] + [5 + g] * 4, [7] * 40) for g in range(2) for _ in range(8)]
    assert prefer_packed(long_prompts, wide) and prefer_packed(long_prompts, narrow)
    assert not prefer_packed(short_prompts, narrow)
    packed, plain = layout_costs(short_prompts, narrow)
    # by hand: plain 16 rows x 45 columns; packed: two segments of 5 + 8 x 40 = 325 tokens, two rows
    # (650 > 512 tokens); per column q, k, v, o and the MLP, per (query, key) pair 2 x heads x head_dim
    col = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 172
    assert plain == 16 * 45 * (col + 45 * 2 * 64) and packed == 2 * 325 * (col + 325 * 2 * 64)
    assert not prefer_packed([([], [7, 8])], wide)  # an empty prompt cannot be packed
