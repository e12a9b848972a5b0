"""NPO, D2O and CRINGE against hand-computed values (methods.md section 11 and by hand)."""
import math

import pytest
import torch

from alignkit.losses.base import BinaryInput, DemoInput, ListwiseInput, Logps
from alignkit.losses.negative import CringeConfig, D2OConfig, NPOConfig, cringe, d2o, npo
from alignkit.losses.registry import get_loss
from conftest import equal_token_logps as logps, sigmoid, softplus


# ---------------------------------------------------------------------------------------- NPO

def test_npo_section_11():
    # y_l of Case A as the forget sample: log pi = -14.0, log pi_ref = -12.0 -> Delta = -2.0
    inp = DemoInput(logps([-14.0], [8]), ref=logps([-12.0], [8]))
    out = npo(inp, NPOConfig(beta=0.1))
    assert out.loss.item() == pytest.approx(11.9627773876, abs=1e-9)
    assert out.loss.item() == pytest.approx((2 / 0.1) * softplus(0.1 * -2.0), abs=1e-12)


def test_npo_gradient_is_bounded_weighted_ascent():
    pol = logps([-14.0, -1.0], [8, 2], grad=True)
    npo(DemoInput(pol, ref=logps([-12.0, -1.0], [8, 2])), NPOConfig(beta=0.1)).loss.sum().backward()
    # dL/dDelta = 2 sigma(beta Delta): 2 sigma(-0.2) for the first, 2 sigma(0) = 1 for the second
    assert pol.tokens.grad[0, 0].item() == pytest.approx(2 * sigmoid(-0.2), abs=1e-12)
    assert pol.tokens.grad[1, 0].item() == pytest.approx(1.0, abs=1e-12)
    assert pol.tokens.grad[1, 2:].abs().sum() == 0  # padding


# ---------------------------------------------------------------------------------------- D2O

def test_d2o_section_11():
    # one prompt: row 0 = negative (Delta = -2.0), rows 1..2 = self-samples (Delta = 0.4, -0.2)
    pol = logps([-12.0, -2.6, -3.2], [6, 3, 4])
    ref = logps([-10.0, -3.0, -3.0], [6, 3, 4])
    inp = ListwiseInput(pol, torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64), ref=ref)
    out = d2o(inp, D2OConfig(beta=0.1, alpha=0.1))
    assert out.loss.item() == pytest.approx(0.5936495810, abs=1e-9)
    z = 0.1 / 2 * (0.4 - 0.2) - 0.1 * (-2.0)
    assert out.loss.item() == pytest.approx(softplus(-z), abs=1e-12)


def test_d2o_batch_layout_and_gradients():
    # two prompts, K = 2: prompt-major rows (neg, s1, s2, neg, s1, s2)
    pol = logps([-12.0, -2.6, -3.2, -1.0, -1.0, -1.0], [6, 3, 4, 1, 1, 1], grad=True)
    ref = logps([-10.0, -3.0, -3.0, -1.0, -1.0, -1.0], [6, 3, 4, 1, 1, 1])
    inp = ListwiseInput(pol, torch.zeros(2, 3, dtype=torch.float64), ref=ref)
    out = d2o(inp, D2OConfig())
    assert out.loss[0].item() == pytest.approx(0.5936495810, abs=1e-9)
    assert out.loss[1].item() == pytest.approx(math.log(2), abs=1e-12)  # all Delta = 0
    out.loss.sum().backward()
    g = pol.tokens.grad
    assert g[3, 0].item() == pytest.approx(0.5 * 0.1, abs=1e-12)  # sigma(0) * alpha, pushes the negative down
    assert g[4, 0].item() == pytest.approx(-0.5 * 0.1 / 2, abs=1e-12)  # -sigma(0) * beta / K, pulls samples up


# ---------------------------------------------------------------------------------------- CRINGE

def cringe_batch():
    """Row 0 positive (ids 1, 2); row 1 negative, 3 tokens; row 2 negative, 1 token + padding (id -100)."""
    logits = torch.tensor([
        [[2.0, 1.0, 0.5, -1.0], [0.0, 0.3, 1.5, 0.2], [0.0, 0.0, 0.0, 0.0]],
        [[3.0, 1.0, 0.0, -2.0], [0.5, 2.5, 1.0, 0.0], [1.0, 0.0, 2.0, -1.0]],
        [[0.0, 4.0, 1.0, 0.5], [9.0, 0.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0]],
    ], dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([[1, 2, 0], [0, 2, 3], [1, -100, -100]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float64)
    tokens = torch.log_softmax(logits, -1).gather(-1, ids.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    pol = Logps(tokens, mask, logits=logits, ids=ids)
    return BinaryInput(pol, torch.tensor([True, False, False])), logits


def lse(xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_cringe_hand_computed_k1():
    inp, _ = cringe_batch()
    out = cringe(inp, CringeConfig(ct_weight=0.5, num_pos_predictions=1))
    ce = -(1.0 - lse([2.0, 1.0, 0.5, -1.0])) - (1.5 - lse([0.0, 0.3, 1.5, 0.2]))
    # k = 1, row 1: target is top-1 -> s = top-2 (logit 1.0); target is top-2 -> s = top-1 (2.5);
    # target not in the top-2 -> the 2nd is dropped, s = top-1 (2.0)
    ct1 = softplus(3.0 - 1.0) + softplus(1.0 - 2.5) + softplus(-1.0 - 2.0)
    ct2 = softplus(4.0 - 1.0)  # row 2: target is top-1 -> s = the 2nd (1.0); padding ignored
    assert out.loss[0].item() == pytest.approx(ce, abs=1e-12)
    assert out.loss[1].item() == pytest.approx(0.5 * ct1, abs=1e-12)
    assert out.loss[2].item() == pytest.approx(0.5 * ct2, abs=1e-12)
    assert out.weight.tolist() == [2.0, 3.0, 1.0]  # engine divides by the total target tokens


def test_cringe_gradients_push_negatives_down():
    inp, logits = cringe_batch()
    cringe(inp, CringeConfig()).loss.sum().backward()
    g = logits.grad
    assert g[1, 0, 0] > 0 and g[1, 0, 1] < 0  # negative token down, sampled top-k token up
    assert g[0, 0, 1] < 0  # positive: cross-entropy pulls the target up
    assert g[2, 1:].abs().sum() == 0  # padding


def test_cringe_topk_sampling_is_seeded_and_excludes_target():
    logits = torch.tensor([[[3.0, 2.0, 1.0, 0.0]]], dtype=torch.float64)
    ids = torch.tensor([[0]])
    mask = torch.ones(1, 1, dtype=torch.float64)
    tokens = torch.log_softmax(logits, -1)[..., 0]
    inp = BinaryInput(Logps(tokens, mask, logits=logits, ids=ids), torch.tensor([False]))
    a, b = softplus(3.0 - 2.0), softplus(3.0 - 1.0)  # k = 2: s is token 1 or token 2, never the target
    values = [cringe(inp, CringeConfig(num_pos_predictions=2, sample_seed=s)).loss.item() for s in range(300)]
    assert all(v == pytest.approx(a, abs=1e-12) or v == pytest.approx(b, abs=1e-12) for v in values)
    frac = sum(v == pytest.approx(a, abs=1e-12) for v in values) / len(values)
    assert frac == pytest.approx(math.exp(2) / (math.exp(2) + math.exp(1)), abs=0.1)  # 0.731
    again = cringe(inp, CringeConfig(num_pos_predictions=2, sample_seed=7)).loss.item()
    assert again == values[7]


def test_cringe_requires_logits():
    inp = BinaryInput(logps([-1.0], [1]), torch.tensor([False]))
    with pytest.raises(ValueError, match="logits"):
        cringe(inp, CringeConfig())


def test_registry_specs():
    assert get_loss("npo").feedback == "negative" and get_loss("npo").reference
    assert get_loss("d2o").feedback == "negative" and get_loss("d2o").reference
    c = get_loss("cringe")
    assert c.feedback == "binary" and c.needs_logits and not c.reference
    from alignkit.data.records import FEEDBACK_SHAPES
    assert "negative" in FEEDBACK_SHAPES
