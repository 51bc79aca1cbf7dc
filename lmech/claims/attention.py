"""Claims: infinite-width, infinite-head and infinite-depth limits of multi-head transformers.

Simulation :mod:`lmech.sim.multihead` (the paper's parameterization: logits ``N^-alpha_A``,
branches ``L^-alpha_L``, mean-field readout, SGD learning rates ``eta0 gamma0^2 N H L^(2 alpha_L - 1)``)
on a synthetic sequence-regression task. The predicted exponents are the paper's, carried as data.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, claim, fit_power_law,
                                  fragile, known_failure, one_thread)
from lmech.sim import multihead as mh
from lmech.sweep.analysis import optimum_on_grid

PAPER = "Infinite Limits of Multi-head Transformer Dynamics"

@dataclass(frozen=True)
class Sizes(Setting):
    sizes: tuple[int, ...] = (8, 16, 32, 64)
    base: mh.AttentionConfig = mh.AttentionConfig(N=8, H=4, L=1, S=4)
    P: int = 32
    steps: int = 5
    eta0: float = 0.1
    seeds: int = 2

def _slope(sizes, values) -> float:
    return -fit_power_law(np.asarray(sizes, float), np.asarray(values, float)).exponent

def _runs(s: Sizes, seeds: SeedStream, axis: str, **over):
    X, y = mh.teacher_task(s.P, S=s.base.S, D=s.base.D, seed=seeds.next())
    seed_list = seeds.take(s.seeds)
    with one_thread():
        return [[mh.train_multihead(replace(s.base, **{axis: n}, **over), X, y, eta0=s.eta0, steps=s.steps, seed=k)
                 for k in seed_list] for n in s.sizes]

def _scaling(s: Sizes, seeds: SeedStream, axis: str, cases: dict, measure, ylabel: str) -> ClaimOutcome:
    """Fit the exponent of ``measure(run)`` against the size for each case {label: (overrides, predicted)}."""
    cmp = Comparison(f"{ylabel} against {axis}", axis, ylabel, denominator="absolute")
    fitted = {}
    for label, (over, predicted) in cases.items():
        vals = [np.mean([measure(r) for r in runs]) for runs in _runs(s, seeds, axis, **over)]
        fitted[label] = _slope(s.sizes, vals)
        cmp.add(f"{label} (exponent {fitted[label]:+.2f}, predicted {predicted:+g})", np.log2(s.sizes),
                np.full(len(s.sizes), predicted), np.full(len(s.sizes), fitted[label]))
    return cmp.outcome("max", details={"exponents": fitted})

@claim("attention.logit_variance_init", paper=PAPER, tolerance=0.15, quick=Sizes(steps=1),
       full=Sizes(sizes=(8, 16, 32, 64, 128, 256), seeds=4, steps=1),
       metric="max |fitted - predicted| exponent of the logit variance at init against N")
def logit_variance_init(s: Sizes, seeds: SeedStream):
    """At initialisation the attention logits have variance of order N^(1 - 2 alpha_A): slope -1 with
    the 1/N logit scale (alpha_A = 1) and 0 with 1/sqrt(N) (alpha_A = 1/2)."""
    cases = {"alpha_A = 1": ({"alpha_A": 1.0}, -1.0), "alpha_A = 1/2": ({"alpha_A": 0.5}, 0.0)}
    return _scaling(s, seeds, "N", cases, lambda r: np.var(r.logits_init[0]), "Var A(0)")

@claim("attention.head_collapse", paper=PAPER, tolerance=0.3, quick=Sizes(sizes=(8, 16, 32), steps=30),
       full=Sizes(sizes=(8, 16, 32, 64), steps=200, seeds=3),
       metric="max |fitted - predicted| exponent of the across-head variance of trained logits against N",
       expect=known_failure("measured exponent -1.03 at alpha_A = 1 (predicted -2) in quick and full (N up "
                            "to 64, 200 steps): the initial logits and the finite-N fluctuations of the learned "
                            "ones both vary across heads as 1/N here; +0.02 at alpha_A = 1/2 (predicted 0)"))
def head_collapse(s: Sizes, seeds: SeedStream):
    """With 1/N logits every head of a layer follows the same dynamics as N grows: the across-head
    variance of the trained logits falls like N^-2, while with 1/sqrt(N) logits it does not fall."""
    cases = {"alpha_A = 1": ({"alpha_A": 1.0}, -2.0), "alpha_A = 1/2": ({"alpha_A": 0.5}, 0.0)}
    return _scaling(s, seeds, "N", cases, lambda r: r.logits_final[0].var(axis=1).mean(), "across-head variance")

@claim("attention.depth_freeze", paper=PAPER, tolerance=0.12,
       quick=Sizes(sizes=(2, 4, 8, 16), steps=1, eta0=0.5, seeds=3),
       full=Sizes(sizes=(2, 4, 8, 16, 32, 64), steps=1, eta0=0.5, seeds=6),
       metric="max |fitted - predicted| exponent of the key/query relative change against depth L")
def depth_freeze(s: Sizes, seeds: SeedStream):
    """Branches scaled by L^-1/2 freeze the in-block key and query weights as depth grows (relative change
    of order L^-1/2), while 1/L branches with the depth-scaled learning rate keep it of order one."""
    cases = {"alpha_L = 1/2": ({"alpha_L": 0.5}, -0.5), "alpha_L = 1": ({"alpha_L": 1.0}, 0.0)}
    return _scaling(s, seeds, "L", cases, lambda r: r.qk_change.mean(), "relative change of W_K, W_Q")

def _kernel_spread(runs) -> float:
    """Mean relative squared distance between the final residual-stream kernels of different seeds."""
    ks = [r.kernel for r in runs]
    return float(np.mean([np.sum((a - b) ** 2) / np.sum(a ** 2) for i, a in enumerate(ks) for b in ks[:i]]))

@claim("attention.heads_limit", paper=PAPER, tolerance=0.3,
       quick=Sizes(sizes=(4, 8, 16), steps=30, seeds=4), full=Sizes(sizes=(4, 8, 16, 32, 64), steps=50, seeds=6),
       metric="|fitted - predicted| exponent of the kernel's seed-to-seed squared distance against H",
       expect=fragile("six seed pairs at H <= 16 give a noisy exponent: -1.15, -0.66, -0.72 at seeds 0-2 (full, "
                      "H up to 64: -0.98)", n_seeds=3, min_passing=2, modes=("quick",)))
def heads_limit(s: Sizes, seeds: SeedStream):
    """At fixed key/query dimension, adding heads drives the trained network to a deterministic limit:
    the residual-stream kernels of independently initialised networks differ by a squared distance
    falling like 1/H."""
    spread = [_kernel_spread(runs) for runs in _runs(s, seeds, "H")]
    slope = _slope(s.sizes, spread)
    cmp = Comparison("residual-stream kernel, seed to seed", "H", "relative squared distance", denominator="log")
    cmp.add("1/H law through the first point", s.sizes, spread[0] * s.sizes[0] / np.asarray(s.sizes), spread)
    return ClaimOutcome(abs(slope + 1.0), [cmp.panel], details={"exponent": slope, "spread": spread})

@dataclass(frozen=True)
class Sweep(Sizes):
    axis: str = "H"
    log10_eta: tuple[float, ...] = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75)
    control_shift: float = 1.2  # the control's grid is moved by log10(N H) at the base shape

def _lr_drift(s: Sweep, seeds: SeedStream) -> ClaimOutcome:
    X, y = mh.teacher_task(s.P, S=s.base.S, D=s.base.D, seed=seeds.next())
    seed_list, cmp, drift = seeds.take(s.seeds), None, {}
    for scaled, grid in ((True, np.array(s.log10_eta)), (False, np.array(s.log10_eta) + s.control_shift)):
        with one_thread():
            loss = mh.lr_sweep(s.base, X, y, axis=s.axis, sizes=s.sizes, log10_eta=grid, steps=s.steps,
                               seeds=seed_list, scaled=scaled)
        opt, _, _ = optimum_on_grid(grid, np.log(loss.mean(axis=-1)))
        drift["paper" if scaled else "control"] = float(np.polyfit(np.log2(s.sizes), opt, 1)[0])
        cmp = cmp or Comparison(f"optimal log10 eta0 against {s.axis}", f"log2 {s.axis}", "log10 eta0*",
                                denominator="absolute")
        cmp.draw("paper's scaling" if scaled else "control (one learning rate)", np.log2(s.sizes), opt)
    return ClaimOutcome(abs(drift["paper"]), [cmp.panel], details={"drift_per_doubling": drift},
                        checks={"the control drifts more": abs(drift["control"]) > abs(drift["paper"]) + 0.05})

@claim("attention.transfer.heads", paper=PAPER, tolerance=0.15, metric="|drift of log10 eta0* per doubling of H|",
       quick=Sweep(sizes=(2, 8), steps=30), full=Sweep(sizes=(2, 4, 8, 16), steps=100, seeds=3))
def transfer_heads(s: Sweep, seeds: SeedStream):
    """With learning rates scaled by N H the optimal base learning rate transfers across the number of
    heads (drift below 0.15 decades per doubling), while one learning rate for every shape drifts.

    Measured when set up (quick, seeds 0-3): drift +0.02, +0.13, -0.13, -0.01 against the control's +0.29,
    +0.31, +0.36, +0.15 decades per doubling."""
    return _lr_drift(s, seeds)

@claim("attention.transfer.depth", paper=PAPER, tolerance=0.15, metric="|drift of log10 eta0* per doubling of L|",
       quick=Sweep(sizes=(2, 8), steps=30, axis="L"), full=Sweep(sizes=(2, 4, 8, 16), steps=100, seeds=3, axis="L"),
       slow=True, expect=known_failure("the control does not drift more at CPU sizes (full-batch SGD, 30 steps; the "
                                       "optimum sits at the edge of stability): drift per doubling of L +0.03 and "
                                       "-0.08 with the paper's scaling vs +0.03 and -0.11 for the control (seeds 0, 1)",
                                       modes=("quick",)))
def transfer_depth(s: Sweep, seeds: SeedStream):
    """With 1/L branches and learning rates scaled by L the optimal base learning rate transfers across
    depth (drift below 0.15 decades per doubling), while one learning rate for every depth drifts."""
    return _lr_drift(s, seeds)
