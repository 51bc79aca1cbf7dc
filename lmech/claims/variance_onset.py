"""Claims for "The Onset of Variance-Limited Behavior for Networks in the Lazy and Rich Regimes".

Theory :mod:`lmech.theory.variance_onset`; simulation :mod:`lmech.sim.variance_onset` (the toy model as
Gaussian regression; lazy and rich two-layer ReLU networks on a polynomial target on the sphere).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Comparison, Panel, SeedStream, Series, Setting, Tolerance, claim,
                                  fit_power_law, fragile, known_failure, rel_err_sim)
from lmech.kernels import ntk_mlp
from lmech.sim.variance_onset import final_ntk_curves, ntk_learning_curves, simulate_noisy_features, sphere_task
from lmech.theory.variance_onset import (fit_onset_exponent, gram_learning_curve, half_variance_sample_size,
                                         noisy_feature_curve, onset_sample_size, relu_ntk_sphere_spectrum, toy_onset)

PAPER = "The Onset of Variance-Limited Behavior for Networks in the Lazy and Rich Regimes"

def _onset_panel(widths, curves: dict, role: str) -> Panel:
    """P* against width N (log-log) with a slope-1/2 line through the last curve's first point."""
    Ns = np.asarray(widths, dtype=float)
    ref = list(curves.values())[-1]
    return Panel("onset sample size", "width N", "P*", (*(Series(k, Ns, v, role=role) for k, v in curves.items()),
                 Series("slope 1/2", Ns, ref[0] * (Ns / Ns[0]) ** 0.5, role="reference")), "log", "log")

@dataclass(frozen=True)
class ToyCurve(Setting):
    """Noisy-feature toy model: M Gaussian modes, lam_k ~ k^-1.5, w*_k^2 ~ k^-0.5, eta = s2 lam."""
    n_modes: int = 200
    noise_levels: tuple[float, ...] = (0.05, 0.3)
    samples: tuple[int, ...] = (10, 20, 40, 80, 150)
    draws: int = 120

@claim("variance_onset.toy_model.curve", paper=PAPER, tolerance=0.05,
       metric="max relative error (to simulation) of the test error over P and noise level",
       quick=ToyCurve(), full=ToyCurve(400, (0.02, 0.1, 0.3), (10, 20, 40, 80, 160, 300, 600), 200))
def toy_curve(s: ToyCurve, seeds: SeedStream):
    """Ridgeless regression on signal-plus-noise features (noise eigenvalues eta) follows the kernel
    learning curve with eigenvalues lam + eta, explained target power p lam/(lam + eta) and effective
    label noise sum p eta/(lam + eta), which is also its large-P plateau."""
    k, P = np.arange(1, s.n_modes + 1, dtype=float), np.asarray(s.samples)
    lam, p = k**-1.5, k**-2.0  # p = lam w*^2 with w*^2 = k^-0.5
    cmp = Comparison("Noisy-feature toy model", "P", "test error", denominator="sim")
    for s2 in s.noise_levels:
        th = noisy_feature_curve(lam, p, P, noise_eigenvalues=s2 * lam)
        # small training sets are noisy and cheap: give them more draws
        sims = [simulate_noisy_features(lam, p, [n], noise_eigenvalues=s2 * lam, seed=seeds.next(),
                                        draws=int(s.draws * max(1.0, np.sqrt(P.max() / n)))) for n in P]
        cmp.add(f"eta={s2:g} lam", P, th.error, [r.error[0] for r in sims], [r.error_se[0] for r in sims])
        cmp.reference(f"eta={s2:g} lam plateau", [P[0], P[-1]], [th.plateau, th.plateau])
    return cmp.outcome("max")

@dataclass(frozen=True)
class ToyExponent(Setting):
    """Toy model on the two-layer ReLU NTK spectrum of S^{d-1}, degree-2 target, eta = lam/N."""
    d: int = 10
    degree: int = 2
    n_levels: int = 30
    widths: tuple[int, ...] = (64, 256, 1024, 4096)
    noise_scale: float = 1.0
    tol: float = 0.1
    boost: float = 3.0

@claim("variance_onset.toy_model.exponent", paper=PAPER, tolerance=0.05,
       metric="absolute difference |fitted P* exponent - 1/b_E|, b_E the local decay exponent of E_inf at the onsets",
       quick=ToyExponent(), full=ToyExponent(n_levels=60, widths=(64, 128, 256, 512, 1024, 2048, 4096, 8192)))
def toy_exponent(s: ToyExponent, seeds: SeedStream):
    """In the noisy-feature toy model with O(1/N) kernel noise the onset P* is where the infinite-width
    error E_inf ~ P^-b_E meets the variance, so P* ~ N^(1/b_E) (~ sqrt N when b_E ~ 2); enhancing
    the target's kernel eigenvalue (feature learning) delays the onset."""
    lam, mult, tail = relu_ntk_sphere_spectrum(s.d, s.n_levels)
    p = (np.arange(len(lam)) == s.degree).astype(float)
    kw = dict(noise_scale=s.noise_scale, tol=s.tol, multiplicities=mult, ridge=tail)
    lazy = toy_onset(lam, p, s.widths, np.geomspace(5, 20000, 120), **kw)
    rich = toy_onset(lam, p, s.widths, lazy.P, signal_boost=np.where(p > 0, s.boost, 1.0), **kw)
    stars = lazy.P_star[np.isfinite(lazy.P_star)]
    b_E = fit_power_law(lazy.P, lazy.error_infinite, xmin=float(stars.min()), xmax=float(stars.max())).exponent
    panels = [_onset_panel(s.widths, {"toy with boosted target eigenvalue": rich.P_star, "toy theory": lazy.P_star},
                           "theory"),
              Panel("learning curves", "P", "error", (Series("E_inf", lazy.P, lazy.error_infinite), *(
                  Series(f"N={N}", lazy.P, e) for N, e in zip(s.widths, lazy.error_finite))), "log", "log")]
    return ClaimOutcome(abs(lazy.fit.exponent - 1.0 / b_E), panels, {
        "feature learning (boosted signal) delays the onset at every width": bool(np.all(rich.P_star > lazy.P_star))},
        {"P_star": lazy.P_star, "exponent": lazy.fit.exponent, "b_E": b_E, "one_over_b_E": 1 / b_E,
         "P_star_boosted": rich.P_star, "exponent_boosted": rich.fit.exponent})

@dataclass(frozen=True)
class ReluOnset(Setting):
    """Lazy two-layer ReLU networks (empirical-NTK regression) on a degree-2 target on S^9."""
    d: int = 10
    degree: int = 2
    widths: tuple[int, ...] = (64, 256, 1024)
    samples: tuple[int, ...] = (10, 16, 25, 40, 63, 100, 160, 250, 400)
    datasets: int = 2
    ensemble: int = 4
    n_test: int = 1000
    tol: float = 0.1

@claim("variance_onset.relu.exponent", paper=PAPER, tolerance=Tolerance(quick=0.15, full=0.1),
       metric="absolute difference |fitted exponent of P_1/2(N) - 1/2| (P_1/2: the paper's onset, where "
              "initialisation variance is half the error, from single vs ensemble errors)",
       quick=ReluOnset(), full=ReluOnset(widths=(64, 128, 256, 512, 1024), datasets=3, samples=tuple(
           int(x) for x in np.unique(np.round(np.geomspace(10, 800, 14))))))
def relu_exponent(s: ReluOnset, seeds: SeedStream):
    """Finite-width lazy ReLU networks match the infinite-width NTK up to P* ~ sqrt(N), then become
    variance limited; ensembling over initialisations pushes the transition to larger P.

    Quick tolerance 0.15 (full, five widths: the paper-level 0.1): three widths, few datasets gave
    P_1/2 exponents 0.40, 0.47, 0.43 at seeds 0-2 (fit standard errors ~0.03)."""
    task, P, big = sphere_task(s.d, s.degree, seed=seeds.next()), np.asarray(s.samples), max(s.widths)
    # one call per width (E_inf paired with E_N on the same datasets); narrow, noisy widths get more datasets
    curves = [ntk_learning_curves(task, [N], P, datasets=int(np.ceil(s.datasets * np.sqrt(big / N))),
                                  ensemble=s.ensemble, n_test=s.n_test, seed=seeds.next()) for N in s.widths]
    single, ens = np.array([c.error_single[0] for c in curves]), np.array([c.error_ensemble[0] for c in curves])
    inf = np.array([c.error_inf for c in curves])
    onset = np.array([onset_sample_size(P, e, i, tol=s.tol).P_star for e, i in zip(single, inf)])
    onset_ens = np.array([onset_sample_size(P, e, i, tol=s.tol).P_star for e, i in zip(ens, inf)])
    half = np.array([half_variance_sample_size(P, e, o, ensemble_size=s.ensemble).P_star for e, o in zip(ens, single)])
    fit, fit_onset = fit_onset_exponent(s.widths, half), fit_onset_exponent(s.widths, onset)
    series = [Series("NTK_inf", P, inf[-1])]
    for N, c in zip(s.widths, curves):
        series += [Series(f"N={N} single", P, c.error_single[0], c.error_single_se[0], role="simulation"),
                   Series(f"N={N} ensemble", P, c.error_ensemble[0], role="simulation")]
    panels = [Panel("lazy ReLU networks vs NTK_inf", "P", "test error", tuple(series), "log", "log"),
              _onset_panel(s.widths, {"P* (E_N/E_inf > 1 + tol)": onset, "P_1/2 (variance = half the error)": half},
                           "simulation")]
    later = bool(np.all(np.where(np.isfinite(onset_ens), onset_ens, np.inf) > onset))
    return ClaimOutcome(abs(fit.exponent - 0.5), panels, {"ensembling delays the onset (E_N/E_inf > 1 + tol)": later}, {
        "P_half": half, "exponent_P_half": fit.exponent, "exponent_P_half_stderr": fit.stderr, "P_star_tol": onset,
        "P_star_tol_ensemble": onset_ens, "exponent_P_star_tol": fit_onset.exponent})

@dataclass(frozen=True)
class FinalNTK(Setting):
    """Rich (alpha = 0.2) two-layer ReLU nets on a degree-2 target on S^9, small ensembles."""
    d: int = 10
    degree: int = 2
    width: int = 256
    alpha: float = 0.2
    samples: tuple[int, ...] = (50, 100, 200)
    ensemble: int = 2
    datasets: int = 3
    n_spectral: int = 400
    n_test: int = 1000

@claim("variance_onset.final_ntk", paper=PAPER, tolerance=Tolerance(quick=0.3, full=0.25),
       metric="mean over P of the relative error (to simulation) of the final-eNTK theory vs the ensemble error",
       quick=FinalNTK(), full=FinalNTK(width=512, samples=(40, 60, 80, 120, 160, 240, 320), ensemble=3, datasets=5,
                                       n_spectral=1000, n_test=2000),
       expect=(known_failure("full setting measured 0.493 at seed 0 (0.282 with an earlier seed stream; tolerance "
                            "0.25); its smallest P (40, 60) lie "
                            "where the final kernel, aligned on its own training samples, makes the theory "
                            "optimistic (docstring)", modes=("full",)),
               fragile("quick setting measured 0.170, 0.251, 0.364 at seeds 0-2 (tolerance 0.3), and 0.197, 0.325, "
                       "0.167 with the earlier seed streams: one training-set draw in three gives an error above "
                       "tolerance at this small ensemble", n_seeds=3, min_passing=2, modes=("quick",))))
def final_ntk(s: FinalNTK, seeds: SeedStream):
    """The kernel learning-curve theory evaluated with the final (after-training) empirical NTK of rich
    ReLU networks predicts the networks' ensemble-averaged learning curve, better than the same theory
    with the initial NTK (which misses the feature-learning gain).

    Nets train by full-batch GD to relative train MSE < 1e-3. P starts inside the degree-2 level
    (multiplicity 54): at P = 20 the final kernel, aligned on the samples it is then assumed independent
    of, made the theory ~2x optimistic (0.32-0.36 vs network 0.66-0.70, initial NTK 0.58-0.63)."""
    P = np.asarray(s.samples)
    res = final_ntk_curves(sphere_task(s.d, s.degree, seed=seeds.next()), P, width=s.width, alpha=s.alpha,
                           ensemble=s.ensemble, datasets=s.datasets, n_spectral=s.n_spectral, n_test=s.n_test,
                           seed=seeds.next())
    y = res.y_spectral
    pred = {k: np.array([gram_learning_curve(g, y, p)[0] for g, p in zip(G, P)])
            for k, G in (("final eNTK", res.final_gram), ("initial eNTK", res.initial_gram))}
    pred["NTK_inf"] = gram_learning_curve(ntk_mlp(res.X_spectral, depth=1), y, P)  # the scale does not matter
    cmp = Comparison(f"rich ReLU nets (alpha={s.alpha:g}), degree-{s.degree} target on S^{s.d - 1}", "P",
                     "test error", denominator="sim")
    cmp.add("final eNTK", P, pred["final eNTK"], res.error_ensemble, res.error_ensemble_se)
    cmp.draw("single networks", P, res.error_single)
    cmp.draw("theory, initial eNTK", P, pred["initial eNTK"], role="theory")
    cmp.draw("theory, NTK_inf", P, pred["NTK_inf"], role="reference")
    mean_err = {k: float(rel_err_sim(v, res.error_ensemble).mean()) for k, v in pred.items()}
    return cmp.outcome(checks={"final eNTK predicts the network better than the initial eNTK":
                               mean_err["final eNTK"] < mean_err["initial eNTK"]},
                       details={"theory": pred, "mean_rel_err": mean_err, "train_mse_max": res.train_loss,
                                "gd_steps_mean": res.steps})
