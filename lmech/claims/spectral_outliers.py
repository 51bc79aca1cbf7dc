"""Claims: outlier singular values of hidden weights and the top NTK eigenvalue across widths.

Simulation :mod:`lmech.sim.spectral_outliers` (three-layer tanh MLPs, muP or NTP, full-batch GD, a
batch of seeds per width; ``W1 / sqrt(N)`` is the N x N hidden weight), theory
:mod:`lmech.theory.spectral_outliers` (Marchenko-Pastur bulk edge 2, secular-equation outliers).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, claim, fragile, one_thread,
                                  rel_err_theory, slope_panel, width_slope)
from lmech.sim.spectral_outliers import teacher_task, train_spectral_mlp
from lmech.theory.spectral_outliers import bulk_edges, free_outlier_closed_form, outlier_positions

PAPER = "Spectral Dynamics in Deep Networks: Feature Learning, Outlier Escape, and Learning Rate Transfer"

@dataclass(frozen=True)
class Widths(Setting):
    widths: tuple[int, ...] = (32, 64, 128, 256)
    n_seeds: int = 16
    P: int = 32
    D: int = 16
    n_outputs: int = 1
    noise: float = 0.0
    gamma0: float = 1.0
    lr: float = 0.5
    n_steps: int = 100
    param: str = "mup"

def _runs(s: Widths, seeds: SeedStream, **kw) -> dict:
    """Final spectra of s.n_seeds networks per width (one task for all widths)."""
    X, Y = teacher_task(s.P, s.D, s.n_outputs, noise=s.noise, seed=seeds.next())
    opts = dict(param=s.param, gamma0=s.gamma0, lr=s.lr, n_steps=s.n_steps, seeds=s.n_seeds, record_steps=[s.n_steps],
                base_width=s.widths[0], record_ntk=False, top_k=4) | kw
    with one_thread():
        return {N: train_spectral_mlp(X, Y, width=N, seed=seeds.next(), **opts) for N in s.widths}

def _sv(runs: dict, i: int = 0) -> list:
    """Per width: the i-th singular value of W1/sqrt(N) of every seed at the last record."""
    return [r.singular_values[:, -1, i] for r in runs.values()]

@claim("spectral.outliers.mup_consistent", paper=PAPER, tolerance=0.25,
       metric="|fitted slope + 1/2| of the across-seed s.d. of the top singular value of W1/sqrt(N) against N (muP)",
       quick=Widths(), full=Widths(widths=(64, 128, 256, 512, 1024), n_seeds=32),
       expect=fragile("s.d. from 16 seeds is +-18% per width: fitted slopes -0.34, -0.54, -0.22, -0.69, -0.43 at "
                      "quick seeds 0-4 (seed 1 failed the width-spread check, seed 2 the slope); widths 128-1024 "
                      "gave -0.28", n_seeds=3))
def mup_consistent(s: Widths, seeds: SeedStream):
    """In muP the outlier singular value of the hidden weight escapes the bulk (edge 2) at the same
    position at every width; the width-N networks differ from each other by O(N^-1/2): the seed-to-seed
    standard deviation of the outlier falls with slope -1/2 in N."""
    runs, N = _runs(s, seeds), np.array(s.widths)
    s1 = np.array(_sv(runs))
    sd, mean = s1.std(1, ddof=1), s1.mean(1)
    slope = width_slope(N, sd)
    cmp = Comparison("muP outlier across widths", "width N", "top singular value of W1/sqrt(N)", yscale="linear")
    cmp.draw("outlier sim", N, mean, sd)
    cmp.reference("bulk edge 2", N, np.full(N.size, bulk_edges(2, 2)[1]))
    return ClaimOutcome(abs(slope + 0.5), [slope_panel("seed-to-seed s.d. of the outlier", "width N", "s.d.", N, sd,
                                                       reference_slope=-0.5), cmp.panel], {
        "outlier above the bulk edge at every width (> 2.1)": bool(mean.min() > 2.1),
        "seed-mean outlier width-consistent (spread < 3% of its mean)": bool(np.ptp(mean) < 0.03 * mean[-1]),
    }, {"slope": slope, "sd": sd.tolist(), "mean": mean.tolist()})

@claim("spectral.outliers.ntp_width_dependent", paper=PAPER, tolerance=0.5,
       metric="(s_1 - 2) at the largest width over (s_1 - 2) at the smallest (NTP, seed means)",
       quick=Widths(widths=(64, 128, 256), n_seeds=4, param="ntp"),
       full=Widths(widths=(128, 256, 512, 1024), n_seeds=8, param="ntp"))
def ntp_width_dependent(s: Widths, seeds: SeedStream):
    """In the NTK parameterization (equal to muP at the smallest width) the spike shrinks like N^-1/2
    and the outlier sinks toward the bulk edge as N grows; the same networks in muP keep it."""
    ntp, mup = _runs(s, seeds), _runs(s, seeds, param="mup")
    N = np.array(s.widths)
    exc = {k: np.array([v.mean() - 2.0 for v in _sv(r)]) for k, r in (("ntp", ntp), ("mup", mup))}
    theta = np.array([ntp[n].update_singular_values[:, -1, 0].mean() for n in s.widths])
    cmp = Comparison("outlier excess over the bulk edge", "width N", "s_1 - 2", yscale="linear")
    for k in exc:
        cmp.draw(f"{k} sim", N, exc[k])
    return ClaimOutcome(float(exc["ntp"][-1] / exc["ntp"][0]), [cmp.panel], {
        "NTP excess decreases at every width step": bool(np.all(np.diff(exc["ntp"]) < 0)),
        "muP excess stays (largest / smallest > 0.8)": bool(exc["mup"][-1] / exc["mup"][0] > 0.8),
    }, {"excess": {k: v.tolist() for k, v in exc.items()}, "ntp_spike": theta.tolist(),
        "ntp_spike_slope": width_slope(N, theta)})

@claim("spectral.outliers.secular", paper=PAPER, tolerance=0.05,
       metric="relative error (to theory) of the seed-mean top singular value at the largest width (muP)",
       quick=Widths(widths=(128, 256), n_seeds=2), full=Widths(widths=(256, 512, 1024), n_seeds=4))
def secular(s: Widths, seeds: SeedStream):
    """The secular equation of a rank-one spike on the Marchenko-Pastur bulk, with the measured spike
    strength theta and its overlap kappa = u^T X v with the initial weight, predicts the outlier;
    the free (BBP) equation, which assumes the spike independent of the bulk, misses it."""
    runs, N = _runs(s, seeds, top_k=1, record_overlap=True), np.array(s.widths)
    sim, th, free = [], [], []
    for n in s.widths:
        theta, kappa = runs[n].update_singular_values[:, -1, 0], runs[n].spike_overlap[:, 0]
        sim.append(runs[n].singular_values[:, -1, 0].mean())
        th.append(outlier_positions(theta, n, n, overlap=kappa).outliers.mean())
        free.append(free_outlier_closed_form(theta, n, n).mean())
    cmp = Comparison("outlier: secular equation with overlap vs simulation", "width N", "s_1", yscale="linear")
    err = cmp.add("dependent spike", N, th, sim)
    cmp.draw("free BBP (independent spike) theory", N, free, role="theory")
    free_err = rel_err_theory(free[-1], sim[-1])
    return ClaimOutcome(float(err[-1]), [cmp.panel], {"free BBP misses by more than 5%": bool(free_err > 0.05)},
                        {"errors": err.tolist(), "free_error": float(free_err)})

@dataclass(frozen=True)
class Stability(Widths):
    widths: tuple[int, ...] = (64, 128)
    n_seeds: int = 3
    P: int = 128
    noise: float = 0.5
    lrs: tuple[float, ...] = (3.0, 6.0)
    n_steps: int = 300
    window: int = 5  # records averaged at the end (every 20 steps)

@claim("spectral.outliers.edge_of_stability", paper=PAPER, tolerance=0.1,
       metric="max over widths and lr of |lr lambda_max(NTK/P) / 2 - 1| averaged over the last records (muP)",
       quick=Stability(), full=Stability(widths=(128, 256, 512, 1024), n_seeds=4, n_steps=400))
def edge_of_stability(s: Stability, seeds: SeedStream):
    """In muP the leading eigenvalue of the NTK (the Gauss-Newton part of the loss Hessian) sharpens
    progressively, overshoots the edge of stability 2/lr, and settles at 2/lr, width-consistently
    (noisy targets so that the training set is not fitted at once)."""
    rec, cmp, sharp = list(range(0, s.n_steps + 1, 20)), Comparison("sharpness", "GD step", "lr lambda_max / 2",
                                                                     xscale="linear", yscale="linear"), {}
    for lr in s.lrs:
        for n, r in _runs(s, seeds, lr=lr, record_steps=rec, record_ntk=True, record_spectrum=False).items():
            cmp.draw(f"lr={lr:g}, N={n} sim", r.steps, lr * r.ntk_top.mean(0) / 2)
            sharp[f"{lr:g}/{n}"] = float(lr * r.ntk_top[:, -s.window:].mean() / 2)
    cmp.reference("edge of stability", rec, np.ones(len(rec)))
    v = np.array(list(sharp.values())).reshape(len(s.lrs), -1)
    checks = {"width-consistent (spread over widths < 0.05 at each lr)": bool(np.ptp(v, 1).max() < 0.05)}
    return ClaimOutcome(float(np.abs(v - 1).max()), [cmp.panel], checks, {"sharpness": sharp})

@claim("spectral.outliers.many_outputs", paper=PAPER, tolerance=0.2,
       metric="top gap (s_1 - s_2) / (s_1 - 2) of W1/sqrt(N) at the largest width, 32 outputs (muP, seed mean)",
       quick=Widths(widths=(64, 128, 256), n_seeds=2, P=64, D=32, n_outputs=32),
       full=Widths(widths=(128, 256, 512, 1024), n_seeds=4, P=64, D=32, n_outputs=32))
def many_outputs(s: Widths, seeds: SeedStream):
    """With many outputs the learned update has many comparable directions: the escaped singular
    values form a continuous band that reshapes the top of the bulk (no isolated outlier: the top
    gap is a small part of the escape), its edge width-consistent; one output gives one isolated outlier."""
    many, one = _runs(s, seeds), _runs(replace(s, n_outputs=1), seeds)
    gap = {k: np.array([np.mean((a - b) / (a - 2)) for a, b in zip(_sv(r), _sv(r, 1))]) for k, r in
           (("many", many), ("one", one))}
    edge = np.array([v.mean() for v in _sv(many)])
    n_esc = [int(np.mean((many[n].final_spectrum > 2 + 3 * n ** (-2 / 3)).sum(1))) for n in s.widths]
    cmp = Comparison("spectrum of W1/sqrt(N) at the largest width", "index", "singular value", "linear", "linear")
    for k, r in (("many", many), ("one", one)):
        cmp.draw(f"{k} output(s) sim", np.arange(1, 41), r[s.widths[-1]].final_spectrum[0, :40])
    return ClaimOutcome(float(gap["many"][-1]), [cmp.panel], {
        "one output: isolated outlier (gap > 0.5 of escape)": bool(gap["one"][-1] > 0.5),
        "many outputs: escaped band edge width-consistent (spread < 5%)": bool(np.ptp(edge) < 0.05 * edge[-1]),
        "many outputs: more than 4 escaped singular values at every width": min(n_esc) > 4,
    }, {"gap": {k: v.tolist() for k, v in gap.items()}, "band_edge": edge.tolist(), "n_escaped": n_esc})
