"""The result contract of every solver (see :mod:`lmech.results`).

Every public function of ``lmech.theory`` (all sub-modules, through their ``__all__``),
``lmech.kernels`` and ``lmech.spectra`` must either have cases in ``CASES`` (it returns a
:class:`SolverResult`) or be listed, with a reason, in ``NOT_SOLVERS``. A new public function
that is in neither makes ``test_every_public_function_is_classified`` fail, so no solver can
skip the contract silently.

Each case runs a solver on a tiny valid input (or a deliberately failing one) and checks:
every base field present and typed, ``status`` the expected one, ``message`` a string,
numeric payload finite when converged, and a ConvergenceWarning exactly when not converged.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import typing
import warnings

import numpy as np
import pytest

import lmech.kernels
import lmech.spectra
import lmech.theory
from lmech.results import STATUSES, ConvergenceWarning, SolverResult

# --------------------------------------------------------------------------- enumeration
PACKAGES = (lmech.theory, lmech.kernels, lmech.spectra)


def _public_modules():
    mods = []
    for pkg in PACKAGES:
        mods.append(pkg)
        if hasattr(pkg, "__path__"):
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                if not any(part.startswith("_") for part in info.name.split(".")):
                    mods.append(importlib.import_module(info.name))
    return mods


def _public_functions() -> dict:
    """{'module.qualname': function} over the __all__ of every public module (re-exports merged)."""
    out = {}
    for mod in _public_modules():
        names = getattr(mod, "__all__", None)
        if names is None:
            if mod is lmech.theory:  # the package docstring only; its sub-modules are walked
                continue
            raise AssertionError(f"public module {mod.__name__} has no __all__")
        for name in names:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or not callable(obj):
                continue
            out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return out


# Public functions that do not return a SolverResult (formulas, moment builders, fits with
# their own result types, kernels and spectra). Reason after each group.
NOT_SOLVERS = {
    # alignment: a kernel-target statistic and closed-form predictions (plain arrays)
    "lmech.theory.alignment.centered_alignment": "statistic of a kernel (array)",
    "lmech.theory.alignment.final_alignment": "closed-form array",
    "lmech.theory.alignment.final_kernel_gap": "closed-form array",
    # plain array of a linear recursion (the lazy-limit reference; exact, no iteration to report)
    "lmech.theory.dmft.lazy.static_kernel_gd": "closed-form array",
    "lmech.theory.dmft.particles.two_layer_particles": "raw per-replica tensors (typed result: dmft.two_layer)",
    "lmech.theory.dmft.particles.gaussian_points": "array of quadrature points",
    "lmech.theory.dmft.responses.pathwise_responses": "response tensor (building block of dmft.deep)",
    "lmech.theory.dmft.state.combine": "elementwise map over an iteration state (not a solver)",
    # exact counting / closed-form probabilities (plain numbers or arrays)
    "lmech.theory.capacity.cover_count": "integer count",
    "lmech.theory.capacity.separable_fraction": "closed-form array",
    "lmech.theory.capacity.log_separable_fraction": "closed-form array",
    "lmech.theory.capacity.fixed_space_dim": "integer count",
    "lmech.theory.capacity.permutation_orbit_count": "integer count",
    "lmech.theory.capacity.cover_log_likelihood": "float (a log-likelihood)",
    # grokking: a closed-form loss, a crossing time and a step-count estimate (arrays / floats)
    "lmech.theory.grokking.quadratic_test_loss": "closed-form array",
    "lmech.theory.grokking.first_crossing": "array of times",
    "lmech.theory.grokking.reversal_steps": "float (an estimated step count)",
    # circle task: closed-form kernels, spectra and lazy curves (arrays)
    "lmech.theory.circle.circle_ntk": "closed-form kernel",
    "lmech.theory.circle.circle_ntk_spectrum": "FFT spectrum",
    "lmech.theory.circle.lazy_circle_curve": "closed-form curve",
    # DMFT helpers returning arrays / floats
    "lmech.theory.dmft.learning_rules.lazy_effective_kernel": "kernel matrix",
    "lmech.theory.dmft.learning_rules.kernel_alignment": "float",
    # feature learning: formulas and a frozen exponents record (not a solver)
    "lmech.theory.feature_learning.chi": "formula",
    "lmech.theory.feature_learning.task_class": "string label",
    "lmech.theory.feature_learning.feature_learning_exponents": "exponents record, no iteration",
    "lmech.theory.feature_learning.power_law_task": "spectrum builder",
    # ICL: quadrature and formulas
    "lmech.theory.icl.mp_quadrature": "Gauss quadrature nodes/weights",
    "lmech.theory.icl.mp_moments": "closed-form moments",
    "lmech.theory.icl.icl_bayes_risk": "closed-form array",
    "lmech.theory.icl.polynomial_risk_iso": "float",
    "lmech.theory.icl.power_law_exponent": "least-squares slope (float)",
    # input validation
    "lmech.theory.kappa.check_spectrum": "validation helper",
    # kernel curves: formulas
    "lmech.theory.kernel_curves.asymptotic_level_curve": "closed-form array",
    # Talbot contour building blocks
    "lmech.theory.laplace.talbot_nodes": "contour nodes record",
    "lmech.theory.laplace.talbot_sum": "array",
    # precision laws: formulas
    "lmech.theory.precision.precision_factor": "formula",
    "lmech.theory.precision.effective_parameters": "formula",
    "lmech.theory.precision.precision_loss": "formula",
    "lmech.theory.precision.ptq_degradation": "formula",
    # scaling: formulas, exponent records, a generic power-law fit
    "lmech.theory.scaling.rf_transfer": "array (Talbot sum)",
    "lmech.theory.scaling.width_bottleneck": "float",
    "lmech.theory.scaling.data_bottleneck": "float",
    "lmech.theory.scaling.rf_exponents": "exponents record",
    "lmech.theory.scaling.compute_optimal": "closed-form record",
    "lmech.fits.fit_power_law": "generic fit with its own result type (re-exported by scaling)",
    # deep linear networks from random init: problem builder
    "lmech.theory.deep_linear_init.power_law_task": "spectrum and teacher builder",
    "lmech.theory.scaling.compute_frontier": "grid + parabola record over rf_loss_curve (which warns itself)",
    # schedules: losses, gradients and schedule shapes
    "lmech.theory.schedules.final_loss": "float",
    "lmech.theory.schedules.final_loss_gradient": "(loss, gradient)",
    "lmech.theory.schedules.tune_peak_lr": "(lr, loss)",
    "lmech.theory.schedules.cosine_schedule": "array",
    "lmech.theory.schedules.constant_schedule": "array",
    "lmech.theory.schedules.schedule_shape": "dict of shape statistics",
    "lmech.theory.schedules.phase_heuristic": "string label",
    "lmech.theory.schedules.power_law_problem": "problem builder (eigenvalues, target power)",
    "lmech.theory.schedules.schedule_study": "record of OptimalScheduleResults (each checked here via optimal_schedule)",
    # SGD helpers
    "lmech.theory.sgd.critical_lr": "float/array (root of a scalar equation)",
    "lmech.theory.sgd.gaussian_equivalent": "GaussianEquivalent record of spectral inputs (arrays)",
    # TD: moment builders, fixed point, stability
    "lmech.theory.td.td_fixed_point": "linear solve (array)",
    "lmech.theory.adaptive_kernel.krr_predict": "linear solve (array)",
    "lmech.theory.td.td_stability": "(bool, float)",
    "lmech.theory.td.max_stable_lr": "float (bisection; warns ConvergenceWarning itself)",
    "lmech.theory.td.linear_reward_moments": "moment builder",
    "lmech.theory.td.markov_chain_moments": "moment builder",
    "lmech.theory.td.stationary_distribution": "array",
    # spectral outliers: Marchenko-Pastur formulas
    "lmech.theory.spectral_outliers.bulk_edges": "closed-form (lower, upper) edges",
    "lmech.theory.spectral_outliers.mp_resolvent": "closed-form arrays",
    "lmech.theory.spectral_outliers.free_outlier_closed_form": "closed-form array",
    # two-point: spectrum helper
    "lmech.theory.two_point.random_feature_spectrum": "spectrum builder",
    # variance onset: records and fits that are not SolverResults
    "lmech.theory.variance_onset.onset_sample_size": "OnsetResult record (root of a formula)",
    "lmech.theory.variance_onset.half_variance_sample_size": "OnsetResult record",
    "lmech.theory.variance_onset.fit_onset_exponent": "fit record",
    "lmech.theory.variance_onset.toy_onset": "closed-form record",
    "lmech.theory.variance_onset.relu_ntk_sphere_spectrum": "spectrum builder",
    "lmech.theory.variance_onset.gram_learning_curve": "array from kernel_curves.learning_curve (which warns itself)",
    # kernels: closed-form kernels and empirical NTKs
    "lmech.kernels._analytic.mlp_kernels": "closed-form kernels",
    "lmech.kernels._analytic.mlp_kernels_of_cosine": "closed-form kernels",
    "lmech.kernels._analytic.nngp_mlp": "kernel matrix",
    "lmech.kernels._analytic.ntk_mlp": "kernel matrix",
    "lmech.kernels._empirical.empirical_ntk": "kernel matrix",
    # spectra: spectrum builders and projections
    "lmech.spectra.power_law": "array",
    "lmech.spectra.power_law_problem": "problem record",
    "lmech.spectra.empirical_spectrum": "eigendecomposition record",
    "lmech.spectra.target_coefficients": "array",
    "lmech.spectra.target_power": "array",
    "lmech.spectra.cumulative_power": "array",
    "lmech.spectra.nystrom_extension": "array",
    "lmech.spectra.sphere_multiplicity": "array",
    "lmech.spectra.dot_product_kernel_spectrum": "spectrum record",
}


# --------------------------------------------------------------------------- tiny inputs
def _spectrum():
    lam = 1.0 / (1.0 + np.arange(20)) ** 1.5
    return lam, lam.copy()


def _xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 6)), rng.standard_normal(4)


def _pool():
    rng = np.random.default_rng(1)
    psi = rng.standard_normal((30, 5))
    return psi, psi @ rng.standard_normal(5) + 0.1 * rng.standard_normal(30)


def _td_moments():
    from lmech.theory.td import linear_reward_moments

    S = np.diag([1.0, 0.5])
    return linear_reward_moments(np.stack([S, 0.5 * S]), np.array([1.0, -0.5]))


def _chain():
    rng = np.random.default_rng(2)
    P = rng.dirichlet(np.ones(5), size=5)
    return P, rng.standard_normal((5, 3)), rng.standard_normal(5)


def _spike():
    rng = np.random.default_rng(3)
    U, V = np.linalg.qr(rng.standard_normal((20, 2)))[0], np.linalg.qr(rng.standard_normal((30, 2)))[0]
    return rng.standard_normal((20, 30)) / np.sqrt(30), U, np.array([2.0, 1.5]), V


def _capacity_counts():
    from lmech.theory.capacity import separable_fraction

    P = np.arange(6, 25, 2)
    trials = np.full(P.shape, 200)
    return P, np.round(trials * separable_fraction(P, 7)).astype(int), trials


def _precision_data():
    from lmech.theory.precision import PrecisionLaw, precision_loss

    law = PrecisionLaw(A=400.0, alpha=0.34, B=410.0, beta=0.28, E=1.7, gamma_w=2.7, gamma_a=2.2, gamma_kv=1.9)
    N = np.repeat([1e3, 4e3, 1.6e4], 3)
    D = np.tile([1e4, 1e5, 1e6], 3)
    bits = np.tile([3.0, 4.0, 6.0], 3)
    return law, N, D, precision_loss(N, D, law), bits, 0.1 * np.exp(-bits / 2.0) * D**0.3 / N**0.2


def _unit(D):
    return np.eye(D)[0]


def _cases():
    """{qualified name: [(label, thunk, expected status[, sentinel fields]), ...]}.

    Sentinel fields are payload fields documented to hold inf/NaN in a valid result (e.g. an
    infinite context ratio, an unchecked error estimate); the finiteness check skips them.
    """
    from lmech.theory import capacity, icl, kappa, laplace, precision, scaling, schedules, sgd, two_point
    from lmech.theory import deep_linear_init as dli
    from lmech.theory import grokking
    from lmech.theory import dmft
    from lmech.theory import feature_learning as fl
    from lmech.theory import kernel_curves as kc
    from lmech.theory import td
    from lmech.theory import spectral_outliers as so
    from lmech.theory import variance_onset as vo

    lam, v2 = _spectrum()
    X, y = _xy()
    psi, targets = _pool()
    K = _td_moments()
    law, N, D, L, bits, deg = _precision_data()
    ec = sgd.critical_lr(lam, 1)
    from lmech.theory import alignment as al

    Xa = np.linalg.qr(np.random.default_rng(0).standard_normal((12, 3)))[0] * np.sqrt(12)
    return {
        "lmech.theory.spectral_outliers.outlier_positions": [
            ("free", lambda: so.outlier_positions([0.5, 1.5], 40, 60), "converged"),
            ("dependent", lambda: so.outlier_positions([1.2], 50, 50, overlap=0.6), "converged"),
            ("too few bisections", lambda: so.outlier_positions([1.5], 50, 50, max_iter=3), "max_iter")],
        "lmech.theory.spectral_outliers.secular_outliers": [
            ("rank 2", lambda: so.secular_outliers(*_spike(), n_grid=200), "converged"),
            ("too few bisections", lambda: so.secular_outliers(*_spike(), n_grid=200, tol=1e-300), "max_iter")],
        "lmech.theory.alignment.silent_alignment_two_layer": [
            ("whitened", lambda: al.silent_alignment_two_layer([0.0, 1.0, 5.0], target_norm=1.0, sigma=0.1, dim=3),
             "closed_form")],
        "lmech.theory.alignment.two_layer_linear_gd": [
            ("stable", lambda: al.two_layer_linear_gd(Xa, Xa[:, 0], sigma=0.1, lr=0.1, n_steps=20), "closed_form"),
            ("lr too large", lambda: al.two_layer_linear_gd(Xa, 50 * Xa[:, 0], sigma=0.1, lr=5.0, n_steps=200),
             "diverged", {"v", "ntk", "loss", "alignment"})],
        "lmech.theory.alignment.mode_dynamics": [
            ("L=2", lambda: al.mode_dynamics([0.0, 5.0], depth=2, target_strength=1.0, s0=1e-3), "closed_form"),
            ("L=3", lambda: al.mode_dynamics([0.0, 5.0], depth=3, target_strength=1.0, s0=1e-3), "converged")],
        "lmech.theory.alignment.toy_kernel_evolution": [
            ("isotropic", lambda: al.toy_kernel_evolution(np.eye(3), np.ones(3), rate=0.1, t=[0.5, 1.0]),
             "converged")],
        "lmech.theory.capacity.fit_fixed_space_dim": [
            ("mle", lambda: capacity.fit_fixed_space_dim(*_capacity_counts()), "converged")],
        "lmech.theory.feature_learning.rich_linear_curve": [
            ("checked", lambda: fl.rich_linear_curve(lam, v2, [1.0, 10.0], gamma=0.5), "converged"),
            ("unchecked", lambda: fl.rich_linear_curve(lam, v2, [1.0, 10.0], gamma=0.5, check=False), "closed_form"),
            ("step too coarse", lambda: fl.rich_linear_curve(lam, v2, [1.0, 10.0], gamma=0.5, eps=0.5, rtol=1e-9),
             "max_iter")],
        "lmech.theory.grokking.grokking_dynamics": [
            ("two alphas", lambda: grokking.grokking_dynamics(X, _unit(X.shape[1]), [1.0, 4.0], eps=0.2, lr=0.5, steps=5),
             "closed_form", {"t_train", "t_test", "delay"}),  # inf: threshold not reached in 5 steps
            ("lr far too large", lambda: grokking.grokking_dynamics(X, _unit(X.shape[1]), [1.0], eps=0.2, lr=1e5,
                                                                    steps=50), "diverged")],
        "lmech.theory.grokking.ntk_krr_test_loss": [
            ("ridgeless", lambda: grokking.ntk_krr_test_loss(X, _unit(X.shape[1]), eps=0.2), "closed_form"),
            ("kernel GD", lambda: grokking.ntk_krr_test_loss(X, _unit(X.shape[1]), eps=0.2, lr=0.5, steps=[1, 10]),
             "closed_form")],
        "lmech.theory.grokking.max_margin": [
            ("separable", lambda: grokking.max_margin(X, np.sign(X[:, 0])), "converged"),
            ("not separable", lambda: grokking.max_margin(np.vstack([X[:1], X[:1]]), np.array([1.0, -1.0])),
             "max_iter")],
        "lmech.theory.grokking.margin_asymptotics": [
            ("separable", lambda: grokking.margin_asymptotics(X, np.sign(X[:, 0]), [10.0, 100.0], lr=0.5),
             "closed_form")],
        "lmech.theory.icl.icl_risk": [
            ("untied", lambda: icl.icl_risk([0.5, 2.0], [1, 2], noise=0.1), "closed_form"),
            ("tied", lambda: icl.icl_risk([0.5, 2.0], 2, model="tied"), "converged")],
        "lmech.theory.icl.rrs_risk": [
            ("untied", lambda: icl.rrs_risk(lam, [1, 2]), "closed_form", {"alpha"}),  # alpha = [inf]
            ("tied", lambda: icl.rrs_risk(lam, [1, 2], model="tied"), "converged", {"alpha"})],
        "lmech.theory.kappa.solve_kappa": [
            ("newton", lambda: kappa.solve_kappa(lam, [5, 50], 1e-3), "converged"),
            ("kappa = 0", lambda: kappa.solve_kappa(lam, 100.0, 0.0), "closed_form"),
            ("iteration cap", lambda: kappa.solve_kappa(lam, [5, 50], 1e-3, max_iter=1), "max_iter")],
        "lmech.theory.kernel_curves.learning_curve": [
            ("ridge", lambda: kc.learning_curve(lam, v2, [5, 50], 1e-3, 0.1), "converged")],
        "lmech.theory.kernel_curves.ood_learning_curve": [
            ("identity", lambda: kc.ood_learning_curve(lam, np.sqrt(v2), np.eye(20), [5, 50], 1e-2, 0.05),
             "converged")],
        "lmech.theory.kernel_curves.overfitting_peaks": [
            ("scan", lambda: kc.overfitting_peaks(lam, v2, 1e-4, 0.5, (5, 100), n_grid=40), "converged")],
        "lmech.theory.laplace.solve_kappa_complex": [
            ("talbot path", lambda: laplace.solve_kappa_complex(lam, 50, laplace.talbot_nodes([1.0, 5.0], 16).s),
             "converged")],
        "lmech.theory.laplace.invert_laplace": [
            ("checked", lambda: laplace.invert_laplace(lambda s: 1 / (s + 1), [0.5, 1.0]), "converged"),
            ("unchecked", lambda: laplace.invert_laplace(lambda s: 1 / (s + 1), [0.5, 1.0], check=False),
             "closed_form", {"error_estimate"}),  # NaN: not estimated
            ("non-finite", lambda: laplace.invert_laplace(lambda s: np.full(s.shape, np.inf + 0j), [1.0],
                                                          check=False), "diverged")],
        "lmech.theory.precision.fit_precision_law": [
            ("synthetic", lambda: precision.fit_precision_law(N, D, L, starts=1), "converged")],
        "lmech.theory.precision.fit_ptq_law": [
            ("synthetic", lambda: precision.fit_ptq_law(N, D, bits, deg), "closed_form")],
        "lmech.theory.precision.optimal_precision": [
            ("compute", lambda: precision.optimal_precision(1e21, law), "converged")],
        "lmech.theory.scaling.rf_loss_curve": [
            ("no bottleneck", lambda: scaling.rf_loss_curve(lam, v2, [1.0, 10.0]), "closed_form"),
            ("width", lambda: scaling.rf_loss_curve(lam, v2, [1.0, 10.0], N=10), "converged"),
            ("data", lambda: scaling.rf_loss_curve(lam, v2, [1.0, 10.0], P=10, noise=0.1), "converged"),
            ("both", lambda: scaling.rf_loss_curve(lam, v2, [1.0, 10.0], N=10, P=10, n_draws=1), "converged",
             {"floor"})],  # floor NaN: no closed form for finite N and P
        "lmech.theory.schedules.functional_scaling_law": [
            ("constant lr", lambda: schedules.functional_scaling_law(lam, v2, np.full(20, 0.5)), "closed_form"),
            ("lr far too large", lambda: schedules.functional_scaling_law(lam, v2, np.full(3000, 50.0)), "diverged")],
        "lmech.theory.schedules.optimal_schedule": [
            ("short horizon", lambda: schedules.optimal_schedule(lam, v2, 20), "converged")],
        "lmech.theory.sgd.learning_curve": [
            ("stable", lambda: sgd.learning_curve(lam, v2, 0.5, 1, 20), "closed_form"),
            ("50x critical lr", lambda: sgd.learning_curve(lam, v2, 50 * ec, 1, 2000), "diverged")],
        "lmech.theory.sgd.optimal_batch": [
            ("budget 64", lambda: sgd.optimal_batch(lam, v2, 64), "converged")],
        "lmech.theory.sgd.learning_curve_features": [
            ("pool", lambda: sgd.learning_curve_features(psi, targets, 0.1, 1, 20), "closed_form"),
            ("lr far too large", lambda: sgd.learning_curve_features(psi, targets, 10.0, 1, 2000), "diverged")],
        "lmech.theory.td.td_learning_curve": [
            ("stable", lambda: td.td_learning_curve(K, discount=0.9, lr=0.1, n_steps=20), "closed_form"),
            ("lr far too large", lambda: td.td_learning_curve(K, discount=0.9, lr=5.0, n_steps=2000), "diverged")],
        "lmech.theory.td.markov_td_learning_curve": [
            ("stable", lambda: td.markov_td_learning_curve(*_chain(), discount=0.9, lr=0.1, n_steps=20,
                                                           episode_length=2), "closed_form"),
            ("lr far too large", lambda: td.markov_td_learning_curve(*_chain(), discount=0.9, lr=20.0, n_steps=2000),
             "diverged"),
            ("online", lambda: td.markov_td_learning_curve(*_chain(), discount=0.9, lr=0.1, n_steps=20,
                                                           sampling="online"), "closed_form")],
        "lmech.theory.two_point.two_point_equivalent": [
            ("two ridges", lambda: two_point.two_point_equivalent(lam, 50, 1e-2, 1e-3, np.ones(20)), "converged")],
        "lmech.theory.two_point.sgd_fixed_data": [
            ("gd", lambda: two_point.sgd_fixed_data(lam, v2, 50, 1.0, None, [1.0, 10.0], 0.1), "converged",
             {"critical_lr"})],  # inf for gradient flow
        "lmech.theory.two_point.two_time_correlation": [
            ("gd", lambda: two_point.two_time_correlation(lam, v2, 50, [1.0, 5.0], 0.1), "converged")],
        "lmech.theory.variance_onset.noisy_feature_curve": [
            ("noisy", lambda: vo.noisy_feature_curve(lam, v2, [5, 50], noise_eigenvalues=0.1 * lam), "converged")],
        "lmech.theory.deep_linear_init.finite_population_gd": [
            ("plain", lambda: dli.finite_population_gd(dim=3, width=8, depth=2, gamma0=1.0, lr=0.1, steps=4, n_inits=3),
             "closed_form"),
            ("lr far too large", lambda: dli.finite_population_gd(dim=3, width=8, depth=2, gamma0=1.0, lr=50.0,
                                                                 steps=30, n_inits=2), "diverged")],
        "lmech.theory.deep_linear_init.whitened_online": [
            ("depth 2", lambda: dli.whitened_online(depth=2, gamma0=1.0, lr=0.1, steps=5), "closed_form"),
            ("lr far too large", lambda: dli.whitened_online(depth=1, gamma0=1.0, lr=20.0, steps=50), "diverged")],
        "lmech.theory.deep_linear_init.two_layer_population": [
            ("moments", lambda: dli.two_layer_population(spectrum=lam[:5], target=np.ones(5), gamma0=1.0, lr=0.1,
                                                         steps=5), "closed_form"),
            ("flow", lambda: dli.two_layer_population(spectrum=lam[:5], target=np.ones(5), gamma0=1.0, lr=0.1,
                                                      steps=5, closure="flow"), "closed_form"),
            ("lr far too large", lambda: dli.two_layer_population(spectrum=np.ones(3), target=np.ones(3), gamma0=1.0,
                                                                  lr=20.0, steps=40), "diverged")],
        "lmech.theory.deep_linear_init.repeated_data": [
            ("two data sets", lambda: dli.repeated_data(dim=3, n_samples=4, depth=1, gamma0=1.0, lr=0.05, steps=4,
                                                        n_datasets=2), "closed_form", {"residual"})],
        "lmech.theory.deep_linear_init.lazy_power_law": [
            ("stable", lambda: dli.lazy_power_law(spectrum=[1.0, 0.5], target=[1.0, 1.0], depth=1, lr=0.1, steps=5),
             "closed_form"),
            ("lr far too large", lambda: dli.lazy_power_law(spectrum=[1.0, 0.5], target=[1.0, 1.0], depth=1, lr=5.0,
                                                            steps=500), "diverged")],
        "lmech.theory.dmft.deep_linear.deep_linear": [
            ("causal", lambda: dmft.deep_linear(X, y, depth=1, gamma0=1.0, lr=0.1, steps=5), "closed_form"),
            ("picard", lambda: dmft.deep_linear(X, y, depth=2, gamma0=1.0, lr=0.1, steps=5, method="picard"),
             "converged"),
            ("picard, one sweep", lambda: dmft.deep_linear(X, y, depth=2, gamma0=1.0, lr=0.1, steps=5,
                                                           method="picard", max_sweeps=1), "max_iter"),
            ("lr far too large", lambda: dmft.deep_linear(X, y, depth=1, gamma0=1.0, lr=20.0, steps=50),
             "diverged")],
        "lmech.theory.dmft.sampling.two_layer": [
            ("forward", lambda: dmft.two_layer(X, y, gamma0=1.0, lr=0.3, steps=4, samples=1024), "closed_form"),
            ("forward, lr far too large", lambda: dmft.two_layer(X, y, gamma0=1.0, lr=60.0, steps=30, samples=256),
             "diverged"),
            ("iterate", lambda: dmft.two_layer(X, y, gamma0=1.0, lr=0.3, steps=4, samples=2000, max_sweeps=20,
                                               average=2, method="iterate", replicas=1), "converged"),
            ("one sweep", lambda: dmft.two_layer(X, y, gamma0=1.0, lr=0.3, steps=4, samples=2000, max_sweeps=1,
                                                 average=2, method="iterate"), "max_iter")],
        "lmech.theory.dmft.sampling.deep": [
            ("depth 2", lambda: dmft.deep(X, y, depth=2, gamma0=1.0, lr=0.3, steps=3, samples=500,
                                          response_samples=100, max_sweeps=10, average=2), "converged")],
        "lmech.theory.dmft.finite_width.two_layer_fluctuations": [
            ("wishart", lambda: dmft.two_layer_fluctuations(X, y, gamma0=1.0, lr=0.1, steps=4), "closed_form"),
            ("particles", lambda: dmft.two_layer_fluctuations(X, y, gamma0=1.0, lr=0.1, steps=4, activation="tanh",
                                                              samples=200, jacobian_samples=20), "closed_form")],
        "lmech.theory.dmft.learning_rules.learning_rule_dynamics": [
            ("fa", lambda: dmft.learning_rule_dynamics(X, y, rule="fa", gamma0=1.0, lr=0.1, steps=5), "closed_form"),
            ("particles", lambda: dmft.learning_rule_dynamics(X, y, rule="gd", gamma0=1.0, lr=0.1, steps=5,
                                                              activation="tanh", samples=200), "closed_form"),
            ("gln", lambda: dmft.learning_rule_dynamics(X, y, rule="gln", gamma0=1.0, lr=0.1, steps=5, samples=20),
             "closed_form"),
            ("hebbian runaway", lambda: dmft.learning_rule_dynamics(X, y, rule="hebb", gamma0=20.0, lr=1.0, steps=50),
             "diverged")],
        **_adaptive_cases(X, y),
    }


def _adaptive_cases(X, y):
    from lmech.theory import adaptive_kernel as ak

    Xt = X[:2] + 0.1
    wd = dict(gamma0=1.0, weight_decay=0.5, lr=0.05, samples=64)
    return {
        "lmech.theory.adaptive_kernel.weight_decay_two_layer": [
            ("stationary", lambda: ak.weight_decay_two_layer(X, y, Xt, y[:2], max_steps=2000, tol=1e-3, **wd), "converged"),
            ("too few steps", lambda: ak.weight_decay_two_layer(X, y, Xt, max_steps=3, **wd), "max_iter"),
            ("lr too large", lambda: ak.weight_decay_two_layer(X, 50 * y, Xt, max_steps=200, gamma0=1.0, weight_decay=0.5,
                                                               lr=5.0, samples=64, activation="linear"), "diverged")],
        "lmech.theory.adaptive_kernel.weight_decay_deep_linear": [
            ("depth 2", lambda: ak.weight_decay_deep_linear(X, y, Xt, y[:2], gamma0=1.0, weight_decay=0.1, depth=2),
             "closed_form"),
            ("dead", lambda: ak.weight_decay_deep_linear(X, y, Xt, y[:2], gamma0=1.0, weight_decay=100.0), "closed_form",
             {"ridge"})],
        "lmech.theory.adaptive_kernel.bayesian_deep_linear": [
            ("depth 3", lambda: ak.bayesian_deep_linear(X, y, Xt, y[:2], gamma0=2.0, beta=3.0, depth=3), "closed_form")],
        "lmech.theory.adaptive_kernel.bayesian_two_layer": [
            ("tanh", lambda: ak.bayesian_two_layer(X, y, Xt, y[:2], gamma0=1.0, beta=1.0, samples=2000), "converged"),
            ("one iteration", lambda: ak.bayesian_two_layer(X, y, Xt, gamma0=1.0, beta=1.0, samples=2000, max_iter=1),
             "max_iter")],
        "lmech.theory.adaptive_kernel.transfer_two_layer": [
            ("two couplings", lambda: ak.transfer_two_layer(X, y, X[::-1], y, Xt, y[:2], couplings=(0.0, 5.0),
                                                            max_steps=2000, tol=1e-3, **wd), "converged"),
            ("too few steps", lambda: ak.transfer_two_layer(X, y, X, y, Xt, couplings=1.0, max_steps=3, **wd), "max_iter")],
    }


CASES = _cases()
CASE_IDS = [(name, i) for name, cases in CASES.items() for i in range(len(cases))]


# --------------------------------------------------------------------------- checks
def test_every_public_function_is_classified():
    found = _public_functions()
    missing = sorted(set(found) - set(CASES) - set(NOT_SOLVERS))
    assert not missing, f"public functions with neither contract cases nor a NOT_SOLVERS entry: {missing}"
    stale = sorted((set(CASES) | set(NOT_SOLVERS)) - set(found))
    assert not stale, f"listed but not public any more: {stale}"
    assert not set(CASES) & set(NOT_SOLVERS)
    for name in NOT_SOLVERS:  # an excluded function must not be annotated as returning a result
        ret = typing.get_type_hints(found[name]).get("return")
        assert not (inspect.isclass(ret) and issubclass(ret, SolverResult)), f"{name} returns {ret.__name__}"


def _numbers(value):
    """Float arrays inside a payload value (arrays, scalars, lists, nested dataclasses)."""
    if value is None or isinstance(value, (str, bool, np.bool_)):
        return []
    if isinstance(value, np.ndarray):
        return [value.astype(float)] if value.dtype.kind in "iuf" else (
            [np.abs(value)] if value.dtype.kind == "c" else [])
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [np.asarray(float(value))]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _numbers(v)]
    if dataclasses.is_dataclass(value):
        return [a for f in dataclasses.fields(value) for a in _numbers(getattr(value, f.name))]
    return []


_BASE = {f.name for f in dataclasses.fields(SolverResult)}


def _check_contract(res, expected_status, caught, sentinels=()):
    assert isinstance(res, SolverResult)
    assert _BASE == {"converged", "status", "iterations", "residual", "message", "extras"}
    assert isinstance(res.converged, bool)
    assert res.status in STATUSES
    assert res.status == expected_status, (res.status, res.message)
    assert res.converged == (res.status in ("converged", "closed_form"))
    assert isinstance(res.iterations, (int, np.integer)) and res.iterations >= 0
    assert isinstance(res.residual, float)
    assert isinstance(res.message, str) and res.message
    assert isinstance(res.extras, dict)
    assert "status" in repr(res) and res.status in repr(res)
    if res.converged:
        for f in dataclasses.fields(res):
            if f.name not in _BASE and f.name not in sentinels:
                for arr in _numbers(getattr(res, f.name)):
                    assert np.all(np.isfinite(arr)), f"non-finite payload field {f.name} in a converged result"
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if res.converged:
        assert n_warn == 0, [str(w.message) for w in caught]
    else:
        assert n_warn >= 1, f"{res.status} result without a ConvergenceWarning"


@pytest.mark.parametrize("name,index", CASE_IDS, ids=[f"{n.rsplit('.', 1)[1]}-{CASES[n][i][0]}" for n, i in CASE_IDS])
def test_solver_honours_the_contract(name, index):
    _label, thunk, expected, *sentinels = CASES[name][index]
    sentinels = sentinels[0] if sentinels else set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = thunk()
    assert sentinels <= {f.name for f in dataclasses.fields(res)}
    _check_contract(res, expected, caught, sentinels)


def test_every_status_is_provoked():
    expected = {case[2] for cases in CASES.values() for case in cases}
    assert expected == set(STATUSES)


# --------------------------------------------------------------------------- the base class
@dataclasses.dataclass(frozen=True, kw_only=True)
class _Toy(SolverResult):
    value: float = 1.0


def test_status_is_derived_validated_and_shown():
    assert _Toy(converged=True, iterations=3, residual=1e-9).status == "converged"
    assert _Toy(converged=False, iterations=3, residual=1.0).status == "max_iter"
    closed = _Toy(converged=True, status="closed_form", iterations=0, residual=float("nan"))
    assert closed.status == "closed_form" and "closed_form" in repr(closed)
    assert _Toy(converged=False, status="diverged", iterations=5, residual=np.inf).status == "diverged"
    with pytest.raises(ValueError, match="status"):
        _Toy(converged=True, status="done", iterations=0, residual=0.0)
    with pytest.raises(ValueError, match="status='diverged' contradicts converged=True"):
        _Toy(converged=True, status="diverged", iterations=0, residual=0.0)
    with pytest.raises(ValueError, match="status='closed_form' contradicts converged=False"):
        _Toy(converged=False, status="closed_form", iterations=0, residual=0.0)
    with pytest.raises(TypeError, match="converged"):
        _Toy(converged="yes", iterations=0, residual=0.0)
    assert _Toy(converged=np.bool_(True), iterations=0, residual=0.0).converged is True
