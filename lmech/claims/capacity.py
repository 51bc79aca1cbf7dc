"""Claims: capacity of group-invariant linear readouts (Cover's count with N_0 = dim Fix(G)).

Paper: Farrell, Bordelon, Trivedi & Pehlevan, "Capacity of Group-invariant Linear Readouts
from Equivariant Representations: How Many Objects can be Linearly Classified Under All
Possible Views?".

Each claim draws random objects (Gaussian points, or their image under an equivariant layer),
random labels, and solves the orbit LP "one w classifies every view of every object"
(:mod:`lmech.sim.capacity`) for a range of object counts P. The theory
(:mod:`lmech.theory.capacity`) predicts the separable fraction ``f(P) = C(P, N_0) / 2^P`` with
N_0 computed from the group's characters. The metric is the relative error of the capacity
``P_c = 2 N_0`` estimated from the LP outcomes (maximum-likelihood fit of the Cover curve with a
free N_0) against the character-theory value. Checks: the naive count with the ambient
dimension N is rejected, and (where enabled) the LP on group-averaged points agrees with the
orbit LP trial by trial (the reduction behind the theorem).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, claim
from lmech.sim import capacity as sim
from lmech.theory import capacity as th

PAPER = ("Capacity of Group-invariant Linear Readouts from Equivariant Representations: "
         "How Many Objects can be Linearly Classified Under All Possible Views?")
METRIC = "relative error of the capacity 2 N_0 fitted to LP separability counts vs 2 dim Fix(G)"


@dataclass(frozen=True)
class CapacitySetting(Setting):
    """Trials per P, the grid of P / N_0 values, and whether to use the larger group instances
    (the quick setting uses smaller groups so each LP is cheap; N_0 is 8 in both)."""

    trials: int = 80
    ratios: tuple = (1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0)
    check_projection_trials: int = 10
    large: bool = False

    @classmethod
    def quick(cls):
        return cls(trials=70, ratios=(1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0), check_projection_trials=5, large=False)

    @classmethod
    def full(cls):
        return cls(trials=300, ratios=(1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5), check_projection_trials=40,
                   large=True)


def _capacity_outcome(rep: np.ndarray, n0_theory: int, setting: CapacitySetting, seed: int, title: str,
                      feature_map=None, input_dim=None) -> ClaimOutcome:
    N = rep.shape[1]
    Ps = np.unique(np.maximum(1, np.round(np.asarray(setting.ratios) * n0_theory).astype(int)))
    counts = sim.separability_experiment(rep, Ps, setting.trials, seed=seed, feature_map=feature_map,
                                         input_dim=input_dim)
    proj = sim.separability_experiment(rep, Ps[len(Ps) // 2: len(Ps) // 2 + 1], setting.check_projection_trials,
                                       seed=seed + 7919, feature_map=feature_map, input_dim=input_dim,
                                       check_projection=True)
    fit = th.fit_fixed_space_dim(counts.n_points, counts.n_separable, counts.n_trials)
    rel = abs(fit.n_dims - n0_theory) / n0_theory
    f_theory = th.separable_fraction(Ps, n0_theory)
    f_naive = th.separable_fraction(Ps, N)
    # log-likelihood ratio of the theory (N_0) against the naive count with the ambient dimension
    eps = 1e-12

    def loglik(f):
        f = np.clip(f, eps, 1 - eps)
        return float(np.sum(counts.n_separable * np.log(f) + (counts.n_trials - counts.n_separable) * np.log1p(-f)))

    llr = loglik(f_theory) - loglik(f_naive)
    P_fine = np.arange(1, int(Ps.max()) + 1)
    panel = Panel(
        title=title, xlabel="objects P / N_0", ylabel="fraction of separable dichotomies",
        series=(
            Series(f"Cover, N_0 = {n0_theory} theory", P_fine / n0_theory, th.separable_fraction(P_fine, n0_theory)),
            Series(f"Cover, N_0 = {n0_theory} sim", Ps / n0_theory, counts.fraction, yerr=counts.stderr, role="simulation"),
            Series(f"naive Cover, N = {N}", P_fine / n0_theory, th.separable_fraction(P_fine, N), role="reference"),
        ),
    )
    z = (counts.fraction - f_theory) / np.sqrt(f_theory * (1 - f_theory) / counts.n_trials + 1e-12)
    return ClaimOutcome(
        value=float(rel),
        panels=[panel],
        checks={
            "naive ambient-dimension count rejected (log-likelihood ratio > 10)": llr > 10,
            "orbit LP and group-averaged LP agree on every checked trial": proj.projected_agrees == proj.projected_checked,
        },
        details={
            "n0_theory": n0_theory, "n0_fit": fit.n_dims, "n0_fit_stderr": fit.stderr, "ambient_dim": N,
            "group_order": rep.shape[0], "P": Ps, "fraction_sim": counts.fraction, "fraction_theory": f_theory,
            "z_scores": z, "log_likelihood_ratio_vs_naive": llr,
            "projection_checked": proj.projected_checked, "projection_agrees": proj.projected_agrees,
        },
    )


_STATEMENT = ("The fraction of random dichotomies of P objects that one linear readout separates under every "
              "group view follows Cover's count with the fixed-space dimension N_0 = dim Fix(G) in place of the "
              "ambient dimension (capacity P_c = 2 N_0).")


@claim("capacity.invariant.cyclic", paper=PAPER, statement=_STATEMENT + " Group: cyclic shifts Z_n on 8 channels (n = 4 quick, 8 full).",
       metric=METRIC, tolerance=0.05, setting=CapacitySetting)
def cyclic(setting: CapacitySetting, seed: int) -> ClaimOutcome:
    n = 8 if setting.large else 4
    rep = sim.cyclic_shift_rep(n, 8)
    return _capacity_outcome(rep, th.fixed_space_dim(rep), setting, seed, f"Z_{n} shifts, 8 channels (N = {8 * n})")


@claim("capacity.invariant.permutation", paper=PAPER,
       statement=_STATEMENT + (" Group: S_k permuting rows and columns of k x k matrices, 4 copies (k = 3 quick, "
                               "4 full; N_0 = 2 per copy, the number of orbits of index pairs)."),
       metric=METRIC, tolerance=0.05, setting=CapacitySetting)
def permutation(setting: CapacitySetting, seed: int) -> ClaimOutcome:
    k = 4 if setting.large else 3
    base = sim.symmetric_pairs_rep(k)
    rep = sim.direct_sum(base, base, base, base)
    n0 = th.fixed_space_dim(rep)
    return _capacity_outcome(rep, n0, setting, seed, f"S_{k} on 4 copies of {k}x{k} matrices (N = {4 * k * k})")


@claim("capacity.invariant.rotation", paper=PAPER,
       statement=_STATEMENT + " Group: Z_6 acting by rotations on 2-d planes (non-permutation representation).",
       metric=METRIC, tolerance=0.05, setting=CapacitySetting)
def rotation(setting: CapacitySetting, seed: int) -> ClaimOutcome:
    # frequencies 0 (mod 6) give fixed planes; others contribute nothing to Fix(G)
    rep = sim.rotation_rep(6, [1, 2, 3, 6, 12, 5, 4], n_trivial=4)
    n0 = th.fixed_space_dim(rep)
    return _capacity_outcome(rep, n0, setting, seed, "Z_6 rotations of 7 planes + 4 invariant coords (N = 18)")


@claim("capacity.invariant.conv_relu", paper=PAPER,
       statement=("A random circular convolution followed by ReLU maps shift orbits to shift orbits; the invariant "
                  "capacity of its output is Cover's count with N_0 = number of output channels."),
       metric=METRIC, tolerance=0.05, setting=CapacitySetting)
def conv_relu(setting: CapacitySetting, seed: int) -> ClaimOutcome:
    length, cin, cout = (8 if setting.large else 4), 3, 8
    rep = sim.cyclic_shift_rep(length, cout)
    phi = sim.conv_relu_features(length, cin, cout, kernel_size=3, seed=seed + 1)
    return _capacity_outcome(rep, th.fixed_space_dim(rep), setting, seed, f"conv(3->8, k=3) + ReLU on Z_{length}",
                             feature_map=phi, input_dim=cin * length)
