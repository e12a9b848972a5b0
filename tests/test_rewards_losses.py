"""Reward-model losses against values computed by hand (methods.md 11 for Bradley-Terry)."""
import math

import pytest
import torch

from alignkit.rewards.losses import bradley_terry, plackett_luce, pointwise, ranking_accuracy
from conftest import softplus


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_bradley_terry_plain_margin_and_centering_match_methods_md():
    rw, rl = t(1.2), t(0.3)
    assert bradley_terry(rw, rl).loss.item() == pytest.approx(0.3411538747, abs=1e-9)
    assert bradley_terry(rw, rl, margin=t(2 / 3)).loss.item() == pytest.approx(0.5832706867, abs=1e-9)
    assert bradley_terry(rw, rl, center_coef=0.01).loss.item() == pytest.approx(0.3636538747, abs=1e-9)
    # the same by hand: -log sigma(0.9) = log(1 + e^-0.9); centring adds 0.01 * 1.5^2 = 0.0225
    assert bradley_terry(rw, rl, center_coef=0.01).loss.item() == pytest.approx(softplus(-0.9) + 0.0225, abs=1e-12)


def test_bradley_terry_soft_label_is_cross_entropy_and_reduces_to_bt_at_one():
    rw, rl = t(1.2, 0.0), t(0.3, 0.5)
    out = bradley_terry(rw, rl, label=t(0.8, 1.0))
    want0 = 0.8 * softplus(-0.9) + 0.2 * softplus(0.9)
    assert out.loss[0].item() == pytest.approx(want0, abs=1e-12)
    assert out.loss[1].item() == pytest.approx(softplus(0.5), abs=1e-12)  # z = -0.5, p = 1


def test_bradley_terry_metrics_and_gradient():
    rw = t(1.2, -1.0).requires_grad_()
    rl = t(0.3, 0.0)
    out = bradley_terry(rw, rl)
    assert out.metrics["rewards/accuracy"].tolist() == [1.0, 0.0]
    assert out.metrics["rewards/margin"].tolist() == pytest.approx([0.9, -1.0])
    out.loss.sum().backward()
    # d/dr_w -log sigma(z) = -sigma(-z)
    assert rw.grad.tolist() == pytest.approx([-1 / (1 + math.exp(0.9)), -1 / (1 + math.exp(-1.0))])


def test_pointwise_squared_error():
    out = pointwise(t(0.5, -1.0, 2.0), t(1.0, 1.0, 2.0))
    assert out.loss.tolist() == pytest.approx([0.25, 4.0, 0.0])
    assert out.metrics["rewards/abs_error"].tolist() == pytest.approx([0.5, 2.0, 0.0])


def test_plackett_luce_by_hand():
    # labels rank item 0 > item 2 > item 1
    r, s = t(1.0, 0.0, -1.0).view(1, 3), t(3.0, 1.0, 2.0).view(1, 3)
    want = -(1.0 - math.log(math.e + 1 + math.exp(-1))) - (-1.0 - math.log(math.exp(-1) + 1))
    assert plackett_luce(r, s).loss.item() == pytest.approx(want, abs=1e-12)


def test_plackett_luce_with_two_items_is_bradley_terry():
    r, s = t(1.2, 0.3).view(1, 2), t(1.0, 0.0).view(1, 2)
    assert plackett_luce(r, s).loss.item() == pytest.approx(0.3411538747, abs=1e-9)


def test_plackett_luce_ties_share_a_risk_set_and_order_does_not_matter():
    # scores (2, 1, 1): item 0 beats both; items 1 and 2 tie with nothing below them -> no term
    r, s = t(1.0, 0.5, -1.0).view(1, 3), t(2.0, 1.0, 1.0).view(1, 3)
    want = math.log(math.e + math.exp(0.5) + math.exp(-1)) - 1.0
    assert plackett_luce(r, s).loss.item() == pytest.approx(want, abs=1e-12)
    perm = [2, 0, 1]
    assert plackett_luce(r[:, perm], s[:, perm]).loss.item() == pytest.approx(want, abs=1e-12)
    # all tied: no ordering information, no loss
    assert plackett_luce(r, t(1.0, 1.0, 1.0).view(1, 3)).loss.item() == 0.0


def test_plackett_luce_padding_mask():
    r = t(1.0, 0.0, -1.0, 9.0, 1.2, 0.3, 7.0, 7.0).view(2, 4)
    s = t(3.0, 1.0, 2.0, 99.0, 1.0, 0.0, 50.0, -50.0).view(2, 4)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    out = plackett_luce(r, s, mask)
    assert out.loss[0].item() == pytest.approx(plackett_luce(r[:1, :3], s[:1, :3]).loss.item(), abs=1e-12)
    assert out.loss[1].item() == pytest.approx(0.3411538747, abs=1e-9)


def test_ranking_accuracy_by_hand():
    # strictly ordered pairs by label: (0>2), (0>1), (2>1); rewards order (0>1) and (2>1) right, (0>2) wrong
    r, s = t(0.5, 0.0, 1.0).view(1, 3), t(3.0, 1.0, 2.0).view(1, 3)
    assert ranking_accuracy(r, s, torch.ones(1, 3, dtype=torch.bool)).item() == pytest.approx(2 / 3)
    # a reward tie counts half; a list with no ordered pair is 0.5
    assert ranking_accuracy(t(1.0, 1.0).view(1, 2), t(1.0, 0.0).view(1, 2), torch.ones(1, 2)).item() == 0.5
    assert ranking_accuracy(t(1.0, 0.0).view(1, 2), t(1.0, 1.0).view(1, 2), torch.ones(1, 2)).item() == 0.5
