"""Issue 18: the L1 penalty on the weight delta (--l1-delta, the engine's DeltaL1), `alignkit train paft`
(alignkit/merge/paft.py) and the forgetting measure of the bundled task's evaluation (demo NLL next to r*)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignkit.config import build_config
from alignkit.data.convert import write_jsonl
from alignkit.errors import ConfigError
from alignkit.losses.registry import get_loss
from alignkit.merge.sparsity import base_snapshot, l1_delta_penalty
from alignkit.registry import run_train
from alignkit.train.config import TrainConfig
from alignkit.train.engine import DeltaL1
from alignkit.train.offline import train_offline

from conftest import make_demos, make_pairs

QUIET = dict(log=lambda *a, **k: None)
CLI = str(Path(sys.executable).parent / "alignkit")


# --- the penalty -----------------------------------------------------------------------------------
def test_penalty_gradient_by_hand_on_a_tiny_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    params = list(model.parameters())
    pen = DeltaL1(params, lam=0.5, threshold=0.05)
    theta0 = base_snapshot(model)
    with torch.no_grad():
        model[0].weight.copy_(model[0].weight + torch.tensor([[0.3, -0.2, 0.0], [0.0, 0.01, -1.0]]))
        model[1].bias.add_(-0.1)
    # by hand: d/dtheta 0.5 * |theta - theta0| = 0.5 * sign(theta - theta0), and 0 where theta = theta0
    norm = pen.add_grad()
    assert norm == pytest.approx(0.3 + 0.2 + 0.01 + 1.0 + 0.1, abs=1e-6)
    assert torch.allclose(model[0].weight.grad, torch.tensor([[0.5, -0.5, 0.0], [0.0, 0.5, -0.5]]))
    assert torch.equal(model[0].bias.grad, torch.zeros(2)) and torch.equal(model[1].weight.grad, torch.zeros(1, 2))
    assert torch.allclose(model[1].bias.grad, torch.tensor([-0.5]))
    # the same as autograd through the merge package's differentiable penalty, added to existing gradients
    grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = torch.ones_like(p)
    (0.5 * l1_delta_penalty(model, theta0)).backward()
    assert all(torch.allclose(p.grad - 1, g) for p, g in zip(params, grads))
    assert float(l1_delta_penalty(model, theta0).detach()) == pytest.approx(norm, abs=1e-6)
    rep = pen.report()  # |delta| <= 0.05: 3 of w1's 6 (0, 0 and 0.01), b1's 2, w2's 2; not b2
    assert rep["delta_sparsity"] == pytest.approx(7 / 11) and rep["l1_delta"] == pytest.approx(norm, abs=1e-6)


def test_engine_adds_the_penalty_once_per_optimizer_step(tiny_model_dir, tmp_path, monkeypatch):
    """Step 2's gradient (after step 1 moved the weights) = the data gradient normalised over the whole
    step + lambda * sign(theta - theta_0), added once: the same with 8 micro-batches as with one."""
    seen = []
    adam_step = torch.optim.AdamW.step

    def recording_step(self, *a, **kw):
        ps = [p for g in self.param_groups for p in g["params"]]
        seen.append(([p.grad.clone() for p in ps], [p.detach().clone() for p in ps]))
        return adam_step(self, *a, **kw)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    spec, records = get_loss("dpo"), make_pairs(16)
    common = dict(max_steps=2, learning_rate=1e-2, progress=False, eval_fraction=0, max_grad_norm=0,
                  ref_cache="memory", seed=3)
    lam = 0.01
    runs = {}
    for name, extra in (("plain", dict(batch_size=8, l1_delta=0.0)), ("l1", dict(batch_size=8, l1_delta=lam)),
                        ("l1_accum", dict(batch_size=1, grad_accum=8, l1_delta=lam))):
        seen.clear()
        runs[name] = (train_offline(spec, spec.config(), TrainConfig(**common, **extra), str(tiny_model_dir),
                                    records, [], str(tmp_path / name), **QUIET), list(seen))
    start = [p for p in runs["plain"][1][0][1]]  # the weights at step 1 are theta_0
    (g_plain, w_plain), (g_l1, w_l1), (g_acc, w_acc) = (runs[n][1][1] for n in ("plain", "l1", "l1_accum"))
    # step 1 is at theta_0: sign(0) = 0, so every run took the same first step
    assert all(torch.equal(a, b) for a, b in zip(w_plain, w_l1))
    for gp, gl, ga, w, w0 in zip(g_plain, g_l1, g_acc, w_l1, start):
        assert torch.allclose(gl - gp, lam * torch.sign(w - w0), atol=1e-6)
        assert torch.allclose(ga, gl, atol=1e-5)  # not once per micro-batch
    # logged: the norm at the weights the gradient was taken at, the penalty, the sparsity; the summary too
    rows = [json.loads(line) for line in open(tmp_path / "l1" / "metrics.jsonl") if '"train"' in line]
    l1 = sum(float((w - w0).abs().sum()) for w, w0 in zip(w_l1, start))
    assert rows[1]["l1_delta"] == pytest.approx(l1, rel=1e-5)
    assert rows[1]["l1_penalty"] == pytest.approx(lam * l1, rel=1e-5)
    assert 0.0 <= rows[1]["delta_sparsity"] <= 1.0 and rows[0]["l1_delta"] == 0.0
    delta = runs["l1"][0]["delta"]
    assert delta["l1_lambda"] == lam and delta["threshold"] == common["learning_rate"]
    final = load_file(str(tmp_path / "l1" / "model.safetensors"))
    start_w = load_file(str(tiny_model_dir / "model.safetensors"))
    assert delta["l1_delta"] == pytest.approx(sum(float((final[k] - start_w[k]).abs().sum()) for k in final
                                                  if k in start_w), rel=1e-4)
    assert "delta" not in runs["plain"][0] and "l1_delta" not in json.loads(
        open(tmp_path / "plain" / "metrics.jsonl").readlines()[-1])


def test_a_strong_penalty_keeps_the_delta_sparse(tiny_model_dir, tmp_path):
    spec = get_loss("sft")
    base = dict(max_steps=8, batch_size=8, learning_rate=1e-3, progress=False, eval_fraction=0, seed=0,
                delta_threshold=2e-3)
    res = {lam: train_offline(spec, spec.config(), TrainConfig(**base, l1_delta=lam), str(tiny_model_dir),
                              make_demos(32), [], str(tmp_path / str(lam)), **QUIET)["delta"]
           for lam in (1e-9, 1.0)}
    assert res[1.0]["l1_delta"] < res[1e-9]["l1_delta"]
    assert res[1.0]["delta_sparsity"] > res[1e-9]["delta_sparsity"]


def test_run_options_are_validated():
    with pytest.raises(ConfigError, match="--l1-delta must be >= 0"):
        build_config(TrainConfig, {"l1_delta": -1})
    with pytest.raises(ConfigError, match="--delta-threshold must be >= 0"):
        build_config(TrainConfig, {"delta_threshold": -1e-3})


# --- paft ------------------------------------------------------------------------------------------
@pytest.fixture()
def paft_data(tmp_path):
    write_jsonl(make_demos(32), tmp_path / "demos.jsonl")
    write_jsonl(make_pairs(32, seed=1), tmp_path / "pairs.jsonl")
    return tmp_path / "demos.jsonl", tmp_path / "pairs.jsonl"


PAFT_RUN = dict(max_steps=3, batch_size=8, learning_rate=5e-3, progress=False, eval_fraction=0.25, seed=0)


def test_paft_end_to_end_merges_both_deltas_and_resumes_between_stages(tiny_model_dir, tmp_path, paft_data):
    demos, pairs = paft_data
    out = tmp_path / "paft"
    s = run_train("paft", str(tiny_model_dir), str(pairs), str(out),
                  {**PAFT_RUN, "sft_data": str(demos), "merge": "task_arithmetic", "pref_l1_delta": 1e-3,
                   "beta": 0.2}, **QUIET)
    assert s["method"] == "paft" and s["loss"] == "dpo" and s["merge"] == "task_arithmetic"
    for stage in ("sft", "pref"):
        assert (out / stage / "summary.json").is_file() and s["stages"][stage]["steps"] == 3
        assert not s["stages"][stage]["reused"] and s["stages"][stage]["eval_end"]
    assert s["stages"]["pref"]["delta"]["l1_lambda"] == 1e-3 and s["stages"]["sft"]["delta"] is None
    import yaml
    assert yaml.safe_load((out / "pref" / "config.yaml").read_text())["l1_delta"] == 1e-3
    assert yaml.safe_load((out / "sft" / "config.yaml").read_text())["l1_delta"] == 0.0
    assert 0 <= s["deltas"]["sft"]["sparsity"] <= 1 and s["deltas"]["pref"]["delta_l1"] > 0
    assert s["seconds"]["parallel_wall_clock"] <= s["seconds"]["sequential_total"]
    # task arithmetic by hand: theta = theta_pre + (theta_sft - theta_pre) + (theta_pref - theta_pre)
    pre, sft, pref = (load_file(str(d / "model.safetensors")) for d in (tiny_model_dir, out / "sft", out / "pref"))
    merged = load_file(str(out / "model.safetensors"))
    assert max(float((merged[k] - (sft[k] + pref[k] - pre[k])).abs().max()) for k in merged) < 1e-5
    assert (out / "merge.json").is_file() and not (out / ".merged").exists()
    from transformers import AutoModelForCausalLM
    AutoModelForCausalLM.from_pretrained(str(out))  # a Hugging Face model folder
    # without --resume a finished run is not overwritten
    with pytest.raises(ConfigError, match="finished run.*--overwrite"):
        run_train("paft", str(tiny_model_dir), str(pairs), str(out), {**PAFT_RUN, "sft_data": str(demos)}, **QUIET)
    # --resume with another merge is a change of settings: refused unless said to be intended
    again_opts = {**PAFT_RUN, "sft_data": str(demos), "merge": "ties", "pref_l1_delta": 1e-3, "resume": True,
                  "beta": 0.2}
    with pytest.raises(ConfigError, match="merge 'task_arithmetic' -> 'ties'"):
        run_train("paft", str(tiny_model_dir), str(pairs), str(out), again_opts, **QUIET)
    # with --resume both stages are reused and only the merge runs (here another method)
    s2 = run_train("paft", str(tiny_model_dir), str(pairs), str(out), {**again_opts, "resume_allow_changes": True},
                   **QUIET)
    assert s2["stages"]["sft"]["reused"] and s2["stages"]["pref"]["reused"] and s2["merge"] == "ties"
    assert json.loads((out / "merge.json").read_text())["method"] == "ties"
    again = load_file(str(out / "sft" / "model.safetensors"))
    assert all(torch.equal(again[k], sft[k]) for k in sft)  # the reused stage was not retrained


def test_paft_resumes_an_interrupted_stage(tiny_model_dir, tmp_path, paft_data, monkeypatch):
    from alignkit.train.engine import Engine
    demos, pairs = paft_data
    out = tmp_path / "paft"
    opts = {**PAFT_RUN, "sft_data": str(demos), "merge": "linear", "max_steps": 4, "save_every": 2}
    original = Engine.optimizer_step

    def stop_in_pref(self, *a, **kw):
        res = original(self, *a, **kw)
        if self.step == 2 and "pref" in str(self.out):
            self.stop_requested = True
        return res

    monkeypatch.setattr(Engine, "optimizer_step", stop_in_pref)
    s = run_train("paft", str(tiny_model_dir), str(pairs), str(out), opts, **QUIET)
    assert s["interrupted"] and s["stage"] == "pref" and not (out / "model.safetensors").exists()
    monkeypatch.setattr(Engine, "optimizer_step", original)
    s = run_train("paft", str(tiny_model_dir), str(pairs), str(out), {**opts, "resume": True}, **QUIET)
    assert s["stages"]["sft"]["reused"] and not s["stages"]["pref"]["reused"] and s["stages"]["pref"]["steps"] == 4
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("opts,match", [({}, "sft-data"), ({"sft_data": "x.jsonl", "l1_delta": 0.1}, "--sft-l1-delta"),
                                        ({"sft_data": "x.jsonl", "merge": "average"}, "merge"),
                                        ({"sft_data": "x.jsonl", "merge": "linear", "merge_scale": 2.0}, "--merge-scale"),
                                        ({"sft_data": "x.jsonl", "loss": "kto"}, "pairwise")])
def test_paft_user_errors_are_one_line(tiny_model_dir, tmp_path, opts, match):
    with pytest.raises(ConfigError, match=match) as e:
        run_train("paft", str(tiny_model_dir), str(tmp_path / "p.jsonl"), str(tmp_path / "o"), opts, **QUIET)
    assert "\n" not in str(e.value)


def test_cli_lists_paft_and_its_help_shows_the_inner_loss_flags():
    listing = subprocess.run([CLI, "methods"], capture_output=True, text=True, check=True).stdout
    row = next(line for line in listing.splitlines() if line.startswith("paft "))
    assert "optimization" in row and "pairwise" in row and "2406.17923" in row
    helptext = subprocess.run([CLI, "train", "paft", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--sft-data", "--sft-l1-delta", "--pref-l1-delta", "--merge", "--density", "--l1-delta", "--beta"):
        assert flag in helptext
    ipo = subprocess.run([CLI, "train", "paft", "--loss", "ipo", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--loss ipo options" in ipo


# --- the forgetting measure ----------------------------------------------------------------------------
def test_heldout_demonstrations_are_the_tasks_on_heldout_prompts():
    from alignkit.synthetic.evaluate import heldout_demonstrations
    from alignkit.synthetic.prompts import is_heldout
    demos = heldout_demonstrations(40, seed=2)
    assert demos == heldout_demonstrations(40, seed=2) and len(demos) == 40
    assert all(is_heldout(p[-1]["content"]) and c for p, c in demos)


def test_demo_nll_is_the_per_token_negative_log_likelihood(tiny_model_dir):
    from alignkit.data.tokenize import Encoder
    from alignkit.synthetic.evaluate import demo_nll, heldout_demonstrations, load_policy
    model, tok = load_policy(str(tiny_model_dir))
    demos = heldout_demonstrations(3, seed=0)
    enc = Encoder.untruncated(tok)
    total, n = 0.0, 0
    with torch.no_grad():
        for p, c in demos:  # one sequence at a time, no padding: the definition
            pi, ci = enc.prompt_ids(p), enc.completion_ids(c)
            logits = model(torch.tensor([pi + ci])).logits[0].float().log_softmax(-1)
            total -= sum(float(logits[len(pi) - 1 + t, tok_id]) for t, tok_id in enumerate(ci))
            n += len(ci)
    assert demo_nll(model, tok, demos) == pytest.approx(total / n, rel=1e-4)


def test_evaluate_policy_reports_what_sft_taught_next_to_what_alignment_taught(tiny_model_dir):
    from alignkit.synthetic.evaluate import EVAL_SAMPLING, evaluate_policy, format_table
    import dataclasses
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=6)
    res = evaluate_policy(str(tiny_model_dir), baseline=str(tiny_model_dir), n_prompts=8, seed=0,
                          sampling=sampling, nll_demos=6, log=lambda *a: None)
    for m in (res["policy"], res["baseline_metrics"]):
        assert m["demo_nll"] > 0 and m["accuracy"] is not None and m["mean_reward"] is not None
    assert res["policy"]["demo_nll"] == pytest.approx(res["baseline_metrics"]["demo_nll"])
    table = format_table([("baseline", res["baseline_metrics"]), ("model", res["policy"])], res["win_rate"])
    assert "demo NLL" in table and "answer accuracy" in table and "harmlessness" in table
    off = evaluate_policy(str(tiny_model_dir), n_prompts=4, sampling=sampling, nll_demos=0, log=lambda *a: None)
    assert "demo_nll" not in off["policy"]
    with pytest.raises(ConfigError):
        evaluate_policy(str(tiny_model_dir), n_prompts=4, nll_demos=-1)
