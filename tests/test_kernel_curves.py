import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.results import ConvergenceWarning
from lmech.sim.kernel_regression import gaussian_feature_regression, population_kernel_regression, train_wide_network
from lmech.theory.kernel_curves import (
    asymptotic_level_curve,
    learning_curve,
    ood_learning_curve,
    overfitting_peaks,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _power_law(M=400):
    k = np.arange(1, M + 1, dtype=float)
    lam = k**-1.5
    return lam / lam.sum(), 1.0 / k


# --------------------------------------------------------------------------- closed forms
def test_isotropic_closed_forms():
    """n equal eigenvalues: ridgeless E_g = noise n/(P - n) for P > n, and
    |v|^2 (1 - P/n) + noise P/(n - P) for P < n (classical results)."""
    n, noise, v2 = 50, 0.3, 2.0
    lam = np.full(n, 1.0 / n)
    power = np.full(n, v2 / n)
    P = np.array([10.0, 30.0, 49.0, 51.0, 80.0, 400.0])
    c = learning_curve(lam, power, P, 0.0, noise)
    expected = np.where(P > n, noise * n / (P - n), v2 * (1 - P / n) + noise * P / (n - P))
    np.testing.assert_allclose(c.generalization_error, expected, rtol=1e-10)
    np.testing.assert_allclose(c.training_error[P > n], noise * (1 - n / P[P > n]), rtol=1e-10)
    assert np.all(c.training_error[P < n] == 0)


def test_zero_eigenvalue_modes_act_as_unlearnable_power_and_noise():
    """Power u on modes with lam = 0 is never learned and inflates the variance like label noise:
    ridgeless, P > n+: E_g = (u + (n+/P) noise) / (1 - n+/P); with a ridge, the
    curve equals the one without those modes at noise + u, plus u."""
    n, noise, u = 50, 0.3, 0.7
    lam = np.r_[np.full(n, 1.0 / n), 0.0, 0.0]
    power = np.r_[np.full(n, 2.0 / n), u, 0.0]
    P = np.array([80.0, 400.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0 * inf on the zero modes
        c = learning_curve(lam, power, P, 0.0, noise)
        r = learning_curve(lam, power, P, 1e-3, noise)
    g = n / P
    np.testing.assert_allclose(c.generalization_error, (u + g * noise) / (1 - g), rtol=1e-12)
    ref = learning_curve(lam[:n], power[:n], P, 1e-3, noise + u)
    np.testing.assert_allclose(r.generalization_error, ref.generalization_error + u, rtol=1e-12)
    assert np.all(c.learnability[:, n:] == 0) and np.all(c.mode_bias[:, n] == u)
    with pytest.warns(ConvergenceWarning):
        assert learning_curve(lam, power, float(n), 0.0, noise).divergent[0]


def test_asymptotic_level_closed_form_matches_finite_spectrum():
    """Large-degeneracy limit (Canatar et al.): exact within (P/n2 + 1/n1) corrections."""
    n1, n2, eps, r, noise = 1000, 10**7, 0.05, 1e-3, 0.5
    alpha = np.array([0.2, 0.5, 0.9, 1.0, 1.1, 1.5, 3.0])
    ex = learning_curve([(1 - eps) / n1, eps / n2], [1.0, 0.0], alpha * n1, r, noise, multiplicities=[n1, n2])
    cf = asymptotic_level_curve(alpha, (r + eps) / (1 - eps), 1.0, noise)
    np.testing.assert_allclose(ex.generalization_error, cf, rtol=1e-3)
    assert np.isinf(asymptotic_level_curve(1.0, 0.0, 1.0, 0.5))


def test_multiplicities_equal_repeated_modes():
    lam_l = np.array([0.5, 0.05, 0.002])
    mult = np.array([1, 10, 300])
    power_l = np.array([0.2, 0.5, 0.3])
    P = np.array([3.0, 11.0, 200.0, 311.0, 1000.0])
    a = learning_curve(lam_l, power_l, P, 1e-4, 0.1, multiplicities=mult)
    b = learning_curve(np.repeat(lam_l, mult), np.repeat(power_l / mult, mult), P, 1e-4, 0.1)
    np.testing.assert_allclose(a.generalization_error, b.generalization_error, rtol=1e-11)
    per_level = np.add.reduceat(b.mode_errors, np.r_[0, np.cumsum(mult)[:-1]], axis=1)
    np.testing.assert_allclose(a.mode_errors, per_level, rtol=1e-10)


def test_mode_errors_sum_and_training_error_identity():
    lam, v = _power_law()
    c = learning_curve(lam, v**2, [10, 100, 1000], 1e-3, 0.05)
    np.testing.assert_allclose(c.mode_errors.sum(axis=1), c.generalization_error, rtol=1e-12)
    np.testing.assert_allclose(c.one_minus_gamma, 1 - c.gamma, rtol=1e-9)
    np.testing.assert_allclose(c.training_error, (c.ridge / c.kappa) ** 2 * (c.generalization_error + 0.05), rtol=1e-12)
    assert np.all(np.diff(c.learnability, axis=1) < 0)  # spectral bias: larger eigenvalue, learned more


def test_truncated_tail_correction():
    """A power law truncated at 3000 of 200000 modes, with trace and total power passed, matches
    the full spectrum; without the correction it does not."""
    k = np.arange(1, 200_001, dtype=float)
    lam, power = k**-1.2, k**-1.6
    P = np.array([10, 100, 300])
    full = learning_curve(lam, power, P, 1e-6, 0.01).generalization_error
    cut = 3000
    fixed = learning_curve(lam[:cut], power[:cut], P, 1e-6, 0.01, trace=lam.sum(), total_power=power.sum())
    bare = learning_curve(lam[:cut], power[:cut], P, 1e-6, 0.01).generalization_error
    np.testing.assert_allclose(fixed.generalization_error, full, rtol=2e-3)
    assert np.all(np.abs(bare / full - 1) > 0.05)
    assert fixed.tail_eigenvalue_mass == pytest.approx(lam[cut:].sum())
    np.testing.assert_allclose(fixed.mode_errors.sum(1) + fixed.tail_power, fixed.generalization_error, rtol=1e-9)
    with pytest.raises(ValueError, match="trace"):
        learning_curve(lam[:cut], power[:cut], P, trace=0.5 * lam[:cut].sum())


def test_ridgeless_interpolation_peak_is_flagged_not_silent():
    lam, v = _power_law(100)
    with pytest.warns(ConvergenceWarning, match="1 - gamma"):
        c = learning_curve(lam, v**2, [50, 99.999999999, 100, 101, 200], 0.0, 0.1)
    assert not c.converged
    assert c.divergent.tolist() == [False, False, True, False, False]
    assert np.isinf(c.generalization_error[2]) and not np.any(np.isnan(c.generalization_error))
    assert c.ill_conditioned[1] and c.ill_conditioned[2]
    # continuity of the ridgeless limit on both sides of P = n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = learning_curve(lam, v**2, [50, 101, 200], 1e-12, 0.1)
    np.testing.assert_allclose(small.generalization_error, c.generalization_error[[0, 3, 4]], rtol=1e-5)
    # noiseless target inside the span: P = n interpolates exactly (no divergence)
    exact = learning_curve(lam, v**2, 100, 0.0, 0.0)
    assert exact.generalization_error[0] == 0 and not exact.divergent[0]


def test_overfitting_peaks():
    n1, n2 = 100, 1000
    lam = np.r_[np.full(n1, 0.999 / n1), np.full(n2, 0.001 / n2)]
    power = np.r_[np.full(n1, 1 / n1), np.zeros(n2)]
    pk = overfitting_peaks(lam, power, 1e-4, 0.5, (10, 400))
    assert pk.P_peaks.size == 1 and 95 < pk.P_peaks[0] < 110
    grid = np.geomspace(90, 115, 2001)
    brute = learning_curve(lam, power, grid, 1e-4, 0.5).generalization_error
    assert pk.heights[0] == pytest.approx(brute.max(), rel=1e-6)
    assert pk.P_peaks[0] == pytest.approx(grid[np.argmax(brute)], rel=1e-3)
    assert not overfitting_peaks(lam, power, 0.1, 0.5, (10, 400)).has_peak
    # ridgeless: the divergence at P = n+ is reported
    lam2, v = _power_law(80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pk0 = overfitting_peaks(lam2, v**2, 0.0, 0.1, (10, 400))
    assert 80.0 in pk0.P_peaks.tolist() and np.isinf(pk0.heights[pk0.P_peaks.tolist().index(80.0)])


def test_ood_identity_overlap_gives_in_distribution_error():
    lam, v = _power_law(200)
    c = learning_curve(lam, v**2, [10, 100], 1e-2, 0.05)
    o = ood_learning_curve(lam, v, np.eye(200), [10, 100], 1e-2, 0.05)
    np.testing.assert_allclose(o.ood_error, c.generalization_error, rtol=1e-12)
    # vector targets: errors add over outputs
    V = np.stack([v, 0.5 * v], axis=1)
    o2 = ood_learning_curve(lam, V, np.eye(200), [10, 100], 1e-2, 0.05)
    c2 = learning_curve(lam, 1.25 * v**2, [10, 100], 1e-2, 0.05)
    np.testing.assert_allclose(o2.ood_error, c2.generalization_error, rtol=1e-12)


# --------------------------------------------------------------------------- against simulation
def test_learning_curve_matches_gaussian_feature_simulation():
    """Measured deviation (1000 trials): <= 2 % (finite-size bias at P <= 50). With 200 trials
    the standard error is ~3 %: allow 3 s.e. + 2 %."""
    lam, v = _power_law(300)
    P = [20, 60, 150]
    for r in (0.0, 1e-2):
        th = learning_curve(lam, v**2, P, r, 0.05)
        sim = gaussian_feature_regression(lam, v, P, r, 0.05, n_trials=200, seed=3)
        assert np.all(np.abs(sim.mean - th.generalization_error) <= 3 * sim.sem + 0.02 * th.generalization_error)
        if r > 0:
            tr = sim.training_error.mean(1)
            tr_se = sim.training_error.std(1, ddof=1) / np.sqrt(200)
            assert np.all(np.abs(tr - th.training_error) <= 3 * tr_se + 0.03 * th.training_error)
    # per-mode errors of the top modes (ridge 1e-2)
    me = sim.mode_errors[:, :3]
    np.testing.assert_allclose(me, th.mode_errors[:, :3], rtol=0.35)  # 200 trials: ~10 % s.e. per entry
    np.testing.assert_allclose(sim.mode_errors.sum(1), sim.mean, rtol=1e-10)


def test_ood_matches_simulation():
    lam, v = _power_law(200)
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    R = np.eye(200)
    R[:30, :30] = Q
    lt = 1.0 / np.arange(1, 201)
    O = (R * (lt / lt.sum())) @ R.T / np.sqrt(np.outer(lam, lam))
    th = ood_learning_curve(lam, v, O, [30, 120], 1e-2, 0.05)
    sim = gaussian_feature_regression(lam, v, [30, 120], 1e-2, 0.05, n_trials=200, seed=1, test_overlap=O)
    m, se = sim.ood_error.mean(1), sim.ood_error.std(1, ddof=1) / np.sqrt(200)
    assert np.all(np.abs(m - th.ood_error) <= 3 * se + 0.02 * th.ood_error)
    assert np.all(th.ood_error > 1.5 * th.in_distribution_error)


def test_population_simulation_with_linear_kernel_matches_gaussian_theory():
    """The population sampler on a large Gaussian sample with a linear kernel behaves like the
    Gaussian-feature theory (P << N)."""
    rng = np.random.default_rng(0)
    lam, v = _power_law(30)
    Z = rng.standard_normal((3000, 30))
    X = Z * np.sqrt(lam)
    K = X @ X.T
    y = Z @ v
    th = learning_curve(lam, v**2, [10, 40], 1e-3).generalization_error
    sim = population_kernel_regression(K, y, [10, 40], 1e-3, n_trials=100, seed=0)
    assert np.all(np.abs(sim.mean - th) <= 3 * sim.sem + 0.05 * th)


def test_simulators_are_reproducible_and_handle_duplicates():
    lam, v = _power_law(50)
    a = gaussian_feature_regression(lam, v, [10, 80], 0.0, 0.1, n_trials=3, seed=7)
    b = gaussian_feature_regression(lam, v, [80], 0.0, 0.1, n_trials=3, seed=7)
    np.testing.assert_array_equal(a.generalization_error[1], b.generalization_error[0])  # per-P streams
    assert a.generalization_error.shape == (2, 3) and a.mode_errors.shape == (2, 50)
    # ridge 0 with repeated points: the pseudo-inverse gives the interpolant of the unique points
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    K = np.exp(-((X[:, None] - X[None]) ** 2).sum(-1))
    y = np.sin(X[:, 0])
    s = population_kernel_regression(K, y, [30], 0.0, n_trials=5, seed=0, replace=True)
    assert np.all(np.isfinite(s.generalization_error)) and np.all(s.training_error < 1e-8)


def test_wide_network_reaches_interpolation_and_tracks_kernel_regression():
    from lmech.kernels import ntk_mlp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    fit = train_wide_network(X[:20], y[:20], X, width=2048, seed=0)
    assert fit.converged and fit.relative_train_loss <= 1e-6
    K = ntk_mlp(X, depth=1)
    krr = K[:, :20] @ np.linalg.solve(K[:20, :20], y[:20])
    err_net = np.mean((fit.predictions[:, 0] - y) ** 2)
    err_krr = np.mean((krr - y) ** 2)
    assert abs(err_net / err_krr - 1) < 0.1  # width 2048: fluctuations O(width^-1/2)


# --------------------------------------------------------------------------- bad input and fuzz
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eigenvalues=[1.0, -1.0], target_power=[1.0, 1.0], P=10), "eigenvalues"),
        (dict(eigenvalues=[1.0, np.nan], target_power=[1.0, 1.0], P=10), "eigenvalues"),
        (dict(eigenvalues=[1.0, 0.5], target_power=[1.0], P=10), "target_power"),
        (dict(eigenvalues=[1.0, 0.5], target_power=[1.0, -1.0], P=10), "target_power"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=0), "P"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=[5, -1]), "P"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=10, ridge=-1.0), "ridge"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=10, noise=-0.1), "noise"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=10, noise=np.nan), "noise"),
        (dict(eigenvalues=[1.0, 2.0], target_power=[1.0, 1.0], P=10, multiplicities=[1.0]), "multiplicities"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=[1, 2, 3], ridge=[0.1, 0.2]), "broadcast"),
        (dict(eigenvalues=[1.0], target_power=[1.0], P=10, total_power=0.5), "total_power"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        learning_curve(**kwargs)


def test_bad_input_other_entry_points():
    with pytest.raises(ValueError, match="overlap"):
        ood_learning_curve([1.0, 0.5], [1.0, 1.0], np.ones((3, 3)), 10)
    with pytest.raises(ValueError, match="overlap"):
        ood_learning_curve([1.0, 0.5], [1.0, 1.0], np.array([[1.0, 0.5], [0.0, 1.0]]), 10)
    with pytest.raises(ValueError, match="target_coefficients"):
        ood_learning_curve([1.0, 0.5], [1.0], np.eye(2), 10)
    with pytest.raises(ValueError, match="P_range"):
        overfitting_peaks([1.0], [1.0], 0.0, 0.1, (10, 5))
    with pytest.raises(ValueError, match="P"):
        gaussian_feature_regression([1.0], [1.0], [2.5])
    with pytest.raises(ValueError, match="eigenvalues"):
        gaussian_feature_regression([1.0, 0.0], [1.0, 1.0], [2])
    with pytest.raises(ValueError, match="targets"):
        population_kernel_regression(np.eye(3), np.ones(4), [2])
    with pytest.raises(ValueError, match="P"):
        population_kernel_regression(np.eye(3), np.ones(3), [5])
    with pytest.raises(ValueError, match="test_weights"):
        population_kernel_regression(np.eye(3), np.ones(3), [2], test_weights=np.zeros(3))
    with pytest.raises(ValueError, match="alpha"):
        asymptotic_level_curve(-1.0, 0.1)


@settings(max_examples=50, deadline=None)
@given(
    lam=st.lists(st.one_of(st.floats(1e-8, 1e2), st.just(0.0)), min_size=1, max_size=30).filter(any),
    P=st.lists(st.floats(0.5, 1e4), min_size=1, max_size=5),
    ridge=st.one_of(st.just(0.0), st.floats(1e-10, 1e2)),
    noise=st.one_of(st.just(0.0), st.floats(0.0, 10.0)),
    seed=st.integers(0, 1000),
)
def test_fuzz_learning_curve(lam, P, ridge, noise, seed):
    power = np.random.default_rng(seed).uniform(0, 1, len(lam))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        c = learning_curve(lam, power, P, ridge, noise)
    assert not np.any(np.isnan(c.generalization_error))
    assert np.all(c.generalization_error >= 0) and np.all((c.gamma >= 0) & (c.gamma <= 1 + 1e-12))
    assert np.all(c.mode_errors >= 0) and np.all((c.learnability >= 0) & (c.learnability <= 1))
    ok = ~c.divergent & ~c.ill_conditioned
    np.testing.assert_allclose(c.mode_errors.sum(1)[ok], c.generalization_error[ok], rtol=1e-8, atol=1e-300)
    assert c.converged == (not np.any(c.ill_conditioned))
    # a divergence is only possible ridgeless, exactly at P = number of non-zero modes
    assert not np.any(c.divergent) or (ridge == 0 and np.all(c.P[c.divergent] == np.count_nonzero(lam)))
