"""The offline pairwise losses against values computed by hand here (math, float64), methods.md
section 11 Case A, and the limits the papers state."""
import dataclasses
import math

import pytest
import torch

from alignkit.config import field_docs
from alignkit.losses import pairwise as P
from alignkit.losses.base import Logps, PairwiseInput
from alignkit.losses.registry import LOSSES, get_loss
from alignkit.train.config import TrainConfig
from conftest import softplus

F64 = torch.float64


# Case A: l(y_w) = -11.5 over 5 tokens, l(y_l) = -14.0 over 8, reference -11.0 / -12.0
W_TOK = [-1.0, -2.5, -3.0, -2.0, -3.0]  # sum -11.5, |y_w| = 5
L_TOK = [-1.0, -2.0, -1.5, -2.5, -1.0, -2.0, -2.0, -2.0]  # sum -14.0, |y_l| = 8
RW_TOK = [-2.0, -2.5, -2.5, -2.0, -2.0]  # sum -11.0
RL_TOK = [-1.5] * 8  # sum -12.0
L_W, L_L, R_W, R_L, N_W, N_L = -11.5, -14.0, -11.0, -12.0, 5, 8
D_W, D_L = L_W - R_W, L_L - R_L  # -0.5, -2.0
H = D_W - D_L  # 1.5


def case_a(ref: bool = True, grad: bool = False) -> PairwiseInput:
    w = torch.tensor(W_TOK, dtype=F64, requires_grad=grad)
    l_ = torch.tensor(L_TOK, dtype=F64, requires_grad=grad)
    inp = PairwiseInput(Logps.from_lists([w], F64), Logps.from_lists([l_], F64))
    if ref:
        inp.ref_chosen = Logps.from_lists([RW_TOK], F64)
        inp.ref_rejected = Logps.from_lists([RL_TOK], F64)
    return inp


def pair(lw, ll, rw, rl, nw=4, nl=4) -> PairwiseInput:
    """One pair with the given summed log-probs, spread evenly over nw / nl tokens."""
    def lp(total, n):
        return Logps.from_lists([[total / n] * n], F64)
    return PairwiseInput(lp(lw, nw), lp(ll, nl), lp(rw, nw), lp(rl, nl))


def val(out):
    return out.loss.item()


# ------------------------------------------------------------------------------- DPO family

def test_dpo_case_a():
    want = softplus(-0.1 * H)
    assert val(P.dpo(case_a(), P.DPOConfig(beta=0.1))) == pytest.approx(want, abs=1e-9)
    assert want == pytest.approx(0.6209570478, abs=1e-9)


def test_cdpo_case_a_and_eps0_is_dpo():
    z = 0.1 * H
    want = 0.9 * softplus(-z) + 0.1 * softplus(z)
    assert want == pytest.approx(0.6359570478, abs=1e-9)
    assert val(P.cdpo(case_a(), P.CDPOConfig(beta=0.1, eps=0.1))) == pytest.approx(want, abs=1e-9)
    assert val(P.cdpo(case_a(), P.CDPOConfig(eps=0.0))) == pytest.approx(val(P.dpo(case_a(), P.DPOConfig())), abs=1e-12)


def test_cdpo_optimum_is_finite():
    """cDPO's loss in z = beta h is minimised at log((1 - eps)/eps), not at infinity."""
    eps = 0.1
    z_star = math.log((1 - eps) / eps)
    f = lambda z: (1 - eps) * softplus(-z) + eps * softplus(z)
    for z in (z_star - 0.3, z_star + 0.3):
        out = P.cdpo(pair(z, 0.0, 0.0, 0.0), P.CDPOConfig(beta=1.0, eps=eps))  # h = z
        assert val(out) == pytest.approx(f(z), abs=1e-9)
        assert val(out) > f(z_star)


def test_robust_case_a_and_eps0_is_dpo():
    z = 0.1 * H
    want = (0.9 * softplus(-z) - 0.1 * softplus(z)) / (1 - 0.2)
    assert want == pytest.approx(0.6022070478, abs=1e-9)
    assert val(P.robust(case_a(), P.RobustDPOConfig(beta=0.1, eps=0.1))) == pytest.approx(want, abs=1e-9)
    assert val(P.robust(case_a(), P.RobustDPOConfig(eps=0.0))) == pytest.approx(val(P.dpo(case_a(), P.DPOConfig())), abs=1e-12)
    with pytest.raises(ValueError):
        P.RobustDPOConfig(eps=0.5)


def test_ipo_case_a_sum_and_length_normalised():
    assert (H - 5.0) ** 2 == pytest.approx(12.25)
    assert val(P.ipo(case_a(), P.IPOConfig(tau=0.1))) == pytest.approx(12.25, abs=1e-9)
    h_norm = D_W / N_W - D_L / N_L  # 0.15
    want = (h_norm - 5.0) ** 2
    assert want == pytest.approx(23.5225, abs=1e-9)
    assert val(P.ipo(case_a(), P.IPOConfig(tau=0.1, length_normalize=True))) == pytest.approx(want, abs=1e-9)


def test_ipo_minimiser_is_half_over_tau():
    tau = 0.25  # target h = 1/(2 tau) = 2
    h = torch.tensor(2.0, dtype=F64, requires_grad=True)
    inp = PairwiseInput(Logps.from_lists([h.view(1)], F64), Logps.from_lists([[0.0]], F64),
                        Logps.from_lists([[0.0]], F64), Logps.from_lists([[0.0]], F64))
    out = P.ipo(inp, P.IPOConfig(tau=tau))
    out.loss.sum().backward()
    assert val(out) == pytest.approx(0.0, abs=1e-12)
    assert h.grad.item() == pytest.approx(0.0, abs=1e-12)
    for off in (-0.5, 0.5):
        assert val(P.ipo(pair(2.0 + off, 0, 0, 0), P.IPOConfig(tau=tau))) == pytest.approx(off ** 2, abs=1e-9)


def test_gpo_all_functions_at_rho_015():
    rho = 0.1 * H
    want = {
        "logistic": math.log1p(math.exp(-rho)),
        "exponential": math.exp(-rho),
        "squared": (rho - 1) ** 2,
        "hinge": max(0.0, 1 - rho),
        "truncated_quadratic": max(0.0, 1 - rho) ** 2,
        "savage": 1 / (1 + math.exp(rho)) ** 2,
    }
    table = {"logistic": 0.6209570, "exponential": 0.8607080, "squared": 0.7225, "hinge": 0.85,
             "truncated_quadratic": 0.7225, "savage": 0.2139711}  # methods.md section 11
    for f, v in want.items():
        assert v == pytest.approx(table[f], abs=1e-7)
        assert val(P.gpo(case_a(), P.GPOConfig(beta=0.1, f=f))) == pytest.approx(v, abs=1e-9), f
    with pytest.raises(ValueError):
        P.GPOConfig(f="cubic")


def test_gpo_logistic_is_dpo_on_a_batch():
    inp = PairwiseInput(Logps.from_lists([W_TOK, [-0.5, -0.25]], F64), Logps.from_lists([L_TOK, [-3.0]], F64),
                        Logps.from_lists([RW_TOK, [-1.0, -1.0]], F64), Logps.from_lists([RL_TOK, [-1.0]], F64))
    a, b = P.gpo(inp, P.GPOConfig(beta=0.3)).loss, P.dpo(inp, P.DPOConfig(beta=0.3)).loss
    assert torch.allclose(a, b, atol=1e-12)
    h2 = (-0.75 - -2.0) - (-3.0 - -1.0)  # second pair: 3.25
    assert b.tolist() == pytest.approx([softplus(-0.3 * H), softplus(-0.3 * h2)], abs=1e-9)


def test_rso_sigmoid_norm_and_hinge_norm():
    assert val(P.rso(case_a(), P.RSOConfig(gamma=0.05))) == pytest.approx(softplus(-0.05 * H), abs=1e-9)
    assert val(P.rso(case_a(), P.RSOConfig(gamma=0.1, loss_type="hinge_norm"))) == pytest.approx(0.85, abs=1e-9)
    assert val(P.rso(pair(30.0, 0, 0, 0), P.RSOConfig(gamma=0.05, loss_type="hinge_norm"))) == 0.0  # gamma h = 1.5 >= 1
    assert P.RSOConfig().gamma == 0.05


def test_dpop_case_a_lambda0_and_inactive_penalty():
    want = softplus(-0.1 * (H - 50 * max(0.0, -D_W)))  # penalty active: Delta_w = -0.5
    assert want == pytest.approx(2.4410914409, abs=1e-9)
    assert val(P.dpop(case_a(), P.DPOPConfig(beta=0.1, lam=50.0))) == pytest.approx(want, abs=1e-9)
    dpo_a = val(P.dpo(case_a(), P.DPOConfig(beta=0.1)))
    assert val(P.dpop(case_a(), P.DPOPConfig(beta=0.1, lam=0.0))) == pytest.approx(dpo_a, abs=1e-12)
    up = pair(-10.0, -14.0, -11.0, -12.0)  # Delta_w = +1 >= 0: no penalty, DPOP == DPO
    assert val(P.dpop(up, P.DPOPConfig(beta=0.1, lam=50.0))) == pytest.approx(softplus(-0.1 * 3.0), abs=1e-12)
    at_ref = pair(-11.0, -14.0, -11.0, -12.0)  # Delta_w = 0 exactly: still no penalty
    assert val(P.dpop(at_ref, P.DPOPConfig(beta=0.1, lam=50.0))) == pytest.approx(softplus(-0.1 * 2.0), abs=1e-12)


def test_r_dpo_case_a_alpha0_and_sign():
    want = softplus(-(0.1 * H + 0.05 * (N_W - N_L)))  # logit 0.15 - 0.15 = 0
    assert want == pytest.approx(math.log(2), abs=1e-12)
    assert val(P.r_dpo(case_a(), P.RDPOConfig(beta=0.1, alpha=0.05))) == pytest.approx(want, abs=1e-9)
    assert val(P.r_dpo(case_a(), P.RDPOConfig(alpha=0.0))) == pytest.approx(val(P.dpo(case_a(), P.DPOConfig())), abs=1e-12)
    longer_chosen = pair(-2.0, -2.0, -2.0, -2.0, nw=10, nl=4)  # h = 0, |y_w| - |y_l| = 6
    assert val(P.r_dpo(longer_chosen, P.RDPOConfig(alpha=0.05))) == pytest.approx(softplus(-0.3), abs=1e-12)
    assert val(P.r_dpo(longer_chosen, P.RDPOConfig(alpha=0.05))) < math.log(2)


def test_rpo_is_dpo_plus_length_normalised_nll():
    want = softplus(-0.1 * H) + 1.0 * (-L_W / N_W)
    assert want == pytest.approx(0.6209570478 + 2.3, abs=1e-9)
    assert val(P.rpo(case_a(), P.RPOConfig(beta=0.1, alpha=1.0))) == pytest.approx(want, abs=1e-9)
    assert val(P.rpo(case_a(), P.RPOConfig(alpha=0.0))) == pytest.approx(val(P.dpo(case_a(), P.DPOConfig())), abs=1e-12)


# ------------------------------------------------------------------------------- beta-DPO

def test_beta_dpo_batch_beta_methods_example():
    assert P.beta_dpo_batch_beta(0.1, 0.6, 1.5, 1.0) == pytest.approx(0.13, abs=1e-12)
    assert P.beta_dpo_batch_beta(0.1, 0.6, -100.0, 1.0) == 1e-3  # clamped


def test_beta_dpo_loss_with_state():
    """Two pairs with M = 1.5 each; the stored EMA is chosen so that after this step's update
    M_0 = 0.9 * m + 0.1 * 1.5 = 1.0, giving beta_batch = 0.1 * (1 + 0.6 * 0.5) = 0.13."""
    state = {"gap_mean": 0.85 / 0.9, "gap_std": 1.0}
    inp = PairwiseInput(Logps.from_lists([[-1.0], [-2.0]], F64), Logps.from_lists([[-2.5], [-3.5]], F64),
                        Logps.from_lists([[0.0], [0.0]], F64), Logps.from_lists([[0.0], [0.0]], F64))
    out = P.beta_dpo(inp, P.BetaDPOConfig(beta=0.1, a=0.6, rho=0.0), state)
    assert state["gap_mean"] == pytest.approx(1.0, abs=1e-12)
    assert state["gap_std"] == pytest.approx(0.9, abs=1e-12)  # std of (1.5, 1.5) is 0
    assert out.metrics["beta_dpo/beta"].item() == pytest.approx(0.13, abs=1e-12)
    assert out.loss.tolist() == pytest.approx([softplus(-0.13 * 1.5)] * 2, abs=1e-12)
    assert out.weight.tolist() == [1.0, 1.0]


def _batch(n: int, seed: int = 0) -> PairwiseInput:
    g = torch.Generator().manual_seed(seed)
    cw, cl = torch.randn(n, 3, generator=g, dtype=F64), torch.randn(n, 3, generator=g, dtype=F64)
    z = torch.zeros(n, 3, dtype=F64)
    m = torch.ones(n, 3, dtype=F64)
    return PairwiseInput(Logps(cw, m), Logps(cl, m), Logps(z, m), Logps(z, m))


def test_beta_dpo_filters_deterministically():
    cfg = P.BetaDPOConfig(rho=0.2)
    inp = _batch(10)
    s1, s2 = {"gap_mean": 0.0, "gap_std": 1.0}, {"gap_mean": 0.0, "gap_std": 1.0}
    o1, o2 = P.beta_dpo(inp, cfg, s1), P.beta_dpo(inp, cfg, s2)
    assert o1.weight.sum().item() == 8  # floor(10 * 0.8) pairs kept
    assert torch.equal(o1.weight, o2.weight) and s1 == s2 and s1["draws"] == 1
    dropped = o1.weight == 0
    assert (o1.loss[dropped] == 0).all() and (o1.loss[~dropped] > 0).all()
    h = (inp.chosen.sum() - inp.rejected.sum())
    kept_mean = h[~dropped].mean().item()
    beta = max(0.1 * (1 + 0.6 * (kept_mean - s1["gap_mean"])), 1e-3)
    assert o1.loss[~dropped].tolist() == pytest.approx([softplus(-beta * x) for x in h[~dropped].tolist()], abs=1e-12)
    seen = {tuple(P.beta_dpo(inp, cfg, s1).weight.tolist()) for _ in range(8)}  # the draw counter moves
    assert len(seen) > 1


def test_beta_dpo_eval_keeps_state_and_all_pairs():
    state = {"gap_mean": 0.3, "gap_std": 0.5, "draws": 4}
    with torch.no_grad():
        out = P.beta_dpo(_batch(10), P.BetaDPOConfig(rho=0.2), state)
    assert state == {"gap_mean": 0.3, "gap_std": 0.5, "draws": 4}
    assert out.weight.sum().item() == 10


def test_beta_dpo_first_step_single_pair():
    state = {}
    out = P.beta_dpo(case_a(grad=True), P.BetaDPOConfig(), state)  # one pair: std 0, uniform draw, keep 1
    assert out.weight.tolist() == [1.0] and torch.isfinite(out.loss).all()
    assert state["gap_mean"] == pytest.approx(0.1 * H) and state["gap_std"] == 0.0
    beta = 0.1 * (1 + 0.6 * (H - 0.1 * H))
    assert val(out) == pytest.approx(softplus(-beta * H), abs=1e-12)


# ------------------------------------------------------------------------------- reference-free

def test_slic_hf_case_a():
    hinge = max(0.0, 1.0 - L_W + L_L)  # 1 + 11.5 - 14 < 0
    assert val(P.slic_hf(case_a(ref=False), P.SLiCConfig(delta=1.0, lam=0.1))) == pytest.approx(hinge + 0.1 * 11.5, abs=1e-9)
    want = max(0.0, 3.0 - L_W + L_L) + 0.1 * 11.5  # 1.5 + 1.15
    assert val(P.slic_hf(case_a(ref=False), P.SLiCConfig(delta=3.0, lam=0.1))) == pytest.approx(want, abs=1e-9)


def test_simpo_case_a():
    lw, ll = L_W / N_W, L_L / N_L  # -2.3, -1.75
    want = softplus(-(2.0 * (lw - ll) - 1.0))
    assert want == pytest.approx(2.2155195232, abs=1e-9)
    assert val(P.simpo(case_a(ref=False), P.SimPOConfig(beta=2.0, gamma=1.0))) == pytest.approx(want, abs=1e-9)


def test_simpo_gamma0_unnormalised_is_reference_free_sigmoid():
    cfg = P.SimPOConfig(beta=0.1, gamma=0.0, length_normalize=False)
    want = softplus(-0.1 * (L_W - L_L))
    assert val(P.simpo(case_a(ref=False), cfg)) == pytest.approx(want, abs=1e-12)
    ref_free_dpo = pair(L_W, L_L, 0.0, 0.0)  # DPO with a uniform reference (log pi_ref = 0)
    assert val(P.dpo(ref_free_dpo, P.DPOConfig(beta=0.1))) == pytest.approx(want, abs=1e-12)


def test_cpo_case_a():
    pref = softplus(-0.1 * (L_W - L_L))
    assert pref == pytest.approx(0.5759394199, abs=1e-9)
    out = P.cpo(case_a(ref=False), P.CPOConfig(beta=0.1, alpha=1.0))
    assert val(out) == pytest.approx(pref + 2.3, abs=1e-9)
    assert out.metrics["nll"].item() == pytest.approx(2.3, abs=1e-12)


def test_orpo_case_a():
    lw, ll = L_W / N_W, L_L / N_L
    log_odds = (lw - math.log(1 - math.exp(lw))) - (ll - math.log(1 - math.exp(ll)))
    l_or = softplus(-log_odds)
    assert log_odds == pytest.approx(-0.6352387055, abs=1e-9)
    assert l_or == pytest.approx(1.0603815997, abs=1e-9)
    out = P.orpo(case_a(ref=False), P.ORPOConfig(lam=0.1))
    assert val(out) == pytest.approx(2.3 + 0.1 * l_or, abs=1e-9)
    assert val(out) == pytest.approx(2.4060381600, abs=1e-9)
    assert out.metrics["orpo/log_odds_ratio"].item() == pytest.approx(log_odds, abs=1e-9)


def test_orpo_is_finite_for_near_certain_responses():
    inp = PairwiseInput(Logps.from_lists([[-1e-9, 0.0]], torch.float32), Logps.from_lists([[-40.0]], torch.float32))
    out = P.orpo(inp, P.ORPOConfig())
    assert torch.isfinite(out.loss).all()


# ------------------------------------------------------------------------------- contract

PAIRWISE = ["dpo", "cdpo", "robust", "ipo", "slic-hf", "dpop", "beta-dpo", "gpo", "r-dpo", "simpo",
            "cpo", "orpo", "rpo", "rso-norm"]
REF_FREE = {"slic-hf", "simpo", "cpo", "orpo"}


RUN_FLAGS = {f.name for f in dataclasses.fields(TrainConfig)} | {"model", "data", "output", "config", "method"}


def call(spec, inp, cfg=None):
    cfg = cfg or spec.config()
    return spec.loss(inp, cfg, {}) if spec.stateful else spec.loss(inp, cfg)


def test_registry_entries():
    for name in PAIRWISE:
        spec = get_loss(name)
        assert spec.feedback == "pairwise" and spec.name == name
        assert spec.reference == (name not in REF_FREE), name
        assert spec.stateful == (name == "beta-dpo"), name
        assert "arXiv" in spec.paper or name == "cdpo", name
        docs = field_docs(spec.config)
        for f in dataclasses.fields(spec.config):
            assert docs.get(f.name), f"{name}: field {f.name} has no help comment"
            assert f.name not in RUN_FLAGS, f"{name}: field {f.name} clashes with a run flag"
        assert dataclasses.is_dataclass(spec.config) and spec.config.__dataclass_params__.frozen


@pytest.mark.parametrize("name", PAIRWISE)
def test_gradients_flow_and_shapes(name):
    spec = LOSSES[name]
    inp = case_a(ref=spec.reference, grad=True)
    if not spec.reference:  # reference-free losses must not read the reference
        assert inp.ref_chosen is None and inp.ref_rejected is None
    out = call(spec, inp)
    assert out.loss.shape == (1,) and torch.isfinite(out.loss).all()
    for k in ("rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy"):
        assert not out.metrics[k].requires_grad
    w = out.weight if out.weight is not None else torch.ones_like(out.loss)
    (out.loss.sum() / w.sum()).backward()  # the engine's normalisation


@pytest.mark.parametrize("name", PAIRWISE)
def test_gradient_reaches_token_logps(name):
    spec = LOSSES[name]
    w = torch.tensor(W_TOK, dtype=F64, requires_grad=True)
    l_ = torch.tensor(L_TOK, dtype=F64, requires_grad=True)
    inp = PairwiseInput(Logps.from_lists([w], F64), Logps.from_lists([l_], F64))
    if spec.reference:
        inp.ref_chosen, inp.ref_rejected = Logps.from_lists([RW_TOK], F64), Logps.from_lists([RL_TOK], F64)
    call(spec, inp).loss.sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    if name != "slic-hf":  # SLiC's hinge is inactive on case A: only the NLL of y_w has a gradient
        assert l_.grad is not None and l_.grad.abs().sum() > 0


@pytest.mark.parametrize("name", PAIRWISE)
def test_padded_batch_matches_single_pairs(name):
    """Pairs of different lengths in one padded batch give the same per-pair losses as alone."""
    spec = LOSSES[name]
    if spec.stateful:
        pytest.skip("beta-dpo's batch beta depends on the batch by design")
    other = ([-0.5, -0.25], [-3.0], [-1.0, -1.0], [-1.0])
    batch = PairwiseInput(Logps.from_lists([W_TOK, other[0]], F64), Logps.from_lists([L_TOK, other[1]], F64),
                          Logps.from_lists([RW_TOK, other[2]], F64), Logps.from_lists([RL_TOK, other[3]], F64))
    single = PairwiseInput(*(Logps.from_lists([x], F64) for x in other))
    out = call(spec, batch).loss
    assert out.tolist() == pytest.approx([val(call(spec, case_a())), val(call(spec, single))], abs=1e-12)
