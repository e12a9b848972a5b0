"""Nash-MD: the geometric-mixture sampler (coef 0 = plain sampling of the policy, coef 1 = of the
reference, in between the token-level mixture computed with both KV caches), the loss against
hand-computed values, and the online run end to end (logs, saves, resumes to the same weights)."""
import copy
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from alignkit.errors import ConfigError
from alignkit.models.generate import GeometricMixtureGenerator, HFGenerator, SamplingConfig, mixture_logprobs
from alignkit.models.loading import load_causal_lm, load_tokenizer
from alignkit.registry import resolve_job
from alignkit.rewards.judge import Judge
from alignkit.rl.nash_md import NashMDConfig, nash_md_loss
from alignkit.train.config import TrainConfig
from alignkit.train.engine import Engine

from conftest import synthetic_texts

QUIET = dict(log=lambda *a: None)


@pytest.fixture(scope="module")
def models(tiny_model_dir):
    policy = load_causal_lm(str(tiny_model_dir), "fp32").eval()
    tok = load_tokenizer(str(tiny_model_dir))
    ref = copy.deepcopy(policy)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in ref.parameters():  # a different reference: the mixture must sit between two distributions
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    ids = [tok(t)["input_ids"][:n] for t, n in zip(synthetic_texts(5, seed=3), (3, 7, 5, 2, 6))]
    return policy, ref, tok, ids


CFG = SamplingConfig(max_new_tokens=8, temperature=1.0, batch_size=3)


def test_mixture_coefficient_zero_is_plain_policy_sampling(models):
    policy, ref, tok, ids = models
    # the mixture samples with transformers' generate; draw="multinomial" gives generate's tokens
    mixed = GeometricMixtureGenerator(policy, ref, tok, 0.0).generate(ids, CFG, seed=11)
    assert mixed == HFGenerator(policy, tok, draw="multinomial").generate(ids, CFG, seed=11)
    assert mixed != HFGenerator(ref, tok, draw="multinomial").generate(ids, CFG, seed=11)  # the two models really differ


def test_mixture_coefficient_one_samples_the_reference(models):
    policy, ref, tok, ids = models
    mixed = GeometricMixtureGenerator(policy, ref, tok, 1.0).generate(ids, CFG, seed=11)
    assert mixed == HFGenerator(ref, tok, draw="multinomial").generate(ids, CFG, seed=11)


def test_mixture_logprobs_hand_computed():
    pol = torch.log(torch.tensor([[0.8, 0.2]]))
    ref = torch.log(torch.tensor([[0.2, 0.8]]))
    assert mixture_logprobs(pol, ref, 0.5).exp().tolist()[0] == pytest.approx([0.5, 0.5])
    # coef 0.25: 0.8^.75 0.2^.25 = 0.56569, 0.2^.75 0.8^.25 = 0.28284 -> 2/3, 1/3
    assert mixture_logprobs(pol, ref, 0.25).exp().tolist()[0] == pytest.approx([2 / 3, 1 / 3], abs=1e-6)
    # raw logits with offsets give the same distribution (each model's normaliser cancels)
    assert mixture_logprobs(pol + 3.0, ref - 1.0, 0.25).exp().tolist()[0] == pytest.approx([2 / 3, 1 / 3], abs=1e-6)


@torch.no_grad()
def test_cached_mixture_equals_full_recomputation(models):
    """Greedy decoding of the mixture: every token is the argmax of the mixture of both models' full
    (uncached, unpadded) forwards on the sequence so far, for prompts of different lengths in one batch."""
    policy, ref, tok, ids = models
    greedy = SamplingConfig(max_new_tokens=6, temperature=0.0, batch_size=5)
    for coef in (0.3, 0.7):
        outs = GeometricMixtureGenerator(policy, ref, tok, coef).generate(ids, greedy)
        assert outs != HFGenerator(policy, tok).generate(ids, greedy) or coef == 0.3
        for p, c in zip(ids, outs):
            seq = list(p)
            for tokid in c:
                x = torch.tensor([seq])
                mix = mixture_logprobs(policy(x).logits[0, -1], ref(x).logits[0, -1], coef)
                assert int(mix.argmax()) == tokid
                seq.append(tokid)


def test_loss_hand_computed_value_and_gradient():
    # row 0: log pi = (-1, -2), log pi_ref = (-1.5, -1), P = 0.8; row 1: one token (-0.5 vs -0.5), P = 0.2
    logps = torch.tensor([[-1.0, -2.0], [0.0, -0.5]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0], [0.0, -0.5]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    pref = torch.tensor([0.8, 0.2], dtype=torch.float64)
    out = nash_md_loss(logps, ref, mask, pref, beta=0.1)
    # row 0: KL term 0.5 * -1 + (-1) * -2 = 1.5; score (0.8 - .5) * -3 = -0.9 -> 0.1 * 1.5 + 0.9 = 1.05
    # row 1: KL term 0; score (0.2 - .5) * -0.5 = 0.15 -> -0.15
    assert out.loss.tolist() == pytest.approx([1.05, -0.15])
    assert out.weight.tolist() == [1.0, 1.0]
    assert out.metrics["kl"].tolist() == pytest.approx([-0.5, 0.0])
    out.loss.sum().backward()
    # dL/dl_t = beta * sg(log-ratio_t) - (P - 1/2); masked positions get nothing
    assert logps.grad.flatten().tolist() == pytest.approx([0.1 * 0.5 - 0.3, 0.1 * -1.0 - 0.3, 0.0, 0.3])


def test_config_validation_and_flags():
    with pytest.raises(ValueError, match="--mixture-coef must be in"):
        NashMDConfig(mixture_coef=1.5)
    with pytest.raises(ValueError, match="--temperature must be > 0"):
        NashMDConfig(temperature=0.0)
    job = resolve_job("nash-md", "M", None, "out", {"mixture-coef": "0.25", "beta": "0.05", "reward": "truth"}, **QUIET)
    assert job.method.theme == "RL" and job.method_cfg.mixture_coef == 0.25 and job.method_cfg.beta == 0.05


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("nash-prompts") / "prompts.jsonl"
    p.write_text("".join(json.dumps({"prompt": " ".join(t.split()[:4])}) + "\n"
                         for t in synthetic_texts(12, seed=5)))
    return p


class LongerWins(Judge):
    """A pairwise-only preference model: the longer answer wins, ties are 1/2."""
    name = "longer"

    def compare(self, prompts, a, b):
        return [1.0 if len(x) > len(y) else 0.0 if len(x) < len(y) else 0.5 for x, y in zip(a, b)]


def _train(model, prompts, out, judge=None, **kw):
    from alignkit.rl.nash_md import run_nash_md
    from alignkit.train.run import Job
    base = dict(max_steps=4, batch_size=3, learning_rate=1e-3, progress=False, eval_fraction=0.25, seed=0)
    cfg = TrainConfig(**{**base, **{k: v for k, v in kw.items() if k in TrainConfig.__dataclass_fields__}})
    mcfg = NashMDConfig(**{**dict(reward=judge or "rule:words", prompts_per_step=2, samples_per_prompt=2, max_new_tokens=6,
                                  eval_samples=2),
                           **{k: v for k, v in kw.items() if k in NashMDConfig.__dataclass_fields__}})
    from alignkit.method import Method
    return run_nash_md(Job(Method("nash-md", None, NashMDConfig, "online", "", run=run_nash_md), cfg, mcfg,
                           str(model), str(prompts), str(out), **QUIET))


def _rows(out, split="train"):
    return [r for r in (json.loads(line) for line in open(out / "metrics.jsonl")) if r["split"] == split]


def test_runs_logs_saves_with_a_pairwise_only_judge(tiny_model_dir, prompts_file, tmp_path):
    s = _train(tiny_model_dir, prompts_file, tmp_path / "run", judge=LongerWins())
    assert s["iterations"] == 4 and s["steps"] == 4 and s["samples"] == 16
    rows = _rows(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in ("loss", "preference", "kl", "nash/score", "grad_norm", "length/policy", "length/mixture",
                "eos_rate", "time/rollout"):
        assert key in rows[-1], key
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # the first samples come from the reference itself
    assert all(0.0 <= r["preference"] <= 1.0 for r in rows)
    assert {"preference_vs_ref", "kl", "length/mean"} <= set(s["eval_end"])
    assert s["eval_start"]["preference_vs_ref"] == pytest.approx(0.5)  # policy = reference at the start: same samples
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_resume_matches_uninterrupted(tiny_model_dir, prompts_file, tmp_path, monkeypatch):
    _train(tiny_model_dir, prompts_file, tmp_path / "full", save_every=2)
    original = Engine.optimizer_step

    def stop_after_two(self, *a, **kw):
        out = original(self, *a, **kw)
        if self.step == 2:
            self.stop_requested = True  # what SIGINT/SIGTERM do
        return out

    monkeypatch.setattr(Engine, "optimizer_step", stop_after_two)
    res = _train(tiny_model_dir, prompts_file, tmp_path / "part", save_every=2)
    assert res["interrupted"] and res["iteration"] == 2
    monkeypatch.setattr(Engine, "optimizer_step", original)
    with pytest.raises(ConfigError, match="--resume"):
        _train(tiny_model_dir, prompts_file, tmp_path / "part", save_every=2)
    res2 = _train(tiny_model_dir, prompts_file, tmp_path / "part", save_every=2, resume=True)
    assert res2["iterations"] == 4 and res2["samples"] == 16
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert [r["step"] for r in _rows(tmp_path / "part")] == [1, 2, 3, 4]


class MoreSpaces(Judge):
    """A pairwise-only preference model: the answer with more spaces wins, ties are 1/2."""
    name = "more-spaces"

    def compare(self, prompts, a, b):
        n = [(x.count(" "), y.count(" ")) for x, y in zip(a, b)]
        return [1.0 if u > v else 0.0 if u < v else 0.5 for u, v in n]


def test_preference_pushes_towards_the_preferred_answer(tiny_model_dir, prompts_file, tmp_path):
    """A few steps at a high learning rate make the policy's held-out answers win against the reference's
    under the preference model it trains on (1/2 at the start: the same model, the same samples)."""
    s = _train(tiny_model_dir, prompts_file, tmp_path / "the", judge=MoreSpaces(), max_steps=12, learning_rate=1e-2,
               beta=0.0, max_new_tokens=12, prompts_per_step=3, samples_per_prompt=3, eval_samples=8)
    assert s["eval_start"]["preference_vs_ref"] == pytest.approx(0.5)
    assert s["eval_end"]["preference_vs_ref"] > 0.6, s["eval_end"]
    assert math.isfinite(s["eval_end"]["kl"]) and s["eval_end"]["kl"] > 0


def test_lora_reference_is_the_adapter_disabled_policy(tiny_model_dir, prompts_file, tmp_path):
    """Under LoRA one model serves as policy, reference and both sides of the mixture (adapter off for
    the reference); at the start the adapter is zero, so policy and reference sample the same answers."""
    s = _train(tiny_model_dir, prompts_file, tmp_path / "lora", judge=MoreSpaces(), lora_r=4, max_steps=2,
               learning_rate=1e-2)
    assert s["eval_start"]["preference_vs_ref"] == pytest.approx(0.5) and s["eval_start"]["kl"] == pytest.approx(0.0, abs=1e-5)
    assert s["steps"] == 2 and (tmp_path / "lora" / "model.safetensors").is_file()
