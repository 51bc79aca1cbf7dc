import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import comb

from lmech.spectra import (
    EmpiricalSpectrum,
    cumulative_power,
    dot_product_kernel_spectrum,
    empirical_spectrum,
    nystrom_extension,
    power_law,
    sphere_multiplicity,
    target_coefficients,
    target_power,
)


def test_power_law():
    np.testing.assert_allclose(power_law(4, 1.0), [1, 1 / 2, 1 / 3, 1 / 4])
    assert power_law(10, 2.0, scale=3.0, normalize=True).sum() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="n_modes"):
        power_law(0, 1.0)


def _gram(n=60, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, 5))
    return np.exp(-0.5 * ((X[:, None] - X[None]) ** 2).sum(-1) / 5)


def test_empirical_spectrum_reconstructs_gram_and_is_orthonormal():
    K = _gram()
    sp = empirical_spectrum(K)
    N = K.shape[0]
    phi, lam = sp.eigenfunctions, sp.eigenvalues
    assert np.all(np.diff(lam) <= 0) and np.all(lam >= 0)
    np.testing.assert_allclose(phi.T @ phi / N, np.eye(N), atol=1e-10)
    np.testing.assert_allclose(phi @ np.diag(lam) @ phi.T, K, atol=1e-10)
    top = empirical_spectrum(K, n_modes=7)
    np.testing.assert_allclose(top.eigenvalues, lam[:7], rtol=1e-10)


def test_target_power_parseval_and_coefficients():
    K = _gram(seed=1)
    sp = empirical_spectrum(K)
    rng = np.random.default_rng(2)
    Y = rng.standard_normal((K.shape[0], 3))
    v = sp.target_coefficients(Y)
    assert v.shape == (K.shape[0], 3)
    np.testing.assert_allclose(sp.eigenfunctions @ v, Y, atol=1e-10)  # complete basis
    np.testing.assert_allclose(sp.target_power(Y).sum(), (Y**2).sum(1).mean(), rtol=1e-12)
    np.testing.assert_allclose(target_power(sp.eigenfunctions, Y[:, 0]), v[:, 0] ** 2)
    np.testing.assert_allclose(target_coefficients(sp.eigenfunctions, Y), v)


def test_nystrom_extension_reproduces_eigenfunctions_on_the_sample():
    K = _gram(seed=3)
    sp = empirical_spectrum(K, n_modes=10)
    np.testing.assert_allclose(nystrom_extension(sp, K), sp.eigenfunctions, atol=1e-8)


def test_cumulative_power_sorts_by_eigenvalue():
    lam = np.array([0.1, 1.0, 0.5])
    v2 = np.array([1.0, 2.0, 1.0])
    np.testing.assert_allclose(cumulative_power(lam, v2), [0.5, 0.75, 1.0])
    np.testing.assert_array_equal(cumulative_power(lam, np.zeros(3)), np.zeros(3))


def test_sphere_multiplicity():
    ls = np.arange(8)
    np.testing.assert_array_equal(sphere_multiplicity(3, ls), 2 * ls + 1)
    np.testing.assert_array_equal(sphere_multiplicity(4, ls), (ls + 1) ** 2)
    # sum_{l<=L} N(d, l) = number of harmonic-or-lower polynomials: C(L+d-1, d-1) + C(L+d-2, d-1)
    d, L = 7, 9
    assert sphere_multiplicity(d, np.arange(L + 1)).sum() == comb(L + d - 1, d - 1, exact=True) + comb(L + d - 2, d - 1, exact=True)
    assert sphere_multiplicity(5, 0) == 1


def test_dot_product_spectrum_closed_form_and_monte_carlo():
    d = 5
    # k(t) = t^2 = 1/d P_0 + (1 - 1/d) P_2: lam_0 = 1/d, N(d,2) lam_2 = 1 - 1/d
    sp = dot_product_kernel_spectrum(lambda t: t**2, d, 4)
    np.testing.assert_allclose(sp.eigenvalues[0], 1 / d, rtol=1e-12)
    np.testing.assert_allclose(sp.eigenvalues[2] * sp.multiplicities[2], 1 - 1 / d, rtol=1e-12)
    np.testing.assert_allclose(sp.eigenvalues[[1, 3]], 0, atol=1e-14)
    assert sp.tail == pytest.approx(0, abs=1e-12)
    # exp(t): compare level masses with a Monte Carlo Gram spectrum on the sphere
    sp = dot_product_kernel_spectrum(np.exp, d, 6)
    X = np.random.default_rng(0).standard_normal((1000, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    w = np.linalg.eigvalsh(np.exp(X @ X.T) / 1000)[::-1]
    start = 0
    for l in range(3):
        m = int(sp.multiplicities[l])
        np.testing.assert_allclose(w[start:start + m].mean(), sp.eigenvalues[l], rtol=0.05)
        start += m
    assert sp.trace == pytest.approx(np.e)


@pytest.mark.parametrize(
    "fn, args, match",
    [
        (empirical_spectrum, (np.ones((2, 3)),), "gram"),
        (empirical_spectrum, (np.array([[1.0, 2.0], [0.0, 1.0]]),), "gram"),
        (empirical_spectrum, (np.array([[1.0, 2.0], [2.0, 1.0]]),), "gram"),
        (target_coefficients, (np.ones((3, 2)), np.ones(4)), "y"),
        (cumulative_power, ([1.0, -1.0], [1.0, 1.0]), "eigenvalues"),
        (cumulative_power, ([1.0, 1.0], [1.0]), "target_power"),
        (sphere_multiplicity, (1, 2), "d"),
        (sphere_multiplicity, (3, 1.5), "level"),
        (dot_product_kernel_spectrum, (np.exp, 2, 3), "d"),
        (dot_product_kernel_spectrum, ("exp", 3, 3), "kernel_fn"),
    ],
)
def test_bad_input(fn, args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fn(*args)


def test_nystrom_bad_input():
    sp = empirical_spectrum(_gram(10))
    with pytest.raises(ValueError, match="cross_gram"):
        nystrom_extension(sp, np.ones((3, 4)))
    with pytest.raises(TypeError, match="spectrum"):
        nystrom_extension("x", np.ones((3, 4)))


@settings(max_examples=30, deadline=None)
@given(lam=st.lists(st.floats(0, 10), min_size=1, max_size=30), seed=st.integers(0, 100))
def test_fuzz_cumulative_power(lam, seed):
    v2 = np.random.default_rng(seed).uniform(0, 1, len(lam))
    c = cumulative_power(lam, v2)
    assert np.all(np.diff(c) >= -1e-15) and c[-1] == pytest.approx(1.0)
    assert isinstance(EmpiricalSpectrum, type)
