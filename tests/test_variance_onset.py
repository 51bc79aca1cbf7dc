import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.kernels import ntk_mlp
from lmech.sim.variance_onset import (
    _entk,
    _ntk_inf,
    ntk_learning_curves,
    simulate_noisy_features,
    sphere_task,
    train_relu_network,
)
from lmech.theory.scaling import data_bottleneck
from lmech.theory.kernel_curves import learning_curve
from lmech.theory.variance_onset import (
    fit_onset_exponent,
    gram_learning_curve,
    half_variance_sample_size,
    noisy_feature_curve,
    onset_sample_size,
    relu_ntk_sphere_spectrum,
    toy_onset,
)

K = np.arange(1, 151, dtype=float)
LAM = K**-1.5
P_POW = LAM * K**-0.5


def test_noise_free_curve_is_the_kernel_learning_curve():
    for P in (10.0, 60.0, 200.0):
        c = noisy_feature_curve(LAM, P_POW, P)
        np.testing.assert_allclose(c.error[0], data_bottleneck(LAM, P_POW, P), rtol=1e-10)
        assert c.plateau == 0.0


def test_noisy_curve_matches_simulation_and_plateaus():
    eta = 0.2 * LAM
    Ps = np.array([10, 40, 100])
    th = noisy_feature_curve(LAM, P_POW, Ps, noise_eigenvalues=eta)
    sim = simulate_noisy_features(LAM, P_POW, Ps, noise_eigenvalues=eta, draws=80, seed=1)
    assert np.all(np.abs(th.error - sim.error) <= 3 * sim.error_se + 0.03 * sim.error)
    far = noisy_feature_curve(LAM, P_POW, [1e7], noise_eigenvalues=eta)
    np.testing.assert_allclose(far.error[0], far.plateau, rtol=1e-4)
    np.testing.assert_allclose(far.plateau, np.sum(P_POW * 0.2 / 1.2), rtol=1e-12)


def test_multiplicities_equal_repeated_modes():
    a = noisy_feature_curve([0.2, 0.01], [1.0, 0.5], [5.0, 30.0], noise_eigenvalues=[0.02, 0.001],
                            multiplicities=[3, 20])
    b = noisy_feature_curve(np.r_[np.full(3, 0.2), np.full(20, 0.01)], np.r_[np.full(3, 1 / 3), np.full(20, 0.025)],
                            [5.0, 30.0], noise_eigenvalues=np.r_[np.full(3, 0.02), np.full(20, 0.001)])
    np.testing.assert_allclose(a.error, b.error, rtol=1e-10)


def test_onset_detection_on_synthetic_curves():
    P = np.geomspace(10, 1000, 30)
    e_inf = P**-2.0
    rng = np.random.default_rng(0)
    for N in (4000.0, 1e5):
        e_N = e_inf + 1.0 / N * (1 + 0.02 * rng.standard_normal(P.size))
        res = onset_sample_size(P, e_N, e_inf, tol=0.1)
        # E_N/E_inf - 1 = P^2/N crosses 0.1 at P = sqrt(0.1 N)
        assert res.found and res.P_star == pytest.approx(np.sqrt(0.1 * N), rel=0.08)
        assert np.all(np.diff(res.smoothed) >= 0)
    never = onset_sample_size(P, e_inf * 1.01, e_inf, tol=0.1)
    assert not never.found and np.isnan(never.P_star)
    half = half_variance_sample_size(P, e_inf, e_inf + 1e-4)
    assert half.P_star == pytest.approx(100.0, rel=0.05)
    fit = fit_onset_exponent([10, 100, 1000], [3.0, 9.5, 30.0])
    assert fit.exponent == pytest.approx(0.5, abs=0.01)


def test_toy_onset_exponent_for_pure_power_law_curve():
    # one target mode with a large flat complement acting as ridge: E_inf ~ P^-2 asymptotically
    lam = np.array([1e-2])
    res = toy_onset(lam, [1.0], [1e3, 1e4, 1e5], np.geomspace(10, 1e6, 200), ridge=1.0, tol=0.1)
    assert res.fit.exponent == pytest.approx(0.5, abs=0.02)


def _arc_cosine_ntk(X1, X2):
    """Theta(u) = [k1(u) + u k0(u)] / 2 written out (unit-norm inputs)."""
    u = np.clip(X1 @ X2.T, -1.0, 1.0)
    k0 = (np.pi - np.arccos(u)) / np.pi
    k1 = (u * (np.pi - np.arccos(u)) + np.sqrt(1 - u * u)) / np.pi
    return 0.5 * (k1 + u * k0)


def test_ntk_inf_is_ntk_mlp_in_the_networks_scaling():
    gen = torch.Generator().manual_seed(3)
    task = sphere_task(7, 2, seed=3)
    X, _ = task.sample(25, gen)
    Y, _ = task.sample(9, gen)
    np.testing.assert_allclose(_ntk_inf(X, Y).numpy(), _arc_cosine_ntk(X.numpy(), Y.numpy()), rtol=1e-12, atol=1e-13)
    K = _ntk_inf(X).numpy()
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(K, _arc_cosine_ntk(X.numpy(), X.numpy()), rtol=1e-7, atol=1e-7)  # arccos near u = 1
    np.testing.assert_allclose(np.diag(K), 1.0, rtol=1e-14)  # Theta(1) = 1


def test_ntk_inf_is_the_wide_limit_of_the_empirical_ntk():
    gen = torch.Generator().manual_seed(0)
    task = sphere_task(6, 2, seed=0)
    X, _ = task.sample(20, gen)
    W = torch.randn(200_000, 6, generator=gen, dtype=torch.float64)
    a = torch.randn(200_000, generator=gen, dtype=torch.float64)
    np.testing.assert_allclose(_entk(W, a, X, X).numpy(), _ntk_inf(X).numpy(), atol=1.5e-2)


def test_gram_learning_curve_of_a_known_spectrum():
    # a rank-r linear kernel whose features are exactly orthogonal on the M sample points: the
    # spectrum of gram / M is lam and the target's power on mode k is lam_k v_k^2, with no tail
    M, r = 64, 16
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((M, r)))
    lam = 1.0 / np.arange(1, r + 1) ** 1.5
    v = rng.standard_normal(r)
    X = np.sqrt(M) * Q * np.sqrt(lam)          # X^T X / M = diag(lam)
    P = np.array([2.0, 5.0, 12.0])  # below the rank r (the error is 0 from P = r on)
    expect = learning_curve(lam, lam * v**2, P).generalization_error
    np.testing.assert_allclose(gram_learning_curve(X @ X.T, X @ v, P), expect, rtol=1e-8)
    np.testing.assert_allclose(gram_learning_curve(X @ X.T, X @ v, P, keep_fraction=1.0), expect, rtol=1e-8)
    # scale free at ridge 0
    np.testing.assert_allclose(gram_learning_curve(7.0 * X @ X.T, X @ v, P), expect, rtol=1e-8)


def test_ntk_sphere_spectrum_against_mercer_trace_and_kernel():
    lam, mult, tail = relu_ntk_sphere_spectrum(6, 40)
    assert tail < 0.02 and np.all(lam >= 0)
    # odd levels >= 3 vanish for the bias-free two-layer ReLU NTK
    assert np.all(lam[3::2] < 1e-12)
    # Mercer: Theta(x.y) = sum_l N(d,l) lam_l P_l(x.y) at a few inner products
    from scipy.special import eval_gegenbauer

    u = np.array([-0.5, 0.0, 0.3, 0.9])
    P = np.array([eval_gegenbauer(l, 2.0, u) / eval_gegenbauer(l, 2.0, 1.0) for l in range(40)])
    series = (mult * lam) @ P
    # the kernel of lmech.kernels with unit weight variance, times d = 6 (w . x of unit variance)
    direct = 6 * ntk_mlp(np.array([[1.0, 0, 0, 0, 0, 0]]), np.array([[x, np.sqrt(1 - x * x), 0, 0, 0, 0] for x in u]),
                         depth=1, weight_var=1.0)[0]
    np.testing.assert_allclose(series, direct, atol=0.02)


def test_target_has_unit_variance_and_ntk_curves_run():
    task = sphere_task(10, 2, seed=1)
    gen = torch.Generator().manual_seed(1)
    _, y = task.sample(20000, gen)
    assert float(y.var()) == pytest.approx(1.0, rel=0.05)
    c = ntk_learning_curves(task, [32, 512], [20, 80], datasets=1, ensemble=2, n_test=300, seed=0)
    assert c.error_single.shape == (2, 2) and np.all(c.error_ensemble <= c.error_single * 1.05)
    # wider networks are closer to NTK_inf
    assert c.error_single[1, 1] < c.error_single[0, 1]


def test_lazy_gradient_descent_equals_initial_ntk_regression():
    # the relu onset claim models lazy networks by empirical-NTK regression: check it on real training
    task = sphere_task(10, 2, seed=0)
    gen = torch.Generator().manual_seed(0)
    Xt, yt = task.sample(500, gen)
    X, y = task.sample(40, gen)
    lazy = train_relu_network(task, X, y, Xt, yt, width=256, alpha=30.0, seed=1)
    assert lazy.train_loss < 1e-6
    assert lazy.test_error == pytest.approx(lazy.initial_ntk_error, rel=0.01)
    rich = train_relu_network(task, X, y, Xt, yt, width=256, alpha=0.3, seed=1)
    # with feature learning (smaller alpha) the network leaves its initial kernel
    assert rich.train_loss < 1e-6
    assert abs(rich.test_error - rich.initial_ntk_error) > 3 * abs(lazy.test_error - lazy.initial_ntk_error)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 2.0), st.floats(1.0, 500.0))
def test_fuzz_noisy_curve_bounds(s2, P):
    c = noisy_feature_curve(LAM, P_POW, P, noise_eigenvalues=s2 * LAM)
    assert c.converged
    assert c.error[0] >= c.plateau - 1e-12
    assert np.isfinite(c.error[0]) or c.extras["interpolation_peak"][0]


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: noisy_feature_curve([-1.0], [1.0], 10), "eigenvalues"),
        (lambda: noisy_feature_curve([1.0], [1.0, 2.0], 10), "target_power"),
        (lambda: noisy_feature_curve([1.0], [1.0], 0), "P"),
        (lambda: noisy_feature_curve([1.0], [1.0], 10, noise_eigenvalues=[-1.0]), "noise_eigenvalues"),
        (lambda: noisy_feature_curve([1.0], [1.0], 10, ridge=-1.0), "ridge"),
        (lambda: onset_sample_size([1.0, 2.0], [1.0, 1.0], [1.0, 1.0], tol=0.0), "tol"),
        (lambda: half_variance_sample_size([1.0, 2.0], [1.0, 1.0], [1.0, 1.0], fraction=1.0), "fraction"),
        (lambda: fit_onset_exponent([10.0, 100.0], [np.nan, 3.0]), "P_star"),
        (lambda: sphere_task(2, 1), "d"),
        (lambda: half_variance_sample_size([1.0, 2.0], [1.0, 1.0], [2.0, 2.0], ensemble_size=1), "ensemble_size"),
        (lambda: simulate_noisy_features([1.0], [1.0], [5], noise_eigenvalues=[1.0], draws=0), "draws"),
        (lambda: gram_learning_curve(np.eye(3)[:2], np.ones(2), 5), "gram"),
        (lambda: gram_learning_curve(np.eye(3), np.ones(2), 5), "y"),
        (lambda: gram_learning_curve(np.eye(3), np.ones(3), 5, keep_fraction=0.0), "keep_fraction"),
    ],
)
def test_bad_inputs(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
