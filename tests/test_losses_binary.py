"""KTO, BCO and DRO against hand-computed values (methods.md section 11, Case A, and by hand)."""

import pytest
import torch

from alignkit.losses.base import BinaryInput, Logps
from alignkit.losses.binary import BCOConfig, DROConfig, KTOConfig, bco, dro, kto
from alignkit.losses.registry import get_loss
from conftest import sigmoid, softplus


def seq(total: float, n: int, grad: bool = False) -> torch.Tensor:
    """n per-token log-probs summing to `total` (float64)."""
    t = torch.full((n,), total / n, dtype=torch.float64)
    return t.requires_grad_(grad) if grad else t


def logps(*rows) -> Logps:
    """Logps from 1-D tensors, keeping autograd to the given rows."""
    t = max(len(r) for r in rows)
    tokens = torch.stack([torch.cat([r, torch.zeros(t - len(r), dtype=torch.float64)]) for r in rows])  # (N, T)
    mask = torch.stack([(torch.arange(t) < len(r)).to(torch.float64) for r in rows])  # (N, T)
    return Logps(tokens, mask)


# Case A: policy -11.5 (5 tok) / -14.0 (8 tok), reference -11.0 / -12.0 -> Delta_w = -0.5, Delta_l = -2.0
def case_a(grad=False):
    pw, pl = seq(-11.5, 5, grad), seq(-14.0, 8, grad)
    return pw, pl, logps(pw, pl), logps(seq(-11.0, 5), seq(-12.0, 8))


# ---------------------------------------------------------------------------------------- KTO

def kto_input(mismatch_deltas, grad=False):
    pw, pl, pol, ref = case_a(grad)
    mm = [seq(d - 3.0, 3, grad) for d in mismatch_deltas]  # log pi = d - 3, log pi_ref = -3
    mism = logps(*mm)
    ref_mism = logps(*[seq(-3.0, 3) for _ in mismatch_deltas])
    inp = BinaryInput(pol, torch.tensor([True, False]), ref=ref, mismatch=mism, ref_mismatch=ref_mism)
    return inp, (pw, pl, mm)


def test_kto_case_a():
    inp, _ = kto_input([0.5, -0.1])  # z_0 = mean(0.5, -0.1) = 0.2
    out = kto(inp, KTOConfig(beta=0.1))
    assert out.loss.shape == (2,)
    assert out.loss[0].item() == pytest.approx(0.5174928577, abs=1e-9)
    assert out.loss[1].item() == pytest.approx(0.4452207649, abs=1e-9)
    # the same from the formula: 1 - sigma(beta (Delta - z0)) and 1 - sigma(beta (z0 - Delta))
    assert out.loss[0].item() == pytest.approx(1 - sigmoid(0.1 * (-0.5 - 0.2)), abs=1e-12)
    assert out.loss[1].item() == pytest.approx(1 - sigmoid(0.1 * (0.2 + 2.0)), abs=1e-12)
    assert out.metrics["kto/z0"].item() == pytest.approx(0.2)


def test_kto_z0_clamped_at_zero_and_weights():
    inp, _ = kto_input([-0.5, -0.1])  # mean -0.3 -> z_0 = 0
    out = kto(inp, KTOConfig(beta=0.1, desirable_weight=2.0, undesirable_weight=0.5))
    assert out.metrics["kto/z0"].item() == 0.0
    assert out.loss[0].item() == pytest.approx(2.0 * (1 - sigmoid(0.1 * -0.5)), abs=1e-12)
    assert out.loss[1].item() == pytest.approx(0.5 * (1 - sigmoid(0.1 * 2.0)), abs=1e-12)


def test_kto_gradients_flow_to_policy_not_to_z0():
    inp, (pw, pl, mm) = kto_input([0.5, -0.1], grad=True)
    kto(inp, KTOConfig()).loss.sum().backward()
    # d/dDelta of 1 - sigma(beta (Delta - z0)) = -beta sigma(1 - sigma), shared equally by 5 tokens
    s = sigmoid(0.1 * (-0.5 - 0.2))
    assert pw.grad[0].item() == pytest.approx(-0.1 * s * (1 - s), abs=1e-12)
    assert (pl.grad > 0).all()  # undesirable: raising log pi raises the loss
    assert all(m.grad is None or (m.grad == 0).all() for m in mm)  # z_0 is detached


def test_kto_requires_mismatch():
    inp, _ = kto_input([0.5, -0.1])
    inp.mismatch = None
    with pytest.raises(ValueError, match="mismatch"):
        kto(inp, KTOConfig())


# ---------------------------------------------------------------------------------------- BCO

def test_bco_case_a_and_state():
    _, _, pol, ref = case_a()
    state = {}
    out = bco(BinaryInput(pol, torch.tensor([True, False]), ref=ref), BCOConfig(beta=0.1), state)
    # delta = mean(beta * (-0.5), beta * (-2.0)) = -0.125, updated before use
    assert state["reward_count"] == 2
    assert state["reward_mean"] == pytest.approx(-0.125, abs=1e-12)
    assert out.loss.sum().item() == pytest.approx(1.3127002817, abs=1e-9)
    assert out.loss[0].item() == pytest.approx(softplus(-(-0.05 + 0.125)), abs=1e-12)
    assert out.loss[1].item() == pytest.approx(softplus(-0.2 + 0.125), abs=1e-12)


def test_bco_running_mean_is_count_weighted():
    _, _, pol, ref = case_a()
    state = {"reward_count": 6.0, "reward_mean": 0.5}
    out = bco(BinaryInput(pol, torch.tensor([False, True]), ref=ref), BCOConfig(beta=0.1), state)
    expected = (6 * 0.5 + (-0.05) + (-0.2)) / 8  # 0.34375
    assert state["reward_count"] == 8
    assert state["reward_mean"] == pytest.approx(expected, abs=1e-12)
    assert out.loss[0].item() == pytest.approx(softplus(-0.05 - expected), abs=1e-12)  # thumbs down
    assert out.loss[1].item() == pytest.approx(softplus(-(-0.2 - expected)), abs=1e-12)  # thumbs up


def test_bco_no_update_under_no_grad():
    _, _, pol, ref = case_a()
    state = {"reward_count": 4.0, "reward_mean": 1.0}
    with torch.no_grad():
        out = bco(BinaryInput(pol, torch.tensor([True, False]), ref=ref), BCOConfig(), state)
    assert state == {"reward_count": 4.0, "reward_mean": 1.0}
    assert out.loss[0].item() == pytest.approx(softplus(-(-0.05 - 1.0)), abs=1e-12)


def test_bco_gradients_flow():
    pw, pl, pol, ref = case_a(grad=True)
    bco(BinaryInput(pol, torch.tensor([True, False]), ref=ref), BCOConfig(), {}).loss.sum().backward()
    assert (pw.grad < 0).all() and (pl.grad > 0).all()


# ---------------------------------------------------------------------------------------- DRO

def dro_input(score=None, grad=True):
    pw = seq(-11.5, 5, grad)
    pol, ref = logps(pw), logps(seq(-11.0, 5))  # Delta = -0.5
    v = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    inp = BinaryInput(pol, torch.tensor([True]), ref=ref, value=v,
                      score=None if score is None else torch.tensor([score], dtype=torch.float64))
    return inp, pw, v


def test_dro_value_and_paper_gradients():
    inp, pw, v = dro_input(score=1.0)
    out = dro(inp, DROConfig(tau=0.5))
    res = 1.0 - 0.3 - 0.5 * (-0.5)  # 0.95
    assert out.loss.item() == pytest.approx(0.5 * res ** 2, abs=1e-12)  # 0.45125
    out.loss.sum().backward()
    assert v.grad.item() == pytest.approx(-res, abs=1e-12)  # value: autograd of the square
    # policy: -(r - V) grad log pi + tau Delta grad Delta = -res per token (not scaled by tau)
    assert torch.allclose(pw.grad, torch.full_like(pw, -res), atol=1e-12)


def test_dro_exact_square_gradient_when_not_rescaled():
    inp, pw, v = dro_input(score=1.0)
    dro(inp, DROConfig(tau=0.5, rescale_policy=False)).loss.sum().backward()
    res = 0.95
    assert torch.allclose(pw.grad, torch.full_like(pw, -0.5 * res), atol=1e-12)
    assert v.grad.item() == pytest.approx(-res, abs=1e-12)


def test_dro_label_gives_plus_minus_one_and_mean_option():
    inp, _, _ = dro_input(score=None)
    inp.desirable = torch.tensor([False])  # r = -1
    out = dro(inp, DROConfig(tau=1.0))
    assert out.loss.item() == pytest.approx(0.5 * (-1.0 - 0.3 + 0.5) ** 2, abs=1e-12)  # 0.32
    out = dro(inp, DROConfig(tau=1.0, mean_logps=True))  # Delta / 5 tokens = -0.1
    assert out.loss.item() == pytest.approx(0.5 * (-1.0 - 0.3 + 0.1) ** 2, abs=1e-12)  # 0.72


def test_dro_requires_value():
    inp, _, _ = dro_input(score=1.0)
    inp.value = None
    with pytest.raises(ValueError, match="value"):
        dro(inp, DROConfig())


def test_registry_specs():
    assert get_loss("kto").needs_mismatch and get_loss("kto").feedback == "binary"
    assert get_loss("bco").stateful and get_loss("bco").reference
    assert get_loss("dro").needs_value and get_loss("dro").reference
    for name in ("kto", "bco", "dro"):
        assert get_loss(name).theme == "optimization" and "arXiv" in get_loss(name).paper


def test_kto_advice_checks_the_papers_class_balance():
    from alignkit.data.records import Binary
    from alignkit.losses.binary import KTOConfig, kto_advice
    recs = [Binary("p", "good", True)] * 2 + [Binary("p", "bad", False)] * 6
    notes = kto_advice(recs, KTOConfig())  # 1 * 2 / (1 * 6) = 0.33 < 1
    assert len(notes) == 1 and "0.33" in notes[0] and "--desirable-weight 3.50" in notes[0]  # 7/6 * 6/2
    assert kto_advice(recs, KTOConfig(desirable_weight=3.0)) == []  # 3 * 2 / 6 = 1: inside [1, 4/3]
    assert kto_advice(recs, KTOConfig(desirable_weight=4.0)) == []  # 4/3 exactly
    assert len(kto_advice(recs, KTOConfig(desirable_weight=4.1))) == 1
    assert "needs both" in kto_advice(recs[:2], KTOConfig())[0]
