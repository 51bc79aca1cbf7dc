"""Deep linear networks from random init: theory against independent computations and simulation."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lmech.sim.deep_linear_init import train_deep_linear
from lmech.theory import deep_linear_init as th


def _target(D, seed=0):
    b = np.random.default_rng(seed).standard_normal(D)
    return b * np.sqrt(D) / np.linalg.norm(b)


@pytest.mark.parametrize("gamma0", [0.0, 0.7, 3.0])
def test_two_layer_moments_equal_the_whitened_dmft_reduction(gamma0):
    # second-moment closure (O(D^2) map) vs the one-point deep-linear DMFT: two derivations, same GD
    D = 7
    mom = th.two_layer_population(spectrum=np.ones(D), target=_target(D), gamma0=gamma0, lr=0.1, steps=25)
    red = th.whitened_online(depth=1, gamma0=gamma0, lr=0.1, steps=25)
    np.testing.assert_allclose(mom.loss, red.loss, rtol=1e-9, atol=1e-15)


def test_whitened_two_layer_flow_matches_the_closed_ode():
    # gradient flow: df/dt = 2 sqrt(1 + gamma0^2 f^2) (1 - f), integrated independently
    g0, lr, T = 1.5, 0.002, 300
    ode = solve_ivp(lambda t, f: 2 * np.sqrt(1 + g0 ** 2 * f ** 2) * (1 - f), (0, lr * T), [0.0],
                    t_eval=lr * np.arange(0, T + 1, 100), rtol=1e-10, atol=1e-12)
    red = th.whitened_online(depth=1, gamma0=g0, lr=lr, steps=T)
    flow = th.two_layer_population(spectrum=np.ones(4), target=_target(4), gamma0=g0, lr=lr, steps=T, closure="flow")
    exact = 0.5 * (1 - ode.y[0]) ** 2
    err = [np.max(np.abs(r.loss[::100] / exact - 1)) for r in (red, flow)]
    assert max(err) < 0.02  # GD vs flow: O(lr)


def test_flow_closure_tracks_exact_gd_moments_on_anisotropic_data():
    lam, b = th.power_law_task(40, 1.2, 1.6)
    kw = dict(spectrum=lam, target=b, gamma0=4.0, lr=0.01 / lam[0], steps=200)
    mom, flow = th.two_layer_population(**kw), th.two_layer_population(closure="flow", **kw)
    assert np.max(np.abs(flow.loss / mom.loss - 1)) < 0.02  # measured 0.3 %: the O(lr) invariant drift


def test_lazy_closed_form_equals_the_zero_richness_moment_map_and_its_exponent():
    lam, b = th.power_law_task(3000, 1.5, 2.0)
    lazy = th.lazy_power_law(spectrum=lam, target=b, depth=1, lr=0.2 / lam[0], steps=3000)
    mom = th.two_layer_population(spectrum=lam[:200], target=b[:200], gamma0=0.0, lr=0.2 / lam[0], steps=50)
    ref = th.lazy_power_law(spectrum=lam[:200], target=b[:200], depth=1, lr=0.2 / lam[0], steps=50)
    np.testing.assert_allclose(mom.loss, ref.loss, rtol=1e-10)
    t = np.arange(300, 3001)
    slope = -np.polyfit(np.log(t), np.log(lazy.loss[300:]), 1)[0]
    assert lazy.extras["exponent"] == pytest.approx(2 / 3)
    assert slope == pytest.approx(2 / 3, rel=0.08)  # pre-asymptotic window: measured 0.70


def test_repeated_data_on_the_basis_points_is_exactly_the_population_reduction():
    # DMFT on D scaled basis points (population loss exactly) vs the one-point rotation reduction
    D = 3
    b = _target(D)
    rep = th.repeated_data(dim=D, n_samples=D, depth=2, gamma0=1.3, lr=0.05, steps=8, n_datasets=1,
                           samples=np.sqrt(D) * np.eye(D)[None], target=b)
    on = th.whitened_online(depth=2, gamma0=1.3, lr=0.05, steps=8)
    np.testing.assert_allclose(rep.loss, on.loss, rtol=1e-9)
    np.testing.assert_allclose(rep.train_loss, on.loss, rtol=1e-9)


def test_repeated_data_approaches_the_population_dynamics_as_samples_grow():
    on = th.whitened_online(depth=1, gamma0=1.0, lr=0.05, steps=8)
    err = [np.mean(np.abs(th.repeated_data(dim=2, n_samples=P, depth=1, gamma0=1.0, lr=0.05, steps=8, n_datasets=6,
                                           seed=1).loss / on.loss - 1)) for P in (8, 64)]
    assert err[1] < err[0] / 2  # O(sqrt(D/P)) rate fluctuations: expected factor ~2.8


def test_finite_population_gd_matches_the_autograd_simulator_and_the_wide_limit():
    kw = dict(dim=4, depth=2, gamma0=1.0, lr=0.05, steps=10)
    exact = th.finite_population_gd(width=48, n_inits=96, seed=1, **kw)
    sim = train_deep_linear(width=48, data="population", n_seeds=96, seed=2, **kw)
    se = np.sqrt(exact.stderr ** 2 + sim.stderr[0] ** 2)
    assert np.all(np.abs(exact.loss - sim.mean[0]) < 4 * se + 1e-12)
    wide = th.finite_population_gd(width=512, n_inits=64, center=True, seed=3, **kw)
    ref = th.whitened_online(depth=2, gamma0=1.0, lr=0.05, steps=10)
    assert np.all(np.abs(wide.loss - ref.loss) < 4 * wide.stderr + 0.03 * ref.loss)  # MC + O(D/N)


def test_residual_exact_dynamics_agree_with_the_simulator():
    kw = dict(dim=4, depth=3, gamma0=1.0, lr=0.03, steps=8, residual=True)
    exact = th.finite_population_gd(width=32, n_inits=128, seed=4, **kw)
    sim = train_deep_linear(width=32, data="population", n_seeds=128, seed=5, **kw)
    se = np.sqrt(exact.stderr ** 2 + sim.stderr[0] ** 2)
    assert np.all(np.abs(exact.loss - sim.mean[0]) < 4 * se + 1e-12)


def test_simulator_modes_seeds_and_centering():
    kw = dict(dim=5, width=16, depth=2, lr=[0.05, 0.1], steps=6, n_seeds=3)
    a = train_deep_linear(data="online", batch_size=8, seed=7, **kw)
    b = train_deep_linear(data="online", batch_size=8, seed=7, **kw)
    np.testing.assert_array_equal(a.test_loss, b.test_loss)
    assert a.test_loss.shape == (2, 3, 7) and not a.diverged.any()
    c = train_deep_linear(data="population", center=True, seed=7, **kw)
    np.testing.assert_allclose(c.test_loss[..., 0], 0.5)  # |beta*|^2 / 2D with the initial function removed
    r = train_deep_linear(data="repeated", n_samples=4, seed=7, **kw)
    assert r.train_loss.shape == (2, 3, 7) and r.train_loss[..., -1].mean() < r.train_loss[..., 0].mean()
    ntp = train_deep_linear(data="population", param="ntp", seed=7, **{**kw, "width": 5})
    muP = train_deep_linear(data="population", param="mup", seed=7, **{**kw, "width": 5})
    np.testing.assert_allclose(ntp.test_loss, muP.test_loss, rtol=1e-12)  # identical at N = D


def test_validation_names_the_argument():
    with pytest.raises(ValueError, match="`depth`"):
        th.whitened_online(depth=0, gamma0=1.0, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="`gamma0`"):
        th.finite_population_gd(dim=2, width=4, depth=1, gamma0=0.0, lr=0.1, steps=2)
    with pytest.raises(ValueError, match="`target`"):
        th.two_layer_population(spectrum=np.ones(3), target=np.ones(2), gamma0=1.0, lr=0.1, steps=2)
    with pytest.raises(ValueError, match="`closure`"):
        th.two_layer_population(spectrum=np.ones(3), target=np.ones(3), gamma0=1.0, lr=0.1, steps=2, closure="x")
    with pytest.raises(ValueError, match="`samples`"):
        th.repeated_data(dim=2, n_samples=3, depth=1, gamma0=1.0, lr=0.1, steps=2, n_datasets=1, samples=np.ones(3))
    with pytest.raises(ValueError, match="`param`"):
        train_deep_linear(dim=2, width=4, depth=1, lr=0.1, steps=2, param="sp")
    with pytest.raises(ValueError, match="`steps`"):
        train_deep_linear(dim=2, width=4, depth=1, lr=0.1, steps=5, every=2)
    with pytest.raises(ValueError, match="`branch`"):
        train_deep_linear(dim=2, width=4, depth=1, lr=0.1, steps=2, branch=0.5)
