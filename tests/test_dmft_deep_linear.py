"""Deep-linear DMFT: second method (Picard), closed forms, lazy limit, simulation, bad input."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.results import ConvergenceWarning
from lmech.theory.dmft.deep_linear import DeepLinearDMFTResult, deep_linear


def _data(P=5, D=8, P_test=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P + P_test, D))
    X *= np.sqrt(D) / np.linalg.norm(X, axis=1, keepdims=True)
    y = np.tanh(X @ rng.standard_normal(D) / np.sqrt(D)) + 0.5 * X[:, 0] * X[:, 1]
    y = (y - y[:P].mean()) / y[:P].std()
    return X[:P], y[:P], X[P:], y[P:]


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("dynamics", ["gd", "flow"])
def test_causal_equals_picard(depth, dynamics):
    """The exact time-stepping solver and the damped fixed-point iteration with continuation agree."""
    X, y, Xt, yt = _data()
    kw = dict(depth=depth, gamma0=1.5, lr=0.2, steps=8, X_test=Xt, y_test=yt, dynamics=dynamics, two_time=True)
    a = deep_linear(X, y, **kw)
    b = deep_linear(X, y, method="picard", chunk=3, **kw)
    assert a.converged and b.converged
    assert a.residual < 1e-12 and b.residual < 1e-10
    np.testing.assert_allclose(a.f_train, b.f_train, atol=1e-10)
    np.testing.assert_allclose(a.f_test, b.f_test, atol=1e-10)
    for key in ("Phi", "G", "A", "B"):
        np.testing.assert_allclose(a.two_time[key], b.two_time[key], atol=1e-9)


def _two_layer_moments(Kx, y, P, g0, lr, steps):
    """Independent exact solution for depth 1: second moments of (h, w) per neuron."""
    Q = Kx.shape[0]
    a = lr * g0 / P
    S = np.zeros((Q + 1, Q + 1))
    S[:Q, :Q] = Kx
    S[Q, Q] = 1.0
    fs = []
    for _ in range(steps + 1):
        f = S[:Q, Q] / g0
        fs.append(f)
        d = y - f[:P]
        M = np.eye(Q + 1)
        M[:Q, Q] = a * Kx[:, :P] @ d
        M[Q, :P] = a * d
        S = M @ S @ M.T
    return np.array(fs)


def test_two_layer_matches_moment_propagation():
    X, y, Xt, _ = _data()
    Xa = np.vstack([X, Xt])
    res = deep_linear(X, y, depth=1, gamma0=1.3, lr=0.3, steps=25, X_test=Xt)
    ref = _two_layer_moments(Xa @ Xa.T / X.shape[1], y, X.shape[0], 1.3, 0.3, 25)
    np.testing.assert_allclose(res.f_train, ref[:, : X.shape[0]], atol=1e-12)
    np.testing.assert_allclose(res.f_test, ref[:, X.shape[0]:], atol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_lazy_limit_is_static_ntk_dynamics(depth):
    """gamma0 = 0: static NTK (L+1) X X^T / D, equal to lmech.kernels' linear NTK."""
    from lmech.kernels import ntk_mlp

    X, y, Xt, _ = _data()
    P = X.shape[0]
    Xa = np.vstack([X, Xt])
    K = ntk_mlp(Xa, depth=depth, activation="linear", weight_var=1.0, bias_var=0.0)
    res = deep_linear(X, y, depth=depth, gamma0=0.0, lr=0.1, steps=20, X_test=Xt, check=False)
    np.testing.assert_allclose(res.ntk, np.broadcast_to(K, res.ntk.shape), atol=1e-12)
    f = np.zeros(Xa.shape[0])
    for t in range(21):
        np.testing.assert_allclose(np.r_[res.f_train[t], res.f_test[t]], f, atol=1e-12)
        f = f + 0.1 / P * K[:, :P] @ (y - f[:P])
    small = deep_linear(X, y, depth=depth, gamma0=1e-4, lr=0.1, steps=20, X_test=Xt, check=False)
    np.testing.assert_allclose(small.f_train, res.f_train, atol=1e-6)


def test_flow_converges_to_gd_as_lr_shrinks():
    """Exact discrete GD and forward-Euler flow differ by O(lr) at fixed time lr * steps."""
    X, y, _, _ = _data()
    diffs = []
    for lr, steps in ((0.4, 5), (0.2, 10), (0.1, 20)):
        gd = deep_linear(X, y, depth=2, gamma0=1.0, lr=lr, steps=steps)
        fl = deep_linear(X, y, depth=2, gamma0=1.0, lr=lr, steps=steps, dynamics="flow")
        diffs.append(np.abs(gd.f_train[-1] - fl.f_train[-1]).max())
    ratios = np.array(diffs[:-1]) / np.array(diffs[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.5)), ratios


def test_two_time_structure():
    X, y, Xt, _ = _data(P=3, P_test=1)
    res = deep_linear(X, y, depth=2, gamma0=1.2, lr=0.2, steps=8, X_test=Xt, two_time=True)
    n, Q = 9, 4
    for l in range(2):
        Phi = res.two_time["Phi"][l].reshape(n * Q, n * Q)
        G = res.two_time["G"][l].reshape(n * Q, n * Q)
        np.testing.assert_allclose(Phi, Phi.T, atol=1e-12)
        assert np.linalg.eigvalsh(Phi).min() > -1e-10 and np.linalg.eigvalsh(G).min() > -1e-10
        for key in ("A", "B"):  # responses are strictly causal in a linear network
            R = res.two_time[key][l]
            for t in range(n):
                assert np.all(R[t, :, t:, :] == 0)
    idx = np.arange(n)
    np.testing.assert_allclose(res.feature_kernels[:, 0], res.two_time["Phi"][0][idx, :, idx, :], atol=1e-12)
    np.testing.assert_allclose(res.gradient_kernels[:, 1], res.two_time["G"][1][idx, :, idx, :], atol=1e-12)


def test_divergence_is_reported_not_nan():
    X, y, _, _ = _data()
    with pytest.warns(ConvergenceWarning):
        res = deep_linear(X, y, depth=2, gamma0=1.5, lr=3.0, steps=40)
    assert res.diverged and not res.converged
    assert len(res.steps) < 41
    assert np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.ntk))


def test_result_type_and_shapes():
    X, y, Xt, yt = _data()
    res = deep_linear(X, y, depth=2, gamma0=1.0, lr=0.1, steps=10, X_test=Xt, y_test=yt)
    assert isinstance(res, DeepLinearDMFTResult)
    assert res.f_train.shape == (11, 5) and res.f_test.shape == (11, 3)
    assert res.feature_kernels.shape == (11, 2, 8, 8) and res.ntk.shape == (11, 8, 8)
    assert res.train_loss[0] == pytest.approx(0.5 * np.mean(y**2))
    assert res.test_loss.shape == (11,)
    assert repr(res).startswith("DeepLinearDMFTResult(")


@pytest.mark.slow  # the dmft.deep_linear.loss_curves claim runs the same comparison in the default suite
def test_matches_simulated_networks():
    """Ensemble of width-1024 deep linear nets vs the exact discrete-time DMFT."""
    from lmech.sim.mean_field import train_mean_field

    torch.set_num_threads(1)
    X, y, Xt, yt = _data(P=6, D=10, P_test=3)
    th = deep_linear(X, y, depth=2, gamma0=1.5, lr=0.1, steps=30, X_test=Xt, y_test=yt)
    errs = {}
    for N in (256, 1024):
        run = train_mean_field(X, y, width=N, depth=2, gamma0=1.5, lr=0.1, steps=30, activation="linear",
                               X_test=Xt, y_test=yt, seeds=range(8))
        errs[N] = np.mean([np.linalg.norm(f - th.f_train) / np.linalg.norm(y - th.f_train) for f in run.f_train])
        if N == 1024:
            # seed-mean loss curve: measured 1-2% (noise of 8 seeds); single networks ~4%
            assert np.linalg.norm(run.train_loss.mean(0) - th.train_loss) / np.linalg.norm(th.train_loss) < 0.05
            assert np.linalg.norm(run.ntk.mean(0) - th.ntk) / np.linalg.norm(th.ntk) < 0.05
    assert 1.4 < errs[256] / errs[1024] < 2.9  # N^-1/2: ratio 2 for 4x width


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(depth=0), "depth"),
        (dict(gamma0=-1.0), "gamma0"),
        (dict(lr=0.0), "lr"),
        (dict(steps=0), "steps"),
        (dict(dynamics="euler"), "dynamics"),
        (dict(method="newton"), "method"),
        (dict(damping=0.0), "damping"),
        (dict(X_test=np.ones((2, 3))), "X_test"),
        (dict(y_test=np.ones(2)), "y_test"),
    ],
)
def test_bad_arguments(kwargs, name):
    X, y, _, _ = _data()
    base = dict(depth=2, gamma0=1.0, lr=0.1, steps=5)
    base.update(kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        deep_linear(X, y, **base)


def test_bad_data():
    X, y, _, _ = _data()
    with pytest.raises(ValueError, match="`y`"):
        deep_linear(X, y[:-1], depth=1, gamma0=1.0, lr=0.1, steps=3)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="`X`"):
        deep_linear(Xn, y, depth=1, gamma0=1.0, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="`X`"):
        deep_linear(X[0], y, depth=1, gamma0=1.0, lr=0.1, steps=3)
    with pytest.raises(TypeError, match="`depth`"):
        deep_linear(X, y, depth=1.5, gamma0=1.0, lr=0.1, steps=3)


@settings(max_examples=25, deadline=None)
@given(
    P=st.integers(1, 4),
    D=st.integers(1, 5),
    depth=st.integers(1, 3),
    gamma0=st.floats(0.0, 2.0),
    lr=st.floats(0.01, 0.3),
    steps=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_fuzz_solver(P, D, depth, gamma0, lr, steps, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    X *= np.sqrt(D) / np.linalg.norm(X, axis=1, keepdims=True)  # |x|^2 = D: lazy step lr (L+1) K/P < 2
    y = rng.standard_normal(P)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = deep_linear(X, y, depth=depth, gamma0=gamma0, lr=lr, steps=steps)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    # rich dynamics can genuinely blow up (the NTK grows ~ gamma0^2 y^2; checked against N = 2048
    # networks for P = 1, depth 3, gamma0 = 1.49, lr = 0.13, y = 2.84): then it must be flagged
    assert warned == res.diverged == (not res.converged)
    assert np.all(np.isfinite(res.f_train)) and np.all(np.isfinite(res.ntk))
    if not res.diverged:
        assert res.residual < 1e-8 and res.f_train.shape == (steps + 1, P)
    np.testing.assert_allclose(res.f_train[0], 0.0, atol=1e-14)
    # first step is exactly one lazy-NTK GD step (kernels are at their initial values)
    Kx = X @ X.T / D
    if res.f_train.shape[0] > 1:
        np.testing.assert_allclose(res.f_train[1], lr / P * (depth + 1) * Kx @ y, atol=1e-10 * (1 + np.abs(Kx).max()))
