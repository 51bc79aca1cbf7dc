import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmech.theory.schedules import (
    constant_schedule,
    cosine_schedule,
    final_loss,
    final_loss_gradient,
    functional_scaling_law,
    optimal_schedule,
    phase_heuristic,
    power_law_problem,
    schedule_shape,
    schedule_study,
    tune_peak_lr,
)
from lmech.spectra import power_law_problem as spectra_power_law_problem
from lmech.theory.sgd import critical_lr, learning_curve


@pytest.mark.parametrize("noise, B, dynamics", [(0.0, 1, "exact"), (0.01, 3, "exact"), (0.01, 2, "fsl")])
def test_adjoint_gradient_matches_finite_differences(noise, B, dynamics):
    lam, v2 = power_law_problem(60, 1.5, 0.8)
    rng = np.random.default_rng(0)
    etas = rng.uniform(0.1, 0.9, 40)
    L, g = final_loss_gradient(lam, v2, etas, B, noise, dynamics=dynamics)
    if dynamics == "exact":
        loss = lambda e: final_loss(lam, v2, e, B, noise)  # noqa: E731
    else:
        loss = lambda e: functional_scaling_law(lam, v2, e, B, noise).loss[-1]  # noqa: E731
    assert L == pytest.approx(loss(etas), rel=1e-12)
    h = 1e-6
    fd = np.array([(loss(etas + h * e) - loss(etas - h * e)) / (2 * h) for e in np.eye(40)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-10 * abs(L))


def test_fsl_optimum_is_near_optimal_for_the_exact_recursion():
    """The functional scaling law's optimal schedule, run through (S1), loses little to the exact optimum."""
    lam, v2 = power_law_problem(200, 1.5, 0.5)
    exact = optimal_schedule(lam, v2, 200)
    fsl = optimal_schedule(lam, v2, 200, dynamics="fsl")
    assert fsl.dynamics == "fsl" and fsl.converged
    assert fsl.loss == pytest.approx(functional_scaling_law(lam, v2, fsl.lr).loss[-1], rel=1e-12)
    assert fsl.exact_loss == pytest.approx(final_loss(lam, v2, fsl.lr), rel=1e-12)
    assert exact.exact_loss == exact.loss
    assert exact.loss <= fsl.exact_loss <= 1.05 * exact.loss
    assert fsl.exact_loss < exact.constant_loss


def test_final_loss_agrees_with_learning_curve():
    lam, v2 = power_law_problem(80, 1.5, 1.0)
    etas = 0.7 * cosine_schedule(50, warmup=5)
    ref = learning_curve(lam, v2, 0.7, 2, 50, 0.01, schedule=etas / 0.7).loss[-1]
    assert final_loss(lam, v2, etas, 2, 0.01) == pytest.approx(ref, rel=1e-12)


def _volterra_direct(lam, v2, etas, B, noise):
    """(S2) by its O(T^2 N) definition: L_t = F(tau_t) + (1/B) sum_{s<t} eta_s^2 (L_s + noise) K(tau_t - tau_{s+1})."""
    tau = np.concatenate([[0.0], np.cumsum(etas)])
    K = lambda u: np.sum(lam**2 * np.exp(-2 * lam * u))  # noqa: E731
    L = np.empty(etas.size + 1)
    for t in range(etas.size + 1):
        L[t] = np.sum(v2 * np.exp(-2 * lam * tau[t])) + sum(
            etas[s] ** 2 * (L[s] + noise) * K(tau[t] - tau[s + 1]) for s in range(t)) / B
    return L


def test_functional_scaling_law_is_the_volterra_sum_and_the_small_step_limit():
    lam, v2 = power_law_problem(40, 1.5, 1.0)
    etas = 0.8 * cosine_schedule(60, warmup=6)
    fsl = functional_scaling_law(lam, v2, etas, 2, 0.02)
    np.testing.assert_allclose(fsl.loss, _volterra_direct(lam, v2, etas, 2, 0.02), rtol=1e-12)
    assert fsl.time[-1] == pytest.approx(etas.sum()) and np.all(fsl.signal <= fsl.loss + 1e-15)
    # the exact recursion (S1) converges to (S2) as the step shrinks at fixed intrinsic time: error O(eta)
    errs = []
    for k in (2, 4, 8):  # split every step into k steps of rate eta/k (same tau grid)
        sched = np.repeat(etas / k, k)
        s1 = learning_curve(lam, v2, 0.8 / k, 2, sched.size, 0.02, schedule=sched / (0.8 / k)).loss
        errs.append(np.max(np.abs(functional_scaling_law(lam, v2, sched, 2, 0.02).loss / s1 - 1)))
    assert errs[0] < 0.05
    assert errs[1] == pytest.approx(errs[0] / 2, rel=0.15) and errs[2] == pytest.approx(errs[1] / 2, rel=0.15)


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
        (lambda: functional_scaling_law([1.0, 0.5], [0.5, 0.5], [0.1, -0.1]), ValueError, "lrs"),
        (lambda: optimal_schedule([1.0, 0.5], [0.5, 0.5], 10, dynamics="sde"), ValueError, "dynamics"),
        (lambda: functional_scaling_law([1.0, 0.5], [0.5, 0.5], [0.1], batch_size=0), ValueError, "batch_size"),
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


def test_schedule_power_law_problem_is_the_spectra_problem():
    # the claims build it with lmech.spectra: lam ~ k^-alpha, power ~ k^-(alpha beta + 1), both normalised
    lam, v2 = power_law_problem(300, 1.5, 0.5)
    ref_lam, ref_v2 = spectra_power_law_problem(300, 1.5, 1.5 * 0.5 + 1, normalize=True)
    np.testing.assert_allclose(lam, ref_lam, rtol=1e-13)
    np.testing.assert_allclose(v2, ref_v2, rtol=1e-13)


def test_schedule_study_losses_match_the_recursion():
    lam, v2 = power_law_problem(80, 1.5, 0.5)
    st_ = schedule_study(lam, v2, (30, 60), 40, 1, 1e-3)
    assert sorted(st_.by_horizon) == [30, 40, 60] and list(st_.lr) == ["optimal", "constant", "cosine"]
    np.testing.assert_array_equal(st_.window, np.arange(39, 41))   # the last 5 % of 40 steps, at least 2 records
    assert np.all(st_.lr["constant"] == st_.by_horizon[40].constant_lr)
    for name, lr in st_.lr.items():   # each schedule's losses, recomputed with the SGD theory over every step
        curve = learning_curve(lam, v2, lr.max(), 1, 40, 1e-3, schedule=lr / lr.max()).loss
        assert st_.final_loss[name] == pytest.approx(curve[-1], rel=1e-8)
        assert st_.window_loss[name] == pytest.approx(curve[39:41].mean(), rel=1e-8)
    assert st_.final_loss["optimal"] <= min(st_.final_loss["constant"], st_.final_loss["cosine"])
    assert st_.fsl.dynamics == "fsl" and st_.fsl.lr.size == 40
    summary = st_.summary()
    assert summary["fsl_optimum"]["ratio_to_exact_optimum"] == pytest.approx(st_.fsl.exact_loss / st_.final_loss["optimal"])
    with pytest.raises(ValueError, match="`steps`"):
        schedule_study(lam, v2, (30,), 10)
    with pytest.raises(ValueError, match="`horizons`"):
        schedule_study(lam, v2, (2,), 40)


@pytest.mark.parametrize("fsl", [False, True])
def test_dense_adjoint_equals_the_step_by_step_adjoint(fsl):
    from lmech.theory import schedules as S
    lam, v2 = power_law_problem(200, 1.5, 2.5)
    lam_p, c0, _, s2, B = S._setup(lam, v2, 3, 1e-3)
    etas = np.random.default_rng(1).uniform(0.2, 0.9, 300)
    La, ga = S._loss_and_grad_dense(lam_p, c0, s2, B, etas, fsl=fsl)
    Lb, gb = S._loss_and_grad_steps(lam_p, c0, s2, B, etas, fsl=fsl)
    assert La == pytest.approx(Lb, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-12 * np.abs(gb).max())
