"""Claims for the nonlinear DMFT of feature learning: two-layer and deep networks, the lazy
limit, and consistency across widths.

Theory :mod:`lmech.theory.dmft.sampling` (Monte Carlo DMFT), :mod:`lmech.theory.dmft.lazy`;
simulation :func:`lmech.sim.mean_field.train_mean_field` (same data, lr and steps, a seed ensemble
per width). Errors are relative L2 errors over the trajectory, ``||sim - theory|| / ||theory||``:
the *loss-curve error* of the seed-averaged training loss; the *single-network error*, the mean
over seeds of the error of each network's residual ``y - f(t)`` (initialisation fluctuations,
O(N^-1/2): its fitted slope against N is checked); the *ensemble error*, that of the mean residual.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, claim, fragile, one_thread, sem,
                                  width_slope)
from lmech.claims.toolkit import norm_rel_err_theory as rel
from lmech.data.vision import digits_binary_task
from lmech.kernels import ntk_mlp
from lmech.sim.mean_field import sphere_regression_task, train_mean_field
from lmech.theory.dmft.lazy import static_kernel_gd
from lmech.theory.dmft.sampling import deep, two_layer

DMFT = "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks"
WIDTH = "Feature-Learning Networks Are Consistent Across Widths At Realistic Scales"
STEP = "GD step"
LOSS_CURVE = "relative L2 error (to theory) of the seed-averaged training-loss curve at the largest width"

def _nets_vs_dmft(th, task, s, seeds: SeedStream, **kw):
    """A seed ensemble of tanh networks per width in ``s.widths`` and its errors against the DMFT."""
    X, y, Xt, yt = task
    runs, errs = {}, {}
    for N in s.widths:
        r = runs[N] = train_mean_field(X, y, width=N, gamma0=s.gamma0, lr=s.lr, steps=s.steps, X_test=Xt, y_test=yt,
                                       seeds=seeds.take(s.n_seeds), activation="tanh", **kw)
        single = [rel(th.residuals, d) for d in r.residual]
        errs[N] = {"single_net_error": float(np.mean(single)), "single_net_error_sem": float(sem(single)),
                   "ensemble_error": rel(th.residuals, r.residual.mean(0)),
                   "loss_curve_error": rel(th.train_loss, r.train_loss.mean(0)),
                   "test_loss_curve_error": rel(th.test_loss, r.test_loss.mean(0))}
        if r.ntk is not None:
            errs[N]["ntk_error"] = rel(th.ntk, r.ntk.mean(0))
    return runs, errs

def _width_panel(errs):
    widths = list(errs)
    single = np.array([errs[N]["single_net_error"] for N in widths])
    cmp = Comparison("deviation from the DMFT vs width", "width N", "relative error of Delta(t)")
    cmp.draw("single network sim", widths, single, [errs[N]["single_net_error_sem"] for N in widths])
    cmp.draw("ensemble mean sim", widths, [errs[N]["ensemble_error"] for N in widths])
    cmp.reference("N^-1/2", widths, single[0] * (np.asarray(widths, float) / widths[0]) ** -0.5)
    return cmp.panel

def _dmft_details(th) -> dict:
    return {"sweeps": th.iterations, "residual": th.residual, "mc_error": th.mc_error, "message": th.message}

# =========================================================================== two-layer and deep
@dataclass(frozen=True)
class Rich(Setting):
    """Tanh networks with ``depth`` hidden layers on the sphere task, gamma0 = 1.5."""
    P: int = 8
    P_test: int = 8
    D: int = 10
    depth: int = 1
    gamma0: float = 1.5
    lr: float = 0.1
    steps: int = 100
    samples: int = 20000
    response_samples: int = 0  # depth >= 2 only
    widths: tuple[int, ...] = (256, 1024)
    n_seeds: int = 8

_SLOPE_NOISE = fragile("quick: the single-network error slope from 2 widths x 6-8 seeds has a standard error of "
                       "~0.15 (per-width standard errors 10-20 %); measured slopes -0.82 .. -0.34 at seeds 0-2 (two-layer) "
                       "and 0-3 (three-layer), 2 of the 7 outside the [-0.8, -0.25] check (loss-curve errors "
                       "0.003-0.008 pass at every seed)", n_seeds=3, min_passing=1, modes=("quick",))
_DEEP = Rich(P=4, P_test=4, D=8, depth=2, lr=0.2, steps=20, samples=4000, response_samples=1000, n_seeds=6)

def _rich(s: Rich, seeds: SeedStream, tol: float) -> ClaimOutcome:
    task = X, y, Xt, yt = sphere_regression_task(s.P, s.P_test, s.D)
    kw = dict(gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation="tanh", X_test=Xt, y_test=yt, samples=s.samples)
    with one_thread():
        th = (two_layer(X, y, seed=seeds.next(), **kw) if s.depth == 1 else
              deep(X, y, depth=s.depth, response_samples=s.response_samples, replicas=1, seed=seeds.next(), **kw))
        runs, errs = _nets_vs_dmft(th, task, s, seeds, depth=s.depth)
    N, run, widths = s.widths[-1], runs[s.widths[-1]], list(s.widths)
    slope = width_slope(widths, [errs[n]["single_net_error"] for n in widths])
    loss = Comparison(f"{s.depth + 1}-layer tanh (networks: N = {N}, {s.n_seeds} seeds)", STEP, "loss", xscale="linear")
    loss.add("train loss", th.steps, th.train_loss, run.train_loss.mean(0), sem(run.train_loss))
    loss.add("test loss", th.steps, th.test_loss, run.test_loss.mean(0), sem(run.test_loss))
    move = Comparison(f"kernel evolution (N = {N})", STEP, "||K(t) - K(0)|| / ||K(0)||", "linear", "linear")
    m = np.linalg.norm(run.ntk - run.ntk[:, :1], axis=(-2, -1)) / np.linalg.norm(run.ntk[:, 0], axis=(-2, -1))[:, None]
    move.add("NTK movement", th.steps, np.linalg.norm(th.ntk - th.ntk[0], axis=(-2, -1)) / np.linalg.norm(th.ntk[0]),
             m.mean(0), sem(m))
    return ClaimOutcome(errs[N]["loss_curve_error"], [loss.panel, _width_panel(errs), move.panel], {
        "solver converged": bool(th.converged),
        "single-network error shrinks with width (slope < 0)": slope < 0,
        "slope near -1/2 (in [-0.8, -0.25])": -0.8 <= slope <= -0.25,
        f"test-loss curve error <= {tol:g} at the largest width": errs[N]["test_loss_curve_error"] <= tol,
        f"NTK trajectory error <= {tol:g} at the largest width": errs[N]["ntk_error"] <= tol,
    }, {"per_width": {str(n): errs[n] for n in widths}, "single_net_error_slope": slope,
        "ensemble_error_slope": width_slope(widths, [errs[n]["ensemble_error"] for n in widths]),
        "loss_curve_error_slope": width_slope(widths, [errs[n]["loss_curve_error"] for n in widths]),
        "dmft": _dmft_details(th)})

@claim("dmft.two_layer.tanh", paper=DMFT, tolerance=0.03, metric=LOSS_CURVE,
       quick=Rich(), full=Rich(samples=100000, widths=(128, 256, 512, 1024, 2048, 4096)), expect=_SLOPE_NOISE)
def two_layer_tanh(s: Rich, seeds: SeedStream) -> ClaimOutcome:
    """The infinite-width DMFT (per-neuron field dynamics closed by the residual, gamma0 = 1.5)
    predicts the train/test loss curves and the NTK evolution of two-layer tanh networks in the
    mean-field parameterization trained by full-batch GD; single-network deviations shrink as N^-1/2."""
    return _rich(s, seeds, 0.03)

@claim("dmft.deep.tanh_L2", paper=DMFT, tolerance=0.05, metric=LOSS_CURVE,
       quick=_DEEP, full=replace(_DEEP, lr=0.1, steps=40, samples=8000, response_samples=2000, widths=(256, 1024, 4096)),
       expect=_SLOPE_NOISE)
def deep_tanh(s: Rich, seeds: SeedStream) -> ClaimOutcome:
    """For a three-layer tanh network (two hidden layers, gamma0 = 1.5) the DMFT with two-time
    kernels and pathwise response functions predicts the loss curves and NTK evolution of
    mean-field networks trained by GD; deviations shrink with width.

    Quick: the full run's total time in 20 steps of lr 0.2 (the solver's cost grows as steps^3)."""
    return _rich(s, seeds, 0.05)

# =========================================================================== lazy limit
@dataclass(frozen=True)
class Lazy(Setting):
    """erf networks (whose NTK :func:`lmech.kernels.ntk_mlp` gives analytically) on the sphere task."""
    P: int = 6
    P_test: int = 4
    D: int = 8
    lazy_gamma0: float = 1e-3
    rich_gamma0: float = 3.0
    lr: float = 0.3
    steps: int = 20
    deep_steps: int = 10
    samples: int = 20000
    deep_samples: int = 10000
    width: int = 1024
    n_seeds: int = 4

@claim("dmft.lazy_limit", paper=DMFT, tolerance=0.02,
       metric="max over depth in {1, 2} of the relative L2 error (to static-NTK GD) of the DMFT loss curve at gamma0 = 1e-3",
       quick=Lazy(), full=Lazy(samples=100000, deep_samples=40000, width=4096, n_seeds=8))
def lazy_limit(s: Lazy, seeds: SeedStream) -> ClaimOutcome:
    """As gamma0 -> 0 the DMFT reduces to static-NTK (lazy) dynamics: the solver's kernels freeze
    at the analytic NTK and its loss curve equals kernel gradient descent with that NTK, for
    two-layer and three-layer networks; at gamma0 = O(1) the dynamics depart from the NTK (and
    networks follow).

    The three-layer case uses the kernel closure (``dynamics="flow"``, exact for a static kernel);
    the lazy and rich networks share their initialisations."""
    X, y, Xt, yt = sphere_regression_task(s.P, s.P_test, s.D)
    kw = dict(activation="erf", X_test=Xt, y_test=yt, lr=s.lr)
    K1, K2 = (ntk_mlp(X, depth=d, activation="erf", weight_var=1.0, bias_var=0.0) for d in (1, 2))
    ntk1, ntk2 = static_kernel_gd(K1, y, lr=s.lr, steps=s.steps), static_kernel_gd(K2, y, lr=s.lr, steps=s.deep_steps)
    with one_thread():
        lazy1 = two_layer(X, y, gamma0=s.lazy_gamma0, steps=s.steps, samples=s.samples, seed=seeds.next(), **kw)
        rich1 = two_layer(X, y, gamma0=s.rich_gamma0, steps=s.steps, samples=s.samples, seed=seeds.next(), **kw)
        lazy2 = deep(X, y, depth=2, replicas=1, gamma0=s.lazy_gamma0, steps=s.deep_steps, samples=s.deep_samples,
                     response_samples=500, dynamics="flow", seed=seeds.next(), **kw)
        nets = seeds.take(s.n_seeds)
        lazy_nets, rich_nets = (train_mean_field(X, y, width=s.width, gamma0=g, steps=s.steps, seeds=nets, center=c,
                                                 track_kernels=False, **kw)
                                for g, c in ((s.lazy_gamma0, True), (s.rich_gamma0, False)))
    err1, err2, rich_gap = rel(ntk1, lazy1.train_loss), rel(ntk2, lazy2.train_loss), rel(ntk1, rich1.train_loss)
    movement = rel(lazy1.ntk[0], lazy1.ntk[-1])
    two = Comparison("two-layer erf: lazy limit vs feature learning", STEP, "train loss", xscale="linear")
    two.reference("static NTK (lmech.kernels)", lazy1.steps, ntk1)
    two.add(f"lazy gamma0={s.lazy_gamma0:g}", lazy1.steps, lazy1.train_loss, lazy_nets.train_loss.mean(0))
    two.add(f"rich gamma0={s.rich_gamma0:g}", rich1.steps, rich1.train_loss, rich_nets.train_loss.mean(0))
    nets_lazy_err, nets_rich_err = rel(ntk1, lazy_nets.train_loss.mean(0)), rel(rich1.train_loss, rich_nets.train_loss.mean(0))
    three = Comparison("three-layer erf: lazy DMFT vs static NTK", STEP, "train loss", xscale="linear")
    three.reference("static NTK (lmech.kernels)", lazy2.steps, ntk2)
    three.draw(f"lazy gamma0={s.lazy_gamma0:g} theory", lazy2.steps, lazy2.train_loss, role="theory")
    return ClaimOutcome(max(err1, err2), [two.panel, three.panel], {
        "lazy DMFT kernel frozen (relative NTK movement <= 1e-2)": movement <= 1e-2,
        "initial DMFT NTK equals the analytic NTK within 2%":
            max(rel(K1, lazy1.ntk[0, :s.P, :s.P]), rel(K2, lazy2.ntk[0, :s.P, :s.P])) <= 0.02,
        "rich dynamics depart from the NTK by > 3x the tolerance": rich_gap > 3 * 0.02,
        "centred lazy networks follow static-NTK GD within 5%": nets_lazy_err <= 0.05,
        "rich networks follow the rich DMFT within 5%": nets_rich_err <= 0.05,
    }, {"two_layer_error": err1, "deep_error": err2, "rich_vs_ntk_gap": rich_gap, "lazy_ntk_movement": movement,
        "lazy_networks_vs_ntk": nets_lazy_err, "rich_networks_vs_rich_dmft": nets_rich_err,
        "dmft_messages": [lazy1.message, rich1.message, lazy2.message]})

# =========================================================================== width consistency
@dataclass(frozen=True)
class Consistency(Setting):
    """Two-layer tanh networks at gamma0 = 1 on :func:`lmech.data.vision.digits_binary_task`."""
    n_train: int = 32
    n_test: int = 32
    gamma0: float = 1.0
    lr: float = 1.0
    steps: int = 40
    samples: int = 10000
    widths: tuple[int, ...] = (512, 1024)
    n_seeds: int = 8

@claim("dmft.width_consistency", paper=WIDTH, tolerance=0.03,
       metric="max over widths >= 512 of the relative L2 error (to theory) of the seed-averaged train and test loss curves",
       quick=Consistency(),
       full=Consistency(n_train=64, steps=50, samples=20000, widths=(512, 1024, 2048, 4096)))
def width_consistency(s: Consistency, seeds: SeedStream) -> ClaimOutcome:
    """At fixed richness gamma0 in the mean-field/muP parameterization, networks of width >= 512
    trained on real data (digits) have the same train and test loss curves as each other and as
    the infinite-width DMFT; the finite-width variance across seeds falls as 1/N.

    The width gap of the test predictions is split as in the consistency paper into the variance
    across seeds and the squared bias of the seed average against the DMFT."""
    task = X, y, Xt, yt = digits_binary_task(s.n_train, s.n_test)
    with one_thread():
        th = two_layer(X, y, gamma0=s.gamma0, lr=s.lr, steps=s.steps, activation="tanh", X_test=Xt, y_test=yt,
                       samples=s.samples, seed=seeds.next())
        runs, errs = _nets_vs_dmft(th, task, s, seeds, track_kernels=False)
    widths, widest = list(s.widths), runs[s.widths[-1]]
    curve_err = {N: max(errs[N]["loss_curve_error"], errs[N]["test_loss_curve_error"]) for N in widths}
    between = {N: max(rel(widest.train_loss.mean(0), runs[N].train_loss.mean(0)),
                      rel(widest.test_loss.mean(0), runs[N].test_loss.mean(0))) for N in widths[:-1]}
    var = [float(np.mean(runs[N].f_test.var(axis=0, ddof=1))) for N in widths]
    bias = [float(np.mean((runs[N].f_test.mean(0) - th.f_test) ** 2)) for N in widths]
    var_slope, slope = width_slope(widths, var), width_slope(widths, [errs[N]["single_net_error"] for N in widths])
    loss = Comparison(f"digits, two-layer tanh, gamma0 = {s.gamma0:g}: loss curves across widths", STEP, "loss",
                      xscale="linear")
    for split in ("train", "test"):
        loss.draw(f"{split} loss theory", th.steps, getattr(th, f"{split}_loss"), role="theory")
        for N in widths:
            loss.draw(f"{split} loss N={N} sim", th.steps, getattr(runs[N], f"{split}_loss").mean(0))
    gap = Comparison("width gap of test predictions vs DMFT", "width N", "mean squared deviation")
    gap.draw("variance across seeds sim", widths, var)
    gap.draw("squared bias of the seed mean sim", widths, bias)
    gap.reference("1/N", widths, var[0] * widths[0] / np.asarray(widths, float))
    return ClaimOutcome(max(curve_err.values()), [loss.panel, gap.panel, _width_panel(errs)], {
        "solver converged": bool(th.converged),
        "widths agree with the widest network within the tolerance": max(between.values()) <= 0.03,
        "single-network deviation from the DMFT shrinks with width": slope < 0,
        "seed variance of test predictions falls with width (slope < -0.5)": var_slope < -0.5,
    }, {"curve_error": {str(N): curve_err[N] for N in widths}, "vs_widest": {str(N): between[N] for N in widths[:-1]},
        "per_width": {str(N): errs[N] for N in widths}, "test_prediction_variance": dict(zip(map(str, widths), var)),
        "test_prediction_bias_sq": dict(zip(map(str, widths), bias)), "variance_slope": var_slope,
        "single_net_error_slope": slope, "dmft": _dmft_details(th)})
