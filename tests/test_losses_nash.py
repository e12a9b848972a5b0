"""SPPO against hand-computed values (methods.md section 11: eta 10, P_w 0.8, P_l 0.3 -> 6.125)."""
import pytest
import torch

from alignkit.losses.base import ListwiseInput
from alignkit.losses.nash import SPPOConfig, sppo
from alignkit.losses.registry import get_loss
from conftest import equal_token_logps as logps


def _input(policy_sums, ref_sums, lengths, scores, grad=False):
    pol = logps(policy_sums, lengths, grad=grad)
    ref = logps(ref_sums, lengths)
    return pol, ListwiseInput(pol, torch.tensor([scores], dtype=torch.float64), ref)


def test_sppo_worked_value_and_gradient():
    # case A: policy -11.5 / -14.0, reference -11.0 / -12.0 -> Delta_w = -0.5, Delta_l = -2.0
    pol, inp = _input([-11.5, -14.0], [-11.0, -12.0], [5, 8], [0.8, 0.3], grad=True)
    out = sppo(inp, SPPOConfig(eta=10.0))
    # 1/2 [(-0.5 - 10 * 0.3)^2 + (-2.0 - 10 * (-0.2))^2] = 1/2 [12.25 + 0] = 6.125
    assert out.loss.item() == pytest.approx(6.125, abs=1e-12)
    out.loss.sum().backward()
    # dL/dDelta_w = (Delta_w - target_w) = -3.5, spread evenly over 5 tokens; the rejected term is at its target
    assert pol.tokens.grad[0, :5].tolist() == pytest.approx([-3.5] * 5)
    assert pol.tokens.grad[1].abs().max().item() == pytest.approx(0.0, abs=1e-12)
    assert out.metrics["rewards/margin"].item() == pytest.approx(1.5)  # -0.5 - (-2.0)


def test_sppo_three_responses_and_the_fixed_point():
    # K = 3, eta 4: targets 4 * (0.9 - .5, 0.5 - .5, 0.1 - .5) = (1.6, 0, -1.6); Deltas (1, 0.5, -2)
    _, inp = _input([0.0, -1.5, -5.0], [-1.0, -2.0, -3.0], [3, 4, 2], [0.9, 0.5, 0.1])
    out = sppo(inp, SPPOConfig(eta=4.0))
    assert out.loss.item() == pytest.approx(((1 - 1.6) ** 2 + 0.5 ** 2 + (-2 + 1.6) ** 2) / 3)
    # at Delta = eta (P - 1/2) the loss is zero: the paper's fixed point
    _, inp = _input([1.6, 0.0, -1.6], [0.0, 0.0, 0.0], [2, 2, 2], [0.9, 0.5, 0.1])
    assert sppo(inp, SPPOConfig(eta=4.0)).loss.item() == pytest.approx(0.0, abs=1e-12)


def test_sppo_is_registered_with_a_reference_and_listwise_feedback():
    spec = get_loss("sppo")
    assert spec.feedback == "listwise" and spec.reference and spec.config().eta == 1000.0
