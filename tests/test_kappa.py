import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from lmech.theory.kappa import solve_kappa


def _closed_form_single_level(lam, n, P, r):
    # one eigenvalue lam with multiplicity n: kappa^2 + kappa (P lam - r - n lam) - r P lam = 0
    # (written without cancellation: for b > 0 use 2c / (b + sqrt(b^2 + 4c)))
    b = P * lam - r - n * lam
    c = r * P * lam
    disc = np.sqrt(b * b + 4 * c)
    return np.where(b > 0, 2 * c / np.where(b > 0, b + disc, 1.0), 0.5 * (disc - b))


@pytest.mark.parametrize("r", [0.0, 1e-6, 0.3, 10.0])
def test_single_level_closed_form(r):
    P = np.array([1.0, 5.0, 49.0, 50.0, 51.0, 500.0])
    res = solve_kappa([0.02], P, r, multiplicities=[50])
    expected = _closed_form_single_level(0.02, 50, P, r)
    if r == 0:  # kappa = max(0, n lam - P lam) exactly
        expected = np.maximum(0.0, (50 - P) * 0.02)
    np.testing.assert_allclose(res.kappa, expected, rtol=1e-11, atol=1e-300)
    assert res.converged and res.residual < 1e-10


def test_matches_brentq_on_power_law():
    lam = np.arange(1, 2001) ** -1.5
    P = np.geomspace(1, 5000, 25)
    ridge = 1e-4
    res = solve_kappa(lam, P, ridge)

    def h(u, p):
        k = np.exp(u)
        return ridge / k + np.sum(lam / (p * lam + k)) - 1

    ref = [np.exp(brentq(h, np.log(ridge), np.log(ridge + lam.sum()), args=(p,), xtol=1e-15)) for p in P]
    np.testing.assert_allclose(res.kappa, ref, rtol=1e-10)


def test_ridgeless_both_sides_of_interpolation():
    lam = 1.0 / np.arange(1, 101) ** 2
    P = np.array([10, 50, 99, 100, 101, 400])
    res = solve_kappa(lam, P, 0.0)
    assert np.all(res.kappa[:3] > 0) and np.all(res.kappa[3:] == 0)
    assert res.converged
    # continuity: ridgeless kappa is the ridge -> 0 limit
    small = solve_kappa(lam, P[:3], 1e-12)
    np.testing.assert_allclose(small.kappa, res.kappa[:3], rtol=1e-6)


def test_zero_eigenvalues_are_ignored():
    lam = np.array([1.0, 0.5, 0.0, 0.0])
    a = solve_kappa(lam, [1.0, 3.0], 0.1)
    b = solve_kappa(lam[:2], [1.0, 3.0], 0.1)
    np.testing.assert_allclose(a.kappa, b.kappa, rtol=1e-13)


def test_broadcast_ridge_grid():
    lam = np.arange(1, 50) ** -1.0
    res = solve_kappa(lam, 10.0, np.array([0.0, 0.1, 1.0]))
    assert res.kappa.shape == (3,) and np.all(np.diff(res.kappa) > 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eigenvalues=[1.0, -0.1], P=3), "eigenvalues"),
        (dict(eigenvalues=[1.0, np.nan], P=3), "eigenvalues"),
        (dict(eigenvalues=[[1.0]], P=3), "eigenvalues"),
        (dict(eigenvalues=[0.0, 0.0], P=3), "eigenvalues"),
        (dict(eigenvalues=[1.0], P=0), "P"),
        (dict(eigenvalues=[1.0], P=[1, -2]), "P"),
        (dict(eigenvalues=[1.0], P=3, ridge=-1e-3), "ridge"),
        (dict(eigenvalues=[1.0, 2.0], P=3, multiplicities=[1.0]), "multiplicities"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_kappa(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    lam=st.lists(st.floats(1e-8, 1e3), min_size=1, max_size=40),
    P=st.floats(0.5, 1e4),
    ridge=st.one_of(st.just(0.0), st.floats(1e-10, 1e3)),
)
def test_fuzz_solution_satisfies_equation(lam, P, ridge):
    res = solve_kappa(lam, P, ridge)
    assert res.converged and np.all(np.isfinite(res.kappa)) and np.all(res.kappa >= 0)
    k = res.kappa[0]
    lam = np.asarray(lam)
    if k > 0:
        assert abs(k - ridge - k * np.sum(lam / (P * lam + k))) <= 1e-8 * max(k, ridge)
    else:
        assert ridge == 0 and len(lam) <= P
