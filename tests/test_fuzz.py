"""Fuzz every public numerical function with edge values, one argument at a time.

For each public function there is a tiny valid baseline call (``BASELINES``); a function found
in a module's ``__all__`` that is neither there nor in ``EXCLUDED`` fails
``test_every_public_function_is_covered``, so new functions get fuzzed. Each argument of the
baseline is then replaced by edge values (None, NaN, inf, -1, 0, huge numbers, huge sizes,
strings, float seeds, empty and mis-shaped arrays). The contract checked:

* only ValueError/TypeError escape, and the message names an argument of the function in
  backticks (the project's "`name` must be ...; got value" shape);
* each call finishes within ``TIME_LIMIT`` seconds (absurd sizes must be refused before the
  work starts: a C loop cannot be interrupted);
* a returned NaN/inf comes with a flag: ``converged=False``/a non-converged ``status``, or a
  warning.

The fast profile (default run) uses a few edge values per argument; the ``slow`` profile uses the
full list plus hypothesis draws of random arrays and scalars.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
import signal
import time
import warnings

import numpy as np
import pytest

from lmech import spectra
from lmech.results import LmechWarning

TIME_LIMIT = 5.0

# ---------------------------------------------------------------------------------------------
# Modules whose ``__all__`` is walked, and what is excluded (with the reason).
# ---------------------------------------------------------------------------------------------
MODULES = [
    "lmech.sim.moe",
    "lmech.theory.capacity", "lmech.theory.circle", "lmech.theory.feature_learning", "lmech.theory.grokking",
    "lmech.theory.icl", "lmech.theory.kappa", "lmech.theory.kernel_curves",
    "lmech.theory.laplace", "lmech.theory.precision", "lmech.theory.scaling",
    "lmech.theory.schedules", "lmech.theory.sgd", "lmech.theory.td", "lmech.theory.two_point",
    "lmech.theory.variance_onset", "lmech.theory.spectral_outliers", "lmech.theory.dmft", "lmech.theory.dmft.lazy",
    "lmech.theory.deep_linear_init",
    "lmech.theory.dmft.learning_rules", "lmech.kernels", "lmech.spectra", "lmech.fits",
    "lmech.metrics", "lmech.sim.capacity", "lmech.sim.circle", "lmech.sim.coord_check",
    "lmech.sim.feature_learning", "lmech.sim.grokking", "lmech.sim.hp_trial", "lmech.sim.icl",
    "lmech.sim.kernel_regression", "lmech.sim.learning_rules", "lmech.sim.linear_sgd",
    "lmech.sim.mean_field", "lmech.sim.precision", "lmech.sim.random_features", "lmech.sim.td",
    "lmech.sim.variance_onset", "lmech.sim.spectral_outliers", "lmech.param", "lmech.theory.alignment",
    "lmech.sim.alignment",
]

EXCLUDED = {
    # takes an nn.Module (the thing to differentiate), not arrays or sizes
    "lmech.kernels.empirical_ntk": "needs an nn.Module",
    "lmech.param.classify": "needs an nn.Module",
    "lmech.sim.icl.evaluate_icl": "needs a trained DeepLinearAttention module",
    "lmech.sim.precision.fake_quantize": "acts on a torch tensor inside a model's forward pass",
    "lmech.sim.precision.post_train_quantize_loss": "needs a PrecisionRun (trained model)",
    # takes a callable as its main input: what it does with edge values is the callable's business
    "lmech.theory.laplace.invert_laplace": "main input is a callable F(s)",
    "lmech.theory.laplace.talbot_sum": "takes a TalbotNodes object and values computed from it",
    # network training loops: seconds per valid call, fuzzed through their validation tests
    "lmech.sim.coord_check.coord_check": "trains networks over a width grid (seconds per call)",
    "lmech.sim.hp_trial.run_trial": "trains a network from a config dict (seconds per call)",
    "lmech.sim.hp_trial.build_model": "builds a model from a config dict (validated by TrialConfig, like run_trial)",
    "lmech.sim.icl.train_icl": "trains attention models (seconds per call)",
    "lmech.sim.icl.sample_contexts": "takes an np.random.Generator; internal sampler of train_icl",
    "lmech.sim.icl.sample_context_stats": "takes an np.random.Generator; internal sampler",
    "lmech.sim.icl.polynomial_predictor_risk": "Monte Carlo over contexts (seconds per call)",
    "lmech.sim.circle.train_circle_mlp": "trains MLP ensembles (seconds per call)",
    "lmech.sim.kernel_regression.wide_network_curve": "trains networks (seconds per call)",
    "lmech.sim.kernel_regression.train_wide_network": "trains a network (seconds per call)",
    "lmech.sim.learning_rules.train_learning_rule": "trains networks (seconds per call)",
    "lmech.sim.mean_field.train_mean_field": "trains networks (seconds per call)",
    "lmech.sim.precision.train_low_precision": "trains a network (seconds per call)",
    "lmech.sim.precision.seed_mean_losses": "trains networks (seconds per call)",
    "lmech.sim.precision.ptq_degradations": "trains networks (seconds per call)",
    "lmech.sim.variance_onset.ntk_learning_curves": "trains networks (seconds per call)",
    "lmech.sim.variance_onset.train_relu_network": "takes torch tensors and trains a network",
    "lmech.sim.variance_onset.final_ntk_curves": "trains networks (seconds per call)",
    "lmech.sim.feature_learning.train_projected_gd": "trains with torch (seconds per call)",
    "lmech.sim.spectral_outliers.train_spectral_mlp": "trains MLPs; validation tested in test_spectral_outliers",
    # the DMFT solvers sample thousands of fields per sweep: a valid baseline is seconds
    "lmech.theory.dmft.two_layer": "seconds per valid call; fuzzed in the slow profile only",
    "lmech.theory.dmft.deep": "seconds per valid call; fuzzed in the slow profile only",
    "lmech.theory.dmft.two_layer_fluctuations": "seconds per valid call",
    "lmech.theory.dmft.learning_rule_dynamics": "seconds per valid call",
    # simulations of the claims refactor, owned elsewhere; their validation has its own tests
    "lmech.sim.linear_sgd.sgd_gaussian": "Monte Carlo simulation; validated in test_sgd",
    "lmech.sim.linear_sgd.sgd_fixed_data": "Monte Carlo simulation; validated in test_sgd",
    "lmech.sim.linear_sgd.sgd_random_features": "Monte Carlo simulation; validated in test_sgd",
    "lmech.sim.linear_sgd.sgd_pool": "Monte Carlo simulation; validated in test_sgd",
    "lmech.sim.td.simulate_td_chain": "Monte Carlo simulation; validated in test_td",
    "lmech.sim.td.simulate_td_gaussian": "Monte Carlo simulation; validated in test_td",
    "lmech.sim.td.simulate_td_online": "Monte Carlo simulation; validated in test_td",
    "lmech.param.check_optimizer": "needs a torch optimizer; refusals tested in test_param_robust",
    "lmech.sim.alignment.train_deep_linear": "trains networks; validated in test_alignment",
    "lmech.sim.alignment.train_two_layer_relu": "trains networks; validated in test_alignment",
    "lmech.sim.moe.moe_gpt": "builds an nn.Module from a shape mapping; validated in test_moe",
    "lmech.sim.moe.moe_param": "builds a Parameterization from a shape mapping; validated in test_moe",
    "lmech.sim.moe.init_stream": "initialises GPTs (a second per call)",
    "lmech.sim.moe.moe_coord_check": "trains GPTs over a grid (seconds per call)",
    "lmech.sim.moe.lr_sweep": "trains networks from TrialConfigs (seconds per call)",
}


def _public_functions():
    out, seen = {}, set()
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            # re-exports (lmech.theory.dmft -> .sampling) count once, under the first listing
            if inspect.isfunction(obj) and id(obj) not in seen:
                seen.add(id(obj))
                out[f"{modname}.{name}"] = obj
    return out


# ---------------------------------------------------------------------------------------------
# Tiny valid baseline calls.
# ---------------------------------------------------------------------------------------------
EV = spectra.power_law(8, 1.5)
TP = spectra.power_law(8, 1.2)
_rng = np.random.default_rng(0)
X6 = _rng.standard_normal((6, 3))
Y6 = _rng.standard_normal(6)
GRAM = X6 @ X6.T + np.eye(6)
TIMES = np.array([0.0, 1.0, 10.0])
LAG = np.stack([np.diag([1.0, 0.5, 0.25]), 0.5 * np.diag([1.0, 0.5, 0.25])])
LAG_R = None  # filled below once lmech.theory.td is imported


def _baselines():
    from lmech.theory import td as ttd
    from lmech.theory.precision import PrecisionLaw, PTQLaw

    law = PrecisionLaw(A=3.0, alpha=0.4, B=20.0, beta=0.5, E=0.05, gamma_w=2.0, gamma_a=1.5)
    ptq = PTQLaw(C_T=0.02, gamma_post=0.7, gamma_D=0.45, gamma_N=0.3)
    K = ttd.linear_reward_moments(LAG, np.array([1.0, -0.5, 0.2]))
    trans = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    phi = np.eye(3)[:, :2]
    relu = lambda t: np.maximum(t, 0.0)  # noqa: E731
    es = spectra.empirical_spectrum(GRAM)
    from lmech.sim.circle import circle_task
    from lmech.sim.variance_onset import sphere_task

    return {
        # theory.capacity
        "lmech.theory.capacity.cover_count": dict(n_points=6, n_dims=3),
        "lmech.theory.capacity.separable_fraction": dict(n_points=6, n_dims=3),
        "lmech.theory.capacity.log_separable_fraction": dict(n_points=6, n_dims=3),
        "lmech.theory.capacity.fixed_space_dim": dict(representation=np.stack([np.eye(3), np.eye(3)[[1, 2, 0]]]), atol=1e-8),
        "lmech.theory.capacity.permutation_orbit_count": dict(generators=[[1, 2, 0]], n=3),
        "lmech.theory.capacity.fit_fixed_space_dim": dict(n_points=[4, 6, 8], n_separable=[20, 12, 4], n_trials=[20, 20, 20]),
        "lmech.theory.capacity.cover_log_likelihood": dict(n_points=[4, 6, 8], n_separable=[20, 12, 4], n_trials=[20, 20, 20], n_dims=3.0),
        # theory.spectral_outliers
        "lmech.theory.spectral_outliers.bulk_edges": dict(n_rows=4, n_cols=6, variance=1.0),
        "lmech.theory.spectral_outliers.mp_resolvent": dict(w=[5.0, 9.0], aspect=0.5),
        "lmech.theory.spectral_outliers.outlier_positions": dict(spike=[0.5, 1.5], n_rows=4, n_cols=6, variance=1.0,
                                                                 overlap=0.3, tol=1e-10, max_iter=100),
        "lmech.theory.spectral_outliers.free_outlier_closed_form": dict(spike=[0.5, 1.5], n_rows=4, n_cols=6, variance=1.0),
        "lmech.theory.spectral_outliers.secular_outliers": dict(X=X6, U=np.ones((6, 1)) / 6**0.5, S=[2.0],
                                                                V=np.ones((3, 1)) / 3**0.5, n_grid=50, tol=1e-10),
        "lmech.sim.spectral_outliers.teacher_task": dict(P=4, D=3, n_outputs=2, noise=0.1, seed=0),
        # theory.grokking
        "lmech.theory.grokking.quadratic_test_loss": dict(l=X6[:, 0][:3], A=np.eye(3), teacher=np.eye(3)[0], linear=0.5),
        "lmech.theory.grokking.grokking_dynamics": dict(X=X6, teacher=np.eye(3)[0], alphas=[1.0, 4.0], eps=0.2, lr=0.5,
                                                         steps=6, record_every=2),
        "lmech.theory.grokking.ntk_krr_test_loss": dict(X=X6, teacher=np.eye(3)[0], eps=0.2, lr=0.5, steps=[0.0, 5.0]),
        "lmech.theory.grokking.first_crossing": dict(times=TIMES, curve=[1.0, 0.5, 0.1], threshold=0.2),
        "lmech.theory.grokking.max_margin": dict(X=X6, y=np.sign(X6[:, 0])),
        "lmech.theory.grokking.margin_asymptotics": dict(X=X6, y=np.sign(X6[:, 0]), steps=[10.0, 100.0], lr=0.5),
        "lmech.theory.grokking.reversal_steps": dict(X=X6, y=np.sign(X6[:, 0]), w=np.eye(3)[0], lr=0.5, fraction=0.5),
        # theory.alignment
        "lmech.theory.alignment.centered_alignment": dict(K=GRAM, y=Y6),
        "lmech.theory.alignment.silent_alignment_two_layer": dict(t=TIMES, target_norm=1.0, sigma=0.1, dim=3),
        "lmech.theory.alignment.two_layer_linear_gd": dict(X=X6, y=Y6, sigma=0.1, lr=0.05, n_steps=5),
        "lmech.theory.alignment.mode_dynamics": dict(t=TIMES, depth=3, target_strength=1.0, s0=0.01),
        "lmech.theory.alignment.final_alignment": dict(depth=3, dim=5),
        "lmech.theory.alignment.final_kernel_gap": dict(sigma=0.1, width=16, dim=5, n_train=2, target_norm=1.0),
        "lmech.theory.alignment.toy_kernel_evolution": dict(K0=GRAM, y=Y6, rate=0.1, t=[0.5, 1.0]),
        "lmech.sim.alignment.whitened_inputs": dict(P=6, D=3, seed=0),
        "lmech.sim.alignment.final_kernel_regression": dict(X=X6, y=Y6, X_test=X6, ntk=np.eye(3)),
        "lmech.sim.alignment.crossing_time": dict(t=TIMES, curve=[0.0, 1.0, 2.0], level=0.5),
        "lmech.sim.alignment.kernel_shape_change": dict(X=X6, loss=[1.0, 0.4, 0.1], ntk=np.stack([np.eye(3)] * 3)),
        # theory.circle
        "lmech.theory.circle.circle_ntk": dict(delta=np.linspace(0, 3, 5)),
        "lmech.theory.circle.circle_ntk_spectrum": dict(n_freq=4, n_grid=64),
        "lmech.theory.circle.lazy_circle_curve": dict(t=TIMES, target_power=TP[:4], n_grid=64),
        # theory.feature_learning
        "lmech.theory.feature_learning.chi": dict(beta=0.5),
        "lmech.theory.feature_learning.task_class": dict(alpha=2.0, beta=0.5),
        "lmech.theory.feature_learning.feature_learning_exponents": dict(alpha=2.0, beta=0.5),
        "lmech.theory.feature_learning.power_law_task": dict(alpha=2.0, beta=0.5, exact_modes=20, k_max=1e4, per_decade=5),
        "lmech.theory.feature_learning.rich_linear_curve": dict(eigenvalues=EV, target_power=TP, t=TIMES, gamma=0.5),
        # theory.icl
        "lmech.theory.icl.mp_quadrature": dict(ratio=0.5, n_nodes=8),
        "lmech.theory.icl.mp_moments": dict(ratio=0.5, k_max=4),
        "lmech.theory.icl.icl_risk": dict(alpha=1.5, depth=2, noise=0.1),
        "lmech.theory.icl.icl_bayes_risk": dict(alpha=1.5, noise=0.1),
        "lmech.theory.icl.polynomial_risk_iso": dict(alpha=1.5, step_sizes=[0.5, 0.3], noise=0.1),
        "lmech.theory.icl.rrs_risk": dict(eigenvalues=EV, depth=2),
        "lmech.theory.icl.power_law_exponent": dict(x=[1.0, 2.0, 4.0], y=[1.0, 0.5, 0.25]),
        # theory.kappa
        "lmech.theory.kappa.solve_kappa": dict(eigenvalues=EV, P=4, ridge=0.1, rtol=1e-13, max_iter=200),
        "lmech.theory.kappa.check_spectrum": dict(eigenvalues=EV),
        # theory.kernel_curves
        "lmech.theory.kernel_curves.learning_curve": dict(eigenvalues=EV, target_power=TP, P=[2, 4], ridge=0.1, noise=0.1),
        "lmech.theory.kernel_curves.ood_learning_curve": dict(eigenvalues=EV, target_coefficients=np.sqrt(TP), overlap=np.eye(8), P=[2, 4], ridge=0.1),
        "lmech.theory.kernel_curves.overfitting_peaks": dict(eigenvalues=EV, target_power=TP, ridge=1e-3, noise=0.1, P_range=(1.0, 20.0), n_grid=20),
        "lmech.theory.kernel_curves.asymptotic_level_curve": dict(alpha=[0.5, 2.0], effective_ridge=0.1),
        "lmech.theory.kernel_curves.cumulative_power": dict(eigenvalues=EV, target_power=TP),
        # theory.laplace
        "lmech.theory.laplace.solve_kappa_complex": dict(eigenvalues=EV, n=4.0, s=np.array([1.0 + 1.0j, 2.0])),
        "lmech.theory.laplace.talbot_nodes": dict(t=[1.0, 2.0], M=8),
        # theory.precision
        "lmech.theory.precision.precision_factor": dict(bits=[4.0, 8.0], gamma=2.0),
        "lmech.theory.precision.effective_parameters": dict(n_params=[1e3, 1e4], law=law, weight_bits=4.0),
        "lmech.theory.precision.precision_loss": dict(n_params=[1e3, 1e4], n_data=[1e4, 1e5], law=law, weight_bits=4.0),
        "lmech.theory.precision.ptq_degradation": dict(n_params=[1e3, 1e4], n_data=[1e4, 1e5], post_bits=[4.0, 6.0], law=ptq),
        "lmech.theory.precision.fit_precision_law": dict(
            n_params=np.repeat([1e3, 1e4, 1e5], 4), n_data=np.tile([1e4, 1e5], 6),
            loss=np.linspace(1.0, 0.2, 12), weight_bits=np.tile([4.0, 4.0, 8.0, 8.0], 3), starts=1),
        "lmech.theory.precision.fit_ptq_law": dict(
            n_params=np.repeat([1e3, 1e4, 1e5], 4), n_data=np.tile([1e4, 1e5], 6),
            post_bits=np.tile([3.0, 3.0, 6.0, 6.0], 3), degradation=np.linspace(0.3, 0.01, 12)),
        "lmech.theory.precision.optimal_precision": dict(compute=1e12, law=law),
        # theory.scaling
        "lmech.theory.scaling.rf_loss_curve": dict(eigenvalues=EV, target_power=TP, t=TIMES, N=4, n_draws=1, seed=0),
        "lmech.theory.scaling.rf_transfer": dict(eigenvalues=EV, N=4, tau=[1.0, 10.0], M=8),
        "lmech.theory.scaling.width_bottleneck": dict(eigenvalues=EV, target_power=TP, N=4),
        "lmech.theory.scaling.data_bottleneck": dict(eigenvalues=EV, target_power=TP, P=4, noise=0.1),
        "lmech.theory.scaling.rf_exponents": dict(a=1.5, b=1.2),
        "lmech.theory.scaling.compute_optimal": dict(time_exponent=0.5, width_exponent=0.3),
        "lmech.theory.scaling.compute_frontier": dict(eigenvalues=EV, target_power=TP, widths=[2, 4], compute=[10.0, 100.0]),
        "lmech.theory.scaling.fit_power_law": dict(x=[1.0, 2.0, 4.0, 8.0], y=[1.0, 0.5, 0.26, 0.12]),
        # theory.schedules
        "lmech.theory.schedules.functional_scaling_law": dict(eigenvalues=EV, target_power=TP, lrs=np.full(5, 0.3), batch_size=1, noise=0.1),
        "lmech.theory.schedules.final_loss": dict(eigenvalues=EV, target_power=TP, lrs=np.full(5, 0.3), batch_size=1, noise=0.1),
        "lmech.theory.schedules.final_loss_gradient": dict(eigenvalues=EV, target_power=TP, lrs=np.full(5, 0.3), batch_size=1, noise=0.1),
        "lmech.theory.schedules.tune_peak_lr": dict(eigenvalues=EV, target_power=TP, shape=np.linspace(1.0, 0.1, 5), batch_size=1, noise=0.1),
        "lmech.theory.schedules.optimal_schedule": dict(eigenvalues=EV, target_power=TP, steps=5, batch_size=1, noise=0.1, max_iter=20),
        "lmech.theory.schedules.schedule_study": dict(eigenvalues=EV, target_power=TP, horizons=[3, 5], steps=5),
        "lmech.theory.schedules.cosine_schedule": dict(steps=6, warmup=1, final_fraction=0.1),
        "lmech.theory.schedules.constant_schedule": dict(steps=6),
        "lmech.theory.schedules.schedule_shape": dict(lr=np.linspace(1.0, 0.1, 6)),
        "lmech.theory.schedules.phase_heuristic": dict(alpha=1.5, beta=0.5, noise=0.1),
        "lmech.theory.schedules.power_law_problem": dict(n_modes=8, alpha=1.5, beta=0.5),
        # theory.sgd
        "lmech.theory.sgd.learning_curve": dict(eigenvalues=EV, target_power=TP, lr=0.3, batch_size=1, steps=5, noise=0.1),
        "lmech.theory.sgd.critical_lr": dict(eigenvalues=EV, batch_size=1),
        "lmech.theory.sgd.optimal_batch": dict(eigenvalues=EV, target_power=TP, budget=64, noise=0.1, n_grid=4),
        "lmech.theory.sgd.gaussian_equivalent": dict(features=X6, targets=Y6),
        "lmech.theory.sgd.learning_curve_features": dict(features=X6, targets=Y6, lr=0.1, batch_size=2, steps=5),
        # theory.td
        "lmech.theory.td.td_learning_curve": dict(lag_moments=K, discount=0.5, lr=0.1, n_steps=5),
        "lmech.theory.td.markov_td_learning_curve": dict(transition=np.full((3, 3), 1 / 3), features=np.eye(3)[:, :2] + 0.1,
                                                         rewards=np.array([1.0, 0.0, -1.0]), discount=0.5, lr=0.1, n_steps=5),
        "lmech.theory.td.td_fixed_point": dict(lag_moments=K, discount=0.5),
        "lmech.theory.td.td_stability": dict(lag_moments=K, discount=0.5, lr=0.1),
        "lmech.theory.td.max_stable_lr": dict(lag_moments=K, discount=0.5),
        "lmech.theory.td.linear_reward_moments": dict(feature_lags=LAG, w_reward=np.array([1.0, -0.5, 0.2])),
        "lmech.theory.td.markov_chain_moments": dict(transition=trans, features=phi, rewards=np.array([1.0, 0.0, -1.0]), n_lags=2),
        "lmech.theory.td.stationary_distribution": dict(transition=trans),
        # theory.two_point
        "lmech.theory.two_point.two_point_equivalent": dict(eigenvalues=EV, n_samples=4, ridge1=0.1, ridge2=0.2, vector=np.sqrt(TP)),
        "lmech.theory.two_point.sgd_fixed_data": dict(eigenvalues=EV, target_power=TP, n_samples=4, lr=0.3, batch_size=1, steps=5, M=8),
        "lmech.theory.two_point.two_time_correlation": dict(eigenvalues=EV, target_power=TP, n_samples=4, times=[1.0, 2.0], M=8),
        "lmech.theory.two_point.random_feature_spectrum": dict(eigenvalues=EV, target_power=TP, projection=_rng.standard_normal((4, 8))),
        # theory.variance_onset
        "lmech.theory.variance_onset.noisy_feature_curve": dict(eigenvalues=EV, target_power=TP, P=[2.0, 4.0], noise_eigenvalues=[0.1], ridge=0.01),
        "lmech.theory.variance_onset.onset_sample_size": dict(P=[1.0, 2.0, 4.0], error_finite=[1.0, 0.9, 0.5], error_infinite=[1.0, 0.85, 0.3], tol=0.1, weights=[1.0, 2.0, 1.0]),
        "lmech.theory.variance_onset.half_variance_sample_size": dict(P=[1.0, 2.0, 4.0], error_ensemble=[1.0, 0.9, 0.5], error_single=[1.1, 1.0, 0.9], weights=[1.0, 2.0, 1.0]),
        "lmech.theory.variance_onset.fit_onset_exponent": dict(widths=[10, 100, 1000], P_star=[3.0, 9.5, 30.0]),
        "lmech.theory.variance_onset.toy_onset": dict(eigenvalues=EV, target_power=TP, widths=[4.0, 16.0], P=np.geomspace(1, 100, 8), ridge=0.1),
        "lmech.theory.variance_onset.relu_ntk_sphere_spectrum": dict(d=3, n_levels=4, n_quad=50),
        "lmech.theory.variance_onset.gram_learning_curve": dict(gram=GRAM, y=Y6, P=[2, 4]),
        # theory.deep_linear_init
        "lmech.theory.deep_linear_init.finite_population_gd": dict(dim=3, width=4, depth=2, gamma0=1.0, lr=0.1, steps=3, n_inits=2),
        "lmech.theory.deep_linear_init.whitened_online": dict(depth=2, gamma0=1.0, lr=0.1, steps=3),
        "lmech.theory.deep_linear_init.two_layer_population": dict(spectrum=EV, target=np.sqrt(TP), gamma0=1.0, lr=0.1, steps=3),
        "lmech.theory.deep_linear_init.repeated_data": dict(dim=2, n_samples=3, depth=1, gamma0=1.0, lr=0.05, steps=3, n_datasets=2),
        "lmech.theory.deep_linear_init.lazy_power_law": dict(spectrum=EV, target=np.sqrt(TP), depth=1, lr=0.1, steps=3),
        "lmech.theory.deep_linear_init.power_law_task": dict(dim=8, spectrum_exponent=1.5, target_exponent=2.0),
        # theory.dmft
        "lmech.theory.dmft.deep_linear": dict(X=X6, y=Y6, depth=1, gamma0=0.5, lr=0.2, steps=4),
        "lmech.theory.dmft.lazy_effective_kernel": dict(input_kernel=GRAM / 7.0, rule="bp", n_quad=16),
        "lmech.theory.dmft.lazy.static_kernel_gd": dict(K=GRAM, y=Y6, lr=0.05, steps=4),
        "lmech.theory.dmft.learning_rules.kernel_alignment": dict(kernel=GRAM, y=Y6),
        # kernels
        "lmech.kernels.mlp_kernels": dict(X1=X6, depth=1),
        "lmech.kernels.mlp_kernels_of_cosine": dict(cosine=np.linspace(-1, 1, 5), depth=1),
        "lmech.kernels.nngp_mlp": dict(X1=X6, depth=1),
        "lmech.kernels.ntk_mlp": dict(X1=X6, depth=1),
        # spectra
        "lmech.spectra.power_law": dict(n_modes=8, exponent=1.5),
        "lmech.spectra.power_law_problem": dict(n_modes=8, spectrum_exponent=1.5, power_exponent=1.2),
        "lmech.spectra.empirical_spectrum": dict(gram=GRAM, n_modes=4),
        "lmech.spectra.target_coefficients": dict(eigenfunctions=es.eigenfunctions, y=Y6),
        "lmech.spectra.target_power": dict(eigenfunctions=es.eigenfunctions, y=Y6),
        "lmech.spectra.nystrom_extension": dict(spectrum=es, cross_gram=GRAM[:2]),
        "lmech.spectra.sphere_multiplicity": dict(d=3, level=[0, 1, 2]),
        "lmech.spectra.dot_product_kernel_spectrum": dict(kernel_fn=relu, d=3, n_levels=4, n_nodes=40),
        # fits, metrics
        "lmech.metrics.rel_err_theory": dict(theory=[1.0, 2.0], sim=[1.1, 1.9]),
        "lmech.metrics.rel_err_sim": dict(theory=[1.0, 2.0], sim=[1.1, 1.9]),
        "lmech.metrics.abs_err": dict(theory=[1.0, 2.0], sim=[1.1, 1.9]),
        "lmech.metrics.log_ratio": dict(theory=[1.0, 2.0], sim=[1.1, 1.9]),
        "lmech.metrics.norm_rel_err_theory": dict(theory=[1.0, 2.0], sim=[1.1, 1.9]),
        # sim (functions of arrays and sizes that run in milliseconds)
        "lmech.sim.capacity.cyclic_shift_rep": dict(length=4, channels=1),
        "lmech.sim.grokking.polynomial_task": dict(P=6, D=3, n_test=5, linear=0.5, seed=0),
        "lmech.sim.grokking.train_two_layer": dict(X=X6, y=Y6, X_test=X6, y_test=Y6, alphas=[1.0], eps=0.2, lr=0.5,
                                                   steps=3, width=4, n_seeds=1, record_every=1, align_every=1, seed=0),
        "lmech.sim.grokking.separable_task": dict(P=6, D=3, n_test=5, seed=0),
        "lmech.sim.grokking.overtrain_logistic": dict(X=X6, y=np.sign(X6[:, 0]), X_test=X6, y_test=np.sign(X6[:, 0]),
                                                      lr=0.5, record_steps=[0, 5]),
        "lmech.sim.grokking.steps_to_reverse": dict(X=X6, y=np.sign(X6[:, 0]), w=np.eye(3)[0], lr=0.5, fraction=0.5,
                                                    max_steps=100),
        "lmech.sim.capacity.translation_rep_2d": dict(size=3, channels=1),
        "lmech.sim.capacity.dihedral_rep": dict(length=4, channels=1),
        "lmech.sim.capacity.permutation_rep": dict(perms=[[1, 2, 0], [0, 1, 2]]),
        "lmech.sim.capacity.symmetric_pairs_rep": dict(n=3),
        "lmech.sim.capacity.rotation_rep": dict(order=4, frequencies=[1], n_trivial=1),
        "lmech.sim.capacity.direct_sum": dict(),  # variadic; see _call
        "lmech.sim.capacity.is_invariantly_separable": dict(points=X6, labels=np.sign(Y6), representation=np.stack([np.eye(3)])),
        "lmech.sim.capacity.is_separable": dict(points=X6, labels=np.sign(Y6)),
        "lmech.sim.capacity.separability_experiment": dict(representation=np.stack([np.eye(3)]), n_points=[2, 4], n_trials=3, seed=0),
        "lmech.sim.capacity.conv_relu_features": dict(length=4, in_channels=1, out_channels=2, kernel_size=3, seed=0),
        "lmech.sim.circle.circle_task": dict(beta=1.0, n_freq=4, n_grid=16, seed=0),
        "lmech.sim.coord_check.fit_slope": dict(x=[1.0, 2.0, 3.0], y=[2.0, 4.1, 5.9]),
        "lmech.sim.feature_learning.simulate_projected_gd": dict(eigenvalues=EV, target_power=TP, t=TIMES, N=4, gamma=0.5, draws=1, seed=0),
        "lmech.sim.kernel_regression.rotated_test_overlap": dict(eigenvalues=EV, n_rotated=2, seed=0),
        "lmech.sim.kernel_regression.gaussian_feature_regression": dict(eigenvalues=EV, target_coefficients=np.sqrt(TP), P=[2, 4], ridge=0.1, n_trials=2, seed=0),
        "lmech.sim.kernel_regression.population_kernel_regression": dict(gram=GRAM, targets=Y6, P=[2, 4], ridge=0.1, n_trials=2, seed=0),
        "lmech.sim.mean_field.sphere_regression_task": dict(P=4, P_test=3, D=3, seed=1),
        "lmech.sim.mean_field.ensemble_loss": dict(f=_rng.standard_normal((2, 6)), y=Y6, ensemble_size=2),
        "lmech.sim.random_features.simulate_rf": dict(eigenvalues=EV, target_power=TP, t=TIMES, N=4, draws=1, seed=0),
        "lmech.sim.random_features.simulate_bottlenecks": dict(eigenvalues=EV, target_power=TP, sizes=[2, 4], draws=1, seed=0),
        "lmech.sim.td.ring_chain": dict(n_states=4, p_right=0.7),
        "lmech.sim.td.random_chain_mdp": dict(n_states=5, n_features=3, seed=0),
        "lmech.sim.td.ring_mdp": dict(n_states=6, n_features=3, max_frequency=2, seed=0),
        "lmech.sim.td.ar_gaussian_process": dict(n_features=4, rho=0.5, seed=0),
        "lmech.sim.linear_sgd.relu_random_features": dict(inputs=X6, n_features=4, seed=0),
        "lmech.sim.td.fourier_features": dict(n_states=4, n_features=3, max_frequency=2, seed=0),
        "lmech.sim.variance_onset.simulate_noisy_features": dict(eigenvalues=EV, target_power=TP, P=[2, 4], noise_eigenvalues=[0.1], draws=1, seed=0),
        "lmech.sim.variance_onset.sphere_task": dict(d=3, degree=2, seed=0),
    }


_BASE = None


def baselines():
    """The table, restricted to the public functions this checkout has (branches differ)."""
    global _BASE
    if _BASE is None:
        names = set(_public_functions())
        _BASE = {k: v for k, v in _baselines().items() if k in names}
    return _BASE


def _call(fn, kwargs):
    if fn.__name__ == "direct_sum":
        reps = kwargs.get("reps", [np.stack([np.eye(2)]), np.stack([np.eye(1)])])
        return fn(*reps)
    return fn(**kwargs)


# ---------------------------------------------------------------------------------------------
# Edge values.
# ---------------------------------------------------------------------------------------------
_BIG_INT = 10**400  # beyond float range


def edge_values(value, profile):
    """Edge values replacing one argument whose valid value is ``value``."""
    out = [None, "x", float("nan"), float("inf"), -1, 0, _BIG_INT, [], True]
    if profile == "slow":
        out += [-float("inf"), 1e300, -1e300, 0.5, 0.0, 1, 2**63, 1j]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out += [10**9, 0.5] + ([2.0, 1e18, -(10**9)] if profile == "slow" else [])
    elif isinstance(value, float):
        out += [float("inf"), 1e300] + ([-1e-300, 5e-324, 1e-300] if profile == "slow" else [])
    elif isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(value)
        except ValueError:  # a ragged list of arrays (direct_sum)
            arr = np.asarray([])
        out += [np.array([]), np.zeros((2, 2, 2))]
        if arr.dtype.kind in "fiu" and arr.size:
            nan = arr.astype(float).copy()
            nan.flat[0] = np.nan
            out += [nan, arr.astype(float) * 1e299, arr.astype(float) * 1e-300, arr[:1]]
            if profile == "slow":
                out += [-arr, np.zeros_like(arr, dtype=float), np.full(arr.shape, np.inf),
                        arr.astype(float).T[::-1]]
    elif isinstance(value, str):
        out += ["not-a-choice", ""]
    return out


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - only on failure
    raise _Timeout()


def _names_an_argument(message, fn):
    names = set(inspect.signature(fn).parameters) | {"reps"}
    found = set(re.findall(r"`([A-Za-z_][A-Za-z_0-9]*)", message))
    return bool(found & names)


# Result fields where NaN/inf is a documented value, not a failure: standard errors of fewer
# than two samples (every field ending in "se" or "stderr"), diagnostics, and these.
NONFINITE_OK = {
    "alpha",  # ICLRiskResult.alpha: inf means the infinite-context limit (rrs_risk)
    "P_star",  # OnsetResult.P_star: NaN exactly when found=False (checked in _flagged)
    "critical_lr",  # inf: no instability at any lr (gradient flow, batch_size=None)
    "heights",  # OverfittingPeaks.heights: inf at the ridgeless pole P = number of modes
    "delta",  # schedule_shape()["delta"]: NaN when under three positive rates in its window
    "t_train", "t_test", "delay",  # GrokkingDynamics: inf = the loss never dropped below its threshold
}


# Functions whose NaN/inf output for NaN/inf/zero input is their documented purpose.
NAN_PROPAGATING = {
    "lmech.metrics.rel_err_theory", "lmech.metrics.rel_err_sim", "lmech.metrics.abs_err",
    "lmech.metrics.log_ratio", "lmech.metrics.norm_rel_err_theory",  # see lmech.metrics docstring
    "lmech.sim.coord_check.fit_slope",  # NaN slope when y has zeros/NaN (documented: "no fit")
    "lmech.theory.grokking.first_crossing",  # inf = never crosses (documented); NaN curves never cross
}


def _nonfinite(x, depth=0):
    """True if a returned value (array, number, dataclass, tuple, dict) holds NaN or inf."""
    if depth > 3:
        return False
    if isinstance(x, (float, complex, np.floating, np.complexfloating)):
        return not np.isfinite(x)
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "fc" and not np.all(np.isfinite(x))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        skip = {"residual", "extras", "message", "iterations"} | NONFINITE_OK
        if getattr(x, "found", True) is False:
            return False
        return any(_nonfinite(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x)
                   if f.name not in skip and not f.name.endswith(("se", "stderr")))
    if isinstance(x, (tuple, list)):
        return any(_nonfinite(v, depth + 1) for v in x[:1000])
    if isinstance(x, dict):
        return any(_nonfinite(v, depth + 1) for k, v in list(x.items())[:1000] if k not in NONFINITE_OK)
    return False


def _flagged(result, caught):
    if caught:
        return True
    if getattr(result, "converged", True) is False:
        return True
    status = getattr(result, "status", None)
    if isinstance(status, str) and status not in ("converged", "closed_form"):
        return True
    # stability flags of the SGD/TD curves: inf asymptotes are documented where unstable
    stable = getattr(result, "stable", None)
    if stable is not None and not np.all(stable):
        return True
    return bool(np.any(getattr(result, "diverged", False)))


def check_call(name, fn, kwargs):
    """Run one call and return a failure description, or None if the contract holds."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _call(fn, kwargs)
    except _Timeout:
        return "timeout"
    except (ValueError, TypeError) as exc:
        elapsed = time.perf_counter() - t0
        if elapsed > TIME_LIMIT:
            return f"slow ({elapsed:.1f} s)"
        if not _names_an_argument(str(exc), fn):
            return f"unnamed {type(exc).__name__}: {str(exc)[:120]}"
        return None
    except Exception as exc:  # noqa: BLE001 - the point is to classify it
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - t0
    if elapsed > TIME_LIMIT:
        return f"slow ({elapsed:.1f} s)"
    if name not in NAN_PROPAGATING and _nonfinite(result) and not _flagged(result, [w for w in caught if issubclass(w.category, LmechWarning)]):
        return "unflagged NaN/inf"
    return None


def run_profile(name, profile):
    """Fuzz one function; return (number of calls, list of (argument, value, failure))."""
    fn = _public_functions()[name]
    base = baselines()[name]
    if fn.__name__ == "direct_sum":
        base = {"reps": [np.stack([np.eye(2)]), np.stack([np.eye(1)])]}
    calls, failures = 0, []
    for arg, value in base.items():
        for edge in edge_values(value, profile):
            kwargs = dict(base)
            kwargs[arg] = edge
            calls += 1
            if fn.__name__ == "direct_sum":
                kwargs = {"reps": edge if isinstance(edge, list) else [edge]}
            problem = check_call(name, fn, kwargs)
            if problem is not None:
                failures.append((arg, _short(edge), problem))
    return calls, failures


def _short(v):
    if isinstance(v, np.ndarray):
        return f"array{v.shape}" + (" nan" if v.dtype.kind == "f" and np.isnan(v).any() else "")
    text = repr(v)
    return text if len(text) < 40 else text[:37] + "..."


# Known failures still open, keyed by function; each entry is a reason. The test is strict:
# a listed function that passes fails the test, so the list shrinks as fixes land.
KNOWN = {}

# Open findings of the hypothesis profile (random draws; xfail when hit, pass when not).
KNOWN_SLOW = {
    "lmech.theory.icl.icl_risk": "valid depths above ~25 take over 5 s (the optimal polynomial's "
                                 "fit grows with depth): cost, not a hang; depth is capped at 1000",
}


def test_every_public_function_is_covered():
    names = set(_public_functions())
    missing = sorted(names - set(baselines()) - set(EXCLUDED))
    assert not missing, f"public functions with no fuzz baseline (add to BASELINES or EXCLUDED): {missing}"


NAMES = sorted(baselines())


@pytest.mark.parametrize("name", NAMES)
def test_baseline_call_is_valid(name):
    fn = _public_functions()[name]
    assert check_call(name, fn, baselines()[name]) is None


def _assert_profile(name, profile):
    calls, failures = run_profile(name, profile)
    if name in KNOWN:
        assert failures, f"{name} now passes: remove it from KNOWN"
        pytest.xfail(KNOWN[name])
    assert not failures, "\n".join(f"{arg}={v}: {p}" for arg, v, p in failures)


@pytest.mark.parametrize("name", NAMES)
def test_edge_values_fast(name):
    _assert_profile(name, "fast")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_edge_values_slow(name):
    _assert_profile(name, "slow")


# The DMFT solvers excluded above for their cost still refuse bad arguments before any work.
_DMFT_X = np.random.default_rng(1).standard_normal((4, 3))
_DMFT_Y = np.array([1.0, -1.0, 0.5, 0.0])
_DMFT_CASES = [
    ("two_layer", dict(gamma0=0.5, lr=0.1, steps=4)),
    ("deep", dict(depth=2, gamma0=0.5, lr=0.1, steps=4)),
    ("two_layer_fluctuations", dict(gamma0=0.5, lr=0.1, steps=4)),
    ("learning_rule_dynamics", dict(rule="gd", gamma0=0.5, lr=0.1, steps=4)),
]


@pytest.mark.parametrize("fname, kwargs", _DMFT_CASES)
@pytest.mark.parametrize("arg, value, exc", [
    ("seed", 0.5, TypeError), ("seed", "0", TypeError), ("seed", -1, ValueError),
    pytest.param("seed", 10**400, ValueError, id="seed-10**400"), ("samples", 10**9, ValueError), ("steps", 10**9, ValueError),
    ("steps", None, TypeError), ("lr", float("nan"), ValueError), ("gamma0", None, TypeError),
])
def test_dmft_solvers_validate_before_work(fname, kwargs, arg, value, exc):
    from lmech.theory import dmft

    fn = getattr(dmft, fname)
    if arg not in inspect.signature(fn).parameters:
        pytest.skip(f"{fname} has no `{arg}`")
    t0 = time.perf_counter()
    with pytest.raises(exc, match=f"`{arg}`"):
        fn(_DMFT_X, _DMFT_Y, **{**kwargs, arg: value})
    assert time.perf_counter() - t0 < 1.0


def _random_values():
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
                        elements=st.floats(-1e6, 1e6) | floats)
    # integers: small ones and absurd ones. Mid-range sizes (a few thousand) are valid requests
    # whose honest cost can pass the time limit; the caps are for the absurd ones.
    ints = st.integers(-5, 50) | st.integers(10**9, 10**30) | st.sampled_from([2**63, 10**400])
    return st.one_of(st.none(), floats, ints, arrays, st.text(max_size=3), st.lists(floats, max_size=4))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_random_arguments_hypothesis(name):
    """Hypothesis draws of random arrays/scalars for one argument at a time."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    fn = _public_functions()[name]
    base = baselines()[name]
    if not base or fn.__name__ == "direct_sum":
        pytest.skip("no keyword arguments to perturb")

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(arg=st.sampled_from(sorted(base)), value=_random_values())
    def run(arg, value):
        problem = check_call(name, fn, {**base, arg: value})
        assert problem is None, f"{arg}={_short(value)}: {problem}"

    if name in KNOWN_SLOW:
        try:
            run()
        except AssertionError:
            pytest.xfail(KNOWN_SLOW[name])
        return
    run()


# ---------------------------------------------------------------------------------------------
# Targeted regressions for what the fuzzing found (each was a crash, a hang or a silent NaN).
# ---------------------------------------------------------------------------------------------
def test_size_caps_state_the_limit():
    from lmech.spectra import dot_product_kernel_spectrum
    from lmech.theory.icl import mp_quadrature
    from lmech.theory.variance_onset import relu_ntk_sphere_spectrum

    relu = lambda t: np.maximum(t, 0.0)  # noqa: E731
    for call, name, limit in [
        (lambda: dot_product_kernel_spectrum(relu, 3, 10**6), "n_levels", "2000"),
        (lambda: relu_ntk_sphere_spectrum(3, 4, n_quad=10**6), "n_quad", "100000"),
        (lambda: mp_quadrature(0.5, 10_000), "n_nodes", "2000"),
    ]:
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=f"`{name}` must be an integer in \\[.*, {limit}\\].*cap"):
            call()
        assert time.perf_counter() - t0 < 0.5


def test_ntk_mlp_refuses_overflowing_inputs_instead_of_returning_inf():
    from lmech.kernels import ntk_mlp

    X = np.random.default_rng(0).standard_normal((4, 3))
    assert np.all(np.isfinite(ntk_mlp(X * 1e100)))  # large but representable: computed
    with pytest.raises(ValueError, match="`X1` must be inputs whose kernel fits in float64"):
        ntk_mlp(X * 1e299)


def test_seed_accepts_integral_floats_and_refuses_fractions():
    from lmech._validation import check_int

    assert check_int(0.0, "seed", lo=0) == 0  # the project-wide rule: integral floats accepted
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        check_int(0.5, "seed", lo=0)


def test_onset_weights_checked_and_dropped_points_warned():
    from lmech.results import LmechWarning
    from lmech.theory.variance_onset import fit_onset_exponent, onset_sample_size

    args = ([1.0, 2.0, 4.0], [1.0, 0.9, 0.5], [1.0, 0.85, 0.3])
    for bad in ([], [1.0, 2.0]):
        with pytest.raises(ValueError, match="`weights`"):
            onset_sample_size(*args, weights=bad)
    with pytest.warns(LmechWarning, match="1 of 3 onset sizes"):
        fit = fit_onset_exponent([10, 100, 1000], [3.0, np.nan, 30.0])
    assert fit.n_points == 2 and fit.exponent == pytest.approx(0.5)


def test_zero_target_power_and_unknown_floor():
    from lmech.theory.scaling import rf_loss_curve
    from lmech.theory.schedules import optimal_schedule

    with pytest.raises(ValueError, match="`target_power` must be positive"):
        optimal_schedule(EV, np.zeros_like(TP), 5, max_iter=20)
    both = rf_loss_curve(EV, TP, TIMES[1:], N=4, P=6, n_draws=1)
    assert both.floor is None and np.all(np.isfinite(both.loss))


def test_validators_refuse_nan_tolerances_and_strings():
    from lmech.theory.capacity import fixed_space_dim
    from lmech.theory.kappa import solve_kappa

    rep = np.stack([np.eye(3), np.eye(3)[[1, 2, 0]]])
    with pytest.raises(ValueError, match="`atol` must be finite"):
        fixed_space_dim(rep, atol=float("nan"))
    with pytest.raises(TypeError, match="`rtol` must be a real number"):
        solve_kappa(EV, 4, rtol="1.0")
