"""Silent alignment / NTK alignment: theory against independent computations and simulation."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lmech.sim import alignment as sim
from lmech.theory import alignment as th


def _problem(P=60, D=20, spectrum=None, seed=1):
    X = sim.whitened_inputs(P, D, seed=seed, spectrum=spectrum)
    beta = np.random.default_rng(seed).standard_normal(D)
    return X, X @ (beta / np.linalg.norm(beta))


def test_whitened_inputs_exact_moments():
    X = sim.whitened_inputs(50, 8, seed=0)
    np.testing.assert_allclose(X.T @ X / 50, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-12)
    Xs = sim.whitened_inputs(50, 8, seed=0, spectrum=np.arange(1, 9.0))
    np.testing.assert_allclose(Xs.T @ Xs / 50, np.diag(np.arange(1, 9.0)), atol=1e-11)
    Xw = sim.whitened_inputs(5, 30, seed=0)
    np.testing.assert_allclose(Xw @ Xw.T / 5, np.eye(5), atol=1e-12)


@pytest.mark.parametrize("sigma", [0.3, 0.03, 0.003])
def test_closed_form_matches_flow_ode(sigma):
    """Closed-form s(t) vs direct integration of ds/dt = 2c(b-s), dc/dt = 2s(b-s)."""
    b, c0 = 1.3, sigma**2
    r = th.silent_alignment_two_layer(np.linspace(0, 8, 81), target_norm=b, sigma=sigma, dim=10)
    sol = solve_ivp(lambda t, z: [2 * z[1] * (b - z[0]), 2 * z[0] * (b - z[0])], (0, 8), [0.0, c0], t_eval=r.t,
                    rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(r.overlap, sol.y[0], atol=1e-8)
    c = sol.y[1]
    A = 2 * c / np.sqrt(4 * c * c + 9 * (c + c0) ** 2)
    np.testing.assert_allclose(r.alignment, A, atol=1e-8)
    # t_loss and t_align are the exact crossing times
    s_l = np.interp(r.t_loss, r.t, r.overlap)
    assert abs((b - s_l) ** 2 / 2 - b * b / 4) < 2e-2 * b * b
    rise = np.interp(r.t_align, r.t, r.alignment)
    assert abs(rise - (r.alignment[0] + 0.9 * (r.final_alignment - r.alignment[0]))) < 5e-3


def test_silent_alignment_time_scales():
    """t_align is sigma-independent, t_loss grows like ln(1/sigma)/b."""
    rs = [th.silent_alignment_two_layer([0.0], target_norm=1.0, sigma=s, dim=20) for s in (1e-2, 1e-3, 1e-4)]
    assert np.ptp([r.t_align for r in rs]) < 1e-3
    np.testing.assert_allclose(np.diff([r.t_loss for r in rs]), np.log(10), rtol=1e-3)


def test_gram_map_tends_to_flow_and_matches_sim():
    X, y = _problem()
    D = X.shape[1]
    # whitened, small step: the map approaches the closed-form flow (error O(lr))
    g = th.two_layer_linear_gd(X, y, sigma=0.05, lr=0.002, n_steps=3000)
    r = th.silent_alignment_two_layer(g.t, target_norm=1.0, sigma=0.05, dim=D)
    assert np.max(np.abs(g.loss - r.loss)) < 3e-3
    assert np.max(np.abs(g.alignment - r.alignment)) < 1e-3
    # the map is exact for gradient descent at large width: non-whitened data, N = 2048
    Xs, ys = _problem(spectrum=np.geomspace(1, 0.1, D))
    g = th.two_layer_linear_gd(Xs, ys, sigma=0.1, lr=0.05, n_steps=200)
    run = sim.train_deep_linear(Xs, ys, depth=2, width=2048, sigma=0.1, lr=0.05, n_steps=200, n_records=20,
                                n_seeds=2, seed=0)
    idx = np.arange(0, 201, 10)
    assert np.max(np.abs(run.loss.mean(0) - g.loss[idx])) < 0.01  # measured 3e-3
    assert np.max(np.abs(run.alignment.mean(0) - g.alignment[idx])) < 0.01  # measured 2.5e-3


def test_mode_dynamics_vs_ode():
    t = np.linspace(0, 40, 200)
    for L in (2, 3, 4):
        m = th.mode_dynamics(t, depth=L, target_strength=0.8, s0=1e-3)
        sol = solve_ivp(lambda _, s: L * s ** (2 - 2 / L) * (0.8 - s), (0, 40), [1e-3], t_eval=t, rtol=1e-11,
                        atol=1e-15)
        assert m.converged
        np.testing.assert_allclose(m.strength, sol.y[0], atol=3e-4)  # measured 8e-5 (interpolation)
    # L >= 3 escape time approaches s0^{-(1-2/L)} / (b (L-2)) as s0 -> 0
    m = th.mode_dynamics([0.0], depth=3, target_strength=1.0, s0=1e-9)
    assert abs(m.escape_time / m.escape_asymptote - 1) < 0.01


def test_toy_kernel_closed_form():
    """Isotropic K0: kappa(t) = K_inf tanh(K_inf t / P + artanh(k0 / K_inf)), A = kappa / sqrt((P-1) k0^2 + kappa^2)."""
    P, k0, gam = 12, 0.5, 0.02
    y = np.random.default_rng(0).standard_normal(P)
    y *= np.sqrt(P) / np.linalg.norm(y)
    t = np.linspace(0.5, 60, 30)
    r = th.toy_kernel_evolution(k0 * np.eye(P), y, rate=gam, t=t)
    Kinf = np.sqrt(k0**2 + gam * P * P)
    kap = Kinf * np.tanh(Kinf * t / P + np.arctanh(k0 / Kinf))
    np.testing.assert_allclose(r.alignment, kap / np.sqrt((P - 1) * k0**2 + kap**2), rtol=1e-7)
    np.testing.assert_allclose(r.loss, (Kinf**2 - kap**2) / (gam * P * P) / 2, rtol=1e-6, atol=1e-12)
    # non-isotropic start: alignment rises from 0.36 to 0.65 (measured; then drifts down by < 1e-4)
    A = th.toy_kernel_evolution(np.diag(np.linspace(0.2, 1.0, P)), y, rate=gam, t=t).alignment
    assert A[-1] - A[0] > 0.2 and np.max(A) - A[-1] < 1e-3


def test_centered_alignment_matches_the_matrix_formula():
    rng = np.random.default_rng(0)
    F = rng.standard_normal((7, 4))
    y = rng.standard_normal(7)
    H = np.eye(7) - 1.0 / 7
    Kc, yc = H @ F @ F.T @ H, H @ y
    direct = yc @ Kc @ yc / (np.linalg.norm(Kc) * (yc @ yc))
    K = F @ F.T + 3.0  # constant mode removed by centring
    assert abs(th.centered_alignment(K, y) - direct) < 1e-12
    assert abs(th.centered_alignment(np.outer(y, y), y) - 1) < 1e-12


def test_final_alignment_and_gap_formulas():
    X, y = _problem(D=20)
    run = sim.train_deep_linear(X, y, depth=3, width=256, sigma=0.1, lr=0.05, n_steps=500, n_records=1, seed=0)
    lam = 1 + 0.1**2 + 0.1**4
    assert abs(run.alignment[0, -1] / (3 / np.sqrt(9 + 19 * lam * lam)) - 1) < 0.02  # measured 0.2%
    assert abs(th.final_alignment(3, 20) - 3 / np.sqrt(28)) < 1e-15
    np.testing.assert_allclose(th.final_kernel_gap([0.1, 0.2], width=100, dim=50, n_train=10, target_norm=4.0),
                               [0.1 / 2 * np.sqrt(40 / 400), 0.2 / 2 * np.sqrt(40 / 400)])


def test_final_kernel_regression_reproduces_interpolant():
    """With an identity kernel, final_kernel_regression is the min-norm interpolant X^+ y."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 9)), rng.standard_normal(5)
    np.testing.assert_allclose(sim.final_kernel_regression(X, y, np.eye(9), np.eye(9)), np.linalg.pinv(X) @ y,
                               atol=1e-10)


def test_relu_sim_learns_and_records():
    X = sim.whitened_inputs(40, 6, seed=0)
    r = sim.train_two_layer_relu(X, X[:, :2], width=64, sigma=0.1, lr=0.5, n_steps=200, n_records=4, n_seeds=2,
                                 seed=0)
    assert r.specialization.shape == (2, 5, 2, 2) and r.loss[:, -1].max() < 0.2 * r.loss[:, 0].min()
    a = sim.train_two_layer_relu(X, X[:, :2], width=8, sigma=0.1, lr=0.1, n_steps=3, seed=5)
    b = sim.train_two_layer_relu(X, X[:, :2], width=8, sigma=0.1, lr=0.1, n_steps=3, seed=5)
    np.testing.assert_array_equal(a.loss, b.loss)


@pytest.mark.parametrize("call, match", [
    (lambda: th.silent_alignment_two_layer([0.0], target_norm=-1.0, sigma=0.1, dim=3), "target_norm"),
    (lambda: th.silent_alignment_two_layer([-1.0], target_norm=1.0, sigma=0.1, dim=3), "`t`"),
    (lambda: th.mode_dynamics([0.0], depth=1, target_strength=1.0, s0=0.1), "depth"),
    (lambda: th.mode_dynamics([0.0], depth=3, target_strength=1.0, s0=2.0), "s0"),
    (lambda: th.two_layer_linear_gd(np.ones((3, 2)), np.ones(4), sigma=0.1, lr=0.1, n_steps=3), "`y`"),
    (lambda: th.toy_kernel_evolution(np.eye(2), np.ones(3), rate=0.1, t=[1.0]), "K0"),
    (lambda: th.toy_kernel_evolution(np.eye(2), np.ones(2), rate=0.1, t=[1.0, 0.5]), "`t`"),
    (lambda: th.final_kernel_gap(0.1, width=10, dim=5, n_train=5, target_norm=1.0), "n_train"),
    (lambda: th.centered_alignment(np.eye(3), np.ones(2)), "`K`"),
    (lambda: sim.whitened_inputs(5, 8, seed=0, spectrum=np.ones(8)), "spectrum"),
    (lambda: sim.train_deep_linear(np.ones((3, 2)), np.ones(3), depth=2, width=4, sigma=0.0, lr=0.1, n_steps=2),
     "sigma"),
    (lambda: sim.train_deep_linear(np.ones((3, 2)), np.ones(3), depth=2, width=4, sigma=1e3, lr=1.0, n_steps=50),
     "lr"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
