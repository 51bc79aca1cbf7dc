"""Claims: in-context regression with deep linear attention (depth, context length).

Theory :mod:`lmech.theory.icl`, simulation :mod:`lmech.sim.icl`. ``icl.iso.reduction`` is exact in
the proportional limit (finite-D bias O(1/D), ~2 % at D = 64, theory below simulation);
``icl.iso.trained`` rests on the heuristic "the trained network is the optimal in-context
algorithm" and compares with that algorithm at the same D (the MP formula's own finite-D bias is
in ``details``); ``icl.rrs.depth`` is exact at infinite context for a discrete spectrum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.toolkit import Comparison, SeedStream, Setting, claim, rel_err_theory, width_slope
from lmech.sim import icl as sim
from lmech.theory import icl as th

PAPER = "Theory of Scaling Laws for In-Context Regression: Depth, Width, Context and Time"

@dataclass(frozen=True)
class Reduction(Setting):
    dim: int = 64
    alphas: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    depths: tuple[int, ...] = (1, 2, 4)
    noise: float = 0.1
    n_contexts: int = 1500

@claim("icl.iso.reduction", paper=PAPER, tolerance=0.05,
       metric="max relative error (to theory) of the directly evaluated finite-D risk over (alpha, L, model)",
       quick=Reduction(), full=Reduction(128, (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), (1, 2, 4, 8), n_contexts=3000))
def iso_reduction(s: Reduction, seeds: SeedStream):
    """The ICL risk of depth-L in-context gradient descent (optimal per-layer or shared step sizes) on
    isotropic data is the Marchenko-Pastur integral of p(s)^2 plus the noise term; depth helps only at
    limited context."""
    cmp = Comparison(f"ISO, optimal in-context GD (D = {s.dim}, noise {s.noise})", "context ratio P/D", "ICL risk")
    models = {m: th.icl_risk(s.alphas, s.depths, noise=s.noise, model=m) for m in ("untied", "tied")}
    # every (model, L) predictor at one alpha is evaluated on the same sampled contexts
    sims = [sim.polynomial_predictor_risks(s.dim, max(1, int(round(al * s.dim))), [
        np.full(L, t.step_sizes[i * len(s.alphas) + j][0]) if m == "tied" else t.step_sizes[i * len(s.alphas) + j]
        for m, t in models.items() for i, L in enumerate(s.depths)], noise=s.noise, n_contexts=s.n_contexts,
        seed=seeds.next()) for j, al in enumerate(s.alphas)]
    for k, (m, i) in enumerate((m, i) for m in models for i in range(len(s.depths))):
        cmp.add(f"{m} L={s.depths[i]}", s.alphas, models[m].risk[i], *np.array([row[k] for row in sims]).T)
    a_fine = np.geomspace(min(s.alphas), max(s.alphas), 40)
    cmp.reference("L=inf (Bayes ridge)", a_fine, th.icl_bayes_risk(a_fine, noise=s.noise))
    # depth helps less at long context: the gain R_1/R_Lmax shrinks as alpha grows beyond 1
    gain = th.icl_risk(s.alphas, (1, max(s.depths)), noise=s.noise).risk
    return cmp.outcome("max", details={"depth_gain_theory": gain[0] / gain[1]})

@dataclass(frozen=True)
class Trained(Setting):
    dim: int = 24
    alphas: tuple[float, ...] = (2.0,)
    depths: tuple[int, ...] = (1, 2, 4)
    noise: float = 0.1
    steps: int = 600
    batch_size: int = 256
    lr: float = 0.02
    n_test: int = 20000
    n_reference: int = 6000

@claim("icl.iso.trained", paper=PAPER, tolerance=0.05,
       metric="max relative error of the trained risk (to the theory's optimal L-step GD predictor at the same D)",
       quick=Trained(), full=Trained(dim=32, alphas=(1.0, 2.0, 4.0), steps=1500, n_test=40000, n_reference=12000))
def iso_trained(s: Trained, seeds: SeedStream):
    """Deep linear attention (recurrent, GD-form) trained with Adam on isotropic in-context regression
    reaches the risk of L steps of in-context GD with the theory's optimal step size, and learns that
    step size; more depth lowers the risk at limited context."""
    theory = th.icl_risk(s.alphas, s.depths, noise=s.noise, model="tied")
    cmp = Comparison(f"Trained recurrent linear attention, ISO (D = {s.dim})", "depth L", "ICL risk")
    step_err, mp_err, depth_helps = [], [], True
    for j, al in enumerate(s.alphas):
        P, trained, ref = max(1, int(round(al * s.dim))), [], []
        for i, L in enumerate(s.depths):
            eta = theory.step_sizes[i * len(s.alphas) + j][0]
            res = sim.train_icl(s.dim, L, P, noise=s.noise, tied=True, steps=s.steps, batch_size=s.batch_size,
                                lr=s.lr, seed=seeds.next(), n_test=s.n_test)
            ref.append(sim.polynomial_predictor_risk(s.dim, P, np.full(L, eta), noise=s.noise,
                                                     n_contexts=s.n_reference, seed=seeds.next())[0])
            trained.append((res.risk, res.risk_stderr))
            step_err.append(abs(res.step_sizes[0] - eta) / eta)
        risk, se = np.array(trained).T
        cmp.add(f"alpha={al}", s.depths, ref, risk, se)
        cmp.draw(f"alpha={al} MP theory (D -> inf)", s.depths, theory.risk[:, j], role="reference")
        mp_err.append(rel_err_theory(theory.risk[:, j], risk))
        depth_helps &= bool(risk[-1] < risk[0])
    return cmp.outcome("max", checks={"learned step size within 5% of the theory's optimum": max(step_err) < 0.05,
                                      "deepest model beats depth 1 (as predicted)": depth_helps},
                       details={"step_size_rel_error": step_err, "max_rel_error_vs_MP_theory": float(np.max(mp_err))})

@dataclass(frozen=True)
class RRS(Setting):
    dim: int = 32
    nu: float = 1.5
    depths: tuple[int, ...] = (1, 2, 4, 8)
    steps: int = 250
    batch_size: int = 128
    lr: float = 0.05
    n_test: int = 8000

# Full: Adam moves every entry of the D x D matrix Gamma by ~lr per step (an update's spectral size ~ lr * D).
# At lr * D = 1.6 (the quick value) depth 16 diverged mid-training (seed 0): once tr(Gamma)/D reached its optimum,
# the weakly restored off-identity directions of Gamma drifted until an eigenvalue went negative and
# (I - Gamma Sigma)^L exploded; at lr * D = 0.8 the spectrum stays within [1.6, 2.0] (optimum 1.82).
@claim("icl.rrs.depth", paper=PAPER, tolerance=0.05,
       metric="max relative error (to theory) of the trained normalised risk over depths",
       quick=RRS(), full=RRS(dim=64, depths=(1, 2, 4, 8, 16, 32), steps=1500, batch_size=256, lr=0.05 * 16 / 64,
                             n_test=40000))
def rrs_depth(s: RRS, seeds: SeedStream):
    """With covariances randomly rotated across contexts (RRS), depth keeps improving ICL even at infinite
    context: the trained recurrent linear attention follows the theory's risk
    min_eta sum_k lam_k (1 - eta lam_k)^{2L} / sum_k lam_k over depth, with the same depth exponent."""
    lam = np.arange(1, s.dim + 1, dtype=float) ** (-s.nu)
    theory, null = th.rrs_risk(lam, s.depths, model="tied").risk[:, 0], lam.sum() / s.dim  # null: zero predictor
    # all depths in lockstep on shared contexts: the rotation sampling is paid once per step (~3x faster)
    runs = sim.train_icl_depths(s.dim, s.depths, spectrum=lam, tied=True, steps=s.steps, init_scale=2.0,
                                batch_size=s.batch_size, lr=s.lr, seeds=seeds.take(len(s.depths)), n_test=s.n_test)
    trained = np.array([r.risk for r in runs]) / null
    cmp = Comparison(f"RRS at infinite context (D = {s.dim}, lam_k = k^-{s.nu})", "depth L", "normalised ICL risk")
    cmp.add("tied GD", s.depths, theory, trained, np.array([r.risk_stderr for r in runs]) / null)
    cmp.draw("optimal polynomial (untied)", s.depths, th.rrs_risk(lam, s.depths, model="untied").risk[:, 0],
             role="reference")
    tail = np.array(s.depths) >= 2
    slope_th, slope_sim = (width_slope(np.array(s.depths)[tail], r[tail]) for r in (theory, trained))
    return cmp.outcome("max", checks={"depth exponent: |sim - theory| <= 0.05": abs(slope_sim - slope_th) <= 0.05,
                                      "risk decreases with depth (sim)": bool(np.all(np.diff(trained) < 0))},
                       details={"slope_theory": slope_th, "slope_sim": slope_sim,
                                "asymptotic_slope": -(1 - 1 / s.nu)})
