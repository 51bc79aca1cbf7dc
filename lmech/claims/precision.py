"""Claims: precision-aware scaling laws, fitted on small low-precision training runs.

The paper's fitted constants are not available, so these claims test its *functional forms*
(:mod:`lmech.theory.precision`) on our own runs (:mod:`lmech.sim.precision`: tanh MLP students
of a random teacher, one pass of Adam, weights and/or activations fake-quantised with the
straight-through estimator). Both fail as measured; the measured account of why is in the
docstring of :mod:`lmech.sim.precision`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, SeedStream, Setting, claim, fragile, known_failure,
                                  log_ratio, rel_err_sim)
from lmech.sim import precision as sim
from lmech.theory import precision as th

PAPER = "Scaling Laws for Precision"
TASK: dict[str, Any] = dict(in_dim=16, teacher_width=256, noise=0.01, seed=0)  # one fixed teacher for every run

@dataclass(frozen=True)
class Law(Setting):
    widths: tuple[int, ...] = (16, 32, 64)
    data: tuple[int, ...] = (2048, 8192)  # full-precision (N, D) grid
    quant_data: int = 8192  # D of the low-precision runs, fitted and held out
    fit_bits: tuple[int, ...] = (3, 4, 6)
    heldout_bits: int = 5
    joint_bits: tuple[tuple[int, int], ...] = ((4, 4), (3, 6))
    other_data: int = 2048  # D of held-out 4-bit runs
    n_seeds: int = 2
    batch_size: int = 32
    lr: float = 0.01

def _each(bits: int, n_data: int, role: str) -> list[tuple]:
    """Runs (D, weight bits, activation bits, role) quantising the weights, then the activations."""
    return [(n_data, bits, None, role), (n_data, None, bits, role)]

@claim("precision.law.heldout", paper=PAPER, tolerance=0.10, quick=Law(),
       full=Law(widths=(16, 32, 64, 128), data=(4096, 16384, 65536), quant_data=16384,
                joint_bits=((4, 4), (3, 6), (6, 3)), other_data=65536, n_seeds=3),
       metric="max relative error (to the measured loss) of the predicted loss over held-out runs",
       expect=known_failure(
           "quick 0.140, 0.171, 0.216 at seeds 0, 1, 2, full 0.230 (0.305 with an earlier seed stream) vs 0.10, "
           "and no better than a precision-blind "
           "fit (held-out mean 0.057 vs 0.052 at seed 0): one-pass Adam runs are step-limited, not Chinchilla-like "
           "(fit residuals 7-18 %), and absmax quantisation error scales with the whole tensor, falling ~4x per bit "
           "where the law needs a fixed fraction of parameters lost, so the fit over-predicts 4-6-bit penalties "
           "about twofold"))
def law_heldout(s: Law, seeds: SeedStream):
    """The precision-aware law L = A N_eff^-alpha + B D^-beta + E with N_eff = N (1 - e^{-P_w/gamma_w})
    (1 - e^{-P_a/gamma_a}), fitted on full-precision and single-part low-precision runs, predicts
    held-out runs (unseen precision, weights and activations quantised together, a different data budget).

    A further check asks the law's held-out mean error to be at most 0.75 x that of a
    precision-blind Chinchilla fit, so that its precision part is seen to carry information."""
    plan = [(D, None, None, "fit") for D in s.data] + [r for b in s.fit_bits for r in _each(b, s.quant_data, "fit")]
    plan += _each(s.heldout_bits, s.quant_data, "unseen precision") + _each(4, s.other_data, "other D")
    plan += [(s.quant_data, wb, ab, "weights+activations") for wb, ab in s.joint_bits]
    runs = sim.seed_mean_losses(sim.TeacherTask(**TASK), [(w, *p[:3]) for w in s.widths for p in plan],
                                seeds.take(s.n_seeds), batch_size=s.batch_size, lr=s.lr)
    roles = np.array([p[3] for _ in s.widths for p in plan])
    N, D, wb, ab, L = runs.n_params, runs.n_data, runs.weight_bits, runs.act_bits, runs.value
    fit_m, held, fp = roles == "fit", roles != "fit", np.isinf(wb) & np.isinf(ab) & (roles == "fit")
    fit = th.fit_precision_law(N[fit_m], D[fit_m], L[fit_m], weight_bits=wb[fit_m], act_bits=ab[fit_m])
    pred = th.precision_loss(N, D, fit.law, weight_bits=wb, act_bits=ab)
    base = th.fit_precision_law(N[fp], D[fp], L[fp])  # precision-blind: N_eff = N
    err, err_base = rel_err_sim(pred, L), rel_err_sim(th.precision_loss(N, D, base.law), L)
    cmp = Comparison(f"Runs at D = {s.quant_data} (sorted by measured loss)", "run", "test loss", "linear", "log")
    for w in s.widths:
        m = (runs.width == w) & (D == s.quant_data)
        order = np.argsort(L[m])
        cmp.add(f"width {w}", np.arange(order.size), pred[m][order], L[m][order])
    return ClaimOutcome(float(err[held].max()), [cmp.panel], checks={
        "fit converged": fit.converged,
        "fitted exponents are sane (0 < alpha, beta < 3)": bool(0 < fit.law.alpha < 3 and 0 < fit.law.beta < 3),
        "held-out mean error at most 0.75 x that of the precision-blind baseline fit":
            bool(err[held].mean() <= 0.75 * err_base[held].mean()),
    }, details={"fitted_constants": fit.law.__dict__, "fit_log_rmse": fit.log_rmse,
                "heldout_max_rel_by_kind": {r: float(err[roles == r].max()) for r in dict.fromkeys(roles[held])},
                "heldout_mean_rel": float(err[held].mean()), "baseline_heldout_mean_rel": float(err_base[held].mean()),
                "baseline_constants": base.law.__dict__, "max_rel_fit_residual_full_precision": float(err[fp].max()),
                "runs": {"role": roles, **runs.__dict__, "predicted": pred, "rel_error": err}})

@dataclass(frozen=True)
class PTQ(Setting):
    widths: tuple[int, ...] = (32, 64)
    data: tuple[int, ...] = (4096, 16384, 65536)  # the largest is held out
    bits: tuple[int, ...] = (3, 4)
    n_seeds: int = 3
    batch_size: int = 32
    lr: float = 0.01

@claim("precision.ptq.data", paper=PAPER, tolerance=0.5, quick=PTQ(), slow=True,
       full=PTQ(widths=(16, 32, 64, 128), data=(2048, 8192, 32768, 131072), bits=(3, 4, 5), n_seeds=4),
       metric="max |log(predicted / measured PTQ degradation)| over held-out (largest-D) runs",
       expect=(fragile("quick passes at about half the seeds: 0.890, 0.523, 0.519, 0.421, 0.151, 0.299 at seeds 0-5 "
                       "vs 0.5: the measured damage can grow faster than a power law in D between the two largest "
                       "budgets (width 32, 4 bits: 0.0041 at D = 16384, 0.0142 at 65536, predicted 0.0044)",
                       n_seeds=5, min_passing=1, modes=("quick",)),
               fragile("full, seed 0 (earlier seed stream): 0.502 vs 0.5; the fit's in-sample log-RMSE is already "
                       "0.58 and at 3 bits the damage saturates at the largest D (width 128: 0.056 at D = 32768 "
                       "and 131072) while the power law keeps growing", n_seeds=3, min_passing=1, modes=("full",))))
def ptq_data(s: PTQ, seeds: SeedStream):
    """Post-training quantisation degrades a model more the more data it was trained on (at fixed
    N); the form delta = C_T e^{-P/gamma_post} D^{gamma_D} / N^{gamma_N}, fitted on the smaller data
    budgets, predicts the degradation at the largest one."""
    r = sim.ptq_degradations(sim.TeacherTask(**TASK), s.widths, s.data, s.bits, seeds.take(s.n_seeds),
                             batch_size=s.batch_size, lr=s.lr)
    held, usable = r.n_data == max(s.data), r.value > 0
    fit = th.fit_ptq_law(*(a[~held & usable] for a in (r.n_params, r.n_data, r.post_bits, r.value)))
    pred = th.ptq_degradation(r.n_params, r.n_data, r.post_bits, fit.law)
    value = float(log_ratio(pred[held], r.value[held]).max()) if usable[held].all() else float("inf")
    cmp = Comparison("PTQ degradation vs pretraining data", "training samples D", "loss increase after PTQ")
    Ds, grows = np.geomspace(min(s.data), max(s.data), 30), []
    for w in s.widths:
        for b in s.bits:
            k = (r.width == w) & (r.post_bits == b)
            N = r.n_params[k][0]
            cmp.draw(f"w{w} {b}-bit theory", Ds, th.ptq_degradation(N, Ds, b, fit.law), role="theory")
            cmp.draw(f"w{w} {b}-bit sim", r.n_data[k], np.maximum(r.value[k], 1e-6))
            grows.append(bool(r.value[k][-1] > r.value[k][0]))
    return ClaimOutcome(value, [cmp.panel], checks={
        "degradation larger at the largest D than at the smallest, for every (N, bits)": all(grows),
        "fitted gamma_D > 0 (more data -> more PTQ damage)": fit.law.gamma_D > 0,
    }, details={"fitted": fit.law.__dict__, "fit_log_rmse": fit.log_rmse, "runs": {**r.__dict__, "predicted": pred}})
