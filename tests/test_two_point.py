import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.sim.linear_sgd import sgd_fixed_data as sim_fixed_data
from lmech.sim.linear_sgd import sgd_random_features
from lmech.theory.kappa import solve_kappa
from lmech.theory.sgd import learning_curve
from lmech.theory.two_point import (
    random_feature_spectrum,
    sgd_fixed_data,
    two_point_equivalent,
    two_time_correlation,
)


def _problem(M=300, b=1.4, a=1.3):
    k = np.arange(1, M + 1, dtype=float)
    lam, v2 = k**-b, k**-a
    return lam / lam.sum(), v2 / v2.sum()


def _ridge_bias_kernel_convention(lam, v2, P, ridge_cov):
    """Section-1 learning-curve bias via the kernel-sum kappa (independent route)."""
    kap = solve_kappa(lam, P, P * ridge_cov).kappa[0]
    gamma = np.sum(P * lam**2 / (P * lam + kap) ** 2)
    delta2 = kap**2 * v2 / (P * lam + kap) ** 2
    return delta2.sum() / (1 - gamma), gamma


@pytest.mark.parametrize("ridge", [1e-4, 1e-2, 0.3])
def test_two_point_at_equal_ridges_is_the_ridge_bias(ridge):
    lam, v2 = _problem()
    P = 120
    res = two_point_equivalent(lam, P, ridge, ridge, np.sqrt(v2 / lam))
    bias, gamma = _ridge_bias_kernel_convention(lam, v2, P, ridge)
    assert res.value[0] == pytest.approx(bias, rel=1e-10)
    assert res.gamma[0] == pytest.approx(gamma, rel=1e-10)
    assert res.converged


def test_two_point_matches_sampled_resolvents():
    rng = np.random.default_rng(1)
    lam, _ = _problem(200)
    P, draws = 100, 80
    u = rng.standard_normal(200) * np.arange(1, 201) ** -0.5
    Z = rng.standard_normal((200, 200)) / np.sqrt(200)
    A = Z @ Z.T
    for l1, l2 in [(1e-3, 1e-1), (0.02 + 0.01j, 0.01 - 0.03j)]:
        vals = []
        for _ in range(draws):
            X = rng.standard_normal((P, 200)) * np.sqrt(lam)
            S = X.T @ X / P
            a = np.linalg.solve(S + l1 * np.eye(200), u)
            b = np.linalg.solve(S + l2 * np.eye(200), u)
            vals.append(l1 * l2 * a @ A @ b)
        vals = np.asarray(vals)
        th = two_point_equivalent(lam, P, l1, l2, u, A).value[0]
        se = np.std(vals) / np.sqrt(draws)
        # Monte-Carlo error plus the O(1/P) finite-size bias (measured ~2-3% at P = 100)
        assert abs(vals.mean() - th) < 3 * se + 0.04 * abs(th)


def test_two_point_symmetries():
    lam, v2 = _problem(100)
    u = np.sqrt(v2 / lam)
    a = two_point_equivalent(lam, 50, [1e-2, 1e-3], [1e-3, 1e-2], u)
    assert a.value[0] == pytest.approx(a.value[1], rel=1e-12)
    c = two_point_equivalent(lam, 50, 0.01 + 0.02j, 0.03 - 0.01j, u)
    d = two_point_equivalent(lam, 50, 0.01 - 0.02j, 0.03 + 0.01j, u)
    assert c.value[0] == pytest.approx(np.conj(d.value[0]), rel=1e-10)
    # a full diagonal matrix equals its 1-d diagonal
    A = np.linspace(0.1, 1.0, 100)
    e1 = two_point_equivalent(lam, 50, 1e-2, 1e-1, u, A).value
    e2 = two_point_equivalent(lam, 50, 1e-2, 1e-1, u, np.diag(A)).value
    np.testing.assert_allclose(e1, e2, rtol=1e-12)


def test_gradient_flow_limits():
    lam, v2 = _problem()
    P, noise = 120, 0.1
    res = sgd_fixed_data(lam, v2, P, 1.0, None, [1e-3, 1e7], noise)
    # t -> inf: ridgeless regression (kernel-sum formula with label noise)
    kap = solve_kappa(lam, P, 0.0).kappa[0]
    gamma = np.sum(P * lam**2 / (P * lam + kap) ** 2)
    Eg = (np.sum(kap**2 * v2 / (P * lam + kap) ** 2) + gamma * noise) / (1 - gamma)
    assert res.gd_test_loss[1] == pytest.approx(Eg, rel=1e-6)
    assert res.gd_train_loss[1] == pytest.approx(0.0, abs=1e-8)  # over-parameterised: interpolates
    # t -> 0: initial losses
    assert res.gd_test_loss[0] == pytest.approx(v2.sum(), rel=1e-2)
    assert res.gd_train_loss[0] == pytest.approx(v2.sum() + noise, rel=1e-2)
    assert res.stable and res.critical_lr == np.inf


def test_infinite_data_limit_is_online_sgd():
    """P -> inf: multi-pass SGD becomes online SGD; compare with the exact recursion (S1) at small lr."""
    lam, v2 = _problem()
    lr, steps = 0.05, np.array([10, 100, 1000, 5000])
    for noise in (0.0, 0.2):
        res = sgd_fixed_data(lam, v2, 1e8, lr, 1, steps, noise)
        s1 = learning_curve(lam, v2, lr, 1, int(steps[-1]), noise).loss[steps]
        np.testing.assert_allclose(res.test_loss, s1, rtol=2e-3)  # continuous-time error O(lr lam)
        np.testing.assert_allclose(res.train_loss, s1 + noise, rtol=2e-3)
        assert np.all(res.test_loss > res.gd_test_loss)  # SGD noise costs


def test_two_time_correlation_structure():
    lam, v2 = _problem()
    tau = np.array([1.0, 10.0, 100.0])
    tt = two_time_correlation(lam, v2, 120, tau, 0.1)
    np.testing.assert_allclose(tt.correlation, tt.correlation.T, rtol=1e-12)
    gd = sgd_fixed_data(lam, v2, 120, 1.0, None, tau, 0.1)
    np.testing.assert_allclose(np.diag(tt.correlation), gd.gd_test_loss, rtol=1e-9)
    assert np.all(np.diag(tt.bias) > 0) and tt.converged


def test_sgd_fixed_data_matches_simulation():
    lam, v2 = _problem(200)
    P, lr, B = 100, 0.25, 1
    steps = np.array([4, 40, 400, 4000])
    th = sgd_fixed_data(lam, v2, P, lr, B, steps, 0.05)
    sim = sim_fixed_data(lam, v2, P, lr, B, int(steps[-1]), 0.05, n_seeds=120, seed=2, times=steps)
    # Monte-Carlo error + ~2% (finite P, continuous time; measured <= 1.5% at this coupling)
    assert np.all(np.abs(sim.loss - th.test_loss) < 3 * sim.loss_sem + 0.03 * th.test_loss)
    assert np.all(np.abs(sim.train_loss - th.train_loss) < 3 * sim.loss_sem + 0.03 * th.train_loss)


def test_unstable_continuous_sgd_is_flagged():
    lam, v2 = _problem(50)
    res = sgd_fixed_data(lam, v2, 40, 3.0, 1, [1.0, 10.0])
    assert not res.stable and res.critical_lr == pytest.approx(2.0)
    assert np.all(res.test_loss == np.inf) and not np.any(np.isnan(res.gd_test_loss))


def test_divergent_fixed_data_and_rf_simulations_read_inf_never_nan():
    lam, v2 = _problem(20)
    F = np.random.default_rng(0).standard_normal((10, 20))
    runs = [sim_fixed_data(lam, v2, 15, 400.0, 1, 300, 0.1, n_seeds=3, seed=0, times=[300]),
            sgd_random_features(lam, v2, F, 400.0, 1, 300, 0.1, n_seeds=3, seed=0, times=[300]),
            sgd_random_features(lam, v2, F, 400.0, 1, 300, 0.1, n_samples=15, n_seeds=3, seed=0, times=[300])]
    for sim in runs:
        assert not np.any(np.isnan(sim.losses)) and np.all(sim.losses == np.inf)
        assert sim.train_losses is None or np.all(sim.train_losses == np.inf)


def test_random_feature_spectrum_and_simulator_agree():
    lam, v2 = _problem(120)
    F = np.random.default_rng(0).standard_normal((40, 120))
    ev, power, resid = random_feature_spectrum(lam, v2, F)
    # independent: a* = Sigma_F^{-1} cov(psi, y); learnable power a*^T Sigma_F a*
    G = F * np.sqrt(lam) / np.sqrt(40)
    SF = G @ G.T
    a_star = np.linalg.solve(SF, G @ np.sqrt(v2))
    assert power.sum() == pytest.approx(a_star @ SF @ a_star, rel=1e-9)
    assert resid == pytest.approx(v2.sum() - a_star @ SF @ a_star, rel=1e-9)
    np.testing.assert_allclose(np.sort(ev), np.linalg.eigvalsh(SF), rtol=1e-9, atol=1e-14)
    # online SGD on the RF model = Gaussian-feature SGD on (ev, power) with the residual as noise
    th = learning_curve(np.append(ev, 0.0), np.append(power, resid), 1.0, 4, 100, times=[0, 10, 100])
    sim = sgd_random_features(lam, v2, F, 1.0, 4, 100, n_seeds=300, seed=1, times=[0, 10, 100])
    assert np.all(np.abs(sim.loss - th.loss) < 4 * sim.loss_sem + 1e-12)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: two_point_equivalent([1.0, -1.0], 10, 0.1, 0.1, [1.0, 1.0]), ValueError, "eigenvalues"),
        (lambda: two_point_equivalent([1.0, 0.5], 0, 0.1, 0.1, [1.0, 1.0]), ValueError, "n_samples"),
        (lambda: two_point_equivalent([1.0, 0.5], 10, -0.1, 0.1, [1.0, 1.0]), ValueError, "ridge1"),
        (lambda: two_point_equivalent([1.0, 0.5], 10, 0.1, 0.0, [1.0, 1.0]), ValueError, "ridge2"),
        (lambda: two_point_equivalent([1.0, 0.5], 10, 0.1, 0.1, [1.0]), ValueError, "vector"),
        (lambda: two_point_equivalent([1.0, 0.5], 10, 0.1, 0.1, [1.0, 1.0], np.eye(3)), ValueError, "A"),
        (lambda: sgd_fixed_data([1.0, 0.5], [1.0, 1.0], 10, 0.0, 1, [1.0]), ValueError, "lr"),
        (lambda: sgd_fixed_data([1.0, 0.5], [1.0, 1.0], 10, 0.1, 0, [1.0]), ValueError, "batch_size"),
        (lambda: sgd_fixed_data([1.0, 0.5], [1.0, 1.0], 10, 0.1, 1, [0.0]), ValueError, "steps"),
        (lambda: sgd_fixed_data([1.0, 0.5], [1.0], 10, 0.1, 1, [1.0]), ValueError, "target_power"),
        (lambda: sgd_fixed_data([1.0, 0.5], [1.0, 1.0], 10, 0.1, 1, [1.0], -1.0), ValueError, "noise"),
        (lambda: two_time_correlation([1.0, 0.5], [1.0, 1.0], 10, [-1.0]), ValueError, "times"),
        (lambda: random_feature_spectrum([1.0, 0.5], [1.0, 1.0], np.ones((3, 4))), ValueError, "projection"),
        (lambda: sim_fixed_data([1.0, 0.0], [1.0, 1.0], 10, 0.1, 1, 5), ValueError, "eigenvalues"),
        (lambda: sgd_random_features([1.0, 0.5], [1.0, 1.0], np.ones((3, 4)), 0.1, 1, 5), ValueError, "projection"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@settings(max_examples=25, deadline=None)
@given(
    M=st.integers(2, 60),
    P=st.floats(2.0, 200.0),
    l1=st.floats(1e-4, 1.0),
    l2=st.floats(1e-4, 1.0),
    seed=st.integers(0, 2**16),
)
def test_fuzz_two_point_is_a_positive_symmetric_form(M, P, l1, l2, seed):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.01, 1.0, M)
    u = rng.standard_normal(M)
    a = two_point_equivalent(lam, P, l1, l2, u)
    b = two_point_equivalent(lam, P, l2, l1, u)
    assert a.value[0] > 0 and a.value[0] == pytest.approx(b.value[0], rel=1e-9)
    assert 0 <= a.gamma[0] < 1
    # Cauchy-Schwarz for the PSD form A = Sigma: |<f(l1), f(l2)>| <= sqrt(<f(l1), f(l1)> <f(l2), f(l2)>)
    a11 = two_point_equivalent(lam, P, l1, l1, u).value[0]
    a22 = two_point_equivalent(lam, P, l2, l2, u).value[0]
    assert a.value[0] <= np.sqrt(a11 * a22) * (1 + 1e-9)


# --------------------------------------------------------------------------- sim.two_point samplers
from lmech.sim.two_point import gradient_flow_two_time, sampled_two_point_forms  # noqa: E402


def test_sampled_forms_reach_the_population_value_at_large_P():
    """P >> M: Sigma_hat -> Sigma, so the form tends to l l' u^T (Sigma+l)^-1 A (Sigma+l')^-1 u."""
    lam = np.array([0.5, 0.3, 0.15, 0.05])
    u = np.array([1.0, -0.5, 0.3, 2.0])
    A = np.random.default_rng(1).standard_normal((4, 4))
    A = A @ A.T
    pairs = [(0.1, 0.2), (0.05, 0.5)]
    got = sampled_two_point_forms(lam, 20000, pairs, u, [A, np.eye(4)], draws=4, seed=3)
    assert got.shape == (4, 2, 2)
    for i, (l1, l2) in enumerate(pairs):
        for j, mat in enumerate([A, np.eye(4)]):
            want = l1 * l2 * u @ np.linalg.solve(np.diag(lam) + l1 * np.eye(4), mat) @ np.linalg.solve(
                np.diag(lam) + l2 * np.eye(4), u)
            # finite-P deviation measured 0.2-0.8 % over 5 seeds (1/sqrt(P) fluctuations, O(1/P) bias)
            assert got[:, i, j].mean() == pytest.approx(want, rel=0.02)


def test_sampled_forms_match_a_direct_inverse():
    """One draw reproduced with explicit matrix inverses (rows x ~ N(0, diag(lam)), seed's first draw)."""
    lam = np.array([1.0, 0.5, 0.2])
    u = np.array([0.3, 1.0, -1.0])
    A = np.diag([1.0, 2.0, 3.0])
    got = sampled_two_point_forms(lam, 5, [(0.1, 0.7)], u, [A], draws=1, seed=11)[0, 0, 0]
    X = np.random.default_rng(11).standard_normal((5, 3)) * np.sqrt(lam)
    S = X.T @ X / 5
    want = 0.07 * u @ np.linalg.inv(S + 0.1 * np.eye(3)) @ A @ np.linalg.inv(S + 0.7 * np.eye(3)) @ u
    assert got == pytest.approx(want, rel=1e-10)


def test_two_time_exact_limits():
    lam = np.array([0.5, 0.3, 0.15, 0.05])
    v2 = np.array([0.4, 0.3, 0.2, 0.1])
    # tau = 0: w = 0, C = w*^T Sigma w* = sum(v2) for any training set (even P < M)
    for P in (2, 50):
        C = gradient_flow_two_time(lam, v2, P, [0.0, 1.0], 0.3, draws=3, seed=0)
        np.testing.assert_allclose(C[:, 0, 0], v2.sum(), rtol=1e-10)
    # P > M, no noise, tau -> infinity: gradient flow reaches w* exactly
    C = gradient_flow_two_time(lam, v2, 50, [1e6], 0.0, draws=2, seed=0)
    assert np.all(np.abs(C) < 1e-12)


def test_two_time_matches_integrated_gradient_flow():
    """One draw (P < M, label noise) against gradient flow integrated numerically by solve_ivp."""
    from scipy.integrate import solve_ivp

    lam = np.array([0.5, 0.3, 0.15, 0.05, 0.02, 0.01])
    v2 = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    P, noise, t = 4, 0.2, np.array([0.5, 3.0, 20.0])
    got = gradient_flow_two_time(lam, v2, P, t, noise, draws=1, seed=5)[0]
    rng = np.random.default_rng(5)  # the sampler's first draw: X, then the label noise
    X = rng.standard_normal((P, 6)) * np.sqrt(lam)
    w_star = np.sqrt(v2 / lam)
    y = X @ w_star + np.sqrt(noise) * rng.standard_normal(P)
    sol = solve_ivp(lambda _, w: -(X.T @ (X @ w - y)) / P, (0, t[-1]), np.zeros(6), t_eval=t, rtol=1e-10, atol=1e-12)
    D = sol.y.T - w_star
    np.testing.assert_allclose(got, (D * lam) @ D.T, rtol=1e-6)


def test_two_point_samplers_bad_inputs():
    lam, u = np.ones(3), np.ones(3)
    with pytest.raises(ValueError, match="ridge_pairs"):
        sampled_two_point_forms(lam, 5, [(0.1, 0.2, 0.3)], u, [np.eye(3)], draws=1)
    with pytest.raises(ValueError, match="ridge_pairs"):
        sampled_two_point_forms(lam, 5, [(-0.1, 0.2)], u, [np.eye(3)], draws=1)
    with pytest.raises(ValueError, match=r"matrices\[0\]"):
        sampled_two_point_forms(lam, 5, [(0.1, 0.2)], u, [np.eye(2)], draws=1)
    with pytest.raises(ValueError, match="draws"):
        sampled_two_point_forms(lam, 5, [(0.1, 0.2)], u, [np.eye(3)], draws=0)
    with pytest.raises(ValueError, match="times"):
        gradient_flow_two_time(lam, lam, 5, [-1.0], draws=1)
    with pytest.raises(ValueError, match="eigenvalues"):
        gradient_flow_two_time([1.0, 0.0], [1.0, 1.0], 5, [1.0], draws=1)
    with pytest.raises(ValueError, match="noise"):
        gradient_flow_two_time(lam, lam, 5, [1.0], -0.1, draws=1)
