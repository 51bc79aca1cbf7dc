"""Claims: silent alignment and NTK alignment of small-initialisation networks.

Theory :mod:`lmech.theory.alignment` (exact large-width Gram map of two-layer linear nets under GD,
depth-L mode law); simulation :mod:`lmech.sim.alignment` (full-batch GD on deep linear and two-layer
ReLU nets, batched over seeds). Targets ``y = X beta``, ``|beta| = 1``; data whitened unless stated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, Tolerance, claim, fit_power_law,
                                  known_failure, rel_err_theory)
from lmech.sim import alignment as sim
from lmech.theory import alignment as th

SILENT = "Neural Networks as Kernel Learners: The Silent Alignment Effect"
NTK = "A Theory of Neural Tangent Kernel Alignment and Its Influence on Training"

def _problem(s, seed, spectrum=None):  # whitened (or covariance diag(spectrum)) inputs, unit-norm linear target
    X, beta = sim.whitened_inputs(s.P, s.D, seed=seed, spectrum=spectrum), np.random.default_rng(seed).normal(size=s.D)
    return X, X @ (beta / np.linalg.norm(beta))

def _train(s, X, y, sig, seed, T=None, depth=2, **kw):
    kw = {"width": s.width, "lr": s.lr, "n_seeds": s.n_seeds, "n_steps": round((T or s.T) / s.lr), **kw}
    return sim.train_deep_linear(X, y, depth=depth, sigma=sig, seed=seed, **{"n_records": kw["n_steps"], **kw})

@dataclass(frozen=True)
class Net(Setting):
    D: int = 20
    P: int = 60
    width: int = 256
    lr: float = 0.05
    T: float = 10.0
    n_seeds: int = 2

@dataclass(frozen=True)
class Times(Net):
    sigmas: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
    deep: tuple[int, float, tuple[float, ...]] = (128, 0.1, (0.2, 0.1, 0.05, 0.025))  # depth 3: width, lr, sigmas

@claim("alignment.silent.timescales", paper=SILENT, tolerance=Tolerance(quick=0.1, full=0.05),
       metric="max relative error (to theory) of t_align and t_loss (two-layer) and of the depth-3 escape exponent",
       quick=Times(), full=Times(width=2048, n_seeds=4, deep=(1024, 0.1, (0.2, 0.1, 0.05, 0.025))))
def timescales(s: Times, seeds: SeedStream):
    """Small-init two-layer linear nets on whitened data align their NTK (t_align: 90% of the rise of
    A) well before the loss halves (t_loss): t_align is sigma-independent while t_loss grows like
    ln(1/sigma), so t_align / t_loss shrinks as sigma -> 0; depth-3 nets escape after ~ sigma^-(L-2).

    Theory: the Gram map at the same step; depth 3: t_loss fitted to ``a sigma^-p + c``, p vs L - 2 = 1
    (quick tolerance 10%: at width 128 p came out 0.93 and 1.04 on two data draws, 1.00 at 256)."""
    X, y = _problem(s, seeds.next())
    n, cmp, ratios = round(s.T / s.lr), Comparison("two-layer linear, whitened", "sigma", "t_align, t_loss"), []
    for sig in s.sigmas:
        g, run = th.two_layer_linear_gd(X, y, sigma=sig, lr=s.lr, n_steps=n), _train(s, X, y, sig, seeds.next(),
                                                                                     n_records=n // 2)
        level = g.alignment[0] + 0.9 * (g.alignment[-1] - g.alignment[0])
        tt, ts = [[sim.crossing_time(t, A, level), sim.crossing_time(t, L, L[0] / 2)] for t, A, L in (
            (g.t, g.alignment, g.loss), (run.times, run.alignment.mean(0), run.loss.mean(0)))]
        cmp.add(f"sigma={sig:g}", [sig, sig], tt, ts)
        ratios.append(ts[0] / ts[1])
    N, lr, sigs = s.deep
    t_esc = [sim.crossing_time(r.times, r.loss.mean(0), r.loss[0, 0] / 2) for r in (_train(
        s, X, y, sig, seeds.next(), T=2.5 / min(sigs), depth=3, width=N, lr=lr, n_records=500) for sig in sigs)]
    p = curve_fit(lambda z, a, e, c: a * np.exp(e * z) + c, -np.log(sigs), t_esc, p0=(1, 1, 0))[0][1]
    cmp.errors_by_label["depth-3 exponent"] = np.atleast_1d(rel_err_theory(1.0, p))
    return cmp.outcome("max", checks={"t_align / t_loss shrinks as sigma -> 0": bool(np.all(np.diff(ratios) < 0)),
                                      "t_align / t_loss < 0.4 at the smallest sigma": ratios[-1] < 0.4},
                       details={"t_align/t_loss": ratios, "depth-3 exponent": p, "depth-3 t_loss": t_esc})

@dataclass(frozen=True)
class Final(Net):
    D: int = 200
    P: int = 40
    width: int = 384
    lr: float = 0.1
    T: float = 16.0
    n_seeds: int = 8
    sigmas: tuple[float, ...] = (0.1, 0.03, 0.01)

@claim("alignment.silent.final_kernel", paper=SILENT, tolerance=Tolerance(quick=0.08, full=0.05),
       metric="max relative error (to theory) of the rms gap |v_net - v_krr| / |v*| over sigma",
       quick=Final(), full=Final(width=4096, sigmas=(0.1, 0.03, 0.01, 0.003), n_seeds=24))
def final_kernel(s: Final, seeds: SeedStream):
    """A small-init two-layer linear net trained to interpolation equals ridgeless kernel regression
    with its own final NTK up to a gap (sigma/2) sqrt((D-P)/(N|v*|)) that vanishes linearly as sigma -> 0.

    P < D inputs with orthogonal rows; rms gap over seeds; fitted slope in sigma checked against 1.
    Quick tolerance 8%: 8 seeds leave ~3% chi-square noise, plus O(sigma) corrections at sigma = 0.1."""
    X, y = _problem(s, seeds.next())[0], np.random.default_rng(seeds.next()).standard_normal(s.P)
    v_star, gaps = X.T @ y / s.P, []
    for sig in s.sigmas:
        run = _train(s, X, y, sig, seeds.next(), n_records=1)
        krr = sim.final_kernel_regression(X, y, np.eye(s.D), run.ntk[:, -1])
        gaps.append(np.sqrt(np.mean(np.sum((run.v[:, -1] - krr) ** 2, 1))) / np.linalg.norm(v_star))
    cmp = Comparison(f"net vs final-NTK regression (N = {s.width})", "sigma", "rms gap / |v*|")
    cmp.add("", s.sigmas, th.final_kernel_gap(np.array(s.sigmas), width=s.width, dim=s.D, n_train=s.P,
                                              target_norm=float(np.linalg.norm(v_star))), gaps)
    slope = fit_power_law(np.array(s.sigmas), np.array(gaps)).slope
    return cmp.outcome("max", checks={"gap slope within 0.1 of 1": abs(slope - 1) < 0.1}, details={"slope": slope})

@dataclass(frozen=True)
class Whiten(Net):
    sigma: float = 0.01
    T: float = 16.0
    spread: float = 0.05  # non-whitened: Sigma = diag(geomspace(1, spread, D))

@claim("alignment.silent.whitening", paper=SILENT, tolerance=0.05,
       metric="relative error (to theory) of the non-whitened kernel-shape change after t_loss",
       quick=Whiten(), full=Whiten(width=2048, n_seeds=4))
def whitening(s: Whiten, seeds: SeedStream):
    """Non-whitened inputs weaken silent alignment: the NTK's shape still changes after the loss halves,
    1 - CKA(K(t_loss), K_final) = 0.009 (theory, spectrum 1..0.05) against 4e-9 whitened (sim < 1e-3)."""
    seed, out = seeds.next(), {}
    for name, spec in (("whitened", None), ("non-whitened", np.geomspace(1, s.spread, s.D))):
        X, y = _problem(s, seed, spec)
        g, run = th.two_layer_linear_gd(X, y, sigma=s.sigma, lr=s.lr, n_steps=round(s.T / s.lr)), _train(
            s, X, y, s.sigma, seeds.next())
        out[name] = [sim.kernel_shape_change(X, *c) for c in ((g.loss, g.ntk), (run.loss.mean(0), run.ntk.mean(0)))]
    (wt, ws), (nt, ns) = out["whitened"], out["non-whitened"]
    cmp = Comparison("kernel change after the loss halves", "case", "1 - CKA(K(t_loss), K_final)", xscale="linear")
    cmp.add("non-whitened", [1], [nt], [ns]), cmp.draw("whitened (sim)", [0], [ws])
    return cmp.outcome(checks={"whitened change < 1e-3": ws < 1e-3, "non-whitened / whitened > 10": ns > 10 * ws},
                       details={"theory, sim": out})

@dataclass(frozen=True)
class Deep(Net):
    width: int = 128
    cases: tuple[tuple[int, float, float], ...] = ((2, 0.01, 10.0), (3, 0.1, 20.0), (4, 0.3, 20.0))  # L, sigma, T

@claim("alignment.ntk.deep_linear", paper=NTK, tolerance=0.05,
       metric="max relative error (to theory) of A(t) for depth 2 and of the final A for depths 2-4",
       quick=Deep(), full=Deep(width=1024, n_seeds=4))
def deep_linear(s: Deep, seeds: SeedStream):
    """The centred NTK-target alignment of deep linear nets on whitened data rises from 1/sqrt(D) to
    L / sqrt(L^2 + (D-1) l^2), l = sum_{k<L} sigma^{2k} (the balanced-mode kernel), and for depth 2
    follows the exact Gram-map curve A(t) at every time (depths 3, 4: end point scored, A(t) drawn)."""
    X, y = _problem(s, seeds.next())
    cmp = Comparison("deep linear, whitened: NTK alignment", "time", "centred alignment A", yscale="linear")
    for L, sig, T in s.cases:
        run = _train(s, X, y, sig, seeds.next(), T=T, depth=L, n_records=50)
        A, lam = run.alignment.mean(0), sum(sig ** (2 * k) for k in range(L))
        if L == 2:
            g = th.two_layer_linear_gd(X, y, sigma=sig, lr=s.lr, n_steps=round(T / s.lr))
            cmp.add("L=2", run.times, g.alignment[np.round(run.times / s.lr).astype(int)], A)
        cmp.add(f"L={L} final", [T], [L / np.sqrt(L * L + (s.D - 1) * lam * lam)], [A[-1]])
        cmp.draw(f"L={L} sim", run.times, A)
    return cmp.outcome("max")

@dataclass(frozen=True)
class Spec(Net):
    D: int = 6
    P: int = 120
    C: int = 3
    width: int = 192
    sigma: float = 0.05
    lr: float = 0.5
    n_steps: int = 400

@claim("alignment.ntk.specialization", paper=NTK, tolerance=0.95,
       metric="max over outputs c of max_{c' != c} S_cc' / S_cc, S_cc' = A(K_c, y_c') (seed mean, end of training)",
       quick=Spec(), full=Spec(width=1024, n_seeds=4),
       expect=known_failure("measured 0.99 (quick) and 1.02 (full, N = 1024): K_3 aligns more with y_1 than with "
                            "y_3; column-wise (K_c is the kernel best aligned with y_c) it holds, ratio 0.93"))
def specialization(s: Spec, seeds: SeedStream):
    """Kernel specialization: in a C-output two-layer ReLU net each output's NTK aligns more with its
    own target than with any other (S_cc > S_cc', by a 5% margin: S_cc' / S_cc <= 0.95).

    Targets y_c = relu(x_c) - mean (orthogonal, nonlinear) on whitened inputs, small init."""
    X = sim.whitened_inputs(s.P, s.D, seed=seeds.next())
    Y = np.maximum(X[:, :s.C], 0) - np.maximum(X[:, :s.C], 0).mean(0)
    S = sim.train_two_layer_relu(X, Y, width=s.width, sigma=s.sigma, lr=s.lr, n_steps=s.n_steps, n_records=1,
                                 n_seeds=s.n_seeds, seed=seeds.next()).specialization[:, -1].mean(0)
    eye = np.eye(s.C, dtype=bool)
    cmp, off = Comparison("kernel specialization (ReLU)", "c", "S_cc'", "linear", "linear"), np.where(eye, -np.inf, S)
    cmp.show("S_cc (own target) vs max_c' S_cc' (other targets): ", np.arange(s.C), S[eye], off.max(1))
    return ClaimOutcome(float((off.max(1) / S[eye]).max()), [cmp.panel], {},
                        {"S": S.tolist(), "column-wise max S_c'c / S_cc": float((off.max(0) / S[eye]).max())})
