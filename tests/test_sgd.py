import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.results import ConvergenceWarning
from lmech.sim.linear_sgd import sgd_gaussian, sgd_pool
from lmech.spectra import power_law
from lmech.theory.sgd import critical_lr, gaussian_equivalent, learning_curve, learning_curve_features, optimal_batch


def _problem(n=40, b=1.3, a=1.6):
    lam = power_law(n, b, normalize=True)
    v2 = power_law(n, a, normalize=True)
    return lam, v2


def _dense_second_moment(lam, v2, lr, B, T, noise, seed=0):
    """Independent reference: full-matrix error covariance in a random basis.

    M = E[(w - w*)(w - w*)^T] with Sigma = Q diag(lam) Q^T; one SGD step with B fresh Gaussian
    samples maps M to M - eta (Sigma M + M Sigma) + eta^2 [(1 + 1/B) Sigma M Sigma
    + Sigma tr(Sigma M) / B] + eta^2 noise Sigma / B (Isserlis' theorem).
    """
    rng = np.random.default_rng(seed)
    n = lam.size
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    S = Q @ np.diag(lam) @ Q.T
    w_star = Q @ (np.sqrt(v2 / lam) * rng.choice([-1.0, 1.0], n))
    M = np.outer(w_star, w_star)
    out = [np.trace(S @ M)]
    for _ in range(T):
        SM = S @ M
        M = (M - lr * (SM + SM.T) + lr**2 * ((1 + 1 / B) * SM @ S + S * np.trace(SM) / B)
             + lr**2 * noise * S / B)
        out.append(np.trace(S @ M))
    return np.array(out)


@pytest.mark.parametrize("lr, B, noise", [(0.5, 1, 0.0), (1.3, 3, 0.0), (0.8, 2, 0.2)])
def test_recursion_matches_dense_matrix_recursion(lr, B, noise):
    lam, v2 = _problem()
    res = learning_curve(lam, v2, lr, B, 60, noise)
    ref = _dense_second_moment(lam, v2, lr, B, 60, noise)
    np.testing.assert_allclose(res.loss, ref, rtol=1e-9)


def test_theory_matches_simulation_within_monte_carlo_error():
    lam, v2 = _problem(30)
    T, times = 150, [1, 5, 20, 60, 150]
    th = learning_curve(lam, v2, 1.0, 4, T, 0.05, times=times)
    sim = sgd_gaussian(lam, v2, 1.0, 4, T, 0.05, n_seeds=600, seed=3, times=times)
    # the recursion is exact: the only error is Monte-Carlo
    assert np.all(np.abs(sim.loss - th.loss) < 4 * sim.loss_sem)


def test_critical_lr_is_where_the_spectral_radius_crosses_one():
    lam, _ = _problem(25)
    for B in (1, 2, 7, 64):
        ec = critical_lr(lam, B)

        def rho(e):
            A = np.diag(1 - 2 * e * lam + e**2 * (1 + 1 / B) * lam**2) + (e**2 / B) * np.outer(lam, lam)
            return np.max(np.abs(np.linalg.eigvals(A)))

        assert rho(ec * (1 - 1e-6)) < 1 < rho(ec * (1 + 1e-6))


def test_critical_lr_closed_forms():
    n, lam0 = 50, 0.02
    lam = np.full(n, lam0)
    # flat spectrum, B = 1: eta_c = 2 / (tr Sigma + 2 lam) exactly
    assert critical_lr(lam, 1) == pytest.approx(2 / (n * lam0 + 2 * lam0), rel=1e-12)
    # B -> infinity: gradient descent's 2 / lam_max
    lam2, _ = _problem()
    assert critical_lr(lam2, 10**9) == pytest.approx(2 / lam2.max(), rel=1e-6)
    # vectorised over batch sizes and increasing in B
    ecs = critical_lr(lam2, [1, 2, 4, 8])
    assert ecs.shape == (4,) and np.all(np.diff(ecs) > 0)


def test_asymptotic_loss_is_the_fixed_point():
    lam, v2 = _problem(20)
    res = learning_curve(lam, v2, 0.9, 2, 20000, 0.3, times=[20000])
    assert res.stable and np.isfinite(res.asymptotic_loss)
    assert res.loss[-1] == pytest.approx(res.asymptotic_loss, rel=1e-8)


def test_divergent_setting_is_flagged_never_nan():
    lam, v2 = _problem(20)
    ec = critical_lr(lam, 1)
    with pytest.warns(ConvergenceWarning, match="diverged numerically"):
        res = learning_curve(lam, v2, [0.5 * ec, 1.1 * ec, 3.0 * ec], 1, 4000, 0.1)
    assert list(res.stable) == [True, False, False]
    assert not np.any(np.isnan(res.loss))
    assert res.asymptotic_loss[1] == np.inf and np.isfinite(res.asymptotic_loss[0])
    assert res.diverged[2] and res.loss[2, -1] == np.inf
    assert res.loss[1, -1] > 10 * res.loss[1, 0]  # grows geometrically
    assert "critical" in res.message and not res.converged and res.status == "diverged"
    # unstable but not yet overflowed: the exact recursion is a closed form, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = learning_curve(lam, v2, [0.5 * ec, 1.1 * ec], 1, 50, 0.1)
    assert ok.converged and ok.status == "closed_form" and not ok.stable[1] and "critical" in ok.message


def test_growth_factor_is_the_spectral_radius_and_the_late_time_rate():
    lam, v2 = _problem(25)
    B = 2
    ec = critical_lr(lam, B)
    fracs = np.array([0.3, 0.9, 1.02, 1.5])
    res = learning_curve(lam, v2, fracs * ec, B, 10, 0.05)
    for e, rho in zip(fracs * ec, res.growth_factor):
        A = np.diag(1 - 2 * e * lam + e**2 * (1 + 1 / B) * lam**2) + (e**2 / B) * np.outer(lam, lam)
        assert rho == pytest.approx(np.max(np.linalg.eigvalsh(A)), rel=1e-10)
    np.testing.assert_array_equal(res.stable, res.growth_factor < 1)
    # divergent: L_{t+1}/L_t -> rho (finite, not NaN, before the overflow)
    for f, T in ((1.02, 3000), (1.5, 300)):
        r = learning_curve(lam, v2, f * ec, B, T, 0.05, times=[T - 1, T])
        assert not r.stable[()] and np.all(np.isfinite(r.loss))
        assert r.loss[1] / r.loss[0] == pytest.approx(r.growth_factor, rel=1e-9)
    # convergent: (L_{t+1} - L_inf)/(L_t - L_inf) -> rho (slowly: the next eigenvalues are close)
    r = learning_curve(lam, v2, 0.3 * ec, B, 1000, 0.05, times=[999, 1000])
    d = r.loss - r.asymptotic_loss
    assert d[1] / d[0] == pytest.approx(r.growth_factor, rel=2e-3)
    # single mode: A is the scalar 1 - 2 eta lam + eta^2 lam^2 (1 + 1/B) + eta^2 lam^2 / B
    assert learning_curve([2.0], [1.0], 0.3, 3, 2).growth_factor == pytest.approx(1 - 1.2 + 0.36 * (1 + 2 / 3))


def test_divergent_simulations_read_inf_never_nan():
    lam, v2 = _problem(10)
    sim = sgd_gaussian(lam, v2, 50 * critical_lr(lam, 1), 1, 400, 0.1, n_seeds=4, seed=0, times=[0, 400])
    assert not np.any(np.isnan(sim.losses)) and np.all(sim.losses[:, -1] == np.inf) and sim.loss[-1] == np.inf


def test_lr_by_batch_size_outer_grid():
    lam, v2 = _problem(20)
    lrs, bs = np.array([0.2, 0.5, 0.9]), np.array([1, 4])
    grid = learning_curve(lam, v2, lrs[:, None], bs[None, :], 30)
    assert grid.loss.shape == (3, 2, 31) and grid.batch_size.shape == (3, 2)
    for i, j in np.ndindex(3, 2):
        np.testing.assert_allclose(grid.loss[i, j], learning_curve(lam, v2, lrs[i], int(bs[j]), 30).loss, rtol=1e-13)


def test_zero_eigenvalue_power_acts_as_label_noise():
    lam, v2 = _problem(20)
    floor = 0.07
    a = learning_curve(np.append(lam, 0.0), np.append(v2, floor), 0.7, 2, 100, 0.1)
    b = learning_curve(lam, v2, 0.7, 2, 100, 0.1 + floor)
    np.testing.assert_allclose(a.loss, b.loss + floor, rtol=1e-12)
    assert a.noise_floor == pytest.approx(floor)


def test_grid_times_and_schedule_conventions():
    lam, v2 = _problem(20)
    grid = learning_curve(lam, v2, [0.3, 0.6], [1, 4], 50)
    assert grid.loss.shape == (2, 51) and grid.critical_lr.shape == (2,)
    single = learning_curve(lam, v2, 0.6, 4, 50)
    np.testing.assert_allclose(grid.loss[1], single.loss, rtol=1e-14)
    sub = learning_curve(lam, v2, 0.6, 4, 50, times=[50, 0, 10])
    np.testing.assert_allclose(sub.loss, single.loss[[0, 10, 50]], rtol=1e-14)
    assert list(sub.steps) == [0, 10, 50]
    sched = learning_curve(lam, v2, 1.2, 4, 50, schedule=np.full(50, 0.5))
    np.testing.assert_allclose(sched.loss, single.loss, rtol=1e-12)
    assert single.loss[0] == pytest.approx(v2.sum())


def test_optimal_batch_is_consistent():
    lam, v2 = _problem(30)
    res = optimal_batch(lam, v2, 256, batch_sizes=[1, 4, 16, 64])
    assert res.best_loss == pytest.approx(res.loss.min())
    assert np.all(res.lr < res.critical_lr)
    for B, lr, T, L in zip(res.batch_sizes, res.lr, res.steps, res.loss):
        assert T == 256 // B
        assert learning_curve(lam, v2, lr, int(B), int(T)).loss[-1] == pytest.approx(L, rel=1e-10)
        # tuned: 3% away in either direction is not better
        for f in (0.97, 1.03):
            if f * lr < res.critical_lr[list(res.batch_sizes).index(B)]:
                assert learning_curve(lam, v2, f * lr, int(B), int(T)).loss[-1] >= L * (1 - 1e-9)


def test_simulator_is_reproducible():
    lam, v2 = _problem(10)
    a = sgd_gaussian(lam, v2, 0.5, 2, 20, n_seeds=5, seed=7)
    b = sgd_gaussian(lam, v2, 0.5, 2, 20, n_seeds=5, seed=7)
    c = sgd_gaussian(lam, v2, 0.5, 2, 20, n_seeds=5, seed=8)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.allclose(a.losses, c.losses)
    assert a.losses.shape == (5, 21) and np.allclose(a.losses[:, 0], v2.sum())


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(eigenvalues=[1.0, -0.1]), ValueError, "eigenvalues"),
        (dict(eigenvalues=[[1.0, 0.5]]), ValueError, "eigenvalues"),
        (dict(eigenvalues=[0.0, 0.0]), ValueError, "eigenvalues"),
        (dict(target_power=[1.0]), ValueError, "target_power"),
        (dict(target_power=[1.0, -1.0]), ValueError, "target_power"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(lr=np.nan), ValueError, "lr"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=1.5), TypeError, "batch_size"),
        (dict(batch_size="4"), TypeError, "batch_size"),
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(noise=-0.1), ValueError, "noise"),
        (dict(lr=[0.1, 0.2, 0.3], batch_size=[1, 2]), ValueError, "broadcast"),
        (dict(schedule=[1.0]), ValueError, "schedule"),
        (dict(times=[11]), ValueError, "times"),
    ],
)
def test_learning_curve_rejects_bad_input(kwargs, exc, match):
    args = dict(eigenvalues=[1.0, 0.5], target_power=[0.5, 0.5], lr=0.1, batch_size=1, steps=10)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        learning_curve(**args)


def test_other_functions_reject_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        critical_lr([1.0, 0.5], 0)
    with pytest.raises(ValueError, match="budget"):
        optimal_batch([1.0], [1.0], 0)
    with pytest.raises(ValueError, match="batch_sizes"):
        optimal_batch([1.0], [1.0], 8, batch_sizes=[16])
    with pytest.raises(ValueError, match="n_seeds"):
        sgd_gaussian([1.0], [1.0], 0.1, 1, 5, n_seeds=0)
    with pytest.raises(ValueError, match="lr"):
        sgd_gaussian([1.0], [1.0], 0.0, 1, 5)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 30),
    b=st.floats(0.0, 2.5),
    frac=st.floats(0.05, 0.95),
    B=st.integers(1, 64),
    noise=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_fuzz_stable_settings_give_finite_nonnegative_curves(n, b, frac, B, noise, seed):
    rng = np.random.default_rng(seed)
    lam = np.arange(1, n + 1, dtype=float) ** -b * rng.uniform(0.5, 2.0)
    v2 = rng.uniform(0, 1, n)
    ec = critical_lr(lam, B)
    res = learning_curve(lam, v2, frac * ec, B, 200, noise)
    assert res.stable and not res.diverged
    assert np.all(np.isfinite(res.loss)) and np.all(res.loss >= 0)
    # permuting the modes changes nothing
    p = rng.permutation(n)
    np.testing.assert_allclose(learning_curve(lam[p], v2[p], frac * ec, B, 200, noise).loss, res.loss, rtol=1e-10)
    # larger batches tolerate larger rates
    assert critical_lr(lam, B + 1) > ec


def _pool(n=3000, N=12, seed=0, gaussian=True):
    rng = np.random.default_rng(seed)
    lam = power_law(N, 1.2, normalize=True)
    Z = rng.standard_normal((n, N)) if gaussian else rng.uniform(-1.0, 2.0, (n, N)) ** 2 - 1.0
    Psi = Z * np.sqrt(lam)
    y = Z @ (np.arange(N, 0, -1) / N) + 0.3 * rng.standard_normal(n)
    return Psi, y


def test_arbitrary_feature_theory_reduces_to_dense_gaussian_recursion_on_gaussian_moments():
    """With (near-)Gaussian pool moments the exact pool theory approaches the Gaussian theory."""
    Psi, y = _pool(n=200_000, N=8)
    lam, power, resid = gaussian_equivalent(Psi, y)
    ex = learning_curve_features(Psi, y, 1.0, 2, 60)
    g = learning_curve(lam, power, 1.0, 2, 60, resid)
    np.testing.assert_allclose(ex.loss, g.loss, rtol=0.02)
    assert ex.noise_floor == pytest.approx(resid, rel=1e-9)
    assert power.sum() + resid == pytest.approx(np.mean(y**2), rel=1e-9)


def test_arbitrary_feature_theory_is_the_exact_expectation():
    """Brute force: average over every possible sequence of batches drawn from a tiny pool."""
    import itertools

    rng = np.random.default_rng(0)
    n, N = 5, 3
    Psi = rng.exponential(1.0, (n, N)) - 0.5
    y = rng.standard_normal(n)
    S = Psi.T @ Psi / n
    w_star = np.linalg.solve(S, Psi.T @ y / n)
    for B, T, lr in [(1, 3, 0.7), (2, 2, 0.9)]:
        total = np.zeros(T + 1)
        for path in itertools.product(range(n), repeat=B * T):
            w = np.zeros(N)
            losses = [(w - w_star) @ S @ (w - w_star)]
            for t in range(T):
                idx = list(path[t * B:(t + 1) * B])
                w = w - lr * Psi[idx].T @ (Psi[idx] @ w - y[idx]) / B
                losses.append((w - w_star) @ S @ (w - w_star))
            total += losses
        total /= n ** (B * T)
        np.testing.assert_allclose(learning_curve_features(Psi, y, lr, B, T).loss, total, rtol=1e-10)


def test_arbitrary_feature_theory_matches_pool_sgd():
    Psi, y = _pool(n=400, N=10, gaussian=False)  # skewed, bounded non-Gaussian features
    times = [1, 5, 20, 80]
    lr = 0.4 * critical_lr(gaussian_equivalent(Psi, y).eigenvalues, 1)
    ex = learning_curve_features(Psi, y, lr, 1, 80, times=times)
    sim = sgd_pool(Psi, y, lr, 1, 80, n_seeds=1500, seed=4, times=times)
    assert np.all(np.abs(sim.loss - ex.loss) < 4 * sim.loss_sem)
    # batch-size limit: a huge batch is gradient descent on the pool, (I - eta Sigma)^t w*
    S = Psi.T @ Psi / 400
    w = np.linalg.solve(S, Psi.T @ y / 400)
    gd = learning_curve_features(Psi, y, 1.5, 10**9, 10, times=[10])
    d = np.linalg.matrix_power(np.eye(10) - 1.5 * S, 10) @ w
    assert gd.loss[0] == pytest.approx(d @ S @ d, rel=1e-6)


def test_real_feature_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="features"):
        gaussian_equivalent(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="targets"):
        gaussian_equivalent(np.ones((5, 2)), np.ones(4))
    with pytest.raises(ValueError, match="lr"):
        learning_curve_features(np.ones((5, 2)), np.ones(5), 0.0, 1, 3)
    with pytest.raises(ValueError, match="batch_size"):
        learning_curve_features(np.ones((5, 2)), np.ones(5), 0.1, 0, 3)
    with pytest.raises(ValueError, match="targets"):
        sgd_pool(np.ones((5, 2)), np.ones(3), 0.1, 1, 3)


def test_relu_random_features():
    """psi = relu(x W / sqrt(d)) / sqrt(N): |psi|^2 -> |x|^2 / (2 d) as N grows (E relu(z)^2 = var / 2)."""
    from lmech.sim.linear_sgd import relu_random_features

    X = np.random.default_rng(0).standard_normal((3, 8))
    psi = relu_random_features(X, 20000, seed=1)
    assert psi.shape == (3, 20000) and np.all(psi >= 0)
    # relative s.d. of the estimate is sqrt(5/4) / sqrt(N / 2) ~ 1.1 %; measured within 2 %
    np.testing.assert_allclose((psi**2).sum(1), (X**2).sum(1) / 16, rtol=0.05)
    np.testing.assert_array_equal(relu_random_features(X, 5, seed=2), relu_random_features(X, 5, seed=2))
    np.testing.assert_allclose(relu_random_features(2 * X, 5, seed=2), 2 * relu_random_features(X, 5, seed=2))
    with pytest.raises(ValueError, match="n_features"):
        relu_random_features(X, 0)
    with pytest.raises(ValueError, match="inputs"):
        relu_random_features(np.ones(3), 4)


def test_gaussian_equivalent_record_feeds_learning_curve_with_its_residual():
    Psi, y = _pool(n=300, N=6, gaussian=False)
    ge = gaussian_equivalent(Psi, y)
    lam, power, resid = ge  # backward-compatible unpacking
    assert lam is ge.eigenvalues and power is ge.target_power and resid == ge.noise and ge[2] == resid
    assert resid > 0.01 * power.sum()  # a non-trivial residual, so the check below can fail
    with pytest.raises(dataclasses.FrozenInstanceError):
        ge.noise = 0.0
    direct = learning_curve(ge, lr=0.3, batch_size=2, steps=40)
    manual = learning_curve(lam, power, 0.3, 2, 40, noise=resid)
    np.testing.assert_array_equal(direct.loss, manual.loss)
    assert not np.allclose(learning_curve(lam, power, 0.3, 2, 40).loss, direct.loss, rtol=1e-3)
    with pytest.raises(TypeError, match="noise"):
        learning_curve(ge, lr=0.3, batch_size=2, steps=40, noise=0.1)
    with pytest.raises(TypeError, match="target_power"):
        learning_curve(ge, power, lr=0.3, batch_size=2, steps=40)
    with pytest.raises(TypeError, match="steps"):
        learning_curve(ge, lr=0.3, batch_size=2)
