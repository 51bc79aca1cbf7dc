"""Claims: deep linear networks from random init. Theory :mod:`lmech.theory.deep_linear_init`, simulation
:mod:`lmech.sim.deep_linear_init`. Curve errors: mean over steps of ``|sim - theory| / theory`` while the theory
loss is above ``floor`` x its initial value (past it, tiny losses magnify O(D/N) rate shifts)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, Tolerance, claim, fit_power_law,
                                  one_thread, slope_panel, width_slope)
from lmech.sim.deep_linear_init import optimal_lr, train_deep_linear
from lmech.theory import deep_linear_init as th

PAPER = "Deep Linear Network Training Dynamics from Random Initialization: Data, Width, Depth, and Hyperparameter Transfer"
LOSS = "population loss"

def _curve_err(theory, sim, floor):
    keep = theory >= floor * theory[0]
    return float(np.mean(np.abs(sim[keep] - theory[keep]) / theory[keep]))

@dataclass(frozen=True)
class Net(Setting):
    dim: int = 8
    gamma0: float = 1.0
    lr: float = 0.05
    steps: int = 12
    n_seeds: int = 32
    floor: float = 0.05
    width: int = 256

@dataclass(frozen=True)
class Width(Net):
    depth: int = 1
    lr: float = 0.1
    steps: int = 16
    widths: tuple[int, ...] = (128, 256, 512, 1024, 2048)
    n_seeds: int = 128

@claim("deep_linear.random_init.width", paper=PAPER, tolerance=0.05,
       metric="mean relative error (to theory) of the seed-averaged loss curve at the largest width; checks: "
              "fitted error slope vs N <= -0.5 (theory -1), loss at T/2 lower at the largest width",
       quick=Width(), full=Width(depth=2, dim=4, widths=(32, 64, 128, 256, 512), n_seeds=128))
def width(s: Width, seeds: SeedStream):
    """In muP, loss curves of randomly initialised deep linear networks on whitened data converge to the
    infinite-width theory (exact reduction of infinite-batch online SGD to the one-point deep-linear DMFT)
    as the width grows, with O(D/N) error, and wider is better."""
    ref = th.whitened_online(depth=s.depth, gamma0=s.gamma0, lr=s.lr, steps=s.steps)
    cmp, errs, mid = Comparison(f"muP, D = {s.dim}, L = {s.depth}", "step", LOSS), [], []
    with one_thread():
        for N in s.widths:
            r = train_deep_linear(dim=s.dim, width=N, depth=s.depth, gamma0=s.gamma0, lr=s.lr, steps=s.steps,
                                  data="population", n_seeds=s.n_seeds, seed=seeds.next())
            cmp.show(f"N={N}", ref.steps, ref.loss, r.mean[0], r.stderr[0])
            errs.append(_curve_err(ref.loss, r.mean[0], s.floor))
            mid.append(r.mean[0][s.steps // 2])
    return ClaimOutcome(errs[-1], [cmp.panel, slope_panel("error vs width", "N", "error", s.widths, errs,
                                                          reference_slope=-1.0)],
                        {"error slope <= -0.5": (slope := width_slope(s.widths, errs)) <= -0.5, "loss at T/2 falls with N": mid[-1] < mid[0]},
                        {"errors": errs, "slope": slope, "theory_slope": -1.0, "mid_loss": mid})

@dataclass(frozen=True)
class Transfer(Net):
    dim: int = 16
    steps: int = 4
    lrs: tuple[float, ...] = tuple(np.geomspace(0.1, 0.7, 14))
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)

@claim("deep_linear.random_init.lr_transfer", paper=PAPER, tolerance=0.05,
       metric="|d log2 lr* / d log2 N| in muP fitted over the widths (lr* minimises the loss at step T); "
              "check: NTP drifts more", quick=Transfer(), full=Transfer(widths=(32, 64, 128, 256, 512, 1024), n_seeds=128))
def lr_transfer(s: Transfer, seeds: SeedStream):
    """The loss-minimising learning rate of a deep linear network transfers across widths in muP,
    while in NTK parameterisation (lazier as N grows) it drifts (whitened data, population GD)."""
    lrs, opt = np.array(s.lrs), {}
    with one_thread():
        for param in ("mup", "ntp"):
            opt[param] = [optimal_lr(lrs, train_deep_linear(
                dim=s.dim, width=N, depth=1, gamma0=s.gamma0, lr=lrs, steps=s.steps, every=s.steps, data="population",
                param=param, n_seeds=s.n_seeds, seed=seeds.next()).mean[:, -1]) for N in s.widths]
    drift = {p: float(np.polyfit(np.log2(s.widths), np.log2(v), 1)[0]) for p, v in opt.items()}
    lr_th = optimal_lr(lrs, [th.whitened_online(depth=1, gamma0=s.gamma0, lr=e, steps=s.steps).loss[-1] for e in lrs])
    cmp = Comparison("optimal lr vs width", "N", "lr*")
    for p, v in opt.items():
        cmp.draw(p, s.widths, v)
    return ClaimOutcome(abs(drift["mup"]), [cmp.panel], {"NTP drifts more": abs(drift["ntp"]) > abs(drift["mup"])},
                        {"lr_opt": opt, "drift_per_doubling": drift, "lr_opt_theory_infinite_width": float(lr_th)})

@dataclass(frozen=True)
class Depth(Net):
    width: int = 64
    depths: tuple[int, ...] = (1, 2, 4, 8, 16)
    lr: float = 0.02
    n_seeds: int = 64

@claim("deep_linear.random_init.depth", paper=PAPER, tolerance=Tolerance(quick=0.10, full=0.05),
       metric="mean relative difference (to depth 2L, loss above floor) of the loss curves at the two largest depths; "
              "check: fitted slope of the difference vs L <= -0.5",
       quick=Depth(), full=Depth(width=128, depths=(1, 2, 4, 8, 16, 32), n_seeds=64))
def depth(s: Depth, seeds: SeedStream):
    """Residual deep linear networks with 1/sqrt(L) branches have a depth limit: loss curves converge as L
    grows, the L-to-2L gap shrinking like 1/L. (Input/readout weights shared across depths. Quick, N = 64,
    is noisier: its expected last gap ~ gap(1)/8 ~ 0.03 has a seed spread of about +-0.03.)"""
    cmp, curves, seed = Comparison(f"residual muP, N = {s.width}, D = {s.dim}", "step", LOSS), [], seeds.next()
    with one_thread():
        for L in s.depths:
            r = train_deep_linear(dim=s.dim, width=s.width, depth=L, residual=True, gamma0=s.gamma0, lr=s.lr,
                                  steps=s.steps, data="population", n_seeds=s.n_seeds, seed=seed)
            curves.append(r.mean[0])
            cmp.draw(f"L={L}", r.steps, r.mean[0], r.stderr[0])
    gaps = [_curve_err(b, a, s.floor) for a, b in zip(curves[:-1], curves[1:])]
    return ClaimOutcome(gaps[-1], [cmp.panel, slope_panel("gap between L and 2L", "L", "gap", s.depths[:-1], gaps,
                                                          reference_slope=-1.0)],
                        {"gap slope <= -0.5": (slope := width_slope(s.depths[:-1], gaps)) <= -0.5}, {"gaps": gaps, "slope": slope, "theory_slope": -1.0})

@dataclass(frozen=True)
class Reuse(Net):
    dim: int = 4
    n_samples: int = 8
    n_datasets: int = 32
    n_seeds: int = 96  # one-pass runs
    batch_size: int = 128

@claim("deep_linear.random_init.data_reuse", paper=PAPER, tolerance=0.05,
       metric="mean relative error (to theory) of the one-pass and repeated-data loss curves; "
              "check: reuse raises the final loss in theory and simulation",
       quick=Reuse(), full=Reuse(dim=8, n_samples=16, width=1024, steps=24, n_datasets=64, n_seeds=256, batch_size=256))
def data_reuse(s: Reuse, seeds: SeedStream):
    """Reusing the same P samples every step (full-batch GD) leaves a higher population loss than one-pass
    SGD on fresh data; the infinite-width theory (repeated: the DMFT on the simulation's data sets) predicts
    both curves and the gap. Both simulations subtract the initial function (zero at infinite width)."""
    X, b = (rng := seeds.rng()).standard_normal((s.n_datasets, s.n_samples, s.dim)), rng.standard_normal(s.dim)
    b *= np.sqrt(s.dim) / np.linalg.norm(b)
    kw = dict(dim=s.dim, depth=1, gamma0=s.gamma0, lr=s.lr, steps=s.steps)
    on = th.whitened_online(depth=1, gamma0=s.gamma0, lr=s.lr, steps=s.steps)
    rep = th.repeated_data(n_samples=s.n_samples, n_datasets=s.n_datasets, samples=X, target=b, **kw)
    with one_thread():
        so = train_deep_linear(data="online", batch_size=s.batch_size, width=s.width, n_seeds=s.n_seeds,
                               center=True, seed=seeds.next(), **kw)
        sr = train_deep_linear(data="repeated", n_samples=s.n_samples, samples=X, target=b, width=s.width,
                               n_seeds=s.n_datasets, center=True, seed=seeds.next(), **kw)
    cmp = Comparison(f"one pass vs {s.n_samples} reused samples, D = {s.dim}", "step", LOSS)
    cmp.add("one pass", on.steps, on.loss, so.mean[0], so.stderr[0])
    cmp.add("repeated", rep.steps, rep.loss, sr.mean[0], sr.stderr[0])
    gap_th, gap_sim = rep.loss[-1] - on.loss[-1], sr.mean[0, -1] - so.mean[0, -1]
    return cmp.outcome("mean", checks={"reuse raises the loss": bool(gap_th > 0 and gap_sim > 0)},
                       details={"gap_theory": float(gap_th), "gap_sim": float(gap_sim)})

@dataclass(frozen=True)
class PowerLaw(Net):
    dim: int = 128
    exponents: tuple[float, float] = (1.5, 2.0)  # (a, b): lam_k ~ k^-a, lam_k beta*_k^2 ~ k^-b
    gamma0: float = 32.0
    lazy_gamma0: float = 0.02
    steps: int = 300  # exponents fitted over [steps // 15, steps]
    n_seeds: int = 2

@claim("deep_linear.random_init.power_law", paper=PAPER, tolerance=0.05,
       metric="relative error (to theory) of the simulated rich-regime loss exponent, fit over [T/15, T]; "
              "checks: rich exponent >= 1.1 x lazy (accelerated), lazy exponent within 10 % of its theory",
       quick=PowerLaw(), full=PowerLaw(dim=256, width=1024, steps=1000, n_seeds=4))
def power_law(s: PowerLaw, seeds: SeedStream):
    """On power-law covariance the rich regime of a two-layer linear network decays with a larger exponent
    than the lazy one, as the infinite-width moment theory predicts. For b < 1 + a the kernel grows with the
    learned norm: asymptotically 2 chi/(1 + chi) vs lazy chi = (b - 1)/a (reported; the window is pre-asymptotic)."""
    lam, b = th.power_law_task(s.dim, *s.exponents)
    start, lr = s.steps // 15, 0.3 / (lam[0] * 2)
    cmp, exps = Comparison(f"power-law data, D = {s.dim}, N = {s.width}", "step", LOSS), {}
    for name, g0 in (("rich", s.gamma0), ("lazy", s.lazy_gamma0)):
        kw = dict(spectrum=lam, target=b, gamma0=g0, lr=lr / (1 + g0 / 2), steps=s.steps)
        ref = th.two_layer_population(**kw)
        with one_thread():
            r = train_deep_linear(dim=s.dim, width=s.width, depth=1, data="population", center=True,
                                  n_seeds=s.n_seeds, seed=seeds.next(), **kw)
        cmp.show(name, ref.steps[1:], ref.loss[1:], r.mean[0, 1:], r.stderr[0, 1:])
        exps[name] = [fit_power_law(ref.steps[start:], c[start:]).exponent for c in (ref.loss, r.mean[0])]
    return ClaimOutcome(abs(exps["rich"][1] / exps["rich"][0] - 1), [cmp.panel],
                        {"accelerated": exps["rich"][1] >= 1.1 * exps["lazy"][1],
                         "lazy exponent within 10 %": abs(exps["lazy"][1] / exps["lazy"][0] - 1) <= 0.10},
                        {"exponents_theory_sim": exps, "lazy_asymptote": (chi := (s.exponents[1] - 1) / s.exponents[0]), "rich_asymptote": 2 * chi / (1 + chi)})
