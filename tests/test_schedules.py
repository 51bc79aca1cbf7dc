import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.claims import get_claim
from lmech.theory.schedules import (
    constant_schedule,
    cosine_schedule,
    final_loss,
    final_loss_gradient,
    optimal_schedule,
    phase_heuristic,
    power_law_problem,
    schedule_shape,
    tune_peak_lr,
)
from lmech.theory.sgd import critical_lr, learning_curve


@pytest.mark.parametrize("noise, B", [(0.0, 1), (0.01, 3)])
def test_adjoint_gradient_matches_finite_differences(noise, B):
    lam, v2 = power_law_problem(60, 1.5, 0.8)
    rng = np.random.default_rng(0)
    etas = rng.uniform(0.1, 0.9, 40)
    L, g = final_loss_gradient(lam, v2, etas, B, noise)
    h = 1e-6
    fd = np.array([(final_loss(lam, v2, etas + h * e, B, noise) - final_loss(lam, v2, etas - h * e, B, noise)) / (2 * h)
                   for e in np.eye(40)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-10 * abs(L))


def test_final_loss_agrees_with_learning_curve():
    lam, v2 = power_law_problem(80, 1.5, 1.0)
    etas = 0.7 * cosine_schedule(50, warmup=5)
    ref = learning_curve(lam, v2, 0.7, 2, 50, 0.01, schedule=etas / 0.7).loss[-1]
    assert final_loss(lam, v2, etas, 2, 0.01) == pytest.approx(ref, rel=1e-12)


def test_spec_reference_numbers():
    """check9 (independent script): 1000 modes, alpha 1.5, beta 0.5, B = 1: best constant 0.573 at T = 100,
    eta_max 1.345, optimal/constant = 0.84."""
    lam, v2 = power_law_problem(1000, 1.5, 0.5)
    assert critical_lr(lam, 1) == pytest.approx(1.345, abs=1e-3)
    res = optimal_schedule(lam, v2, 100)
    assert res.constant_lr == pytest.approx(0.573, abs=2e-3)
    assert res.gain == pytest.approx(0.84, abs=0.01)


def test_optimal_schedule_beats_baselines_and_respects_the_cap():
    lam, v2 = power_law_problem(200, 1.5, 2.0)
    T = 150
    res = optimal_schedule(lam, v2, T, 1, 1e-3)
    assert res.converged and res.lr.shape == (T,)
    assert np.all(res.lr >= 0) and np.all(res.lr <= res.lr_cap + 1e-12)
    assert res.lr_cap == pytest.approx(0.98 * res.critical_lr)
    assert res.loss <= res.constant_loss
    _, cos_loss = tune_peak_lr(lam, v2, cosine_schedule(T), 1, 1e-3, lr_cap=res.lr_cap)
    assert res.loss <= cos_loss
    assert res.curve[-1] == pytest.approx(res.loss) and res.curve[0] == pytest.approx(1.0)
    assert final_loss(lam, v2, res.lr, 1, 1e-3) == pytest.approx(res.loss, rel=1e-12)
    # stationarity: no small feasible perturbation helps (projected gradient ~ 0)
    _, g = final_loss_gradient(lam, v2, res.lr, 1, 1e-3)
    free = (res.lr > 1e-6) & (res.lr < res.lr_cap - 1e-6)
    assert np.max(np.abs(g[free])) < 1e-4 * res.loss


def test_knot_parameterisation_is_close_to_the_full_optimum():
    lam, v2 = power_law_problem(200, 1.5, 0.5)
    full = optimal_schedule(lam, v2, 400)
    knots = optimal_schedule(lam, v2, 400, n_knots=40)
    assert knots.knots is not None and knots.loss >= full.loss * (1 - 1e-9)
    assert knots.loss <= 1.02 * full.loss and knots.loss < knots.constant_loss


def test_tune_peak_lr_is_a_minimum():
    lam, v2 = power_law_problem(100, 1.5, 1.0)
    shape = cosine_schedule(80)
    peak, loss = tune_peak_lr(lam, v2, shape)
    for f in (0.95, 1.05):
        assert final_loss(lam, v2, f * peak * shape) >= loss * (1 - 1e-9)
    assert tune_peak_lr(lam, v2, constant_schedule(80))[1] == pytest.approx(
        learning_curve(lam, v2, tune_peak_lr(lam, v2, constant_schedule(80))[0], 1, 80).loss[-1])


def test_schedule_shapes():
    c = cosine_schedule(100)
    assert c[0] == pytest.approx(1.0) and c[-1] < 1e-3 and np.all(np.diff(c) <= 0)
    w = cosine_schedule(100, warmup=10, final_fraction=0.1)
    np.testing.assert_allclose(w[:10], np.arange(1, 11) / 10)
    assert w[-1] >= 0.1
    wsd = np.concatenate([np.full(90, 1.0), np.linspace(1.0, 0.0, 10)])
    sh = schedule_shape(wsd)
    assert sh["peak"] == 1.0 and sh["decay_fraction"] == pytest.approx(0.05)  # last >= 1/2 at step 94
    poly = (1 - np.arange(1000) / 1000) ** 1.5
    assert schedule_shape(poly)["delta"] == pytest.approx(1.5, abs=1e-6)
    assert phase_heuristic(1.5, 0.5) == "hard" and phase_heuristic(1.5, 2.0) == "easy"
    assert phase_heuristic(1.5, 0.5, noise=1e-3) == "easy"
    lam, v2 = power_law_problem(50, 1.5, 0.5)
    assert lam.sum() == pytest.approx(1.0) and v2.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: optimal_schedule([1.0, 0.5], [0.5, 0.5], 0), ValueError, "steps"),
        (lambda: optimal_schedule([1.0, 0.5], [0.5, 0.5], 10, 0), ValueError, "batch_size"),
        (lambda: optimal_schedule([1.0, 0.5], [0.5, 0.5], 10, [1, 2]), TypeError, "batch_size"),
        (lambda: optimal_schedule([1.0, 0.5], [0.5, 0.5], 10, lr_cap=-1.0), ValueError, "lr_cap"),
        (lambda: optimal_schedule([1.0, -0.5], [0.5, 0.5], 10), ValueError, "eigenvalues"),
        (lambda: final_loss([1.0, 0.5], [0.5, 0.5], [0.1, -0.1]), ValueError, "lrs"),
        (lambda: tune_peak_lr([1.0, 0.5], [0.5, 0.5], [0.0, 0.0]), ValueError, "shape"),
        (lambda: cosine_schedule(10, warmup=10), ValueError, "warmup"),
        (lambda: cosine_schedule(10, final_fraction=2.0), ValueError, "final_fraction"),
        (lambda: power_law_problem(10, -1.0, 0.5), ValueError, "alpha"),
        (lambda: phase_heuristic(0.5, 1.0), ValueError, "alpha"),
        (lambda: schedule_shape([1.0]), ValueError, "lr"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 40),
    alpha=st.floats(1.05, 2.5),
    beta=st.floats(0.2, 3.0),
    T=st.integers(2, 60),
    noise=st.floats(0.0, 0.05),
)
def test_fuzz_optimum_never_worse_than_constant(n, alpha, beta, T, noise):
    lam, v2 = power_law_problem(n, alpha, beta)
    res = optimal_schedule(lam, v2, T, 1, noise, max_iter=200)
    assert np.isfinite(res.loss) and res.loss <= res.constant_loss * (1 + 1e-12)
    assert np.all((res.lr >= 0) & (res.lr <= res.lr_cap + 1e-12))


@pytest.mark.parametrize("name", ["schedules.optimal.hard_phase", "schedules.optimal.easy_phase"])
@pytest.mark.parametrize("seed", [0, 1])
def test_schedule_claims_pass_quick(name, seed):
    res = get_claim(name).evaluate("quick", seed=seed)
    assert res.status == "passed", (res.value, res.checks, res.error)
