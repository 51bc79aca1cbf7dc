"""Finite-width (1/N) fluctuation theory: exact Wishart expansion vs particles vs seed ensembles."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.sim.mean_field import train_mean_field
from lmech.theory.dmft.deep_linear import deep_linear
from lmech.theory.dmft.finite_width import FluctuationResult, two_layer_fluctuations


def _data(P=5, D=8, P_test=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P + P_test, D))
    X *= np.sqrt(D) / np.linalg.norm(X, axis=1, keepdims=True)
    y = np.tanh(X @ rng.standard_normal(D) / np.sqrt(D)) + 0.5 * X[:, 0] * X[:, 1]
    y = (y - y[:P].mean()) / y[:P].std()
    return X[:P], y[:P], X[P:], y[P:]


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_wishart_mean_is_the_dmft_solution():
    X, y, Xt, yt = _data()
    r = two_layer_fluctuations(X, y, gamma0=1.3, lr=0.2, steps=15, X_test=Xt, y_test=yt)
    ref = deep_linear(X, y, depth=1, gamma0=1.3, lr=0.2, steps=15, X_test=Xt, y_test=yt)
    assert r.method == "wishart" and isinstance(r, FluctuationResult)
    np.testing.assert_allclose(r.f_train, ref.f_train, atol=1e-12)
    np.testing.assert_allclose(r.test_loss, ref.test_loss, atol=1e-12)
    np.testing.assert_allclose(r.ntk, ref.ntk[r.ntk_steps], atol=1e-12)


def test_wishart_and_particles_agree():
    """Two methods on linear networks: exact Wishart expansion and the Monte-Carlo propagator."""
    X, y, Xt, yt = _data()
    kw = dict(gamma0=1.5, lr=0.2, steps=8, X_test=Xt, y_test=yt)
    a = two_layer_fluctuations(X, y, **kw)
    b = two_layer_fluctuations(X, y, method="particles", samples=20_000, jacobian_samples=2000, **kw)
    # Monte-Carlo error measured 1.5-4.5% over 5 seeds at these sample sizes
    for key in ("var_f_train", "var_f_test", "var_ntk", "var_test_loss", "bias_f_train", "bias_f_test"):
        assert _rel(getattr(b, key), getattr(a, key)) < 0.1, key


def test_lazy_limit_variance_has_the_universal_form():
    """Centred nets, small gamma0: delta Delta(t+1) = (I - lr K/P) delta Delta(t) - (lr/P) delta K Delta*(t),
    delta Delta(0) = 0, with the Wick statistics of delta K = delta(h h^T) + delta(w^2) Kx at init."""
    X, y, _, _ = _data(P=4, D=6, P_test=0)
    P, D = X.shape
    lr, T = 0.3, 10
    r = two_layer_fluctuations(X, y, gamma0=1e-5, lr=lr, steps=T, center=True)
    Kx = X @ X.T / D
    A = np.eye(P) - lr / P * 2 * Kx
    Dstar = [y.copy()]
    for _ in range(T):
        Dstar.append(A @ Dstar[-1])
    expected = np.zeros((T + 1, P))
    for t in range(1, T + 1):
        for i in range(P):
            # delta Delta_i(t) = sum_ab M_ab delta K_ab
            M = -lr / P * sum(np.outer(np.linalg.matrix_power(A, t - 1 - s)[i], Dstar[s]) for s in range(t))
            expected[t, i] = np.trace(M.T @ Kx @ M @ Kx) + np.trace(M @ Kx @ M @ Kx) + 2 * np.trace(M.T @ Kx) ** 2
    np.testing.assert_allclose(r.var_f_train, expected, rtol=1e-4, atol=1e-12)


def test_centred_fluctuations_match_centred_networks():
    torch.set_num_threads(1)
    X, y, Xt, yt = _data(P=5, D=8, P_test=2)
    kw = dict(gamma0=0.5, lr=0.2, steps=15, X_test=Xt, y_test=yt)
    lin = two_layer_fluctuations(X, y, center=True, **kw)
    tanh = two_layer_fluctuations(X, y, center=True, activation="tanh", samples=20_000, jacobian_samples=2000, **kw)
    for act, r in (("linear", lin), ("tanh", tanh)):
        run = train_mean_field(X, y, width=128, activation=act, center=True, seeds=range(2000), track_kernels=False,
                               **kw)
        f = np.concatenate([run.f_train, run.f_test], 2)
        var_th = np.concatenate([r.var_f_train, r.var_f_test], 1)
        assert _rel(128 * f[:, 1:].var(0, ddof=1), var_th[1:]) < 0.1, act  # sampling ~3%, MC ~3%
        assert np.all(var_th[0] == 0)


def test_variance_and_bias_match_seed_ensembles():
    """N Var and N (E f - f*) of two-layer linear nets over 6000 seeds at N = 48."""
    torch.set_num_threads(1)
    X, y, Xt, yt = _data(P=5, D=8, P_test=2)
    r = two_layer_fluctuations(X, y, gamma0=1.5, lr=0.2, steps=20, X_test=Xt, y_test=yt)
    N, S = 48, 6000
    run = train_mean_field(X, y, width=N, gamma0=1.5, lr=0.2, steps=20, activation="linear", X_test=Xt, y_test=yt,
                           seeds=range(S), track_kernels=False)
    f = np.concatenate([run.f_train, run.f_test], 2)
    f_star = np.concatenate([r.f_train, r.f_test], 1)
    var_th = np.concatenate([r.var_f_train, r.var_f_test], 1)
    bias_th = np.concatenate([r.bias_f_train, r.bias_f_test], 1)
    # sampling error of a variance: sqrt(2/S) = 1.8% per entry; O(1/N) correction ~2%
    assert _rel(N * f.var(0, ddof=1), var_th) < 0.07
    se = N * f.std(0, ddof=1) / np.sqrt(S)
    err = N * (f.mean(0) - f_star) - bias_th
    assert np.linalg.norm(err) < 3.0 * np.linalg.norm(se) + 0.1 * np.linalg.norm(bias_th)
    assert np.linalg.norm(bias_th) > 2 * np.linalg.norm(se)  # the mean shift is resolved


def test_ensemble_loss_formula():
    X, y, Xt, yt = _data()
    r = two_layer_fluctuations(X, y, gamma0=1.0, lr=0.2, steps=10, X_test=Xt, y_test=yt)
    big = r.ensemble_loss(10**9, 1, split="test")
    np.testing.assert_allclose(big, r.test_loss, atol=1e-8)
    single = r.ensemble_loss(100, 1, split="train")
    np.testing.assert_allclose(single, r.train_loss + r.bias_train_loss / 100, atol=1e-12)
    inf_ens = r.ensemble_loss(100, 10**9, split="train")
    var_part = 0.5 * r.var_f_train.sum(1) / len(y)
    np.testing.assert_allclose(single - inf_ens, var_part / 100, rtol=1e-6)
    with pytest.raises(ValueError, match="`ensemble_size`"):
        r.ensemble_loss(10, 0)
    with pytest.raises(ValueError, match="`split`"):
        r.ensemble_loss(10, 1, split="val")
    r2 = two_layer_fluctuations(X, y, gamma0=1.0, lr=0.2, steps=3)
    with pytest.raises(ValueError, match="`split`"):
        r2.ensemble_loss(10, 1)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(method="wishart", activation="tanh"), "method"), (dict(gamma0=0.0), "gamma0"), (dict(lr=-1.0), "lr"),
     (dict(steps=0), "steps"), (dict(activation="gelu"), "activation"), (dict(ntk_steps=[99]), "ntk_steps"),
     (dict(samples=2), "samples"), (dict(method="exact"), "method")],
)
def test_bad_arguments(kwargs, name):
    X, y, _, _ = _data()
    base = dict(gamma0=1.0, lr=0.1, steps=5)
    base.update(kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        two_layer_fluctuations(X, y, **base)


def test_bad_data():
    X, y, _, _ = _data()
    with pytest.raises(ValueError, match="`y`"):
        two_layer_fluctuations(X, y[:2], gamma0=1.0, lr=0.1, steps=3)
    with pytest.raises(ValueError, match="`X_test`"):
        two_layer_fluctuations(X, y, gamma0=1.0, lr=0.1, steps=3, X_test=np.full((2, 8), np.inf))


@settings(max_examples=15, deadline=None)
@given(P=st.integers(1, 4), gamma0=st.floats(0.2, 2.0), lr=st.floats(0.05, 0.4), steps=st.integers(1, 6),
       seed=st.integers(0, 300))
def test_fuzz_wishart(P, gamma0, lr, steps, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, 3))
    y = rng.standard_normal(P)
    r = two_layer_fluctuations(X, y, gamma0=gamma0, lr=lr, steps=steps)
    assert np.all(np.isfinite(r.var_f_train)) and np.all(r.var_f_train >= -1e-12)
    assert np.all(r.var_ntk >= -1e-12) and np.all(r.var_train_loss >= -1e-12)
    # at t = 0: f(0) = (1/(gamma0 N)) sum_i w_i h_i -> N Var = Kx_mumu / gamma0^2, no mean shift
    np.testing.assert_allclose(r.var_f_train[0], np.diag(X @ X.T / 3) / gamma0**2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r.bias_f_train[0], 0.0, atol=1e-12)


_SE_FIELDS = ("f_train", "var_f_train", "var_f_test", "bias_f_train", "var_ntk", "var_test_loss", "bias_test_loss")


def test_particle_standard_errors_match_the_seed_spread():
    """The batch-means standard errors predict the spread of the estimates over independent seeds.

    Measured (6 seeds, tanh): rms seed spread / rms reported s.e. 0.85-1.07 per field."""
    X, y, Xt, yt = _data(P=3, D=6, P_test=2)
    kw = dict(gamma0=1.5, lr=0.2, steps=4, X_test=Xt, y_test=yt, activation="tanh", samples=2000,
              jacobian_samples=400)
    runs = [two_layer_fluctuations(X, y, seed=s, **kw) for s in range(6)]
    for key in _SE_FIELDS:
        est = np.array([getattr(r, key) for r in runs])
        se = np.array([getattr(r, key + "_stderr") for r in runs])
        assert se.shape == est.shape and np.all(se >= 0), key
        spread = est.std(0, ddof=1)
        live = spread > 0  # entries fixed by construction (t = 0 of centred quantities) have no spread
        ratio = np.sqrt(np.mean(spread[live] ** 2) / np.mean(se.mean(0)[live] ** 2))
        assert 1 / 1.6 < ratio < 1.6, (key, ratio)


def test_wishart_standard_errors_are_zero_and_blocks_validated():
    X, y, Xt, yt = _data(P=3, D=6, P_test=2)
    r = two_layer_fluctuations(X, y, gamma0=1.0, lr=0.2, steps=3, X_test=Xt, y_test=yt)
    for key in _SE_FIELDS:
        assert np.all(getattr(r, key + "_stderr") == 0.0), key
    r = two_layer_fluctuations(X, y, gamma0=1.0, lr=0.2, steps=3, method="particles", samples=200, jacobian_samples=20)
    assert r.var_f_test_stderr is None and r.var_test_loss_stderr is None and r.var_f_train_stderr.shape == (4, 3)
    with pytest.raises(ValueError, match="stderr_blocks"):
        two_layer_fluctuations(X, y, gamma0=1.0, lr=0.2, steps=3, method="particles", samples=200, stderr_blocks=1)
    with pytest.raises(ValueError, match="stderr_blocks"):
        two_layer_fluctuations(X, y, gamma0=1.0, lr=0.2, steps=3, method="particles", samples=200, stderr_blocks=60)
