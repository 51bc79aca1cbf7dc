import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from lmech.sim.feature_learning import simulate_projected_gd, train_projected_gd
from lmech.theory.feature_learning import (
    chi,
    feature_learning_exponents,
    power_law_task,
    rich_linear_curve,
    task_class,
)


def test_chi_and_task_classes():
    assert chi(0.3) == pytest.approx(0.6 / 1.3)
    assert chi(1.5) == 1.5
    np.testing.assert_allclose(chi(np.array([0.5, 1.0, 2.0])), [2 / 3, 1.0, 2.0])
    assert task_class(1.5, 0.5) == "hard"
    assert task_class(1.5, 1.2) == "easy"
    assert task_class(1.5, 1.5) == "super-easy"  # 2 - 1/alpha = 1.333


def test_compute_optimal_exponents_match_paper_forms():
    a, b = 3.0, 0.3
    e = feature_learning_exponents(a, b)
    assert e.width == pytest.approx(a * b)
    # rich hard: L* ~ C^{-2 a b / (2 + a (1 + b))}; lazy: C^{-a b / (1 + a)}
    assert e.rich_compute.loss_exponent == pytest.approx(2 * a * b / (2 + a * (1 + b)))
    assert e.lazy_compute.loss_exponent == pytest.approx(a * b / (1 + a))
    # the rich model puts relatively more compute into parameters
    assert e.rich_compute.N_exponent > e.lazy_compute.N_exponent


def test_binned_power_law_reproduces_sums():
    lam, p = power_law_task(1.5, 0.6, exact_modes=200, k_max=1e6, per_decade=60)
    k = np.arange(1, 1_000_001, dtype=float)
    np.testing.assert_allclose(p.sum(), np.sum(k**-1.9), rtol=2e-3)
    q = p / lam  # w*^2
    np.testing.assert_allclose(q.sum(), np.sum(k ** (1.5 - 0.9 - 1)), rtol=2e-3)
    lam_t, p_t = power_law_task(1.5, 0.6, exact_modes=50, k_max=None)
    assert len(lam_t) == 50 and np.allclose(p_t, np.arange(1, 51.0) ** -1.9)


def test_lazy_limit_is_closed_form():
    lam, p = power_law_task(1.5, 0.4, exact_modes=300, k_max=None)
    t = np.geomspace(0.1, 1e3, 6)
    r = rich_linear_curve(lam, p, t, gamma=0.0)
    np.testing.assert_allclose(r.loss, np.exp(-2 * np.outer(t, lam)) @ p, rtol=1e-12)


def _direct_ode(lam, wstar, gamma, t):
    """The N = inf flow (FL) in the weights v themselves, by a stiff general-purpose solver."""

    def rhs(_, v):
        e = wstar - v
        n2 = v @ v
        s = 2 * n2 / (1 + np.sqrt(1 + 4 * gamma * n2))
        le = lam * e
        extra = gamma * s * v * (v @ le) / n2 if n2 > 0 else 0.0
        return (1 + gamma * s) * le + extra

    sol = solve_ivp(rhs, (0, t[-1]), np.zeros_like(lam), t_eval=t, method="Radau", rtol=1e-9, atol=1e-12)
    e = wstar[:, None] - sol.y
    return np.sum(lam[:, None] * e**2, axis=0)


@pytest.mark.parametrize("gamma", [0.5, 4.0])
def test_rich_flow_against_independent_ode_solver(gamma):
    lam, p = power_law_task(1.5, 0.4, exact_modes=40, k_max=None)
    t = np.array([0.3, 3.0, 30.0])
    ref = _direct_ode(lam, np.sqrt(p / lam), gamma, t)
    r = rich_linear_curve(lam, p, t, gamma=gamma, eps=0.005)
    np.testing.assert_allclose(r.loss, ref, rtol=2e-4)
    assert r.converged


def test_reduction_matches_literal_projected_gradient_descent():
    lam, p = power_law_task(1.5, 0.3, exact_modes=150, k_max=None)
    t = np.array([0.5, 4.0, 20.0])
    for gamma in (0.0, 2.0):
        fast = simulate_projected_gd(lam, p, t, N=48, gamma=gamma, draws=2, seed=3, eps=0.005)
        # literal autograd GD with a small step; its error is first order in the step
        slow = train_projected_gd(lam, p, t, N=48, gamma=gamma, draws=2, seed=3, stability=0.02)
        np.testing.assert_allclose(slow.loss, fast.loss, rtol=5e-3)
        np.testing.assert_allclose(slow.bottleneck, fast.bottleneck, rtol=1e-8)


def test_rich_beats_lazy_and_kernel_grows():
    lam, p = power_law_task(3.0, 0.3)
    t = np.geomspace(1, 1e4, 5)
    lazy = rich_linear_curve(lam, p, t, gamma=0.0)
    rich = rich_linear_curve(lam, p, t, gamma=4.0)
    assert np.all(rich.loss < lazy.loss)
    assert np.all(np.diff(rich.kernel_scale) > 0) and np.all(rich.effective_time > t)


@settings(max_examples=20, deadline=None)
@given(st.floats(1.2, 3.0), st.floats(0.2, 2.0), st.floats(0.0, 8.0))
def test_fuzz_rich_curve_monotone(alpha, beta, gamma):
    lam, p = power_law_task(alpha, beta, exact_modes=200, k_max=1e8, per_decade=20)
    t = np.geomspace(0.1, 100, 5)
    r = rich_linear_curve(lam, p, t, gamma=gamma, check=False)
    assert np.all(np.isfinite(r.loss)) and np.all(np.diff(r.loss) < 0) and r.loss[0] < p.sum()


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: chi(-0.5), "beta"),
        (lambda: task_class(1.0, 0.5), "alpha"),
        (lambda: power_law_task(1.5, 0.0), "beta"),
        (lambda: rich_linear_curve([1.0, -1.0], [1.0, 1.0], [1.0], gamma=1.0), "eigenvalues"),
        (lambda: rich_linear_curve([1.0], [1.0], [2.0, 1.0], gamma=1.0), "t"),
        (lambda: rich_linear_curve([1.0], [1.0], [1.0], gamma=-1.0), "gamma"),
        (lambda: simulate_projected_gd([1.0], [1.0], [1.0], N=0, gamma=1.0), "N"),
        (lambda: train_projected_gd([1.0], [1.0], [1.0], N=4, gamma=1.0, max_lr=0.0), "max_lr"),
    ],
)
def test_bad_inputs(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
