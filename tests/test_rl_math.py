"""RL building blocks against numbers computed by hand (methods.md section 11 where it has them):
KL estimators, GAE, whitening, every advantage estimator, the clipped losses, the KL controllers,
length control."""
import math
from dataclasses import dataclass

import pytest
import torch

from alignkit.rl import advantages as A
from alignkit.rl import policy_losses as L
from alignkit.rl.kl import kl_per_token, sequence_kl
from alignkit.rl.length import length_controlled
from alignkit.rl.types import PolicyInput, Rollout

T = lambda *x: torch.tensor(x, dtype=torch.float64)  # noqa: E731


@dataclass(frozen=True)
class Cfg:
    kl_estimator: str = "k1"
    whiten_advantages: bool = False
    gamma: float = 1.0
    lam: float = 0.95
    baseline_decay: float = 0.9
    std: str = "unbiased"
    std_eps: float = 1e-4
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.1
    loss_type: str = "sequence"
    length_penalty: float = 0.0
    length_normalize: bool = False
    missing_eos_penalty: float = 0.0


def rollout(rewards, group=None, old=None, ref=None, values=None, baseline=None, mask=None):
    rewards = T(*rewards)
    b = len(rewards)
    old = torch.zeros(b, 1, dtype=torch.float64) if old is None else old
    mask = torch.ones_like(old) if mask is None else mask
    return Rollout(prompts=[""] * b, texts=[""] * b, seqs=[([1], [2])] * b,
                   group=torch.zeros(b, dtype=torch.long) if group is None else torch.tensor(group),
                   mask=mask, old_logps=old, ended=torch.ones(b, dtype=torch.bool), judge_scores=rewards,
                   rewards=rewards, ref_logps=ref, values=values, baseline_rewards=baseline)


# --- KL estimators (methods.md 11: log(pi_ref/pi) = -0.2) ---------------------------------------------
@pytest.mark.parametrize("est,value", [("k1", 0.2), ("k2", 0.02), ("k3", 0.0187307531)])
def test_kl_estimators(est, value):
    logp, ref = T(-1.0), T(-1.2)  # log pi_ref - log pi = -0.2
    assert kl_per_token(logp, ref, est).item() == pytest.approx(value, abs=1e-9)
    # a sequence sums its tokens; masked tokens count nothing
    lp, rf, m = T(-1.0, -1.0, -5.0)[None], T(-1.2, -1.2, -1.0)[None], T(1, 1, 0)[None]
    assert sequence_kl(lp * m, rf * m, m, est).item() == pytest.approx(2 * value, abs=1e-9)


def test_kl_estimator_unknown():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_per_token(T(0.0), T(0.0), "k4")


# --- GAE (methods.md 11) ---------------------------------------------------------------------------
def test_gae_check_values():
    r, v, m = T(-0.01, -0.02, 1.0)[None], T(0.5, 0.6, 0.7)[None], T(1, 1, 1)[None]
    adv, ret = A.gae(r, v, m, gamma=1.0, lam=0.95)
    assert adv[0].tolist() == pytest.approx([0.43675, 0.365, 0.3], abs=1e-9)
    assert ret[0].tolist() == pytest.approx([0.93675, 0.965, 1.0], abs=1e-9)


def test_gae_right_aligned_padding_and_discount():
    # row 0: padding then two tokens; with gamma 0.5, lam 1: A_1 = 1 - 0.2 = 0.8,
    # A_0 = (0 + 0.5*0.2 - 0.1) + 0.5*0.8 = 0.4; the pad column stays 0
    r = T(9.0, 0.0, 1.0)[None]
    v = T(9.0, 0.1, 0.2)[None]
    m = T(0, 1, 1)[None]
    adv, ret = A.gae(r, v, m, gamma=0.5, lam=1.0)
    assert adv[0].tolist() == pytest.approx([0.0, 0.4, 0.8], abs=1e-12)
    assert ret[0].tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1e-12)


def test_whiten_uses_unmasked_entries_with_bessel():
    x = T(1.0, 2.0, 3.0, 4.0, 100.0)[None]
    m = T(1, 1, 1, 1, 0)[None]
    sd = math.sqrt(5.0 / 3.0)  # unbiased std of 1..4
    want = [(v - 2.5) / sd for v in (1, 2, 3, 4)] + [0.0]
    assert A.whiten(x, m)[0].tolist() == pytest.approx(want, abs=1e-6)


# --- sequence-level estimators (methods.md 11: rewards (1, 0, 0.5, 0.5)) -----------------------------
def test_rloo_leave_one_out():
    assert A.rloo(T(1, 0, 0.5, 0.5), torch.zeros(4, dtype=torch.long)).tolist() == \
        pytest.approx([2 / 3, -2 / 3, 0, 0], abs=1e-12)
    # two prompts: baselines stay inside each group
    got = A.rloo(T(1, 3, 10, 20), torch.tensor([0, 0, 1, 1]))
    assert got.tolist() == pytest.approx([-2, 2, -10, 10])
    with pytest.raises(ValueError, match="at least 2"):
        A.rloo(T(1, 2), torch.tensor([0, 1]))


def test_grpo_group_normalisation():
    r, g = T(1, 0, 0.5, 0.5), torch.zeros(4, dtype=torch.long)
    unbiased = 0.5 / (math.sqrt(0.5 / 3) + 1e-4)  # std with N-1 = sqrt(1/6)
    assert A.group_normalise(r, g, "unbiased", 1e-4).tolist() == pytest.approx([unbiased, -unbiased, 0, 0], abs=1e-9)
    assert unbiased == pytest.approx(1.22444, abs=1e-5)  # methods.md 11
    assert A.group_normalise(r, g, "population", 0.0).tolist() == pytest.approx([1.41421, -1.41421, 0, 0], abs=1e-5)
    assert A.group_normalise(r, g, "none").tolist() == pytest.approx([0.5, -0.5, 0, 0])  # Dr. GRPO
    # a group with equal rewards gives 0, not a division by zero
    assert A.group_normalise(T(2, 2), torch.zeros(2, dtype=torch.long)).tolist() == [0.0, 0.0]


def test_remax_greedy_baseline():
    ro = rollout([1.0], baseline=T(0.6))
    adv = A.remax_advantages(ro, Cfg(), 0.0, {})
    assert adv.advantages[0, 0].item() == pytest.approx(0.4)  # methods.md 11


def test_sequence_reward_subtracts_summed_kl():
    # two tokens with log pi_old - log pi_ref = 0.3 and 0.1: k1 sum 0.4; beta 0.5 -> R = 1 - 0.2
    old = T(-1.0, -2.0)[None]
    ref = T(-1.3, -2.1)[None]
    ro = rollout([1.0], old=old, ref=ref)
    assert A.sequence_reward(ro, Cfg(), 0.5).item() == pytest.approx(0.8)
    # k2: 0.5 * (0.09 + 0.01) = 0.05 -> 1 - 0.025
    assert A.sequence_reward(ro, Cfg(kl_estimator="k2"), 0.5).item() == pytest.approx(0.975)


def test_rloo_estimator_puts_sequence_kl_in_reward():
    # rewards (1, 0); KL sums (0.4, 0): R = (0.8, 0); LOO A = (0.8, -0.8), the same on every token
    old = T(-1.0, -2.0, -1.0, -1.0).view(2, 2)
    ref = T(-1.3, -2.1, -1.0, -1.0).view(2, 2)
    adv = A.rloo_advantages(rollout([1.0, 0.0], old=old, ref=ref), Cfg(), 0.5, {})
    assert adv.advantages.flatten().tolist() == pytest.approx([0.8, 0.8, -0.8, -0.8])


def test_reinforce_moving_average_baseline():
    state = {}
    a1 = A.reinforce_advantages(rollout([1.0, 3.0]), Cfg(), 0.0, state)
    assert a1.advantages[:, 0].tolist() == pytest.approx([-1.0, 1.0])  # b starts at the first mean, 2
    assert state["baseline"] == pytest.approx(2.0)
    a2 = A.reinforce_advantages(rollout([5.0, 7.0]), Cfg(), 0.0, state)
    assert a2.advantages[:, 0].tolist() == pytest.approx([3.0, 5.0])  # b = 2 before the update
    assert state["baseline"] == pytest.approx(0.9 * 2.0 + 0.1 * 6.0)


def test_ppo_advantages_shape_kl_per_token_then_gae():
    # beta 0.1, KL_t = (0.1, 0.2, 0.0) -> r = (-0.01, -0.02, 0) + score 1.0 on the last token:
    # exactly methods.md 11's GAE case
    old = T(-1.0, -1.0, -1.0)[None]
    ref = T(-1.1, -1.2, -1.0)[None]
    ro = rollout([1.0], old=old, ref=ref, values=T(0.5, 0.6, 0.7)[None])
    adv = A.ppo_advantages(ro, Cfg(), 0.1, {})
    assert adv.advantages[0].tolist() == pytest.approx([0.43675, 0.365, 0.3], abs=1e-9)
    assert adv.returns[0].tolist() == pytest.approx([0.93675, 0.965, 1.0], abs=1e-9)


# --- losses (methods.md 11) --------------------------------------------------------------------------
def test_clipped_surrogate_check_values():
    got = L.clipped_surrogate(T(1.3, 0.7, 0.7), T(0.5, -0.5, 0.5), 0.2)
    assert got.tolist() == pytest.approx([-0.6, 0.4, -0.35], abs=1e-12)


def test_clipped_value_loss_check_value():
    assert L.clipped_value_loss(T(0.9), T(0.5), T(1.0), 0.2).item() == pytest.approx(0.045, abs=1e-12)
    # inside the clip range the plain squared error counts: 0.5 * (0.6 - 1)^2
    assert L.clipped_value_loss(T(0.6), T(0.5), T(1.0), 0.2).item() == pytest.approx(0.08, abs=1e-12)


def test_aggregations():
    tok, m = T(1.0, 2.0, 3.0, 0.0).view(2, 2), T(1, 1, 1, 0).view(2, 2)
    loss, w = L.aggregate(tok, m, "token")
    assert loss.tolist() == [3.0, 3.0] and w.tolist() == [2.0, 1.0]  # step loss = 6 / 3 tokens
    loss, w = L.aggregate(tok, m, "sequence")
    assert loss.tolist() == [1.5, 3.0] and w.tolist() == [1.0, 1.0]
    loss, w = L.aggregate(tok, m, "dr_grpo", max_len=4)
    assert loss.tolist() == [0.75, 0.75] and w.tolist() == [1.0, 1.0]


def _inp(logps, old, adv, **kw):
    m = torch.ones_like(old)
    return PolicyInput(logps=logps, old_logps=old, mask=m, advantages=adv, **kw)


def test_ppo_loss_token_mean_of_policy_and_value_terms():
    # one row, tokens with ratios 1.3 and 0.7 and A = 0.5: pg = (-0.6, -0.35);
    # values (0.9, 0.6), old (0.5, 0.5), returns 1: vf = (0.045, 0.08)
    old = T(0.0, 0.0)[None]
    logps = torch.log(T(1.3, 0.7))[None]
    inp = _inp(logps, old, T(0.5, 0.5)[None], values=T(0.9, 0.6)[None], old_values=T(0.5, 0.5)[None],
               returns=T(1.0, 1.0)[None])
    out = L.ppo_loss(inp, Cfg(), 0.0)
    assert out.weight.item() == 2.0
    assert (out.loss / out.weight).item() == pytest.approx((-0.6 - 0.35) / 2 + 0.1 * (0.045 + 0.08) / 2, abs=1e-12)
    assert out.metrics["clipfrac"].item() == pytest.approx(1.0)


def test_sequence_pg_loss_is_reinforce_at_ratio_one():
    logps = T(-1.0, -2.0, -0.5, -0.5).view(2, 2).requires_grad_(True)
    adv = T(0.7, 0.7, -0.3, -0.3).view(2, 2)
    out = L.sequence_pg_loss(_inp(logps, logps.detach().clone(), adv), Cfg(), 0.0)
    assert out.loss.tolist() == pytest.approx([-0.7, 0.3]) and out.weight.tolist() == [1.0, 1.0]
    out.loss.sum().backward()
    # d/d log pi(y_t) of -A_i * log pi(y_i) is -A_i on every token
    assert logps.grad.flatten().tolist() == pytest.approx([-0.7, -0.7, 0.3, 0.3])


def test_sequence_pg_loss_clips_the_sequence_ratio():
    old = T(0.0, 0.0)[None]
    logps = torch.log(T(1.3, 1.0))[None]  # sequence ratio 1.3 > 1 + eps with A > 0 -> clipped at 1.2
    out = L.sequence_pg_loss(_inp(logps, old, T(0.5, 0.5)[None]), Cfg(), 0.0)
    assert out.loss.item() == pytest.approx(-0.6)


def test_grpo_loss_adds_k3_kl_and_aggregates():
    old = T(-1.0, -1.0)[None]
    logps = old.clone().requires_grad_(True)
    ref = T(-1.2, -1.2)[None]  # log(pi_ref/pi) = -0.2 per token -> k3 = 0.0187307531
    tok = -0.5 + 0.04 * 0.0187307531
    inp = _inp(logps, old, T(0.5, 0.5)[None], ref_logps=ref, max_new_tokens=4)
    out = L.grpo_loss(inp, Cfg(kl_estimator="k3"), 0.04)
    assert out.loss.item() == pytest.approx(tok, abs=1e-9) and out.weight.item() == 1.0
    assert out.metrics["kl_loss"].item() == pytest.approx(0.0187307531, abs=1e-9)
    out2 = L.grpo_loss(inp, Cfg(kl_estimator="k3", loss_type="dr_grpo"), 0.04)
    assert out2.loss.item() == pytest.approx(2 * tok / 4, abs=1e-9)
    out3 = L.grpo_loss(inp, Cfg(kl_estimator="k3", loss_type="token"), 0.04)
    assert out3.loss.item() == pytest.approx(2 * tok, abs=1e-9) and out3.weight.item() == 2.0
    # no reference (reference-free) -> the surrogate alone
    assert L.grpo_loss(_inp(logps, old, T(0.5, 0.5)[None]), Cfg(), 0.04).loss.item() == pytest.approx(-0.5)


def test_adaptive_kl_controller_check_value():
    ctl = L.AdaptiveKLController(0.2, target=6.0, horizon=10000)
    ctl.update(9.0, n_steps=256)
    assert ctl.value == pytest.approx(0.201024, abs=1e-12)  # methods.md 11
    ctl = L.AdaptiveKLController(0.2, target=6.0, horizon=10000)
    ctl.update(5.7, n_steps=100)  # e = -0.05 -> 0.2 * (1 - 0.0005)
    assert ctl.value == pytest.approx(0.1999, abs=1e-12)
    fixed = L.FixedKLController(0.2)
    fixed.update(100.0, 256)
    assert fixed.value == 0.2
    fixed.load_state_dict(ctl.state_dict())
    assert fixed.value == pytest.approx(0.1999)


def test_length_control():
    scores, lengths = T(2.0, 2.0), T(10.0, 4.0)
    ended = torch.tensor([False, True])
    got = length_controlled(scores, lengths, ended, Cfg(length_penalty=0.1, missing_eos_penalty=1.0))
    assert got.tolist() == pytest.approx([2 - 1 - 1, 2 - 0.4])
    assert length_controlled(scores, lengths, ended, Cfg(length_normalize=True)).tolist() == pytest.approx([0.2, 0.5])


def test_lexicon_rule_judge():
    from alignkit.rl.judges import judge_for  # resolved by alignkit.rewards.specs
    j = judge_for("rule:positive")
    assert j.score(["", ""], ["She was happy. They loved the fun park!", "The dog ran."]) == [3.0, 0.0]
    assert judge_for("rule:words").score([""], ["a b c"]) == [3.0]
