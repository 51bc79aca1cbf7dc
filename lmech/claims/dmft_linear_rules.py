"""Claims: deep-linear DMFT, finite-width fluctuations and learning-rule DMFT vs networks.

Papers (Bordelon & Pehlevan):
* "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks"
  (``dmft.deep_linear.*``): theory :func:`lmech.theory.dmft.deep_linear.deep_linear`,
  simulation :func:`lmech.sim.mean_field.train_mean_field`.
* "Dynamics of Finite Width Kernel and Prediction Fluctuations in Mean Field Neural Networks"
  (``dmft.finite_width.*``): theory :func:`lmech.theory.dmft.finite_width.two_layer_fluctuations`,
  simulation: large seed ensembles of :func:`~lmech.sim.mean_field.train_mean_field`.
* "The Influence of Learning Rule on Representation Dynamics in Wide Neural Networks"
  (``dmft.learning_rules.*``): theory :mod:`lmech.theory.dmft.learning_rules`, simulation
  :func:`lmech.sim.learning_rules.train_learning_rule`.

All comparisons use the same synthetic task (``_task``: inputs on the sphere of radius
``sqrt(D)``, target ``tanh(beta.x/sqrt D) + 0.5 x_1 x_2`` standardised on the training set), the
same ``lr``, ``gamma0`` and number of GD steps in theory and simulation, and losses
``(1/2P) sum (y - f)^2``. The claim's ``seed`` moves every simulation seed and every Monte-Carlo
draw of the theory; the data set is fixed by ``data_seed``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, Tolerance, claim
from lmech.sim.learning_rules import train_learning_rule
from lmech.sim.mean_field import train_mean_field
from lmech.theory.dmft.deep_linear import deep_linear
from lmech.theory.dmft.finite_width import two_layer_fluctuations
from lmech.theory.dmft.learning_rules import kernel_alignment, lazy_effective_kernel, learning_rule_dynamics
from lmech.theory.scaling import fit_power_law

SCFT_PAPER = "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks"
FLUCT_PAPER = "Dynamics of Finite Width Kernel and Prediction Fluctuations in Mean Field Neural Networks"
RULES_PAPER = "The Influence of Learning Rule on Representation Dynamics in Wide Neural Networks"


# --------------------------------------------------------------------------- helpers
def _task(P: int, P_test: int, D: int, data_seed: int):
    """Inputs with |x|^2 = D; y = tanh(beta.x/sqrt D) + 0.5 x1 x2, standardised on the train set."""
    rng = np.random.default_rng(data_seed)
    X = rng.standard_normal((P + P_test, D))
    X *= np.sqrt(D) / np.linalg.norm(X, axis=1, keepdims=True)
    beta = rng.standard_normal(D)
    y = np.tanh(X @ beta / np.sqrt(D)) + 0.5 * X[:, 0] * X[:, 1]
    y = (y - y[:P].mean()) / y[:P].std()
    return X[:P], y[:P], X[P:], y[P:]


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def _slope(widths, errors) -> float:
    """Least-squares slope of log(error) against log(width)."""
    return -fit_power_law(widths, errors).exponent


def _sim_seeds(seed: int, count: int, offset: int = 0) -> tuple[int, ...]:
    base = 100_000 * seed + 1000 * offset
    return tuple(range(base, base + count))


# =========================================================================== deep linear
@dataclass(frozen=True)
class DeepLinearSetting(Setting):
    """Deep linear network (``depth`` hidden layers), exact discrete-time DMFT vs networks."""

    P: int = 6
    P_test: int = 4
    D: int = 10
    depth: int = 2
    gamma0: float = 1.5
    lr: float = 0.1
    steps: int = 40
    widths: tuple[int, ...] = (128, 1024)
    seeds: int = 8
    data_seed: int = 1

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(steps=60, widths=(128, 512, 1024, 4096), seeds=8)


@claim(
    "dmft.deep_linear.loss_curves",
    paper=SCFT_PAPER,
    statement=(
        "For deep linear networks in the mean-field parameterization the closed-form DMFT "
        "(exact in discrete time) predicts the train and test loss curves and the NTK "
        "trajectory of wide networks; the deviation shrinks as width^-1/2."
    ),
    metric=(
        "at the largest width, max of the relative L2 errors of the seed-mean train and test loss curves "
        "and of the seed-mean kernel trajectories (NTK K(t), every layer's Phi^l(t,t) and G^l(t,t))"
    ),
    tolerance=Tolerance(quick=0.06, full=0.03),
    setting=DeepLinearSetting,
)
def deep_linear_loss_curves(setting: DeepLinearSetting, seed: int) -> ClaimOutcome:
    """Quick tolerance 6%: 8 seeds at N = 1024 (measured 1-4%, sampling-noise dominated);
    full: the issue's 3% at N = 4096."""
    s = setting
    X, y, Xt, yt = _task(s.P, s.P_test, s.D, s.data_seed)
    th = deep_linear(X, y, depth=s.depth, gamma0=s.gamma0, lr=s.lr, steps=s.steps, X_test=Xt, y_test=yt)
    per_width = {}
    runs = {}
    for i, N in enumerate(s.widths):
        run = train_mean_field(
            X, y, width=N, depth=s.depth, gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation="linear",
            X_test=Xt, y_test=yt, seeds=_sim_seeds(seed, s.seeds, i),
        )
        runs[N] = run
        Dth = y - th.f_train
        per_width[N] = {
            "train_loss_err": _rel(run.train_loss.mean(0), th.train_loss),
            "test_loss_err": _rel(run.test_loss.mean(0), th.test_loss),
            "ntk_err": _rel(run.ntk.mean(0), th.ntk),
            "feature_kernel_err_per_layer": [
                _rel(run.feature_kernels.mean(0)[:, l], th.feature_kernels[:, l]) for l in range(s.depth)
            ],
            "gradient_kernel_err_per_layer": [
                _rel(run.gradient_kernels.mean(0)[:, l], th.gradient_kernels[:, l]) for l in range(s.depth)
            ],
            "single_net_residual_err": float(np.mean([_rel(y - f, Dth) for f in run.f_train])),
        }
        d = per_width[N]
        d["kernel_err"] = max(d["ntk_err"], *d["feature_kernel_err_per_layer"], *d["gradient_kernel_err_per_layer"])
    Nmax = s.widths[-1]
    value = max(per_width[Nmax][k] for k in ("train_loss_err", "test_loss_err", "kernel_err"))
    slope = _slope(s.widths, [per_width[N]["single_net_residual_err"] for N in s.widths])
    t = th.steps
    loss_series = [Series("train theory", t, th.train_loss), Series("test theory", t, th.test_loss)]
    for N in (s.widths[0], Nmax):
        loss_series.append(Series(f"train sim N={N}", t, runs[N].train_loss.mean(0), role="simulation"))
        loss_series.append(Series(f"test sim N={N}", t, runs[N].test_loss.mean(0), role="simulation"))
    kern = [
        Series("K_11 theory", t, th.ntk[:, 0, 0]),
        Series("K_12 theory", t, th.ntk[:, 0, 1]),
        Series(f"K_11 sim N={Nmax}", t, runs[Nmax].ntk.mean(0)[:, 0, 0], role="simulation"),
        Series(f"K_12 sim N={Nmax}", t, runs[Nmax].ntk.mean(0)[:, 0, 1], role="simulation"),
        Series(f"Phi^{s.depth}_11 theory", t, th.feature_kernels[:, -1, 0, 0]),
        Series(f"Phi^{s.depth}_11 sim N={Nmax}", t, runs[Nmax].feature_kernels.mean(0)[:, -1, 0, 0],
               role="simulation"),
    ]
    errs = [per_width[N]["single_net_residual_err"] for N in s.widths]
    ref = errs[0] * (np.asarray(s.widths, float) / s.widths[0]) ** -0.5
    scaling = [
        Series("single-net residual error sim", s.widths, errs, role="simulation"),
        Series("N^-1/2 reference", s.widths, ref, role="reference"),
    ]
    return ClaimOutcome(
        value=value,
        panels=[
            Panel(f"Deep linear L={s.depth}, gamma0={s.gamma0}: loss", "GD step", "loss", loss_series, yscale="log"),
            Panel("Kernel entries", "GD step", "K(t), Phi^L(t,t)", kern),
            Panel("Width scaling", "width N", "relative error", scaling, xscale="log", yscale="log"),
        ],
        checks={"single-network error shrinks with width (slope < -0.25)": slope < -0.25},
        details={"per_width": per_width, "fitted_slope_single_net_error_vs_N": slope,
                 "theory_residual": th.residual, "seeds_per_width": s.seeds},
    )


# =========================================================================== finite width
@dataclass(frozen=True)
class FluctuationSetting(Setting):
    """Two-layer network, O(1/N) variance of predictions and NTK over initializations."""

    P: int = 6
    P_test: int = 3
    D: int = 10
    gamma0: float = 1.5
    lr: float = 0.2
    steps: int = 15
    activation: str = "tanh"
    widths: tuple[int, ...] = (64, 256)
    seeds: int = 2000
    samples: int = 20_000
    jacobian_samples: int = 2000
    data_seed: int = 1

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(steps=30, widths=(64, 256, 1024), seeds=6000, samples=40_000, jacobian_samples=4000)


@claim(
    "dmft.finite_width.variance",
    paper=FLUCT_PAPER,
    statement=(
        "Across random initializations, predictions and NTK of a width-N mean-field network "
        "fluctuate with variance c/N, where c follows from linearizing the DMFT around the "
        "infinite-width solution (non-perturbative in feature strength)."
    ),
    metric="max over widths of the relative error of N Var[f(t)] (all points and steps) and of N Var[K(T/2), K(T)]",
    tolerance=Tolerance(quick=0.15, full=0.08),
    setting=FluctuationSetting,
)
def finite_width_variance(setting: FluctuationSetting, seed: int) -> ClaimOutcome:
    """Tolerances from measurement: the sampling error of a variance over E seeds (3-5% at
    E = 4000 for the heavier-tailed NTK entries, twice that at E = 1000), the theory's
    Monte-Carlo error (2-5%) and the O(1/N) correction (< 2% at N = 64), with margin; the
    quick setting has 3x fewer seeds and Monte-Carlo samples. (The O(1/N) mean shift is
    tested by ``dmft.finite_width.ensemble_tradeoff``; here it is only reported.)"""
    s = setting
    X, y, Xt, yt = _task(s.P, s.P_test, s.D, s.data_seed)
    th = two_layer_fluctuations(
        X, y, gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation=s.activation, X_test=Xt, y_test=yt,
        samples=s.samples, jacobian_samples=s.jacobian_samples, seed=seed,
    )
    var_th = np.concatenate([th.var_f_train, th.var_f_test], 1)
    bias_th = np.concatenate([th.bias_f_train, th.bias_f_test], 1)
    f_th = np.concatenate([th.f_train, th.f_test], 1)
    ks = th.ntk_steps[1:]
    per_width, total_var = {}, []
    var_sim_by_N = {}
    for i, N in enumerate(s.widths):
        run = train_mean_field(
            X, y, width=N, depth=1, gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation=s.activation,
            X_test=Xt, y_test=yt, seeds=_sim_seeds(seed, s.seeds, i),
        )
        f = np.concatenate([run.f_train, run.f_test], 2)
        var_sim = N * f.var(0, ddof=1)
        var_sim_by_N[N] = var_sim
        total_var.append(float(f.var(0, ddof=1).sum()))
        vK = N * run.ntk[:, ks].var(0, ddof=1)
        bias_sim = N * (f.mean(0) - f_th)
        se_bias = N * f.std(0, ddof=1) / np.sqrt(s.seeds)
        # N (E f - f*) also carries N times the Monte-Carlo error of the particle f* (th.residual is
        # its largest per-entry standard error): at N ~ 1e3 that dominates, so the O(1/N) mean shift
        # is only resolved at the smallest width here (it is tested by ensemble_tradeoff instead)
        se_fstar = N * th.residual * np.sqrt(bias_th.size)
        per_width[N] = {
            "var_f_err": _rel(var_sim, var_th),
            "var_ntk_err": _rel(vK, th.var_ntk[1:]),
            "bias_f_err": _rel(bias_sim, bias_th),
            "bias_f_standard_error_seeds": float(np.linalg.norm(se_bias) / np.linalg.norm(bias_th)),
            "bias_f_error_bound_theory_mc": float(se_fstar / np.linalg.norm(bias_th)),
        }
    value = max(max(d["var_f_err"], d["var_ntk_err"]) for d in per_width.values())
    slope = _slope(s.widths, total_var)
    N0 = s.widths[0]
    t = th.steps
    P = s.P
    panel_var = [Series("test point 1 theory", t, th.var_f_test[:, 0]), Series("train point 1 theory", t, th.var_f_train[:, 0])]
    for N in s.widths:
        panel_var.append(Series(f"test point 1 sim N={N}", t, var_sim_by_N[N][:, P], role="simulation"))
        panel_var.append(Series(f"train point 1 sim N={N}", t, var_sim_by_N[N][:, 0], role="simulation"))
    ref = total_var[0] * (np.asarray(s.widths, float) / N0) ** -1.0
    panel_scale = [
        Series("total Var[f] sim", s.widths, total_var, role="simulation"),
        Series("1/N reference", s.widths, ref, role="reference"),
    ]
    return ClaimOutcome(
        value=value,
        panels=[
            Panel(f"N Var[f(t)], two-layer {s.activation}, gamma0={s.gamma0}", "GD step", "N Var[f]", panel_var),
            Panel("Variance vs width", "width N", "sum of Var[f]", panel_scale, xscale="log", yscale="log"),
        ],
        checks={
            "variance scales as 1/N (fitted slope in [-1.2, -0.8])": -1.2 <= slope <= -0.8,
        },
        details={"per_width": per_width, "fitted_slope_variance_vs_N": slope, "theory_mc_stderr": th.residual,
                 "seeds_per_width": s.seeds},
    )


@dataclass(frozen=True)
class EnsembleSetting(Setting):
    """Ensembles of E two-layer networks of width N: train and test loss vs (N, E)."""

    P: int = 6
    P_test: int = 8
    D: int = 10
    gamma0: float = 1.0
    lr: float = 0.2
    steps: int = 15
    activation: str = "tanh"
    widths: tuple[int, ...] = (32, 128)
    ensembles: tuple[int, ...] = (1, 4)
    nets_per_config: int = 4000
    samples: int = 10_000
    jacobian_samples: int = 1000
    data_seed: int = 1

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(widths=(32, 64, 128), ensembles=(1, 4, 16), nets_per_config=16_000, samples=40_000,
                   jacobian_samples=4000)


@claim(
    "dmft.finite_width.ensemble_tradeoff",
    paper=FLUCT_PAPER,
    statement=(
        "The loss of an average of E width-N networks is L* + (b + v/E)/N: ensembling "
        "removes the variance term v but not the O(1/N) bias term b, both predicted by the "
        "finite-width DMFT; at a fixed budget N E one wide network beats an ensemble of narrow "
        "ones when b > 0."
    ),
    metric=(
        "max over train/test and (N, E) of |measured - predicted| loss difference to the reference "
        "configuration (largest N, largest E), divided by the largest predicted difference"
    ),
    tolerance=Tolerance(quick=0.25, full=0.15),
    setting=EnsembleSetting,
)
def finite_width_ensemble(setting: EnsembleSetting, seed: int) -> ClaimOutcome:
    """Losses are compared as differences to the reference configuration so that the
    infinite-width loss L* (whose Monte-Carlo error would dominate at this precision) cancels.
    Tolerances: the standard error of the measured differences is ~8% (quick) / ~4% (full)
    of the largest difference, plus ~5% Monte-Carlo error of the theory coefficients."""
    s = setting
    X, y, Xt, yt = _task(s.P, s.P_test, s.D, s.data_seed)
    th = two_layer_fluctuations(
        X, y, gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation=s.activation, X_test=Xt, y_test=yt,
        samples=s.samples, jacobian_samples=s.jacobian_samples, seed=seed,
    )
    Emax = max(s.ensembles)
    ref = (max(s.widths), Emax)
    measured = {"train": {}, "test": {}}
    stderr = {"train": {}, "test": {}}
    predicted = {"train": {}, "test": {}}
    for i, N in enumerate(s.widths):
        n_nets = s.nets_per_config - s.nets_per_config % Emax
        run = train_mean_field(
            X, y, width=N, depth=1, gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation=s.activation,
            X_test=Xt, y_test=yt, seeds=_sim_seeds(seed, n_nets, i), track_kernels=False,
        )
        for split, f_end, target in (("train", run.f_train[:, -1], y), ("test", run.f_test[:, -1], yt)):
            for E in s.ensembles:
                groups = f_end.reshape(n_nets // E, E, -1).mean(1)
                losses = 0.5 * np.mean((target[None, :] - groups) ** 2, axis=1)
                measured[split][(N, E)] = float(losses.mean())
                stderr[split][(N, E)] = float(losses.std(ddof=1) / np.sqrt(losses.size))
                predicted[split][(N, E)] = float(th.ensemble_loss(N, E, split=split)[-1])
    value, order_ok, details, panels = 0.0, True, {}, []
    for split in ("train", "test"):
        m, p, se = measured[split], predicted[split], stderr[split]
        dm = {k: m[k] - m[ref] for k in m}
        dp = {k: p[k] - p[ref] for k in p}
        scale = max(abs(v) for v in dp.values())
        value = max(value, max(abs(dm[k] - dp[k]) for k in m) / scale)
        for (N1, E1) in m:  # equal budget N E: predicted ordering must match where resolved
            for (N2, E2) in m:
                if N1 * E1 == N2 * E2 and N1 < N2 and abs(dm[(N1, E1)] - dm[(N2, E2)]) > 2 * np.hypot(se[(N1, E1)], se[(N2, E2)]):
                    order_ok &= bool(np.sign(dp[(N1, E1)] - dp[(N2, E2)]) == np.sign(dm[(N1, E1)] - dm[(N2, E2)]))
        yv, fv = (y, th.f_train) if split == "train" else (yt, th.f_test)
        bv = th.bias_f_train if split == "train" else th.bias_f_test
        vv = th.var_f_train if split == "train" else th.var_f_test
        details[split] = {
            "measured_loss": {f"N={k[0]},E={k[1]}": v for k, v in m.items()},
            "stderr": {f"N={k[0]},E={k[1]}": v for k, v in se.items()},
            "predicted_loss": {f"N={k[0]},E={k[1]}": v for k, v in p.items()},
            "bias_coefficient_b": float(-np.sum((yv - fv[-1]) * bv[-1]) / yv.size),
            "variance_coefficient_v": float(0.5 * np.sum(vv[-1]) / yv.size),
        }
        series = []
        for E in s.ensembles:
            Ns = np.asarray(s.widths, float)
            series.append(Series(f"E={E} theory", Ns, [dp[(N, E)] for N in s.widths]))
            series.append(Series(f"E={E} sim", Ns, [dm[(N, E)] for N in s.widths],
                                 yerr=[se[(N, E)] for N in s.widths], role="simulation"))
        panels.append(Panel(f"{split} loss of E-ensembles minus (N={ref[0]}, E={ref[1]})", "width N",
                            "loss difference", series, xscale="log"))
    details["theory_mc_stderr"] = th.residual
    return ClaimOutcome(
        value=value,
        panels=panels,
        checks={"equal-budget ordering (N E fixed) matches the prediction where resolved": bool(order_ok)},
        details=details,
    )


# =========================================================================== learning rules
@dataclass(frozen=True)
class RuleSetting(Setting):
    """Two-layer tanh networks (particle DMFT) and deep linear networks (closed forms)."""

    P: int = 8
    P_test: int = 4
    D: int = 10
    gamma0: float = 1.0
    lr: float = 0.2
    steps: int = 30
    rho: float = 0.5
    deep_depth: int = 2
    deep_gamma0: float = 1.0
    widths: tuple[int, ...] = (256, 1024)
    deep_widths: tuple[int, ...] = (256, 1024)
    seeds: int = 8
    samples: int = 100_000
    data_seed: int = 1

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(steps=50, widths=(256, 1024, 4096), deep_widths=(256, 1024, 2048), seeds=8, samples=400_000)


def _compare_rule(s: RuleSetting, rule: str, seed: int, architectures):
    """Theory vs simulation for each (label, depth, activation, gamma0, widths) architecture."""
    X, y, Xt, yt = _task(s.P, s.P_test, s.D, s.data_seed)
    out, panels, theories, sims = {}, [], {}, {}
    for label, depth, act, g0, widths, *n_seeds in architectures:
        n_seeds = n_seeds[0] if n_seeds else s.seeds
        th = learning_rule_dynamics(
            X, y, rule=rule, depth=depth, gamma0=g0, lr=s.lr, steps=s.steps, activation=act, rho=s.rho,
            X_test=Xt, y_test=yt, samples=s.samples, seed=seed,
        )
        if th.diverged:
            raise RuntimeError(f"{rule} {label}: infinite-width dynamics diverged after step {th.steps[-1]} "
                               f"(lower steps, lr or gamma0 in the setting)")
        theories[label] = th
        per_width = {}
        for i, N in enumerate(widths):
            run = train_learning_rule(
                X, y, rule=rule, width=N, depth=depth, gamma0=g0, lr=s.lr, steps=s.steps, activation=act,
                rho=s.rho, X_test=Xt, y_test=yt, seeds=_sim_seeds(seed, n_seeds, i),
            )
            sims[(label, N)] = run
            Dth = y - th.f_train
            per_width[N] = {
                "train_loss_err": _rel(run.train_loss.mean(0), th.train_loss),
                "test_loss_err": _rel(run.test_loss.mean(0), th.test_loss),
                "effective_ntk_err": _rel(run.effective_ntk.mean(0), th.effective_ntk),
                "single_net_residual_err": float(np.mean([_rel(y - f, Dth) for f in run.f_train])),
            }
        Nmax = widths[-1]
        err = max(per_width[Nmax]["train_loss_err"], per_width[Nmax]["effective_ntk_err"])
        slope = _slope(widths, [per_width[N]["single_net_residual_err"] for N in widths])
        lazy = lazy_effective_kernel(np.vstack([X, Xt]) @ np.vstack([X, Xt]).T / s.D, rule=rule, depth=depth,
                                     activation=act, rho=s.rho)
        # t = 0 eNTK vs the lazy formula: exact for the closed forms, Monte Carlo (~1%) otherwise
        lazy_tol = 1e-8 if th.method == "closed-form" else 0.03
        out[label] = {"per_width": per_width, "seeds_per_width": n_seeds,
                      "error_at_largest_width": err, "slope_vs_N": slope,
                      "lazy_kernel_err_t0": _rel(th.effective_ntk[0], lazy), "lazy_kernel_tol": lazy_tol,
                      "keff_asymmetry_final": _rel(th.effective_ntk[-1], th.effective_ntk[-1].T)}
        t = th.steps
        ser = [Series("train loss theory", t, th.train_loss),
               Series(f"train loss sim N={Nmax}", t, sims[(label, Nmax)].train_loss.mean(0), role="simulation"),
               Series("K_eff[1,2] theory", t, th.effective_ntk[:, 0, 1]),
               Series(f"K_eff[1,2] sim N={Nmax}", t, sims[(label, Nmax)].effective_ntk.mean(0)[:, 0, 1],
                      role="simulation"),
               Series("K_eff[2,1] theory", t, th.effective_ntk[:, 1, 0]),
               Series(f"K_eff[2,1] sim N={Nmax}", t, sims[(label, Nmax)].effective_ntk.mean(0)[:, 1, 0],
                      role="simulation")]
        panels.append(Panel(f"{rule.upper()} {label}", "GD step", "loss / kernel entry", ser))
    value = max(d["error_at_largest_width"] for d in out.values())
    checks = {
        "single-network error shrinks with width (slope < -0.2)": all(d["slope_vs_N"] < -0.2 for d in out.values()),
        "eNTK at t=0 equals the lazy-limit formula (exact; 3% for Monte-Carlo solvers)": all(
            d["lazy_kernel_err_t0"] < d["lazy_kernel_tol"] for d in out.values()
        ),
    }
    return value, panels, checks, out, theories, sims, (X, y, Xt, yt)


def _architectures(s: RuleSetting, deep: bool):
    arch = [("two-layer tanh", 1, "tanh", s.gamma0, s.widths)]
    if deep:
        arch.append((f"deep linear L={s.deep_depth}", s.deep_depth, "linear", s.deep_gamma0, s.deep_widths))
    return arch


_RULE_METRIC = ("max over architectures (two-layer tanh; deep linear) of the relative error of the seed-mean "
                "train-loss curve and of the seed-mean effective-NTK trajectory, at the largest width")
_RULE_TOL = Tolerance(quick=0.06, full=0.03)
_HEBB_MAX_STEPS = 30
_HEBB_TOL = Tolerance(quick=0.08, full=0.05)
_RULE_DOC = """Quick tolerance 6%: 8 seeds at N = 1024 (measured 1-4%, noise dominated);
    full: 3% at N = 4096 (two-layer) / 2048 (deep linear), 8 seeds."""


@claim(
    "dmft.learning_rules.gd",
    paper=RULES_PAPER,
    statement="Under gradient descent the predictions follow the (symmetric) NTK, whose rich-regime evolution the DMFT predicts.",
    metric=_RULE_METRIC, tolerance=_RULE_TOL, setting=RuleSetting,
)
def rules_gd(setting: RuleSetting, seed: int) -> ClaimOutcome:
    value, panels, checks, out, th, sims, _ = _compare_rule(setting, "gd", seed, _architectures(setting, True))
    asym = max(_rel(r.effective_ntk, np.swapaxes(r.effective_ntk, -1, -2)) for r in sims.values())
    checks["simulated eNTK is symmetric under GD"] = asym < 1e-10
    return ClaimOutcome(value=value, panels=panels, checks=checks, details=out)


rules_gd.__doc__ = _RULE_DOC


@claim(
    "dmft.learning_rules.fa",
    paper=RULES_PAPER,
    statement=(
        "Feedback alignment trains with an effective NTK whose lazy form weights layer l by rho^(L-l+1); "
        "in the rich regime the DMFT predicts its evolution, and smaller feedback correlation rho gives "
        "more feature learning."
    ),
    metric=_RULE_METRIC, tolerance=_RULE_TOL, setting=RuleSetting,
)
def rules_fa(setting: RuleSetting, seed: int) -> ClaimOutcome:
    s = setting
    value, panels, checks, out, th, sims, (X, y, Xt, yt) = _compare_rule(s, "fa", seed, _architectures(s, True))
    # counter-intuitive claim: feature movement ||Phi^L(T) - Phi^L(0)|| / ||Phi^L(0)|| decreases with rho
    rhos = (0.0, 0.5, 1.0)
    move_th, move_sim = [], []
    Nmax = s.widths[-1]
    for j, rho in enumerate(rhos):
        r = learning_rule_dynamics(X, y, rule="fa", gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation="tanh",
                                   rho=rho, X_test=Xt, samples=s.samples, seed=seed)
        Phi = r.feature_kernels[:, -1]
        move_th.append(_rel(Phi[-1], Phi[0]))
        run = train_learning_rule(X, y, rule="fa", width=Nmax, gamma0=s.gamma0, lr=s.lr, steps=s.steps,
                                  activation="tanh", rho=rho, X_test=Xt, seeds=_sim_seeds(seed, s.seeds, 50 + j))
        Ps = run.feature_kernels[:, :, -1].mean(0)
        move_sim.append(_rel(Ps[-1], Ps[0]))
    checks["feature movement decreases with rho (theory)"] = bool(np.all(np.diff(move_th) < 0))
    checks["feature movement decreases with rho (simulation)"] = bool(np.all(np.diff(move_sim) < 0))
    out["feature_movement_vs_rho"] = {"rho": list(rhos), "theory": move_th, "simulation": move_sim}
    panels.append(Panel("FA: feature movement vs feedback correlation", "rho", "||Phi(T)-Phi(0)||/||Phi(0)||",
                        [Series("movement theory", rhos, move_th),
                         Series(f"movement sim N={Nmax}", rhos, move_sim, role="simulation")]))
    return ClaimOutcome(value=value, panels=panels, checks=checks, details=out)


rules_fa.__doc__ = _RULE_DOC


@claim(
    "dmft.learning_rules.dfa",
    paper=RULES_PAPER,
    statement=(
        "Direct feedback alignment: in the lazy limit only the readout learns (K_eff = Phi^L); in the "
        "rich regime the DMFT predicts the evolving, depth-dependent effective NTK."
    ),
    metric=_RULE_METRIC, tolerance=_RULE_TOL, setting=RuleSetting,
)
def rules_dfa(setting: RuleSetting, seed: int) -> ClaimOutcome:
    value, panels, checks, out, th, sims, _ = _compare_rule(setting, "dfa", seed, _architectures(setting, True))
    # the eNTK starts at Phi^L and then acquires hidden-layer contributions
    grow = {k: _rel(r.effective_ntk[-1], r.feature_kernels[-1, -1]) for k, r in th.items()}
    checks["hidden layers contribute to K_eff after training (>5%)"] = all(v > 0.05 for v in grow.values())
    out["hidden_contribution_final"] = grow
    return ClaimOutcome(value=value, panels=panels, checks=checks, details=out)


rules_dfa.__doc__ = _RULE_DOC


@claim(
    "dmft.learning_rules.hebb",
    paper=RULES_PAPER,
    statement=(
        "Error-modulated Hebbian learning: predictions follow a non-symmetric effective NTK predicted by "
        "the DMFT, and the last-layer kernel gains little (here: loses) task alignment, unlike GD."
    ),
    metric=_RULE_METRIC, tolerance=_HEBB_TOL, setting=RuleSetting,
)
def rules_hebb(setting: RuleSetting, seed: int) -> ClaimOutcome:
    # Hebbian learning runs away: the deep linear net (L = 2, gamma0 = 1, lr = 0.2) blows up
    # after ~43 steps in theory and simulation alike, so trajectories are compared over 30 steps
    s = replace(setting, steps=min(setting.steps, _HEBB_MAX_STEPS))
    # the eNTK of Hebbian deep linear nets is heavy-tailed across seeds (single-net spread 13% at t = 0
    # growing to 27% at t = 30, N = 1024: K_eff contains gamma0 f_nu(t), and f(0) = O(1/sqrt N));
    # means of 8 nets were off by 4-12%, so the deep architecture gets 3x the seeds
    arch = _architectures(s, True)
    arch[1] = arch[1] + (3 * s.seeds,)
    value, panels, checks, out, th, sims, (X, y, Xt, yt) = _compare_rule(s, "hebb", seed, arch)
    P = s.P
    gd = learning_rule_dynamics(X, y, rule="gd", gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation="tanh",
                                samples=s.samples, seed=seed)
    hebb = th["two-layer tanh"]
    gain_h = kernel_alignment(hebb.feature_kernels[-1, -1][:P, :P], y) - kernel_alignment(hebb.feature_kernels[0, -1][:P, :P], y)
    gain_g = kernel_alignment(gd.feature_kernels[-1, -1][:P, :P], y) - kernel_alignment(gd.feature_kernels[0, -1][:P, :P], y)
    run = sims[("two-layer tanh", s.widths[-1])]
    Ps = run.feature_kernels[:, :, -1, :P, :P].mean(0)
    gain_sim = kernel_alignment(Ps[-1], y) - kernel_alignment(Ps[0], y)
    checks["Hebbian alignment gain of Phi^L below GD's (theory)"] = gain_h < gain_g
    checks["Hebbian alignment gain of Phi^L below GD's (simulation vs GD theory)"] = gain_sim < gain_g
    checks["K_eff is not symmetric (theory, >1%)"] = out["two-layer tanh"]["keff_asymmetry_final"] > 0.01
    out["alignment_gain"] = {"hebb_theory": gain_h, "gd_theory": gain_g, "hebb_sim": gain_sim}
    return ClaimOutcome(value=value, panels=panels, checks=checks, details=out)


rules_hebb.__doc__ = """Tolerance 8% quick / 5% full, wider than the other rules' because Hebbian
    dynamics run away: the deep linear nets' eNTK is heavy-tailed across seeds (single-network
    error 4-73%, median ~20%, at N = 1024, t = 30), so the mean of 24 nets is off by 1-3% at
    N = 1024 and 3.3% at N = 2048 (measured); the two-layer tanh comparison reaches 1.2% at
    N = 4096. Compared over at most 30 GD steps (deep linear L = 2 diverges after ~43 steps,
    in theory and in the simulated networks)."""


@claim(
    "dmft.learning_rules.gln",
    paper=RULES_PAPER,
    statement=(
        "Gated linear networks stay conditionally Gaussian given their gates: the lazy NTK is "
        "(L+1) q^L x.x'/D and the rich dynamics are solved exactly per gate pattern."
    ),
    metric="relative error of the seed-mean train-loss curve and eNTK trajectory at the largest width (max)",
    tolerance=_RULE_TOL, setting=RuleSetting,
)
def rules_gln(setting: RuleSetting, seed: int) -> ClaimOutcome:
    arch = [("two-layer GLN", 1, "linear", setting.gamma0, setting.widths)]
    value, panels, checks, out, th, sims, _ = _compare_rule(setting, "gln", seed, arch)
    return ClaimOutcome(value=value, panels=panels, checks=checks, details=out)


rules_gln.__doc__ = _RULE_DOC
