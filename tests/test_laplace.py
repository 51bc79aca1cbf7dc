import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.results import ConvergenceWarning
from lmech.theory.kappa import solve_kappa
from lmech.theory.laplace import invert_laplace, solve_kappa_complex, talbot_nodes, talbot_sum

T = np.geomspace(0.01, 100, 9)

CLOSED_FORMS = [
    (lambda s: 1 / (s + 1), lambda t: np.exp(-t)),
    (lambda s: 1 / s**2, lambda t: t),
    (lambda s: 1 / (s * (s + 1)), lambda t: 1 - np.exp(-t)),
    (lambda s: 1 / np.sqrt(s), lambda t: 1 / np.sqrt(np.pi * t)),
    (lambda s: np.log(s) / s, lambda t: -np.euler_gamma - np.log(t)),
]


@pytest.mark.parametrize("idx", range(5))
@pytest.mark.parametrize("M", [24, 32, 40])
def test_talbot_matches_closed_forms(idx, M):
    F, f = CLOSED_FORMS[idx]
    res = invert_laplace(F, T, M=M, atol=1e-7 if M > 32 else None)
    scale = np.max(np.abs(f(T)))
    err = np.abs(res.values - f(T))
    # absolute error of fixed Talbot ~ 1e-11 at M = 32, growing with M by round-off (e^{2M/5} eps)
    assert np.all(err <= 1e-8 * max(scale, 1.0) + 1e-9 * np.abs(f(T)))
    assert res.converged
    # the M vs M+8 estimate bounds the true error
    assert np.all(err <= 10 * res.error_estimate + 1e-12)


def test_talbot_vectorised_over_extra_axes():
    a = np.array([0.5, 1.0, 3.0])
    res = invert_laplace(lambda s: 1 / (s[..., None] + a), T, M=32)
    assert res.values.shape == (len(T), 3)
    np.testing.assert_allclose(res.values, np.exp(-np.outer(T, a)), atol=1e-9)


def test_check_flags_inaccurate_inversion():
    # M = 64 loses digits by cancellation for 1/sqrt(s): the M vs M+8 check must notice
    with pytest.warns(ConvergenceWarning):
        res = invert_laplace(lambda s: 1 / np.sqrt(s), T, M=64, rtol=1e-10, atol=1e-12)
    assert not res.converged


def test_full_contour_reproduces_upper_half_for_symmetric_functions():
    F = lambda s: 1 / (s + 2.0)  # noqa: E731
    up = talbot_nodes(T, 32)
    full = talbot_nodes(T, 32, full=True)
    a = talbot_sum(up, F(up.s))
    b = talbot_sum(full, F(full.s))
    np.testing.assert_allclose(b.real, a, atol=1e-12)
    np.testing.assert_allclose(b.imag, 0, atol=1e-10)


def test_double_inversion_of_separable_function():
    # F(s, s') = 1/((s+1)(s'+2)) -> e^{-t} e^{-2t} at (t, t)
    up, full = talbot_nodes(T, 24), talbot_nodes(T, 24, full=True)
    out = []
    for i in range(len(T)):
        Fm = 1 / ((up.s[i][:, None] + 1) * (full.s[i][None, :] + 2))
        inner = Fm @ (full.weights[i] * np.exp(T[i] * full.s[i])) * full.scale[i]
        out.append((np.sum(up.weights[i] * np.exp(T[i] * up.s[i]) * inner) * up.scale[i]).real)
    np.testing.assert_allclose(out, np.exp(-3 * T), atol=1e-9)


# --------------------------------------------------------------------------- complex kappa
def _residual(k, s, lam, n):
    return np.abs(k - s - k / n * np.sum(lam / (lam + k[..., None]), -1)) / np.abs(k)


def test_complex_kappa_on_talbot_contours():
    lam = np.arange(1, 3001.0) ** -1.5
    nodes = talbot_nodes(np.geomspace(0.1, 1e5, 7), 40)
    res = solve_kappa_complex(lam, 50, nodes.s)
    assert res.converged and res.kappa.shape == nodes.s.shape
    assert np.max(_residual(res.kappa, nodes.s, lam, 50)) < 1e-12
    # physical branch: Im kappa has the sign of Im s (kappa maps C+ to C+)
    assert np.all(np.sign(res.kappa[:, 1:].imag) == np.sign(nodes.s[:, 1:].imag))
    # conjugate symmetry, checked by solving along the conjugate path
    conj = solve_kappa_complex(lam, 50, np.conj(nodes.s))
    np.testing.assert_allclose(conj.kappa, np.conj(res.kappa), rtol=1e-12)


def test_complex_kappa_real_nodes_match_real_solver():
    lam = 1.0 / np.arange(1, 401.0) ** 2
    s = np.array([[3.0, 1.0, 0.1, 1e-3]])
    res = solve_kappa_complex(lam, 80, s)
    ref = solve_kappa(lam, 80, 80 * s[0]).kappa / 80
    np.testing.assert_allclose(res.kappa[0].real, ref, rtol=1e-10)
    np.testing.assert_allclose(res.kappa[0].imag, 0, atol=1e-14)


def test_complex_kappa_large_s_asymptote():
    lam = np.array([1.0, 0.5, 0.25])
    s = np.array([[1e6, 1e6 * (1 + 1j), 1e6 * (-1 + 1j)]])
    k = solve_kappa_complex(lam, 10, s).kappa
    np.testing.assert_allclose(k, s + lam.sum() / 10, rtol=1e-6)


def test_multiplicities_equal_repeated_eigenvalues():
    s = talbot_nodes([1.0, 10.0], 24).s
    a = solve_kappa_complex([0.3, 0.01], 20, s, multiplicities=[5, 40]).kappa
    b = solve_kappa_complex(np.r_[np.full(5, 0.3), np.full(40, 0.01)], 20, s).kappa
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_subdivision_rescues_coarse_paths():
    # a two-node path from the real axis straight to a far point near the negative axis
    # straight to a node above the spectrum near the negative axis: a 3-iteration Newton from the
    # real root fails, the subdivided path gets there
    lam = np.arange(1, 201.0) ** -2.0
    s = np.array([[1e-4, -0.05 + 0.001j]])
    res = solve_kappa_complex(lam, 30, s, max_iter=4)
    assert res.converged and res.subdivisions > 0
    assert _residual(res.kappa, s, lam, 30).max() < 1e-10
    ref = solve_kappa_complex(lam, 30, s, max_iter=50)
    np.testing.assert_allclose(res.kappa, ref.kappa, rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(1e-4, 10.0), min_size=1, max_size=30),
    st.floats(1.0, 500.0),
    st.floats(1e-2, 1e4),
)
def test_fuzz_complex_kappa(eigs, n, t):
    lam = np.array(eigs)
    s = talbot_nodes([t], 32).s
    res = solve_kappa_complex(lam, n, s)
    assert res.converged
    assert np.max(_residual(res.kappa, s, lam, n)) < 1e-9
    assert np.all(res.kappa[0, 1:].imag * s[0, 1:].imag >= 0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(eigenvalues=[-1.0, 1.0], n=10, s=[[1.0]]), "eigenvalues"),
        (dict(eigenvalues=[1.0], n=0.0, s=[[1.0]]), "n"),
        (dict(eigenvalues=[1.0], n=10, s=[[1j, 1.0]]), "s"),
        (dict(eigenvalues=[1.0], n=10, s=[[-1.0]]), "s"),
        (dict(eigenvalues=[1.0], n=10, s=[[np.nan]]), "s"),
    ],
)
def test_bad_inputs_complex_kappa(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        solve_kappa_complex(**kwargs)


def test_bad_inputs_talbot():
    with pytest.raises(ValueError, match="`t`"):
        talbot_nodes([-1.0, 1.0])
    with pytest.raises(ValueError, match="`M`"):
        talbot_nodes([1.0], M=2)
    with pytest.raises(TypeError, match="`M`"):
        talbot_nodes([1.0], M=3.5)
