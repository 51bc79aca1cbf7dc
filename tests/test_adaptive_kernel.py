"""Adaptive kernel predictors and transfer learning: theory against independent computations."""
import warnings

import numpy as np
import pytest

from lmech.sim import adaptive_kernel as sim
from lmech.theory import adaptive_kernel as ak


def _task(P=10, P_test=12, D=6, seed=0):
    rng = np.random.default_rng(seed)
    Xa = rng.standard_normal((P + P_test, D))
    Xa *= np.sqrt(D) / np.linalg.norm(Xa, axis=1, keepdims=True)
    y = Xa @ rng.standard_normal(D) / np.sqrt(D) + 0.3 * rng.standard_normal(P + P_test)
    return Xa[:P], y[:P], Xa[P:], y[P:]


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(a)


@pytest.mark.parametrize("depth", [1, 2])
def test_deep_linear_weight_decay_closed_form_equals_trained_network(depth):
    # gradient descent with decay reaches the rank-one balanced fixed point at any width
    X, y, Xt, yt = _task()
    th = ak.weight_decay_deep_linear(X, y, Xt, yt, gamma0=1.0, weight_decay=0.5, depth=depth)
    run = sim.train_weight_decay(X, y, Xt, yt, width=48, gamma0=1.0, weight_decay=0.5, lr=0.02, steps=3000,
                                 activation="linear", depth=depth, seed=1)
    assert th.status == "closed_form" and run.rel_grad < 1e-8
    assert _rel(th.f_test, run.f_test) < 1e-8
    assert _rel(th.kernels[-1], run.kernel) < 1e-8
    # with depth 1 the regulariser is a norm: the ridge grows with the weight decay; a huge decay kills f
    dead = ak.weight_decay_deep_linear(X, y, Xt, yt, gamma0=1.0, weight_decay=1e3, depth=depth)
    assert np.all(dead.f_test == 0)


def test_network_fixed_point_is_kernel_ridge_regression_on_its_final_kernel():
    X, y, Xt, yt = _task()
    run = sim.train_weight_decay(X, y, Xt, yt, width=64, gamma0=1.0, weight_decay=0.5, lr=0.05, steps=4000,
                                 activation="tanh", seed=2)
    assert run.rel_grad < 1e-10  # measured 3e-15
    assert run.krr_error < 1e-10


def test_two_layer_theory_matches_wide_network_and_is_reproducible():
    X, y, Xt, yt = _task()
    kw = dict(gamma0=1.0, weight_decay=0.3, lr=0.05)
    th = ak.weight_decay_two_layer(X, y, Xt, yt, max_steps=1500, samples=8192, tol=1e-3, seed=3, **kw)
    assert th.converged and th.identity_error < 1e-3
    again = ak.weight_decay_two_layer(X, y, Xt, yt, max_steps=1500, samples=8192, tol=1e-3, seed=3, **kw)
    assert np.array_equal(th.f_test, again.f_test)
    run = sim.train_weight_decay(X, y, Xt, yt, width=2048, steps=1500, activation="tanh", seed=4, **kw)
    # this small problem has a condensed fixed point (every neuron reaches the same solution up to
    # sign), so theory and network agree to solver precision (measured 3e-8 and 7e-8); the
    # initial (lazy) kernel is 126 % away. Width-dependent fixed points are checked by the claims.
    assert _rel(th.f_test, run.f_test) < 1e-5
    assert _rel(th.kernel, run.kernel[:10, :10]) < 1e-5
    assert _rel(th.kernel, th.kernel_init) > 0.5
    assert th.test_loss_se > 0


def test_bayesian_closed_form_reproduces_whitened_scalar_theory():
    D, g, beta, L = 8, 4.0, 10.0, 3
    X = np.eye(D) * np.sqrt(D)
    y = np.r_[np.ones(D // 2), -np.ones(D // 2)] / np.sqrt(D)
    th = ak.bayesian_deep_linear(X, y, X[:2], gamma0=g, beta=beta, depth=L)
    c = 1 + L * g**2  # independent: fixed-point iteration of c = (1 - chi(c))^L
    for _ in range(500):
        c = 0.5 * c + 0.5 * (1 + g**2 * c / (1 / beta + c) ** 2) ** L
    chi = -g**2 * c / (1 / beta + c) ** 2
    np.testing.assert_allclose([y @ K[:D, :D] @ y for K in th.kernels], [(1 - chi) ** (k + 1) for k in range(L)],
                               rtol=1e-9)


def test_bayesian_importance_sampling_with_linear_activation_equals_closed_form():
    X, y, Xt, yt = _task()
    closed = ak.bayesian_deep_linear(X, y, Xt, yt, gamma0=1.5, beta=1.0)
    sampled = ak.bayesian_two_layer(X, y, Xt, yt, gamma0=1.5, beta=1.0, activation="linear", samples=40000, seed=0)
    assert sampled.converged
    assert _rel(closed.f_test, sampled.f_test) < 0.01  # measured 0.1 %


@pytest.mark.parametrize("activation", ["linear", "tanh"])
def test_bayesian_predictor_matches_langevin_posterior(activation):
    X, y, Xt, _ = _task()
    th = (ak.bayesian_deep_linear(X, y, Xt, gamma0=1.5, beta=1.0) if activation == "linear" else
          ak.bayesian_two_layer(X, y, Xt, gamma0=1.5, beta=1.0, samples=40000, seed=1))
    post = sim.langevin_posterior(X, y, Xt, width=128, gamma0=1.5, beta=1.0, activation=activation, dt=0.03,
                                  steps=6000, burn_in=1000, chains=6, seed=2)
    lazy = (Xt @ X.T / 6) @ np.linalg.solve(X @ X.T / 6 + np.eye(10), y)
    err = _rel(th.f_test, post.f_test)
    assert err < 0.03  # measured 0.3 % (linear), 0.9 % (tanh)
    assert _rel(th.f_test, lazy) > 3 * err


def test_transfer_limits():
    X, y, Xt, yt = _task(seed=5)
    Xs, ys = _task(seed=6)[:2]
    kw = dict(gamma0=1.0, weight_decay=0.5, lr=0.05, max_steps=1500, samples=4096, tol=2e-3, seed=0)
    th = ak.transfer_two_layer(Xs, ys, X, y, Xt, yt, couplings=(0.0, 1e4), **kw)
    assert th.converged
    # infinite coupling: the source kernel's ridge regression
    assert abs(th.test_loss[1] - th.source_kernel_test_loss) < 1e-3 * th.source_kernel_test_loss  # measured 3e-5
    # zero coupling: weight-decay training; this small problem's fixed point is unique (condensed), so it is
    # exactly the one reached from scratch (measured 3e-9)
    scratch = ak.weight_decay_two_layer(X, y, Xt, yt, **kw)
    assert abs(th.test_loss[0] - scratch.test_loss) < 1e-6 * scratch.test_loss
    _, runs = sim.train_transfer(Xs, ys, X, y, Xt, yt, width=1024, couplings=(0.0, 1e4), steps_source=1500, steps=1500,
                                 activation="tanh", gamma0=1.0, weight_decay=0.5, lr=0.05, seed=1)
    assert max(_rel(f, r.f_test) for f, r in zip(th.f_test, runs)) < 1e-6  # measured 2e-14


def test_bad_input_names_the_argument():
    X, y, Xt, yt = _task()
    with pytest.raises(ValueError, match="weight_decay"):
        ak.weight_decay_two_layer(X, y, Xt, gamma0=1.0, weight_decay=0.0)
    with pytest.raises(ValueError, match="activation"):
        ak.weight_decay_two_layer(X, y, Xt, gamma0=1.0, weight_decay=1.0, activation="gelu")
    with pytest.raises(ValueError, match="X_test"):
        ak.bayesian_deep_linear(X, y, Xt[:, :3], gamma0=1.0, beta=1.0)
    with pytest.raises(ValueError, match="couplings"):
        ak.transfer_two_layer(X, y, X, y, Xt, gamma0=1.0, weight_decay=1.0, couplings=[-1.0])
    with pytest.raises(TypeError, match="depth"):
        ak.weight_decay_deep_linear(X, y, Xt, gamma0=1.0, weight_decay=1.0, depth="2")
    with pytest.raises(ValueError, match="width"):
        sim.train_weight_decay(X, y, Xt, yt, width=0, gamma0=1.0, weight_decay=1.0, lr=0.1, steps=1)
    with pytest.raises(ValueError, match="X_test"):
        sim.langevin_posterior(X, y, None, width=4, gamma0=1.0, beta=1.0)


def test_non_stationary_theory_says_so():
    X, y, Xt, _ = _task()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        th = ak.weight_decay_two_layer(X, y, Xt, gamma0=1.0, weight_decay=0.5, max_steps=5, samples=64)
    assert th.status == "max_iter" and not th.converged and w
