"""Claims for neural scaling-law models: random-feature dynamics and feature learning.

``scaling.rf_dynamics.*``: lam_k ~ k^-b, target power p_k ~ k^-a, t = learning rate x steps
(:mod:`lmech.theory.scaling`, :mod:`lmech.sim.random_features`). Curve errors divide by the simulation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, claim, fit_power_law, fragile,
                                  known_failure, power_law_problem, rel_err_sim, sem)
from lmech.sim.circle import circle_task, train_circle_mlp
from lmech.sim.feature_learning import simulate_projected_gd
from lmech.sim.random_features import simulate_bottlenecks, simulate_rf
from lmech.theory.circle import circle_ntk_spectrum, lazy_circle_curve
from lmech.theory.feature_learning import chi, power_law_task, rich_linear_curve
from lmech.theory.scaling import (compute_frontier, compute_optimal, data_bottleneck, rf_exponents, rf_loss_curve,
                                  width_bottleneck)

RF_PAPER = "A Dynamical Model of Neural Scaling Laws"
FL_PAPER = "How Feature Learning Can Improve Neural Scaling Laws"
T_AXIS = "t (lr x steps)"
MAX_SIM = "max relative error (to simulation) |theory/sim - 1|"

def _problem(s, normalize_lam: bool = False):
    lam, p = power_law_problem(s.n_modes, s.b, s.a)
    return (lam / lam.sum() if normalize_lam else lam), p

# =========================================================================== RF dynamics
@dataclass(frozen=True)
class RFOnline(Setting):
    """Online (P = inf) training of width-N random-feature models, or of ensembles of E of them."""
    n_modes: int = 1500
    a: float = 1.5
    b: float = 1.5
    widths: tuple[int, ...] = (100, 300)
    ensembles: tuple[int, ...] = (1,)
    times: tuple[float, ...] = (0.5, 5.0, 50.0, 500.0, 5e3, 5e4)
    draws: int = 24

def _online(s: RFOnline, seeds: SeedStream, title: str):
    """Theory and simulation for every (N, E); returns the comparison and, per (N, E), the
    theory's t = inf loss, the simulation's last loss and the bottleneck of one width-E*N model."""
    lam, p = _problem(s)
    t = np.array(s.times)
    cmp, late = Comparison(title, T_AXIS, "test loss", denominator="sim"), {}
    for N in s.widths:
        for E in s.ensembles:
            th = rf_loss_curve(lam, p, t, N=N, ensemble=E)
            sim = simulate_rf(lam, p, t, N=N, ensemble=E, draws=s.draws, seed=seeds.next())
            cmp.add(f"N={N}" if E == 1 else f"E={E}", t, th.loss, sim.loss, sim.loss_se)
            late[N, E] = (th.floor, sim.loss[-1], width_bottleneck(lam, p, E * N) if E > 1 else th.floor)
    return cmp, late

@claim("scaling.rf_dynamics.width", paper=RF_PAPER, tolerance=0.05, metric=f"{MAX_SIM} over t and N",
       quick=RFOnline(), full=RFOnline(n_modes=4000, widths=(100, 200, 400, 800),
                                       times=tuple(np.geomspace(0.5, 1e5, 12)), draws=40))
def rf_width(s: RFOnline, seeds: SeedStream):
    """The Laplace-domain theory L(t) = sum_k p_k h_k(2t) predicts the test loss of width-N
    random-feature models trained online by gradient flow, including the width-bottleneck
    plateau L_inf(N)."""
    cmp, late = _online(s, seeds, "Online RF model: loss vs time")
    for (N, _), (floor, _, _) in late.items():
        cmp.reference(f"N={N} bottleneck", [s.times[0], s.times[-1]], [floor, floor])
    return cmp.outcome("max", details={"bottleneck": {f"N={N}": v[0] for (N, _), v in late.items()}})

@claim("scaling.rf_dynamics.ensemble", paper=RF_PAPER, tolerance=0.05, metric=f"{MAX_SIM} over t and E",
       quick=RFOnline(widths=(100,), ensembles=(1, 4), times=(1.0, 10.0, 100.0, 1e3, 1e4), draws=20),
       full=RFOnline(n_modes=3000, widths=(100,), ensembles=(1, 2, 4, 8), times=tuple(np.geomspace(1, 1e5, 9)),
                     draws=30))
def rf_ensemble(s: RFOnline, seeds: SeedStream):
    """Averaging E independently projected width-N models gives L_E = Lbar + (L - Lbar)/E; the
    E -> inf limit Lbar stays above the bottleneck of a single width-E*N model (ensembles of
    narrow models are worse than one wide model)."""
    cmp, late = _online(s, seeds, f"Ensembles of width-{s.widths[0]} RF models")
    wide = {f"E={E}": v[2] for (_, E), v in late.items() if E > 1}
    return cmp.outcome("max", checks={"ensemble worse than one model of width E*N at late time": all(
        v[1] > v[2] for (_, E), v in late.items() if E > 1)}, details={"single_wide_bottleneck": wide})

@dataclass(frozen=True)
class RFData(Setting):
    n_modes: int = 1000
    a: float = 1.2
    b: float = 1.5
    samples: tuple[int, ...] = (100, 300)
    noise: float = 0.1
    times: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4)
    train_tmax: float = 1e3
    draws: int = 20

@claim("scaling.rf_dynamics.data", paper=RF_PAPER, tolerance=0.05,
       metric=f"{MAX_SIM} over t and P (test loss; train loss for t <= train_tmax)",
       expect=fragile("quick passed at 6 of seeds 0-9 (max errors 0.023-0.078; 8 of 10 before the seed streams): "
                      "the P = 100 train loss has a 2.4-4 % standard error with 20 draws", modes=("quick",)),
       quick=RFData(), full=RFData(n_modes=2000, samples=(150, 300, 600), times=tuple(np.geomspace(1, 1e4, 9)),
                                   draws=30))
def rf_data(s: RFData, seeds: SeedStream):
    """With finite data the two-point deterministic-equivalent theory predicts test and train
    loss during gradient flow; the train-test gap builds up over time as data are reused.

    N = inf, label noise. The full setting leaves P = 100 out: its late-time train loss carries a
    ~6 % finite-size bias of the deterministic equivalent (4.5-6.5 % for t = 180..1000, 30 draws)."""
    lam, p = _problem(s, normalize_lam=True)
    t = np.array(s.times)
    tr = t <= s.train_tmax
    cmp, grows = Comparison("Data-limited RF model (N = inf)", T_AXIS, "loss", denominator="sim"), True
    for P in s.samples:
        th = rf_loss_curve(lam, p, t, P=P, noise=s.noise)
        sim = simulate_rf(lam, p, t, P=P, noise=s.noise, draws=s.draws, seed=seeds.next())
        cmp.add(f"P={P} test", t, th.loss, sim.loss, sim.loss_se)
        cmp.add(f"P={P} train", t[tr], th.train_loss[tr], sim.train_loss[tr], sim.train_se[tr])
        gap = sim.loss - sim.train_loss
        grows &= bool(gap[-1] > gap[0])
    return cmp.outcome("max", checks={"train-test gap grows with training time": grows})

@dataclass(frozen=True)
class RFJoint(Setting):
    n_modes: int = 1000
    a: float = 1.3
    b: float = 1.5
    width: int = 120
    samples: int = 200
    times: tuple[float, ...] = (3.0, 30.0, 300.0, 3e3, 3e4)
    theory_draws: int = 12
    draws: int = 30

@claim("scaling.rf_dynamics.joint", paper=RF_PAPER, tolerance=0.05, metric=f"{MAX_SIM} over t",
       quick=RFJoint(), full=RFJoint(n_modes=1500, times=tuple(np.geomspace(1, 1e5, 11)), theory_draws=32, draws=60))
def rf_joint(s: RFJoint, seeds: SeedStream):
    """With finite N < P the test loss first falls and then rises at late time (the part of the
    target outside the N features acts as label noise that gradient flow eventually fits); the
    conditional-on-F theory predicts the whole curve.

    The theory is exact conditional on the projection F and is averaged over its draws."""
    lam, p = _problem(s, normalize_lam=True)
    t = np.array(s.times)
    th = rf_loss_curve(lam, p, t, N=s.width, P=s.samples, n_draws=s.theory_draws, seed=seeds.next())
    sim = simulate_rf(lam, p, t, N=s.width, P=s.samples, draws=s.draws, seed=seeds.next())
    cmp = Comparison(f"N={s.width}, P={s.samples}", T_AXIS, "loss", denominator="sim")
    cmp.add("test", t, th.loss, sim.loss, sim.loss_se)
    cmp.show("train", t, th.train_loss, sim.train_loss, sim.train_se)
    rise = bool(sim.loss[-1] > sim.loss.min() * 1.05 and th.loss[-1] > th.loss.min() * 1.05)
    return cmp.outcome("max", checks={"late-time overfitting rise": rise}, details={
        "sim_se_rel": sim.loss_se / sim.loss, "theory_se_rel": sem(th.extras["per_draw_loss"]) / th.loss})

@dataclass(frozen=True)
class RFExponents(Setting):
    a: float = 2.0
    b: float = 2.0
    n_modes: int = 3000
    time_width: int = 300
    time_window: tuple[float, float] = (1.0, 30.0)
    widths: tuple[int, ...] = (24, 48, 96, 192)
    samples: tuple[int, ...] = (24, 48, 96, 192)
    draws: int = 8

@claim("scaling.rf_dynamics.exponents", paper=RF_PAPER, tolerance=0.05,
       metric="max |fitted exponent (simulation) - predicted exponent| over time, width and data",
       quick=RFExponents(), full=RFExponents(n_modes=8000, time_width=1000, time_window=(1.0, 100.0),
                                             widths=(32, 64, 128, 256, 512), samples=(32, 64, 128, 256, 512), draws=16))
def rf_exponents_claim(s: RFExponents, seeds: SeedStream):
    """For lam_k ~ k^-b and target power ~ k^-a the loss scales as t^-(a-1)/b in time,
    N^-min(a-1,b) in width and P^-min(a-1,2b) in data: time and width exponents differ.

    Bottlenecks (t -> inf) are measured on nested models; smaller sizes spread more between draws
    and get proportionally more (cost ~ draws * size^2 stays flat)."""
    lam, p = _problem(s)
    pred = rf_exponents(s.a, s.b)
    t = np.geomspace(*s.time_window, 8)
    sim_t = simulate_rf(lam, p, t, N=s.time_width, draws=s.draws, seed=seeds.next())
    curves = {"time": (t, rf_loss_curve(lam, p, t, N=s.time_width).loss, sim_t.loss, sim_t.loss_se)}
    for kind, sizes, theory in (("width", s.widths, width_bottleneck), ("data", s.samples, data_bottleneck)):
        n = np.array(sizes, dtype=float)
        sim = [simulate_bottlenecks(lam, p, [k], kind=kind, draws=int(np.ceil(s.draws * n.max() / k)),
                                    seed=seeds.next()).loss[0] for k in sizes]
        curves[kind] = (n, np.array([theory(lam, p, k) for k in sizes]), np.array(sim), None)
    fits = {k: fit_power_law(x, sim) for k, (x, _, sim, _) in curves.items()}
    devs = {k: abs(f.exponent - getattr(pred, k)) for k, f in fits.items()}
    panels = []
    for k, (x, th, sim, err) in curves.items():
        cmp = Comparison(k, {"time": "t", "width": "N", "data": "P"}[k], "loss (t = inf for N, P)", denominator="sim")
        cmp.add("", x, th, sim, err)
        cmp.reference(f"slope -{getattr(pred, k):.3g}", x, th[0] * (x / x[0]) ** -getattr(pred, k))
        panels.append(cmp.panel)
    return ClaimOutcome(max(devs.values()), panels, details={
        "predicted": {k: getattr(pred, k) for k in fits}, "fitted": {k: f.exponent for k, f in fits.items()},
        "fit_stderr": {k: f.stderr for k, f in fits.items()},
        "theory_fitted": {k: fit_power_law(x, th).exponent for k, (x, th, _, _) in curves.items()}})

@dataclass(frozen=True)
class RFCompute(Setting):
    a: float = 2.0
    b: float = 2.0
    n_modes: int = 4000
    widths: tuple[float, ...] = tuple(np.geomspace(4, 512, 11))
    compute: tuple[float, float] = (1e2, 1e5)
    check_width: int = 64
    draws: int = 10

@claim("scaling.rf_dynamics.compute_optimal", paper=RF_PAPER, tolerance=0.05,
       metric="max of |fitted frontier exponent - closed form| over (N*, t*, L*) and the relative error (to "
       "simulation) of the theory at one frontier point",
       expect=fragile("quick passed at 9 of seeds 0-9 (0.014-0.058; 8 of 10 before the seed streams): the "
                      "frontier-point simulation has a 3-5 % standard error with 10 draws", modes=("quick",)),
       quick=RFCompute(), full=RFCompute(n_modes=40000, widths=tuple(np.geomspace(4, 4096, 41)), compute=(1e2, 1e8),
                                         check_width=256, draws=20))
def rf_compute_optimal(s: RFCompute, seeds: SeedStream):
    """At fixed compute C = N t the optimal width grows as C^{1/(1+b)} and steps as C^{b/(1+b)}
    (steps grow faster than parameters), with L* ~ C^-(a-1)/(1+b)."""
    lam, p = _problem(s)
    ex = rf_exponents(s.a, s.b)
    co, fr = compute_optimal(ex.time, ex.width), compute_frontier(lam, p, s.widths, np.geomspace(*s.compute, 13))
    C = fr.compute
    fits = {"N*": fit_power_law(C, fr.N).slope, "t*": fit_power_law(C, fr.t).slope,
            "L*": fit_power_law(C, fr.loss).exponent}
    pred = {"N*": co.N_exponent, "t*": co.t_exponent, "L*": co.loss_exponent}
    t_chk = np.exp(np.interp(np.log(s.check_width), np.log(fr.N), np.log(fr.t)))[None]
    th_chk = rf_loss_curve(lam[:4000], p[:4000], t_chk, N=s.check_width).loss[0]
    sim_chk = simulate_rf(lam[:4000], p[:4000], t_chk, N=s.check_width, draws=s.draws, seed=seeds.next()).loss[0]
    sim_err = float(rel_err_sim(th_chk, sim_chk))
    cmp = Comparison("compute-optimal frontier", "compute C = N t", "value")
    for k, y, sign in (("N*", fr.N, 1), ("t*", fr.t, 1), ("L*", fr.loss, -1)):
        cmp.draw(f"{k} theory", C, y, role="theory")
        cmp.reference(f"{k} ~ C^{sign * pred[k]:.3g}", C, y[0] * (C / C[0]) ** (sign * pred[k]))
    dev = max(abs(fits[k] - pred[k]) for k in fits)
    return ClaimOutcome(max(dev, sim_err), [cmp.panel], {"steps grow faster than parameters": fits["t*"] > fits["N*"]},
                        {"fitted": fits, "predicted": pred, "frontier_point": {"N": s.check_width, "t": float(t_chk[0]),
                                                                               "theory": th_chk, "sim": sim_chk}})

@dataclass(frozen=True)
class RFFiniteWidth(Setting):
    """a = 3, b = 1.5: the late rate c = min(a - 1, b) = 1.5 differs from the early 1/N, and the
    light target tail (p_k ~ k^-3) makes truncation at n_modes harmless."""
    a: float = 3.0
    b: float = 1.5
    n_modes: int = 20000
    widths: tuple[int, ...] = (50, 100, 200, 400, 800)
    early_times: tuple[float, ...] = (0.3, 1.0, 3.0)

@claim("scaling.rf_dynamics.finite_width_rate", paper=RF_PAPER, tolerance=0.05,
       metric="max |fitted exponent in N of L_N(t) - L_inf(t) (theory (6.1)) - {1 early, c late}|",
       quick=RFFiniteWidth(), full=RFFiniteWidth(n_modes=100000, widths=(100, 200, 400, 800, 1600, 3200),
                                                 early_times=(0.1, 0.3, 1.0, 3.0, 10.0)))
def rf_finite_width_rate(s: RFFiniteWidth, seeds: SeedStream):
    """Early in training width-N models approach their infinite-width dynamics at rate 1/N, at
    late times at rate N^-c with c = min(a-1, b) set by the task and architecture."""
    lam, p = _problem(s)
    Ns, t = np.array(s.widths, dtype=float), np.array(s.early_times)
    inf = rf_loss_curve(lam, p, t).loss
    gaps = np.array([rf_loss_curve(lam, p, t, N=N).loss - inf for N in Ns])      # (W, T)
    early = np.array([fit_power_law(Ns, g).exponent for g in gaps.T])
    late_gap = np.array([width_bottleneck(lam, p, N) for N in Ns])
    late, c = fit_power_law(Ns, late_gap).exponent, rf_exponents(s.a, s.b).width
    cmp = Comparison("L_N(t) - L_inf(t)", "width N", "gap")
    for j, tt in enumerate(t):
        cmp.draw(f"t={tt:g} gap theory", Ns, gaps[:, j], role="theory")
    cmp.draw("t=inf gap (bottleneck) theory", Ns, late_gap, role="theory")
    cmp.reference("slope -1", Ns, gaps[0, 0] * Ns[0] / Ns)
    cmp.reference(f"slope -{c:g}", Ns, late_gap[0] * (Ns / Ns[0]) ** -c)
    return ClaimOutcome(max(float(np.max(np.abs(early - 1.0))), abs(late - c)), [cmp.panel],
                        details={"early_exponents": early, "late_exponent": late, "c": c})

# =========================================================================== feature learning
@dataclass(frozen=True)
class FLFinite(Setting):
    """Finite projected-GD models (M features, width N) on the hard task alpha = 3, beta = 0.3:
    alpha = 3 keeps the target's tail light (p_k ~ k^-1.9), so M = 2000 and N = 500 follow the
    untruncated N = inf theory over t <= 100 (alpha = 1.5, tail p_k ~ k^-1.45, needs M >> 10^5)."""
    alpha: float = 3.0
    beta: float = 0.3
    gammas: tuple[float, ...] = (0.0, 8.0)
    n_features: int = 2000
    width: int = 500
    times: tuple[float, ...] = tuple(np.geomspace(1, 100, 7))
    draws: int = 4

@claim("scaling.feature_learning.dynamics", paper=FL_PAPER, tolerance=0.05, metric=f"{MAX_SIM} over t and gamma",
       quick=FLFinite(), full=FLFinite(gammas=(0.0, 2.0, 8.0), n_features=4000, width=1000,
                                           times=tuple(np.geomspace(1, 300, 9)), draws=6))
def fl_dynamics(s: FLFinite, seeds: SeedStream):
    """The infinite-width dynamics of the two-layer linear model trained by projected gradient
    descent (an exact reduction to a preconditioned flow whose kernel grows like
    sqrt(gamma)||f||) predict the loss curves of finite networks in both the lazy and the rich
    regime."""
    t = np.array(s.times)
    lam_inf, p_inf = power_law_task(s.alpha, s.beta)
    lam, p = power_law_task(s.alpha, s.beta, exact_modes=s.n_features, k_max=None)
    cmp, extra = Comparison(f"alpha={s.alpha:g}, beta={s.beta:g} (hard task)", "t", "loss", denominator="sim"), {}
    for g in s.gammas:
        th = rich_linear_curve(lam_inf, p_inf, t, gamma=g)
        sim = simulate_projected_gd(lam, p, t, N=s.width, gamma=g, draws=s.draws, seed=seeds.next())
        cmp.add(f"gamma={g:g}", t, th.loss, sim.loss, sim.loss_se)
        extra[f"gamma={g:g}"] = {"bottleneck": sim.bottleneck, "kernel_scale_end": float(th.kernel_scale[-1])}
    return cmp.outcome("max", details=extra)

@claim("scaling.feature_learning.hard_exponent", paper=FL_PAPER, tolerance=0.05,
       metric="max over {lazy, rich} of |fitted exponent (simulation) - predicted exponent|",
       quick=FLFinite(times=tuple(np.geomspace(3, 100, 8))),
       full=FLFinite(n_features=4000, width=1000, times=tuple(np.geomspace(10, 300, 8)), draws=6))
def fl_hard_exponent(s: FLFinite, seeds: SeedStream):
    """For a hard task (beta < 1) feature learning improves the time exponent from beta (lazy) to
    chi = 2 beta/(1 + beta) (rich), nearly doubling it for small beta."""
    t = np.array(s.times)
    lam, p = power_law_task(s.alpha, s.beta, exact_modes=s.n_features, k_max=None)
    pred = {"lazy": s.beta, "rich": float(chi(s.beta))}
    cmp, fits = Comparison(f"hard task alpha={s.alpha:g}, beta={s.beta:g}", "t", "loss"), {}
    for regime, g in (("lazy", s.gammas[0]), ("rich", s.gammas[-1])):
        sim = simulate_projected_gd(lam, p, t, N=s.width, gamma=g, draws=s.draws, seed=seeds.next())
        fits[regime] = fit_power_law(t, sim.loss)
        cmp.draw(f"{regime} sim", t, sim.loss, sim.loss_se)
        cmp.reference(f"{regime} slope -{pred[regime]:.3g}", t, sim.loss[0] * (t / t[0]) ** -pred[regime])
    lam_inf, p_inf = power_law_task(s.alpha, s.beta)   # the N = inf theory's own slope far out in time
    t_far = np.geomspace(1e6, 1e8, 5)
    far = fit_power_law(t_far, rich_linear_curve(lam_inf, p_inf, t_far, gamma=s.gammas[-1]).loss).exponent
    ratio = fits["rich"].exponent / fits["lazy"].exponent
    return ClaimOutcome(max(abs(fits[k].exponent - pred[k]) for k in pred), [cmp.panel],
                        {"rich exponent / lazy exponent > 1.3": bool(ratio > 1.3)},
                        {"fitted": {k: f.exponent for k, f in fits.items()}, "predicted": pred, "ratio": ratio,
                         "fit_stderr": {k: f.stderr for k, f in fits.items()}, "theory_slope_t_1e6_1e8": far})

@dataclass(frozen=True)
class FLExponentFunction(Setting):
    alpha: float = 1.5
    betas: tuple[float, ...] = (0.3, 0.6, 1.25, 1.5)
    gamma: float = 4.0
    window: tuple[float, float] = (1e5, 1e7)

@claim("scaling.feature_learning.exponent_function", paper=FL_PAPER, tolerance=0.05,
       metric="max over beta and {lazy, rich} of |late-time slope of the N = inf dynamics - closed form|",
       quick=FLExponentFunction(),
       full=FLExponentFunction(betas=(0.2, 0.3, 0.45, 0.6, 0.8, 1.25, 1.5, 2.0), window=(1e6, 1e9)))
def fl_exponent_function(s: FLExponentFunction, seeds: SeedStream):
    """The rich-regime time exponent is chi(beta) = beta max(1, 2/(1+beta)): improved for hard
    tasks (beta < 1), unchanged for easy tasks (beta > 1), while lazy training gives beta.

    Slopes are fitted to the untruncated N = inf dynamics (no simulation: deterministic)."""
    t = np.geomspace(*s.window, 6)
    betas = np.array(s.betas)
    rich, lazy = (np.array([fit_power_law(t, rich_linear_curve(*power_law_task(s.alpha, b), t, gamma=g).loss).exponent
                            for b in betas]) for g in (s.gamma, 0.0))
    grid = np.linspace(0.05, max(2.0, betas.max()), 100)
    cmp = Comparison("time exponent vs source", "beta", "exponent", "linear", "linear")
    cmp.reference("chi(beta) closed form", grid, chi(grid))
    cmp.reference("lazy beta closed form", grid, grid)
    cmp.draw("rich dynamics", betas, rich)
    cmp.draw("lazy dynamics", betas, lazy)
    dev = max(np.max(np.abs(rich - chi(betas))), np.max(np.abs(lazy - betas)))
    return ClaimOutcome(float(dev), [cmp.panel], details={
        f"beta={b:g}": {"rich": r, "chi": float(chi(b)), "lazy": z} for b, r, z in zip(betas, rich, lazy)})

@dataclass(frozen=True)
class CircleMLP(Setting):
    """Two-layer ReLU MLP (mean-field, richness gamma) on a beta = 1/2 hard task on the circle:
    target amplitudes k^-1 (power k^-2 per frequency, random phases) for k <= n_freq on a grid
    of n_grid angles; the loss exponent is fitted over ``times`` (gradient-flow time)."""
    beta: float = 0.5
    n_freq: int = 64
    n_grid: int = 256
    width: int = 256
    lazy_gamma: float = 0.01
    rich_gammas: tuple[float, ...] = (1.0,)
    times: tuple[float, ...] = tuple(np.geomspace(10, 1000, 8))
    seeds: int = 1

CIRCLE_REASON = ("measured at quick (width 256, t = 10..1000, seeds 0-2): fitted exponents 0.36-0.40 lazy (predicted "
                 "0.5; the infinite-width lazy curve itself gives 0.44 in this window) and 0.28-0.32 rich at gamma = 1 "
                 "(predicted chi = 0.67), so the rich MLP trains slower than the lazy one and the deviation is "
                 "0.34-0.39 > 0.1; full (width 512, t = 30..1000, seed 0): 0.41 lazy, 0.32 rich at gamma = 3 (0.35); "
                 "full stops at t = 1e3: GD at gamma = 3 backtracks to h ~ 0.03 there, t = 3e3 would take ~1e5 steps")

@claim("scaling.feature_learning.circle_mlp", paper=FL_PAPER, tolerance=0.1,
       metric="max over {lazy, most rich} of |fitted loss-vs-time exponent - predicted (beta lazy, chi(beta) rich)|",
       quick=CircleMLP(), full=CircleMLP(n_freq=128, n_grid=512, width=512, rich_gammas=(1.0, 3.0),
                                         times=tuple(np.geomspace(30, 1000, 9))),
       expect=known_failure(CIRCLE_REASON, modes=("quick", "full")))
def circle_mlp(s: CircleMLP, seeds: SeedStream):
    """For a hard task on the circle (power-law Fourier target outside the RKHS of the ReLU NTK,
    capacity alpha = 2, source beta < 1) rich (muP, large gamma) MLPs train with a larger
    loss-vs-time exponent than lazy ones, approaching chi(beta) = 2 beta/(1+beta) versus the
    lazy beta.

    The nonlinear experiment of the paper; lazy gamma = 0.01. The learned frequency grows like
    sqrt(0.07 t), so t = 1e3 only reaches k ~ 8 and the exponents are pre-asymptotic."""
    task = circle_task(s.beta, n_freq=s.n_freq, n_grid=s.n_grid, seed=seeds.next())
    t = np.array(s.times)
    pred = {"lazy": s.beta, "rich": float(chi(s.beta))}
    alpha_fit = fit_power_law(np.arange(10.0, 401), circle_ntk_spectrum(400)[10:]).exponent  # NTK capacity (2)
    lazy_th = lazy_circle_curve(t, task.power, s.n_grid)
    runs = {g: train_circle_mlp(task, t, width=s.width, gamma=g, seeds=s.seeds, seed=seeds.next())
            for g in (s.lazy_gamma, *s.rich_gammas)}
    fits = {g: fit_power_law(t, r.loss) for g, r in runs.items()}
    lazy_fit, rich_fit = fits[s.lazy_gamma].exponent, fits[max(s.rich_gammas)].exponent
    devs = {"lazy": abs(lazy_fit - pred["lazy"]), "rich": abs(rich_fit - pred["rich"])}
    cmp = Comparison(f"MLP on the circle, beta={s.beta:g} (hard task)", T_AXIS, "loss")
    cmp.draw("lazy NTK theory (infinite width)", t, lazy_th, role="theory")
    for g, r in runs.items():
        cmp.draw(f"gamma={g:g} MLP", t, r.loss, r.loss_se if s.seeds > 1 else None)
    for k in ("lazy", "rich"):
        cmp.reference(f"slope -{pred[k]:.3g} ({k})", t, lazy_th[0] * (t / t[0]) ** -pred[k])
    per = lambda f: {f"gamma={g:g}": f(g) for g in runs}  # noqa: E731
    checks = {"rich exponent exceeds the lazy exponent": rich_fit > lazy_fit}
    return ClaimOutcome(max(devs.values()), [cmp.panel], checks, {
        "predicted": pred, "fitted": per(lambda g: fits[g].exponent), "deviations": devs,
        "fit_stderr": per(lambda g: fits[g].stderr), "capacity_alpha_from_ntk_spectrum": alpha_fit,
        "lazy_theory_slope_in_window": fit_power_law(t, lazy_th).exponent, "gd_steps": per(lambda g: runs[g].steps),
        "weight_change": per(lambda g: runs[g].weight_change), "backtracked_steps": per(lambda g: runs[g].rejected)})
