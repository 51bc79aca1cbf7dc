"""Claims for optimal learning-rate schedules (easy and hard phases).

Paper: B. Bordelon & F. Mori, "Theory of Optimal Learning Rate Schedules and Scaling Laws
for a Random Feature Model". Theory: :mod:`lmech.theory.schedules` (optimal control of the
exact online-SGD recursion (S1) by the adjoint method). Simulation: online SGD on Gaussian
features with the predicted optimal schedule and with tuned constant and warmup+cosine baselines
(:func:`lmech.sim.linear_sgd.sgd_gaussian`).

What is checked, and how sure each part is:

* (a) the schedules' final losses: theory vs real SGD (the recursion is exact in
  expectation, so this is a tolerance test), and the optimum beating both baselines in the
  simulation;
* (b) the qualitative shapes the paper reports [SRC claims of the paper, checked here
  numerically on the theory]: hard phase = T-independent best constant rate and a
  warmup-stable-decay-like optimum whose decay window shrinks with T; easy phase = best
  constant rate decreasing with T and an optimum that decays through training;
* (c) the same optimisation on the functional scaling law (S2) (the Volterra form in which the
  loss depends on the schedule through tau = sum eta and the SGD-noise kernel; small-step limit
  of (S1)) gives a schedule that is within 5% of optimal when run through (S1);
* which phase a (alpha, beta) pair falls in is *chosen* with the heuristic boundary
  beta = 2 - 1/alpha of :func:`lmech.theory.schedules.phase_heuristic` [HEUR]; the paper's
  analytic exponents xi, delta are not transcribed (fitted values are reported as details).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, claim
from lmech.sim.linear_sgd import sgd_gaussian
from lmech.theory.sgd import learning_curve
from lmech.theory.schedules import (
    cosine_schedule,
    optimal_schedule,
    phase_heuristic,
    power_law_problem,
    schedule_shape,
    tune_peak_lr,
)

PAPER = "Theory of Optimal Learning Rate Schedules and Scaling Laws for a Random Feature Model"


@dataclass(frozen=True)
class ScheduleSetting(Setting):
    """Power-law problem (alpha, beta), online SGD with batch 1.

    ``horizons``: horizons T on which the theory's optimal schedules are compared for shape;
    ``sim_steps``: the horizon on which the schedules are also run in simulation.
    """

    n_modes: int = 500
    alpha: float = 1.5
    beta: float = 0.5
    noise: float = 0.0
    batch_size: int = 1
    horizons: tuple[int, ...] = (100, 1000)
    sim_steps: int = 300
    seeds: int = 300


@dataclass(frozen=True)
class HardSetting(ScheduleSetting):
    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(n_modes=2000, horizons=(100, 1000, 3000), sim_steps=1000, seeds=800)


@dataclass(frozen=True)
class EasySetting(ScheduleSetting):
    beta: float = 2.0
    noise: float = 1e-3

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(n_modes=2000, horizons=(100, 1000, 3000), sim_steps=1000, seeds=800)


@functools.lru_cache(maxsize=8)
def _theory(setting: ScheduleSetting):
    """Optimal schedules at every horizon and the three schedules run at ``sim_steps``
    (deterministic: cached across seeds)."""
    lam, v2 = power_law_problem(setting.n_modes, setting.alpha, setting.beta)
    B, s2 = setting.batch_size, setting.noise
    by_T = {T: optimal_schedule(lam, v2, T, B, s2) for T in sorted(set(setting.horizons) | {setting.sim_steps})}
    T = setting.sim_steps
    opt = by_T[T]
    cos_shape = cosine_schedule(T, warmup=T // 10)  # the usual warmup + cosine baseline
    cos_peak, cos_loss = tune_peak_lr(lam, v2, cos_shape, B, s2, lr_cap=opt.lr_cap)
    schedules = {
        "optimal": (opt.lr, opt.loss),
        "constant": (np.full(T, opt.constant_lr), opt.constant_loss),
        "cosine": (cos_peak * cos_shape, cos_loss),
    }
    fsl = optimal_schedule(lam, v2, T, B, s2, dynamics="fsl")
    return lam, v2, by_T, schedules, fsl


def _evaluate(setting: ScheduleSetting, seed: int):
    """Theory at every horizon; theory + simulation of three schedules at ``sim_steps``."""
    lam, v2, by_T, schedules, fsl = _theory(setting)
    B, s2, T = setting.batch_size, setting.noise, setting.sim_steps
    # final loss averaged over the last 5% of steps (theory averaged over the same window)
    window = np.arange(T - max(1, T // 20) + 1, T + 1)
    sim, windowed = {}, {}
    for i, (name, (etas, _)) in enumerate(schedules.items()):
        peak = float(etas.max())
        s = sgd_gaussian(lam, v2, peak, B, T, s2, schedule=etas / peak, n_seeds=setting.seeds,
                         seed=seed * 100 + i, times=window)
        per_seed = s.losses.mean(axis=1)
        sim[name] = (float(per_seed.mean()), float(per_seed.std(ddof=1) / np.sqrt(per_seed.size)))
        th = learning_curve(lam, v2, peak, B, T, s2, schedule=etas / peak, times=window).loss.mean()
        windowed[name] = (etas, float(th))
    return lam, v2, by_T, windowed, sim, fsl


def _outcome(setting, by_T, schedules, sim, fsl, shape_checks, extra_details):
    names = list(schedules)
    th = np.array([schedules[n][1] for n in names])
    sm = np.array([sim[n][0] for n in names])
    se = np.array([sim[n][1] for n in names])
    err = np.abs(sm / th - 1.0)
    beats = all(sm[0] + 2 * np.hypot(se[0], se[j]) < sm[j] for j in (1, 2))
    checks = {"simulated SGD: the optimal schedule beats tuned constant and cosine by > 2 s.e.": beats}
    checks.update(shape_checks)
    T = setting.sim_steps
    opt_T = by_T[T]
    exact_best, cos_T = opt_T.loss, _theory(setting)[3]["cosine"][1]
    fsl_ok = fsl.exact_loss <= 1.05 * exact_best and fsl.exact_loss < min(opt_T.constant_loss, cos_T)
    checks["FSL (S2) optimum, run through the exact recursion: within 5% of the exact optimum, beats constant "
           "and cosine"] = bool(fsl_ok)
    x = np.arange(len(names), dtype=float)
    loss_panel = Panel(f"Final loss after T={T} steps (0 = optimal, 1 = constant, 2 = cosine)", "schedule",
                       "final test loss",
                       [Series("L_T theory", x, th), Series("L_T sim", x, sm, se, role="simulation")],
                       "linear", "log")
    sched_series = []
    for Tk, r in sorted(by_T.items()):
        tt = np.arange(Tk) / Tk
        idx = np.unique(np.linspace(0, Tk - 1, 200).astype(int))
        sched_series.append(Series(f"T={Tk} optimal", tt[idx], r.lr[idx]))
    sched_series.append(Series(f"T={T} cosine (tuned)", np.arange(T) / T, schedules["cosine"][0], role="reference"))
    idx = np.unique(np.linspace(0, T - 1, 200).astype(int))
    sched_series.append(Series(f"T={T} FSL (S2) optimal", idx / T, fsl.lr[idx], role="reference"))
    sched_panel = Panel("Optimal learning-rate schedules", "t / T", "learning rate", sched_series)
    details = {
        "rel_err": dict(zip(names, err)), "theory_final_loss": dict(zip(names, th)),
        "sim_final_loss": dict(zip(names, sm)), "sim_se": dict(zip(names, se)),
        "by_horizon": {int(Tk): {"constant_lr": r.constant_lr, "constant_loss": r.constant_loss, "optimal_loss": r.loss,
                                 "gain_vs_constant": r.gain, **schedule_shape(r.lr), "converged": r.converged}
                       for Tk, r in by_T.items()},
        "heuristic_phase": phase_heuristic(setting.alpha, setting.beta, setting.noise),
        "fsl_optimum": {"fsl_loss": fsl.loss, "exact_loss_of_fsl_schedule": fsl.exact_loss,
                        "ratio_to_exact_optimum": fsl.exact_loss / exact_best, "converged": fsl.converged,
                        **schedule_shape(fsl.lr)},
    }
    details.update(extra_details)
    return ClaimOutcome(value=float(err.max()), panels=[loss_panel, sched_panel], checks=checks, details=details)


@claim(
    "schedules.optimal.hard_phase",
    paper=PAPER,
    statement="Hard phase (alpha=1.5, beta=0.5 < 2-1/alpha [HEUR boundary], no label noise): the optimal schedule "
    "from optimal control of the exact SGD recursion keeps a high, roughly constant rate and anneals only at the "
    "end, over a fraction of steps that shrinks with T (warmup-stable-decay-like); the best constant rate does not "
    "depend on T [SRC claims, checked numerically]. Run in real SGD, the optimal schedule's final loss matches the "
    "theory and beats tuned constant and warmup+cosine schedules. The optimum of the functional scaling law (S2) "
    "(Volterra form, small-step limit) is nearly optimal for the exact recursion too.",
    metric="max relative error |sim/theory - 1| of the final loss (mean over the last 5% of steps) over "
    "{optimal, constant, cosine}",
    tolerance=0.05,
    setting=HardSetting,
)
def hard_phase_claim(setting: HardSetting, seed: int) -> ClaimOutcome:
    _, _, by_T, schedules, sim, fsl = _evaluate(setting, seed)
    Ts = sorted(setting.horizons)
    lo, hi = by_T[Ts[0]], by_T[Ts[-1]]
    dec = [schedule_shape(by_T[T].lr)["decay_fraction"] for T in Ts]
    checks = {
        "best constant lr is T-independent (within 10% over the horizons)":
            abs(hi.constant_lr / lo.constant_lr - 1) < 0.1,
        "decay window shrinks with T": bool(np.all(np.diff(dec) < 0)),
        "rate stays above half its peak for >= 80% of steps at the largest T": dec[-1] <= 0.2,
    }
    return _outcome(setting, by_T, schedules, sim, fsl, checks, {"decay_fraction": dict(zip(Ts, dec))})


@claim(
    "schedules.optimal.easy_phase",
    paper=PAPER,
    statement="Easy phase (alpha=1.5, beta=2 > 2-1/alpha [HEUR boundary], label noise 1e-3): the best constant "
    "rate decreases with the horizon T and the optimal schedule decays throughout training (polynomial-decay "
    "shape T^-xi (1-t/T)^delta [SRC claim]; xi and delta are only fitted here, pre-asymptotically). Run in real "
    "SGD, the optimal schedule's final loss matches the theory and beats tuned constant and warmup+cosine schedules. "
    "The optimum of the functional scaling law (S2) is nearly optimal for the exact recursion too.",
    metric="max relative error |sim/theory - 1| of the final loss (mean over the last 5% of steps) over "
    "{optimal, constant, cosine}",
    tolerance=0.05,
    setting=EasySetting,
)
def easy_phase_claim(setting: EasySetting, seed: int) -> ClaimOutcome:
    _, _, by_T, schedules, sim, fsl = _evaluate(setting, seed)
    Ts = sorted(setting.horizons)
    lo, hi = by_T[Ts[0]], by_T[Ts[-1]]
    q = schedule_shape(hi.lr)["quantiles"]
    dec = [schedule_shape(by_T[T].lr)["decay_fraction"] for T in Ts]
    xi_const = float(-np.log(hi.constant_lr / lo.constant_lr) / np.log(Ts[-1] / Ts[0]))
    checks = {
        "best constant lr decreases with T (by > 25% over the horizons)": hi.constant_lr < 0.75 * lo.constant_lr,
        "optimal rate decreases through training at the largest T (t/T = .25 > .5 > .75 > .9)":
            q[0.25] > q[0.5] > q[0.75] > q[0.9],
        "decay window does not shrink with T": dec[-1] >= dec[0],
    }
    return _outcome(setting, by_T, schedules, sim, fsl, checks,
                    {"decay_fraction": dict(zip(Ts, dec)), "xi_constant_lr_fit": xi_const,
                     "delta_fit_largest_T": schedule_shape(hi.lr)["delta"]})
