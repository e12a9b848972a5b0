"""LiPO-lambda, RRHF and PRO against hand-computed values (methods.md section 11)."""
import math

import pytest
import torch

from alignkit.losses.base import ListwiseInput
from alignkit.losses.listwise import LiPOConfig, PROConfig, RRHFConfig, lipo, pro, rrhf
from alignkit.losses.registry import get_loss
from conftest import equal_token_logps as logps


# ---------------------------------------------------------------------------------------- LiPO

def lipo_expected(delta, psi, beta):
    s = [beta * d for d in delta]
    order = sorted(range(len(s)), key=lambda i: -s[i])
    rank = {i: r + 1 for r, i in enumerate(order)}
    inv_d = {i: 1 / math.log2(1 + rank[i]) for i in rank}
    gain = [2 ** p - 1 for p in psi]
    total, lams = 0.0, {}
    for i in range(len(s)):
        for j in range(len(s)):
            if psi[i] > psi[j]:
                lam = abs(gain[i] - gain[j]) * abs(inv_d[i] - inv_d[j])
                lams[(i, j)] = lam
                total += lam * math.log1p(math.exp(-(s[i] - s[j])))
    return total, lams


def test_lipo_section_11():
    delta, psi = [1.0, -0.5, 0.2], [0.9, 0.2, 0.5]
    total, lams = lipo_expected(delta, psi, 0.1)
    # the section-11 lambda weights: model ranks tau = (1, 3, 2), log2 discount
    assert lams[(0, 1)] == pytest.approx(0.358684, abs=1e-6)
    assert lams[(0, 2)] == pytest.approx(0.166765, abs=1e-6)
    assert lams[(2, 1)] == pytest.approx(0.034764, abs=1e-6)
    assert total == pytest.approx(0.3546839064, abs=1e-9)

    pol = logps([d - 5.0 for d in delta], [3, 4, 5])
    ref = logps([-5.0] * 3, [3, 4, 5])
    out = lipo(ListwiseInput(pol, torch.tensor([psi], dtype=torch.float64), ref=ref), LiPOConfig(beta=0.1))
    assert out.loss.shape == (1,)
    assert out.loss.item() == pytest.approx(0.3546839064, abs=1e-9)


def test_lipo_batch_and_order_invariance():
    # two lists in one batch; the second is the first permuted (same loss) with other scores
    d1, p1 = [1.0, -0.5, 0.2], [0.9, 0.2, 0.5]
    d2, p2 = [0.2, 1.0, -0.5], [0.5, 0.9, 0.2]
    pol = logps([d - 2.0 for d in d1 + d2], [2] * 6)
    ref = logps([-2.0] * 6, [2] * 6)
    scores = torch.tensor([p1, p2], dtype=torch.float64)
    out = lipo(ListwiseInput(pol, scores, ref=ref), LiPOConfig(beta=0.1))
    assert out.loss[0].item() == pytest.approx(0.3546839064, abs=1e-9)
    assert out.loss[1].item() == pytest.approx(0.3546839064, abs=1e-9)
    # a list where the model ranks against the labels costs more, by the hand formula
    d3 = [-0.5, 1.0, 0.2]
    pol = logps([d - 2.0 for d in d3], [2] * 3)
    out = lipo(ListwiseInput(pol, torch.tensor([p1], dtype=torch.float64), ref=logps([-2.0] * 3, [2] * 3)),
               LiPOConfig(beta=0.1))
    assert out.loss.item() == pytest.approx(lipo_expected(d3, p1, 0.1)[0], abs=1e-12)
    assert out.loss.item() > 0.3546839064


def test_lipo_gradients_flow():
    pol = logps([-4.0, -5.5, -4.8], [3, 4, 5], grad=True)
    ref = logps([-5.0] * 3, [3, 4, 5])
    lipo(ListwiseInput(pol, torch.tensor([[0.9, 0.2, 0.5]], dtype=torch.float64), ref=ref),
         LiPOConfig()).loss.sum().backward()
    g = pol.tokens.grad
    assert g[0, 0] < 0 and g[1, 0] > 0  # push up the best, push down the worst
    assert (g * (1 - pol.mask) == 0).all()  # padding gets nothing


# ---------------------------------------------------------------------------------------- RRHF

def rrhf_input(grad=False):
    # p = mean log-probs (-1.2, -0.9, -1.5) over lengths (2, 3, 4); r = (0.7, 0.1, 0.4)
    pol = logps([-2.4, -2.7, -6.0], [2, 3, 4], grad)
    return ListwiseInput(pol, torch.tensor([[0.7, 0.1, 0.4]], dtype=torch.float64)), pol


def test_rrhf_section_11():
    inp, _ = rrhf_input()
    out = rrhf(inp, RRHFConfig())
    # rank: pairs r_i < r_j: (2,1): max(0, -0.9 + 1.2) = 0.3; (2,3): 0.6; (3,1): max(0, -0.3) = 0
    assert out.metrics["rrhf/rank"].item() == pytest.approx(0.9, abs=1e-12)
    assert out.metrics["rrhf/sft"].item() == pytest.approx(1.2, abs=1e-12)  # token-mean NLL of y_1
    assert out.loss.item() == pytest.approx(2.1, abs=1e-12)
    assert rrhf(inp, RRHFConfig(rank_weight=2.0)).loss.item() == pytest.approx(3.0, abs=1e-12)


def test_rrhf_length_penalty_zero_uses_sums():
    inp, _ = rrhf_input()
    # lp = 0: p = sums (-2.4, -2.7, -6.0); pairs (2,1): 0; (2,3): 3.3; (3,1): 0
    assert rrhf(inp, RRHFConfig(length_penalty=0.0)).loss.item() == pytest.approx(3.3 + 1.2, abs=1e-12)


def test_rrhf_is_reference_free_and_gradients_flow():
    inp, pol = rrhf_input(grad=True)
    assert inp.ref is None
    rrhf(inp, RRHFConfig()).loss.sum().backward()
    g = pol.tokens.grad
    # y_2 (r = 0.1) is pushed down by both of its hinges; y_1 (best) pulled up by SFT
    assert g[1, 0].item() == pytest.approx(2 / 3, abs=1e-12)
    assert g[0, 0].item() == pytest.approx(-1 / 2 - 1 / 2, abs=1e-12)  # hinge (2,1) and SFT, each / 2 tokens
    assert get_loss("rrhf").reference is False


# ---------------------------------------------------------------------------------------- PRO

def test_pro_section_11_rank_part():
    # given in shuffled order: rewards (0.1, 0.7, 0.4) with mean log-probs (-0.9, -1.2, -1.5)
    pol = logps([-0.9 * 3, -1.2 * 2, -1.5 * 4], [3, 2, 4])
    inp = ListwiseInput(pol, torch.tensor([[0.1, 0.7, 0.4]], dtype=torch.float64))
    # sorted: r = (0.7, 0.4, 0.1), s = (-1.2, -1.5, -0.9)
    l1 = -(-1.2 * 0.6) + math.log(math.exp(-1.2 * 0.6) + math.exp(-1.5 * 0.3) + math.exp(-0.9 * 0.6))
    l2 = -(-1.5 * 0.3) + math.log(math.exp(-1.5 * 0.3) + math.exp(-0.9 * 0.3))
    assert l1 == pytest.approx(1.2548128129, abs=1e-9)
    assert l2 == pytest.approx(0.7871917248, abs=1e-9)
    out = pro(inp, PROConfig(sft_weight=0.0))
    assert out.loss.item() == pytest.approx(2.0420045378, abs=1e-9)
    # with the SFT term: w (n-1)^2 (-log pi(y^1)) with the summed log-prob -2.4 of the best
    out = pro(inp, PROConfig(sft_weight=0.05))
    assert out.loss.item() == pytest.approx(2.0420045378 + 0.05 * 4 * 2.4, abs=1e-9)


def test_pro_equal_rewards_is_uniform():
    pol = logps([-1.0, -2.0, -3.0], [1, 1, 1])
    inp = ListwiseInput(pol, torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64))
    assert pro(inp, PROConfig(sft_weight=0.0)).loss.item() == pytest.approx(math.log(3) + math.log(2), abs=1e-12)


def test_pro_gradients_flow_and_reference_free():
    pol = logps([-2.4, -4.5, -2.7], [2, 3, 3], grad=True)
    inp = ListwiseInput(pol, torch.tensor([[0.7, 0.4, 0.1]], dtype=torch.float64))
    pro(inp, PROConfig()).loss.sum().backward()
    assert pol.tokens.grad[0, 0] < 0 and pol.tokens.grad[2, 0] > 0
    assert get_loss("pro").reference is False and get_loss("lipo").reference is True
    for name in ("lipo", "rrhf", "pro"):
        assert get_loss(name).feedback == "listwise" and "arXiv" in get_loss(name).paper
