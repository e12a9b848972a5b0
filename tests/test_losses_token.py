"""TDPO (TDPO1/TDPO2) and the per-token implicit rewards of "From r to Q*", computed by hand."""
import math

import pytest
import torch

from alignkit.losses.base import Logps, PairwiseInput
from alignkit.losses.registry import get_loss
from alignkit.losses.token import TDPOConfig, sequential_kl, tdpo, token_rewards
from conftest import softplus


def logit_for_kl(kl: float) -> float:
    """a such that KL(uniform over 2 || softmax(a, 0)) = kl.
    KL = -log 2 - (log s + log(1 - s))/2 with s = sigma(a), so s(1 - s) = exp(-2 kl) / 4."""
    s = (1 + math.sqrt(1 - math.exp(-2 * kl))) / 2
    return math.log(s / (1 - s))


def rows(total: float, n: int, t: int, grad=False):
    tokens = torch.zeros(1, t, dtype=torch.float64)
    tokens[0, :n] = total / n
    mask = torch.zeros(1, t, dtype=torch.float64)
    mask[0, :n] = 1
    return tokens.requires_grad_(grad), mask


def case_a_with_kl(kl_w: float, kl_l: float, grad=False):
    """Case A log-probs (Delta_w = -0.5, Delta_l = -2.0) and V = 2 logits whose sequential KLs are
    kl_w and kl_l: the first completion token carries the whole KL (reference uniform, policy
    (a, 0)); the other tokens have equal logits (KL 0); padding gets a large KL that must be masked.
    TDPO reads Delta from .tokens and the KL from .logits, so the two are set independently here."""
    t = 8

    def logits(kl, n, g):
        pol = torch.zeros(1, t, 2, dtype=torch.float64)
        pol[0, 0, 0] = logit_for_kl(kl)
        pol[0, n:, 0] = 6.0  # padding: would add KL if it were not masked
        return pol.requires_grad_(g), torch.zeros(1, t, 2, dtype=torch.float64)

    cw, mw = rows(-11.5, 5, t, grad)
    cl, ml = rows(-14.0, 8, t, grad)
    pw_logits, rw_logits = logits(kl_w, 5, grad)
    pl_logits, rl_logits = logits(kl_l, 8, grad)
    inp = PairwiseInput(
        chosen=Logps(cw, mw, logits=pw_logits),
        rejected=Logps(cl, ml, logits=pl_logits),
        ref_chosen=Logps(rows(-11.0, 5, t)[0], mw, logits=rw_logits),
        ref_rejected=Logps(rows(-12.0, 8, t)[0], ml, logits=rl_logits),
    )
    return inp, (cw, cl, pw_logits, pl_logits)


def test_sequential_kl_matches_construction_and_masks_padding():
    inp, _ = case_a_with_kl(0.3, 0.8)
    assert sequential_kl(inp.chosen, inp.ref_chosen).item() == pytest.approx(0.3, abs=1e-12)
    assert sequential_kl(inp.rejected, inp.ref_rejected).item() == pytest.approx(0.8, abs=1e-12)


def test_sequential_kl_direction_by_hand():
    # 2 positions, V = 3, reference-first KL: sum_v p_ref (log p_ref - log p_pi)
    pol = [[0.2, -1.0, 0.5], [1.0, 0.0, 0.0]]
    ref = [[1.0, 0.3, -0.4], [0.0, 0.0, 2.0]]

    def probs(z):
        m = math.log(sum(math.exp(v) for v in z))
        return [math.exp(v - m) for v in z]

    expected = 0.0
    for zp, zr in zip(pol, ref):
        p, q = probs(zp), probs(zr)
        expected += sum(qi * (math.log(qi) - math.log(pi)) for pi, qi in zip(p, q))
    mask = torch.ones(1, 2, dtype=torch.float64)
    zeros = torch.zeros(1, 2, dtype=torch.float64)
    kl = sequential_kl(Logps(zeros, mask, logits=torch.tensor([pol], dtype=torch.float64)),
                       Logps(zeros, mask, logits=torch.tensor([ref], dtype=torch.float64)))
    assert kl.item() == pytest.approx(expected, abs=1e-12)
    reverse = sequential_kl(Logps(zeros, mask, logits=torch.tensor([ref], dtype=torch.float64)),
                            Logps(zeros, mask, logits=torch.tensor([pol], dtype=torch.float64)))
    assert abs(reverse.item() - expected) > 1e-3  # the direction matters


def test_tdpo1_section_11():
    inp, _ = case_a_with_kl(0.3, 0.8)
    out = tdpo(inp, TDPOConfig(beta=0.1, variant=1))
    assert out.loss.item() == pytest.approx(0.6443966601, abs=1e-9)
    assert out.loss.item() == pytest.approx(softplus(-0.1 * (1.5 - (0.8 - 0.3))), abs=1e-12)


def test_tdpo2_section_11():
    inp, _ = case_a_with_kl(0.3, 0.8)
    out = tdpo(inp, TDPOConfig(beta=0.1, alpha=0.5, variant=2))
    assert out.loss.item() == pytest.approx(0.6325990353, abs=1e-9)
    assert out.loss.item() == pytest.approx(softplus(-0.1 * (1.5 - 0.5 * (0.8 - 0.3))), abs=1e-12)
    # logged rewards are beta * (Delta + SeqKL), as in the reference code
    assert out.metrics["rewards/chosen"].item() == pytest.approx(0.1 * (-0.5 + 0.3), abs=1e-12)
    assert out.metrics["rewards/rejected"].item() == pytest.approx(0.1 * (-2.0 + 0.8), abs=1e-12)


def test_tdpo2_stops_the_gradient_of_the_chosen_kl():
    for variant, chosen_kl_has_grad in ((1, True), (2, False)):
        inp, (cw, cl, pw_logits, pl_logits) = case_a_with_kl(0.3, 0.8, grad=True)
        tdpo(inp, TDPOConfig(variant=variant)).loss.sum().backward()
        g = pw_logits.grad
        assert (g is not None and bool(g.abs().sum() > 0)) == chosen_kl_has_grad
        assert pl_logits.grad.abs().sum() > 0  # the rejected KL always trains
        assert cw.grad[0, 0] < 0 and cl.grad[0, 0] > 0  # the DPO part
        if g is not None:
            assert g[0, 5:].abs().sum() == 0  # padding


def test_tdpo_requires_logits_and_valid_variant():
    inp, _ = case_a_with_kl(0.3, 0.8)
    with pytest.raises(ValueError, match="variant"):
        tdpo(inp, TDPOConfig(variant=3))
    inp.ref_rejected = Logps(inp.ref_rejected.tokens, inp.ref_rejected.mask)
    with pytest.raises(ValueError, match="ref_rejected"):
        tdpo(inp, TDPOConfig())


def test_token_rewards_telescope_to_the_sequence_reward():
    pol = Logps(torch.tensor([[-0.5, -1.0, -2.0], [-0.1, 0.0, 0.0]], dtype=torch.float64),
                torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.float64))
    ref = Logps(torch.tensor([[-1.0, -0.7, -2.5], [-0.3, -9.0, -9.0]], dtype=torch.float64), pol.mask)
    r = token_rewards(pol, ref, beta=0.1)
    expected = [[0.05, -0.03, 0.05], [0.02, 0.0, 0.0]]
    assert r.shape == (2, 3)
    assert torch.allclose(r, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(r.sum(-1), 0.1 * (pol.sum() - ref.sum()), atol=1e-12)


def test_registry_spec():
    spec = get_loss("tdpo")
    assert spec.feedback == "pairwise" and spec.needs_logits and spec.reference
    assert spec.theme == "optimization" and "2404.11999" in spec.paper
