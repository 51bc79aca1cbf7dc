import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import erf
from scipy.stats import norm

from lmech.kernels import NTKMLP, empirical_ntk, mlp_kernels, mlp_kernels_of_cosine, nngp_mlp, ntk_mlp


# --------------------------------------------------------------------------- an independent recursion
def _relu(x):
    return np.maximum(x, 0.0)


def _step(x):
    return (np.asarray(x) > 0).astype(float)


def _derf(x):
    return 2 / np.sqrt(np.pi) * np.exp(-np.asarray(x) ** 2)


def _conditional_mean(g, m, s):
    """E[g(m + s Z)], Z standard normal, by elementary Gaussian integrals (no arc-cosine)."""
    if s == 0.0:
        return float(g(m))
    if g is _relu:
        return m * norm.cdf(m / s) + s * norm.pdf(m / s)
    if g is _step:
        return norm.cdf(m / s)
    if g is erf:
        return erf(m / np.sqrt(1 + 2 * s * s))
    if g is _derf:
        return 2 / np.sqrt(np.pi) * np.exp(-m * m / (1 + 2 * s * s)) / np.sqrt(1 + 2 * s * s)
    raise AssertionError(g)


def _gauss_pair(q1, q2, c, f, g):
    """E[f(u) g(v)] for (u, v) centred Gaussian (variances q1, q2, covariance c): adaptive
    1-d quadrature over u of f(u) E[g(v) | u]."""
    s1 = np.sqrt(q1)
    b = c / q1  # v | u ~ N(b u, q2 - c^2 / q1)
    sd = np.sqrt(max(q2 - c * c / q1, 0.0))
    lo = 0.0 if f in (_relu, _step) else -np.inf  # f vanishes for u < 0
    val, _ = integrate.quad(lambda z: f(s1 * z) * _conditional_mean(g, b * s1 * z, sd) * norm.pdf(z), lo, np.inf,
                            epsabs=1e-14, epsrel=1e-12, limit=200)
    return val


def _reference(x, y, depth, act, wv, bv):
    d = len(x)
    q1, q2, c = wv * x @ x / d + bv, wv * y @ y / d + bv, wv * x @ y / d + bv
    t = c
    phi, dphi = (_relu, _step) if act == "relu" else (erf, _derf)
    for _ in range(depth):
        e = _gauss_pair(q1, q2, c, phi, phi)
        ed = _gauss_pair(q1, q2, c, dphi, dphi)
        eq1 = _gauss_pair(q1, q1, q1, phi, phi)
        eq2 = _gauss_pair(q2, q2, q2, phi, phi)
        c_new = wv * e + bv
        t = wv * ed * t + c_new
        c, q1, q2 = c_new, wv * eq1 + bv, wv * eq2 + bv
    return c, t


@pytest.mark.parametrize("act, wv, bv, depth", [("relu", 2.0, 0.0, 2), ("relu", 1.3, 0.4, 2), ("erf", 1.7, 0.1, 2),
                                                 ("erf", 1.0, 0.0, 1)])
def test_against_quadrature_recursion(act, wv, bv, depth):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 5))
    k = mlp_kernels(X, depth=depth, activation=act, weight_var=wv, bias_var=bv)
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        c, t = _reference(X[i], X[j], depth, act, wv, bv)
        np.testing.assert_allclose(k.nngp[i, j], c, rtol=1e-7)
        np.testing.assert_allclose(k.ntk[i, j], t, rtol=1e-7)


def test_linear_depth_zero_and_linear_activation():
    rng = np.random.default_rng(2)
    X, Z = rng.standard_normal((6, 4)), rng.standard_normal((3, 4))
    lin = 1.5 * X @ Z.T / 4 + 0.3
    k0 = mlp_kernels(X, Z, depth=0, weight_var=1.5, bias_var=0.3)
    np.testing.assert_allclose(k0.nngp, lin, rtol=1e-14)
    np.testing.assert_allclose(k0.ntk, lin, rtol=1e-14)
    # a linear activation composes: Sigma^1 = w Sigma^0 + b, Theta^1 = w Theta^0 + Sigma^1
    k1 = mlp_kernels(X, Z, depth=1, activation="linear", weight_var=1.5, bias_var=0.3)
    np.testing.assert_allclose(k1.nngp, 1.5 * lin + 0.3, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(k1.ntk, 1.5 * lin + 1.5 * lin + 0.3, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("act, wv, bv", [("relu", 2.0, 0.0), ("relu", 1.3, 0.0), ("relu", 2.0, 0.5), ("erf", 2.0, 0.2)])
def test_symmetric_cross_and_exact_diagonal(act, wv, bv):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 7))  # several tiles, diagonal and off-diagonal
    sym = mlp_kernels(X, depth=3, activation=act, weight_var=wv, bias_var=bv)
    cross = mlp_kernels(X, X[::-1].copy(), depth=3, activation=act, weight_var=wv, bias_var=bv)
    np.testing.assert_array_equal(sym.ntk, sym.ntk.T)
    np.testing.assert_allclose(cross.ntk[:, ::-1], sym.ntk, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(cross.nngp[:, ::-1], sym.nngp, rtol=1e-13, atol=1e-13)
    if act == "relu" and bv == 0.0 and wv == 2.0:  # closed form: q^l = q^0, Theta^L = (L + 1) q^0
        q0 = 2.0 * np.sum(X**2, axis=1) / 7
        np.testing.assert_allclose(np.diag(sym.nngp), q0, rtol=1e-15)
        np.testing.assert_allclose(np.diag(sym.ntk), 4 * q0, rtol=1e-15)
    # the diagonal is the exact variance recursion, also for equal rows of two different sets
    np.testing.assert_array_equal(np.diag(cross.ntk[:, ::-1]), np.diag(sym.ntk))
    # PSD
    assert np.linalg.eigvalsh(sym.ntk).min() > -1e-10 * np.abs(sym.ntk).max()


def test_thread_pool_gives_identical_result():
    X = np.random.default_rng(9).standard_normal((420, 5))  # > 2^17 entries: tiles go to a thread pool
    Z = np.random.default_rng(10).standard_normal((330, 5))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [mlp_kernels(X, depth=2, bias_var=0.1), mlp_kernels(X, Z, depth=2)]
        torch.set_num_threads(2)
        two = [mlp_kernels(X, depth=2, bias_var=0.1), mlp_kernels(X, Z, depth=2)]
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.nngp, b.nngp)
        np.testing.assert_array_equal(a.ntk, b.ntk)
    assert torch.get_num_threads() == before


def test_nngp_and_ntk_wrappers_agree_with_joint_call():
    X = np.random.default_rng(4).standard_normal((40, 3))
    k = mlp_kernels(X, depth=2, bias_var=0.1)
    np.testing.assert_array_equal(nngp_mlp(X, depth=2, bias_var=0.1), k.nngp)
    np.testing.assert_array_equal(ntk_mlp(X, depth=2, bias_var=0.1), k.ntk)


def test_kernel_of_cosine_matches_sphere_inputs():
    rng = np.random.default_rng(5)
    d = 6
    X = rng.standard_normal((8, d))
    X *= np.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    for act, bv in [("relu", 0.0), ("erf", 0.3)]:
        k = mlp_kernels(X, depth=2, activation=act, bias_var=bv)
        t = np.clip(X @ X.T / d, -1, 1)
        np.fill_diagonal(t, 1.0)
        kc = mlp_kernels_of_cosine(t, depth=2, activation=act, bias_var=bv)
        np.testing.assert_allclose(kc.ntk, k.ntk, rtol=1e-12)
        np.testing.assert_allclose(kc.nngp, k.nngp, rtol=1e-12)


@pytest.mark.parametrize("act, bv", [("relu", 0.0), ("erf", 0.2)])
def test_analytic_ntk_matches_empirical_ntk_of_wide_network(act, bv):
    """Width 4096: the empirical NTK at init fluctuates by O(width^-1/2) around the limit
    (measured relative Frobenius error 2-4 %); the error shrinks ~4x from width 256."""
    torch.set_num_threads(1)
    X = np.random.default_rng(6).standard_normal((20, 8))
    K = ntk_mlp(X, depth=1, activation=act, bias_var=bv)
    errs = {}
    for width in (256, 4096):
        errs[width] = np.mean([
            np.linalg.norm(empirical_ntk(NTKMLP(8, width, 1, activation=act, bias_var=bv, seed=s), X) - K)
            / np.linalg.norm(K) for s in range(3)
        ])
    assert errs[4096] < 0.06
    assert errs[256] / errs[4096] > 2.5


def test_empirical_ntk_multi_output_and_cross():
    net = NTKMLP(3, 64, 2, n_out=2, seed=0)
    X, Z = np.random.default_rng(7).standard_normal((5, 3)), np.random.default_rng(8).standard_normal((4, 3))
    K = empirical_ntk(net, X, Z, chunk_size=2)
    assert K.shape == (5, 4, 2, 2)
    Kxx = empirical_ntk(net, X)
    np.testing.assert_allclose(Kxx, Kxx.transpose(1, 0, 3, 2), rtol=1e-12)
    # against an explicit autograd Jacobian
    params = [p for p in net.parameters()]
    def jac(x):
        rows = []
        for o in range(2):
            g = torch.autograd.grad(net(torch.as_tensor(x[None]))[0, o], params)
            rows.append(torch.cat([t.reshape(-1) for t in g]))
        return torch.stack(rows)
    ref = torch.einsum("kp,lp->kl", jac(X[1]), jac(Z[2])).numpy()
    np.testing.assert_allclose(K[1, 2], ref, rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(X1=np.ones(3)), ValueError, "X1"),
        (dict(X1=[[1.0, np.nan]]), ValueError, "X1"),
        (dict(X1=np.ones((2, 3)), X2=np.ones((2, 4))), ValueError, "X2"),
        (dict(X1=np.ones((2, 3)), depth=-1), ValueError, "depth"),
        (dict(X1=np.ones((2, 3)), depth=1.5), TypeError, "depth"),
        (dict(X1=np.ones((2, 3)), activation="tanh"), ValueError, "activation"),
        (dict(X1=np.ones((2, 3)), weight_var=0.0), ValueError, "weight_var"),
        (dict(X1=np.ones((2, 3)), bias_var=-0.1), ValueError, "bias_var"),
        (dict(X1="abc"), TypeError, "X1"),
    ],
)
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mlp_kernels(**kwargs)


def test_bad_input_empirical_and_cosine():
    with pytest.raises(TypeError, match="model"):
        empirical_ntk(lambda x: x, np.ones((2, 2)))
    with pytest.raises(ValueError, match="X2"):
        empirical_ntk(NTKMLP(2, 4, seed=0), np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="cosine"):
        mlp_kernels_of_cosine([1.5])
    with pytest.raises(ValueError, match="width"):
        NTKMLP(2, 0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 6),
    depth=st.integers(0, 4),
    act=st.sampled_from(["relu", "erf", "linear"]),
    wv=st.floats(0.1, 4.0),
    bv=st.one_of(st.just(0.0), st.floats(1e-6, 2.0)),  # (subnormal bias variances: round-off only)
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 1000),
)
def test_fuzz_gram_is_symmetric_psd_finite(n, d, depth, act, wv, bv, scale, seed):
    X = scale * np.random.default_rng(seed).standard_normal((n, d))
    if seed % 5 == 0:
        X[0] = 0.0  # a zero input
    k = mlp_kernels(X, depth=depth, activation=act, weight_var=wv, bias_var=bv)
    for K in (k.nngp, k.ntk):
        assert np.all(np.isfinite(K)) and np.array_equal(K, K.T)
        tol = 1e-9 * max(np.abs(K).max(), 1e-300)
        assert np.linalg.eigvalsh(K).min() >= -tol
        # Cauchy-Schwarz against the exact diagonal
        dg = np.sqrt(np.outer(np.diag(K), np.diag(K)))
        assert np.all(np.abs(K) <= dg * (1 + 1e-9) + tol)
