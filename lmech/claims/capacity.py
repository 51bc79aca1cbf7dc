"""Claims: capacity of group-invariant linear readouts (Cover's count with N_0 = dim Fix(G)).

Each claim draws random objects (Gaussian points, or their image under an equivariant layer) and
labels, and solves the orbit LP "one w classifies every view of every object" (:mod:`lmech.sim.capacity`)
for a range of object counts P. The theory (:mod:`lmech.theory.capacity`) predicts the separable fraction
``f(P) = C(P, N_0) / 2^P``, N_0 from the group's characters; the metric compares with it the capacity
``P_c = 2 N_0`` of a maximum-likelihood Cover fit (free N_0) to the LP outcomes. Checks: the naive count
with the ambient dimension N is rejected, and (where enabled) the LP on group-averaged points agrees
with the orbit LP trial by trial (the reduction behind the theorem).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.toolkit import ClaimOutcome, Panel, SeedStream, Series, Setting, claim, rel_err_theory
from lmech.sim import capacity as sim
from lmech.theory import capacity as th

PAPER = ("Capacity of Group-invariant Linear Readouts from Equivariant Representations: "
         "How Many Objects can be Linearly Classified Under All Possible Views?")
METRIC = "relative error (to theory) of the capacity 2 N_0 fitted to LP separability counts vs 2 dim Fix(G)"

@dataclass(frozen=True)
class Capacity(Setting):
    """Trials per P, the grid of P / N_0, trials of the group-averaged LP check, and whether to use
    the larger group instances (quick uses smaller groups so each LP is cheap; N_0 is 8 in both)."""
    trials: int = 70
    ratios: tuple[float, ...] = (1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0)
    check_projection_trials: int = 5
    large: bool = False

FULL = Capacity(300, (1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5), 40, True)

def _capacity(rep: np.ndarray, s: Capacity, seeds: SeedStream, title: str, feature_map=None,
              input_dim=None) -> ClaimOutcome:
    n0, N = th.fixed_space_dim(rep), rep.shape[1]
    Ps = np.unique(np.maximum(1, np.round(np.asarray(s.ratios) * n0).astype(int)))
    kw = dict(feature_map=feature_map, input_dim=input_dim)
    counts = sim.separability_experiment(rep, Ps, s.trials, seed=seeds.next(), **kw)
    proj = sim.separability_experiment(rep, Ps[len(Ps) // 2:][:1], s.check_projection_trials, seed=seeds.next(),
                                       check_projection=True, **kw)
    fit = th.fit_fixed_space_dim(counts.n_points, counts.n_separable, counts.n_trials)
    llr = (th.cover_log_likelihood(counts.n_points, counts.n_separable, counts.n_trials, n0)
           - th.cover_log_likelihood(counts.n_points, counts.n_separable, counts.n_trials, N))
    f_th, P_fine = th.separable_fraction(Ps, n0), np.arange(1, int(Ps.max()) + 1)
    panel = Panel(title, "objects P / N_0", "fraction of separable dichotomies", (
        Series(f"Cover, N_0 = {n0} theory", P_fine / n0, th.separable_fraction(P_fine, n0)),
        Series(f"Cover, N_0 = {n0} sim", Ps / n0, counts.fraction, yerr=counts.stderr, role="simulation"),
        Series(f"naive Cover, N = {N}", P_fine / n0, th.separable_fraction(P_fine, N), role="reference")))
    return ClaimOutcome(float(rel_err_theory(n0, fit.n_dims)), [panel], {
        "naive ambient-dimension count rejected (log-likelihood ratio > 10)": llr > 10,
        "orbit LP and group-averaged LP agree on every checked trial": proj.projected_agrees == proj.projected_checked,
    }, {"n0_theory": n0, "n0_fit": fit.n_dims, "n0_fit_stderr": fit.stderr, "ambient_dim": N, "group_order": len(rep),
        "fraction_sim": counts.fraction, "fraction_theory": f_th, "log_likelihood_ratio_vs_naive": llr,
        "z_scores": (counts.fraction - f_th) / np.sqrt(f_th * (1 - f_th) / counts.n_trials + 1e-12),
        "projection_checked": proj.projected_checked, "projection_agrees": proj.projected_agrees})

@claim("capacity.invariant.cyclic", paper=PAPER, metric=METRIC, tolerance=0.05, quick=Capacity(), full=FULL)
def cyclic(s: Capacity, seeds: SeedStream):
    """The fraction of random dichotomies of P objects that one linear readout separates under every
    cyclic shift (Z_n on 8 channels, n = 4 quick, 8 full) follows Cover's count with N_0 = dim Fix(G)
    in place of the ambient dimension (capacity P_c = 2 N_0)."""
    n = 8 if s.large else 4
    return _capacity(sim.cyclic_shift_rep(n, 8), s, seeds, f"Z_{n} shifts, 8 channels (N = {8 * n})")

@claim("capacity.invariant.permutation", paper=PAPER, metric=METRIC, tolerance=0.05, quick=Capacity(), full=FULL)
def permutation(s: Capacity, seeds: SeedStream):
    """The fraction of random dichotomies of P objects that one linear readout separates under S_k
    permuting rows and columns of k x k matrices (4 copies; k = 3 quick, 4 full) follows Cover's count
    with N_0 = dim Fix(G) = 2 per copy, the number of orbits of index pairs (capacity P_c = 2 N_0)."""
    k = 4 if s.large else 3
    rep = sim.direct_sum(*[sim.symmetric_pairs_rep(k)] * 4)
    return _capacity(rep, s, seeds, f"S_{k} on 4 copies of {k}x{k} matrices (N = {4 * k * k})")

@claim("capacity.invariant.rotation", paper=PAPER, metric=METRIC, tolerance=0.05, quick=Capacity(), full=FULL)
def rotation(s: Capacity, seeds: SeedStream):
    """The fraction of random dichotomies of P objects that one linear readout separates under Z_6
    acting by rotations of 2-d planes (a non-permutation representation) follows Cover's count with
    N_0 = dim Fix(G) in place of the ambient dimension (capacity P_c = 2 N_0)."""
    # planes of frequency 0 (mod 6) are fixed; the others contribute nothing to Fix(G)
    rep = sim.rotation_rep(6, [1, 2, 3, 6, 12, 5, 4], n_trivial=4)
    return _capacity(rep, s, seeds, "Z_6 rotations of 7 planes + 4 invariant coords (N = 18)")

@claim("capacity.invariant.conv_relu", paper=PAPER, metric=METRIC, tolerance=0.05, quick=Capacity(), full=FULL)
def conv_relu(s: Capacity, seeds: SeedStream):
    """A random circular convolution followed by ReLU maps shift orbits to shift orbits; the invariant
    capacity of its output is Cover's count with N_0 = number of output channels."""
    length, cin, cout = (8 if s.large else 4), 3, 8
    phi = sim.conv_relu_features(length, cin, cout, kernel_size=3, seed=seeds.next())
    return _capacity(sim.cyclic_shift_rep(length, cout), s, seeds, f"conv(3->8, k=3) + ReLU on Z_{length}",
                     feature_map=phi, input_dim=cin * length)
