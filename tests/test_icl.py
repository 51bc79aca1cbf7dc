import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.sim import icl as sim
from lmech.theory import icl as th
from lmech.theory.kappa import solve_kappa


@pytest.mark.parametrize("ratio", [0.3, 1.0, 2.5])
def test_mp_quadrature_reproduces_narayana_moments(ratio):
    x, w = th.mp_quadrature(ratio, 12)
    moments = np.array([np.sum(w * x**k) for k in range(24)])
    np.testing.assert_allclose(moments, th.mp_moments(ratio, 23), rtol=1e-11)
    if ratio > 1:  # atom at zero of mass 1 - 1/ratio is integrated exactly: E[1 / (1 + s)] check
        big_x, big_w = th.mp_quadrature(ratio, 200)
        assert big_w[np.argmin(big_x)] == pytest.approx(1 - 1 / ratio, rel=1e-8)


def test_noiseless_optimum_is_christoffel_function_and_lstsq():
    """Two independent routes to min E[p(s)^2], p(0) = 1: monomial Hankel solve vs our solver."""
    for alpha in [0.5, 2.0]:
        for L in [1, 2, 3, 5]:
            m = th.mp_moments(1 / alpha, 2 * L)
            H = np.array([[m[i + j] for j in range(L + 1)] for i in range(L + 1)])
            e0 = np.zeros(L + 1)
            e0[0] = 1
            ref = 1 / np.linalg.solve(H, e0)[0]
            assert th.icl_risk(alpha, L, noise=0.0).risk[0, 0] == pytest.approx(ref, rel=1e-9)


def test_infinite_depth_limit_is_bayes_ridge_via_kappa():
    noise, D = 0.2, 400
    for alpha in [0.5, 1.0, 3.0]:
        P = alpha * D
        lam = noise / alpha  # sample-covariance ridge; kernel-sum ridge = P * lam
        kap = solve_kappa(np.ones(D), P, P * lam).kappa[0] / P
        bayes = kap / (1 + kap)
        assert th.icl_bayes_risk(alpha, noise=noise)[0] == pytest.approx(bayes, rel=1e-10)
        # the optimal degree-L polynomial (roots unconstrained) converges to the Bayes risk ...
        nodes, w = th.mp_quadrature(1 / alpha, 32)
        deep_poly, _ = th._optimal_poly_on_measure(nodes, w, 30, noise / alpha)
        assert bayes <= deep_poly <= bayes * (1 + 1e-6)
        # ... while many steps of GD with one step size stay above it (early stopping is not ridge)
        assert th.icl_risk(alpha, 40, noise=noise, model="tied").risk[0, 0] >= bayes


def test_risk_of_reported_steps_matches_risk():
    res = th.icl_risk([0.5, 2.0], [1, 2, 4], noise=0.1)
    for k, g in enumerate(res.step_sizes):
        i, j = divmod(k, 2)
        assert th.polynomial_risk_iso(res.alpha[j], g, noise=0.1) == pytest.approx(res.risk[i, j], rel=1e-8)
    tied = th.icl_risk([0.5, 2.0], [1, 2, 4], noise=0.1, model="tied")
    np.testing.assert_allclose(tied.risk[0], res.risk[0], rtol=1e-8)  # L = 1: same model
    assert np.all(res.risk[1:] <= tied.risk[1:] + 1e-12)  # untied is at least as good


def test_direct_finite_dimension_evaluation_matches_theory():
    D, noise = 64, 0.1
    for alpha, L in [(1.0, 2), (2.0, 4)]:
        res = th.icl_risk(alpha, L, noise=noise)
        m, se = sim.polynomial_predictor_risk(D, int(alpha * D), res.step_sizes[0], noise=noise,
                                              n_contexts=2000, seed=1)
        # finite-D bias O(1/D) (sim above theory, ~2-3% at D = 64) plus 3 s.e.
        assert abs(m - res.risk[0, 0]) <= 3 * se + 0.035 * res.risk[0, 0]


def test_rrs_optimal_polynomial_against_extended_precision():
    """Lanczos with full re-orthogonalisation vs a 200-digit Hankel solve (a published table of these values was off)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 200
    M, L = 400, 10
    lam = np.arange(1, M + 1) ** -1.5
    lm = [mp.mpf(k) ** mp.mpf(-1.5) for k in range(1, M + 1)]
    tot = mp.fsum(lm)
    w = [x / tot for x in lm]
    mom, pw = [], list(w)
    for _ in range(2 * L + 1):
        mom.append(mp.fsum(pw))
        pw = [p * x for p, x in zip(pw, lm)]
    H = mp.matrix(L + 1, L + 1)
    for i in range(L + 1):
        for j in range(L + 1):
            H[i, j] = mom[i + j]
    e = mp.matrix(L + 1, 1)
    e[0] = 1
    ref = float(1 / mp.lu_solve(H, e)[0])
    assert th.rrs_risk(lam, L).risk[0, 0] == pytest.approx(ref, rel=1e-9)


def test_rrs_tied_depth_exponent_approaches_gd_rate():
    lam = np.arange(1, 20_001) ** -1.5
    res = th.rrs_risk(lam, [16, 32, 64, 128], model="tied")
    slope = th.power_law_exponent([16, 32, 64, 128], res.risk[:, 0])
    assert abs(slope - (-(1 - 1 / 1.5))) < 0.05
    untied = th.rrs_risk(lam, [16, 32, 64, 128]).risk[:, 0]
    assert np.all(untied < res.risk[:, 0])


def test_attention_forward_equals_sufficient_statistics_forward():
    rng = np.random.default_rng(0)
    model = sim.DeepLinearAttention(6, 3, tied=False, init_scale=0.6)
    X, y, xq, _, _, _ = sim.sample_contexts(7, 6, 15, noise=0.1, rng=rng)
    a = model(X, y, xq)
    b = model.forward_stats(X.transpose(1, 2) @ X / 15, torch.einsum("bpd,bp->bd", X, y) / 15, xq)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # scalar layers implement in-context GD: compare with the explicit recursion
    with torch.no_grad():
        model.gamma.copy_(torch.stack([g * torch.eye(6, dtype=torch.float64) for g in (0.3, 0.5, 0.9)]))
    w = torch.zeros(7, 6, dtype=torch.float64)
    for g in (0.3, 0.5, 0.9):
        w = w + g * torch.einsum("bpd,bp->bd", X, y - torch.einsum("bpd,bd->bp", X, w)) / 15
    torch.testing.assert_close(model(X, y, xq), (w * xq).sum(-1), rtol=1e-12, atol=1e-12)


def test_bartlett_statistics_have_the_right_law():
    rng = np.random.default_rng(1)
    D, P, n = 3, 7, 40000
    S1, b1, _, t1 = sim.sample_context_stats(n, D, P, noise=0.5, rng=rng)
    X, y, _, t2, _, _ = sim.sample_contexts(n, D, P, noise=0.5, rng=rng)
    S2, b2 = X.transpose(1, 2) @ X / P, torch.einsum("bpd,bp->bd", X, y) / P
    for a, b in [((S1**2).mean(0), (S2**2).mean(0)), ((b1**2).mean(0), (b2**2).mean(0)),
                 ((S1[:, 0, 0] * b1[:, 0] ** 2).mean(), (S2[:, 0, 0] * b2[:, 0] ** 2).mean())]:
        torch.testing.assert_close(a, b, rtol=0.05, atol=0.01)


def test_short_training_learns_the_optimal_step():
    res = sim.train_icl(8, 2, 16, noise=0.1, tied=True, steps=150, batch_size=256, lr=0.03, seed=0, n_test=2000)
    eta = th.icl_risk(2.0, 2, noise=0.1, model="tied").step_sizes[0][0]
    assert abs(res.step_sizes[0] - eta) / eta < 0.1
    assert res.train_loss[-1] < res.train_loss[0]


@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0.1, 20.0), noise=st.floats(0.0, 1.0), L=st.integers(1, 6))
def test_fuzz_risk_monotone_in_depth_and_bounded(alpha, noise, L):
    r = th.icl_risk(alpha, [L, L + 1], noise=noise, model="tied").risk[:, 0]
    assert 0 <= r[1] <= r[0] + 1e-10 and r[0] <= 1 + 1e-12
    assert r[1] >= th.icl_bayes_risk(alpha, noise=noise)[0] - 1e-10


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: th.icl_risk(0.0, 2), "alpha"),
        (lambda: th.icl_risk(1.0, 0), "depth"),
        (lambda: th.icl_risk(1.0, 2, noise=-0.1), "noise"),
        (lambda: th.icl_risk(1.0, 2, model="wide"), "model"),
        (lambda: th.mp_quadrature(-1.0, 3), "ratio"),
        (lambda: th.rrs_risk([1.0, -0.5], 2), "eigenvalues"),
        (lambda: th.polynomial_risk_iso(1.0, []), "step_sizes"),
        (lambda: sim.train_icl(4, 2, "inf", setting="iso"), "n_context"),
        (lambda: sim.train_icl(4, 2, 8, setting="rrs"), "spectrum"),
        (lambda: sim.train_icl(4, 0, 8), "depth"),
        (lambda: sim.train_icl(4, 1, 8, batch_size=0), "batch_size"),
        (lambda: sim.train_icl(4, 1, 8, lr=0.0), "lr"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_lockstep_depth_training_equals_separate_runs():
    # same seed for every depth: each lockstep model sees train_icl's contexts and initialisation
    lam = np.arange(1, 9, dtype=float) ** -1.5
    kw = dict(tied=True, steps=40, init_scale=2.0, batch_size=64, lr=0.05, n_test=500)
    both = sim.train_icl_depths(8, [1, 3], spectrum=lam, seeds=[5, 5], **kw)
    for L, res in zip([1, 3], both):
        one = sim.train_icl(8, L, "inf", setting="rrs", spectrum=lam, seed=5, **kw)
        assert res.risk == pytest.approx(one.risk, rel=1e-9)
        assert res.risk_stderr == pytest.approx(one.risk_stderr, rel=1e-6)
        np.testing.assert_allclose(res.train_loss, one.train_loss, rtol=1e-9)


def test_shared_context_predictor_risks_equal_single_evaluations():
    steps = [np.array([0.5]), np.array([0.4, 0.6, 0.3])]
    many = sim.polynomial_predictor_risks(6, 9, steps, noise=0.1, n_contexts=300, seed=2, batch=100)
    for g, r in zip(steps, many):
        assert r == pytest.approx(sim.polynomial_predictor_risk(6, 9, g, noise=0.1, n_contexts=300, seed=2, batch=100),
                                  rel=1e-12)
