"""Claims: precision-aware scaling laws, fitted on small low-precision training runs.

Paper: Kumar, Ankner, Spector et al., "Scaling Laws for Precision". The paper's fitted constants
are not available to us, so these claims test the *functional forms* on our own runs
(:mod:`lmech.sim.precision`: tanh MLP students of a random teacher, trained one pass with Adam,
weights and/or activations fake-quantised with the straight-through estimator):

* ``precision.law.heldout``: fit ``L = A N_eff^{-alpha} + B D^{-beta} + E`` with
  ``N_eff = N (1 - e^{-P_w/gamma_w}) (1 - e^{-P_a/gamma_a})`` (7 constants) on full-precision
  runs over an (N, D) grid plus weight-only and activation-only low-precision runs at one D;
  then *predict* runs never used in the fit: (i) an unseen precision (5 bits), (ii) weights
  *and* activations quantised together (tests the multiplicative N_eff structure),
  (iii) low precision at a different D.

  Known result (quick setting, seeds 0, 1, 2): this claim FAILS, for structural reasons, not
  Monte-Carlo noise. Held-out max error 0.118 / 0.142 / 0.168 vs tolerance 0.10, and the fitted
  law is no better than a precision-blind Chinchilla fit (held-out mean error 0.063 vs 0.051,
  0.050 vs 0.036, 0.062 vs 0.053), so no tolerance would make the claim meaningful (widening
  it to ~0.2 would also pass a law with no precision dependence). Two causes, both visible in
  ``details``:
  (1) the simulator is not in a Chinchilla regime: one-pass Adam with D/B steps is
  step-limited, loss vs D shows a plateau-escape rather than a power law and N x D interact
  strongly (at D = 2048 all widths reach ~0.09), so the additive base leaves +-7-9 % residuals
  at D = 2048 that the "other D" runs inherit (a Chinchilla fit on a 4 x 4 (N, D) grid misses
  by up to 15-30 %);
  (2) the quantisation penalty of absmax fake-quantisation falls ~4x per bit (noise variance
  ~ 4^-P), while in the law the penalty is ``A N^-alpha (f^-alpha - 1)`` with the weak fitted
  N-exponent (alpha ~ 0.25-0.5): a large 3-bit penalty then forces gamma ~ 4-7 bits, so the
  fit over-predicts the 4-6-bit penalties about twofold; the joint (w+a) runs compound that
  (+3..+14 %). Joint penalties themselves are additive, as the multiplicative N_eff predicts
  for small penalties. The spec (linear_theories.md section 12) lists no first-principles
  simulation for this law ("illustrate, not validate"). Full setting (seed 0): 0.305; there the
  law does beat the baseline (held-out mean 0.070 vs 0.108), but the joint runs miss by 0.30, the
  other-D runs by 0.24, and the full-precision fit residuals already reach 0.18.

  Redesign attempt (brief H, not adopted): the spec's linear random-feature toy (section 12(d)) with
  fake-quantised (absmax, STE) readout weights and/or features, trained *to convergence* on a fixed
  training set (full-batch Adam, 300 steps; N = 16..128 features of a 400-d power-law input,
  D = 512..8192, 2 seeds) reproduces the same structural failure more cleanly: held-out max error 0.18
  (mean 0.081 vs precision-blind 0.096) and fit residual 0.42. The reason is general: in the law the
  penalty is ``A N^-alpha (f(P)^-alpha - 1)``, i.e. a *constant fraction of the N-limited loss*, shrinking
  with N at fixed P; with absmax rounding the quantisation error is set by the scale of the whole
  weight/feature tensor (~ the function's norm, not its residual), so the relative penalty *grows*
  with N (3-bit weights: +0.7 % at N = 16, +2.6 % at 32, +7 % at 64, +9 % at 128; 3-bit features:
  +21 % at N = 16 up to +146 % at N = 128). A simulator that reproduces the law would need
  quantisation that acts like removing a fixed fraction of parameters; we found none that does so
  without building the law in, so the claim is left failing as an honest negative result.
* ``precision.ptq.data``: post-training quantisation degradation grows with the amount of
  pretraining data at fixed N; fit ``delta = C_T e^{-P/gamma_post} D^{gamma_D} / N^{gamma_N}``
  on the smaller data budgets and predict the largest one. Quick passes; full (4 widths,
  D up to 131072, 3-5 bits) gives 0.502 vs 0.5 (fails marginally): the in-sample log-RMSE is
  already 0.58 and at 3 bits the measured degradation saturates at the largest D (width 128:
  0.056 at D = 32768 and at 131072) where the power law in D keeps growing.
  The quick setting is seed-fragile too (brief H, measured): 0.477 / 0.738 / 1.057 for seeds
  0 / 1 / 2 (only seed 0 passes). Restricting to 4-5 bits does not help (0.486 / 1.17 / 0.529):
  the degradation grows faster than a power law between the two largest budgets (width 32,
  4 bits, seed 1: 0.0041 at D = 16384, 0.0142 at 65536; predicted 0.0044), plausibly because
  one-pass training at larger D takes more steps and grows larger weight outliers, which inflate
  the absmax step. Treat a quick pass at seed 0 as a pipeline check, not as support for the law.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, claim
from lmech.sim import precision as sim
from lmech.theory import precision as th

PAPER = "Scaling Laws for Precision"
# the precision part of the law must carry information: its held-out mean error has to be clearly
# (not marginally) below that of a precision-blind Chinchilla fit
BASELINE_MARGIN = 0.75


def _train(task, width, D, wb, ab, seeds, batch_size, lr):
    runs = [sim.train_low_precision(task, width, D, weight_bits=wb, act_bits=ab, seed=s, batch_size=batch_size, lr=lr)
            for s in seeds]
    return runs[0].n_params, float(np.mean([r.loss for r in runs])), runs


@dataclass(frozen=True)
class PrecisionLawSetting(Setting):
    widths: tuple = (16, 32, 64)
    data: tuple = (2048, 8192)           # full-precision (N, D) grid
    quant_data: int = 8192               # D of the low-precision runs used in the fit
    fit_bits: tuple = (3, 4, 6)
    heldout_bits: int = 5
    joint_bits: tuple = ((4, 4), (3, 6))
    extrapolate_data: int = 2048         # D of held-out low-precision runs
    seeds: tuple = (0, 1)
    batch_size: int = 32
    lr: float = 0.01

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(widths=(16, 32, 64, 128), data=(4096, 16384, 65536), quant_data=16384,
                   joint_bits=((4, 4), (3, 6), (6, 3)), extrapolate_data=65536, seeds=(0, 1, 2))


@claim(
    "precision.law.heldout",
    paper=PAPER,
    statement=("The precision-aware law L = A N_eff^-alpha + B D^-beta + E with N_eff = N (1 - e^{-P_w/gamma_w}) "
               "(1 - e^{-P_a/gamma_a}), fitted on full-precision and single-part low-precision runs, predicts held-out "
               "runs (unseen precision, weights and activations quantised together, a different data budget)."),
    metric="max relative error of the predicted loss over held-out runs",
    tolerance=0.10,
    setting=PrecisionLawSetting,
)
def law_heldout(setting: PrecisionLawSetting, seed: int) -> ClaimOutcome:
    task = sim.TeacherTask(16, 256, noise=0.01, seed=0)
    seeds = tuple(seed * 100 + s for s in setting.seeds)
    rows = []  # (width, N, D, P_w, P_a, loss, role)

    def add(width, D, wb, ab, role):
        N, L, _ = _train(task, width, D, wb, ab, seeds, setting.batch_size, setting.lr)
        rows.append((width, N, D, wb or np.inf, ab or np.inf, L, role))

    for w in setting.widths:
        for D in setting.data:
            add(w, D, None, None, "fit")
        for b in setting.fit_bits:
            add(w, setting.quant_data, b, None, "fit")
            add(w, setting.quant_data, None, b, "fit")
        add(w, setting.quant_data, setting.heldout_bits, None, "unseen precision")
        add(w, setting.quant_data, None, setting.heldout_bits, "unseen precision")
        for wb, ab in setting.joint_bits:
            add(w, setting.quant_data, wb, ab, "weights+activations")
        add(w, setting.extrapolate_data, 4, None, "other D")
        add(w, setting.extrapolate_data, None, 4, "other D")
    arr = np.array([r[1:6] for r in rows], dtype=float)
    roles = np.array([r[6] for r in rows])
    fit_m = roles == "fit"
    fit = th.fit_precision_law(arr[fit_m, 0], arr[fit_m, 1], arr[fit_m, 4], weight_bits=arr[fit_m, 2],
                               act_bits=arr[fit_m, 3])
    pred = th.precision_loss(arr[:, 0], arr[:, 1], fit.law, weight_bits=arr[:, 2], act_bits=arr[:, 3])
    rel = np.abs(pred - arr[:, 4]) / arr[:, 4]
    held = ~fit_m
    per_role = {r: float(rel[roles == r].max()) for r in dict.fromkeys(roles[held])}
    # precision-blind baseline: the Chinchilla base fitted on the full-precision runs alone (N_eff = N).
    # A law whose precision part carries information must predict the held-out low-precision runs
    # better than this baseline does.
    fp_m = fit_m & np.isinf(arr[:, 2]) & np.isinf(arr[:, 3])
    base = th.fit_precision_law(arr[fp_m, 0], arr[fp_m, 1], arr[fp_m, 4])
    rel_base = np.abs(th.precision_loss(arr[:, 0], arr[:, 1], base.law) - arr[:, 4]) / arr[:, 4]
    fit_rel_fp = np.abs(pred - arr[:, 4])[fp_m] / arr[fp_m, 4]
    series = []
    for w in setting.widths:
        m = (np.array([r[0] for r in rows]) == w) & (arr[:, 1] == setting.quant_data)
        order = np.argsort(arr[m, 4])
        idx = np.arange(len(order))
        series += [Series(f"width {w} theory", idx, pred[m][order]),
                   Series(f"width {w} sim", idx, arr[m, 4][order], role="simulation")]
    panel = Panel(f"Runs at D = {setting.quant_data} (sorted by measured loss)", "run", "test loss",
                  tuple(series), yscale="log")
    return ClaimOutcome(
        value=float(rel[held].max()),
        panels=[panel],
        checks={"fit converged": fit.converged,
                "fitted exponents are sane (0 < alpha, beta < 3)": bool(0 < fit.law.alpha < 3 and 0 < fit.law.beta < 3),
                "held-out mean error at most 0.75 x that of the precision-blind baseline fit": bool(
                    rel[held].mean() <= BASELINE_MARGIN * rel_base[held].mean())},
        details={"fitted_constants": fit.law.__dict__, "fit_log_rmse": fit.log_rmse, "heldout_max_rel_by_kind": per_role,
                 "heldout_mean_rel": float(rel[held].mean()),
                 "baseline_heldout_max_rel": float(rel_base[held].max()),
                 "baseline_heldout_mean_rel": float(rel_base[held].mean()),
                 "heldout_mean_rel_over_baseline": float(rel[held].mean() / rel_base[held].mean()),
                 "baseline_constants": base.law.__dict__,
                 "max_rel_fit_residual_full_precision": float(fit_rel_fp.max()),
                 "runs": [dict(width=r[0], n_params=r[1], n_data=r[2], weight_bits=r[3], act_bits=r[4], loss=r[5],
                               role=r[6], predicted=float(p), rel_error=float(e)) for r, p, e in zip(rows, pred, rel)]},
    )


@dataclass(frozen=True)
class PTQSetting(Setting):
    widths: tuple = (32, 64)
    data: tuple = (4096, 16384, 65536)
    bits: tuple = (3, 4)
    seeds: tuple = (0, 1, 2)
    batch_size: int = 32
    lr: float = 0.01

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(widths=(16, 32, 64, 128), data=(2048, 8192, 32768, 131072), bits=(3, 4, 5), seeds=(0, 1, 2, 3))


@claim(
    "precision.ptq.data",
    paper=PAPER,
    statement=("Post-training quantisation degrades a model more the more data it was trained on (at fixed N); "
               "the form delta = C_T e^{-P/gamma_post} D^{gamma_D} / N^{gamma_N}, fitted on the smaller data "
               "budgets, predicts the degradation at the largest one."),
    metric="max |log(predicted / measured PTQ degradation)| over held-out (largest-D) runs",
    tolerance=0.5,
    setting=PTQSetting,
)
def ptq_data(setting: PTQSetting, seed: int) -> ClaimOutcome:
    task = sim.TeacherTask(16, 256, noise=0.01, seed=0)
    rows = []  # (width, N, D, bits, degradation)
    for w in setting.widths:
        for D in setting.data:
            degr = {b: [] for b in setting.bits}
            for s in setting.seeds:
                run = sim.train_low_precision(task, w, D, seed=seed * 100 + s, batch_size=setting.batch_size, lr=setting.lr)
                for b in setting.bits:
                    degr[b].append(sim.post_train_quantize_loss(run, task, b, seed=seed * 100 + s) - run.loss)
            for b in setting.bits:
                rows.append((w, run.n_params, D, b, float(np.mean(degr[b]))))
    arr = np.array([r[1:] for r in rows], dtype=float)
    Dmax = max(setting.data)
    held = arr[:, 1] == Dmax
    usable = arr[:, 3] > 0
    fit = th.fit_ptq_law(arr[~held & usable, 0], arr[~held & usable, 1], arr[~held & usable, 2], arr[~held & usable, 3])
    pred = th.ptq_degradation(arr[:, 0], arr[:, 1], arr[:, 2], fit.law)
    with np.errstate(divide="ignore", invalid="ignore"):
        logerr = np.abs(np.log(pred / np.where(arr[:, 3] > 0, arr[:, 3], np.nan)))
    value = float(np.nanmax(np.where(held, logerr, np.nan))) if np.any(held & usable) else float("inf")
    if np.any(held & ~usable):
        value = float("inf")
    # monotone in D at fixed (N, bits)?
    mono = []
    for w in setting.widths:
        for b in setting.bits:
            m = (np.array([r[0] for r in rows]) == w) & (arr[:, 2] == b)
            d = arr[m, 3][np.argsort(arr[m, 1])]
            mono.append(bool(d[-1] > d[0]))
    series = []
    Ds = np.geomspace(min(setting.data), Dmax, 30)
    for w in setting.widths:
        N = [r[1] for r in rows if r[0] == w][0]
        for b in setting.bits:
            m = (np.array([r[0] for r in rows]) == w) & (arr[:, 2] == b)
            series += [Series(f"w{w} {b}-bit theory", Ds, th.ptq_degradation(N, Ds, b, fit.law)),
                       Series(f"w{w} {b}-bit sim", arr[m, 1], np.maximum(arr[m, 3], 1e-6), role="simulation")]
    panel = Panel("PTQ degradation vs pretraining data", "training samples D", "loss increase after PTQ",
                  tuple(series), xscale="log", yscale="log")
    return ClaimOutcome(
        value=value,
        panels=[panel],
        checks={"degradation larger at the largest D than at the smallest, for every (N, bits)": all(mono),
                "fitted gamma_D > 0 (more data -> more PTQ damage)": fit.law.gamma_D > 0},
        details={"fitted": fit.law.__dict__, "fit_log_rmse": fit.log_rmse,
                 "runs": [dict(width=r[0], n_params=r[1], n_data=r[2], bits=r[3], degradation=r[4],
                               predicted=float(p)) for r, p in zip(rows, pred)]},
    )
