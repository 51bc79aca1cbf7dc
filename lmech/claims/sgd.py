"""Claims for SGD learning curves and the two-point deterministic equivalence.

Papers:
* B. Bordelon & C. Pehlevan, "Learning Curves for SGD on Structured Features"
  (``sgd.learning_curve.*``): theory :mod:`lmech.theory.sgd`, simulation
  :func:`lmech.sim.linear_sgd.sgd_gaussian`.
* A. Atanasov, B. Bordelon, J. A. Zavatone-Veth, C. Paquette & C. Pehlevan, "Two-Point
  Deterministic Equivalence for Stochastic Gradient Dynamics in Linear Models"
  (``sgd.two_point.*``): theory :mod:`lmech.theory.two_point`, simulation
  :func:`lmech.sim.linear_sgd.sgd_fixed_data` / :func:`~lmech.sim.linear_sgd.sgd_random_features`
  and exact linear algebra on sampled data.

Losses are the clean-target test MSE without the factor 1/2, time in SGD steps (see
:mod:`lmech.theory.sgd`). Online SGD losses are heavy-tailed at batch size 1, so the
learning-curve claims compare seed means averaged over log-spaced windows of steps (the
theory is averaged over the same windows).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, claim
from lmech.sim.linear_sgd import sgd_fixed_data as sim_fixed_data
from lmech.sim.linear_sgd import sgd_gaussian, sgd_pool, sgd_random_features
from lmech.theory.sgd import (
    critical_lr,
    gaussian_equivalent,
    learning_curve,
    learning_curve_features,
    optimal_batch,
)
from lmech.theory.two_point import random_feature_spectrum, sgd_fixed_data, two_point_equivalent, two_time_correlation

SGD_PAPER = "Learning Curves for SGD on Structured Features"
TWO_POINT_PAPER = "Two-Point Deterministic Equivalence for Stochastic Gradient Dynamics in Linear Models"


# --------------------------------------------------------------------------- helpers
def _power_law(n_modes: int, spectrum_exponent: float, target_exponent: float):
    """lam_k ∝ k^-b (sum 1), target power ∝ k^-a (sum 1, so L_0 = 1)."""
    k = np.arange(1, n_modes + 1, dtype=float)
    lam = k**-spectrum_exponent
    v2 = k**-target_exponent
    return lam / lam.sum(), v2 / v2.sum()


def _log_bins(t_min: float, t_max: float, n_bins: int) -> list[np.ndarray]:
    """Integer steps grouped into log-spaced windows [t_min, t_max]; empty windows dropped."""
    edges = np.geomspace(t_min, t_max + 1, n_bins + 1)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        s = np.arange(int(np.ceil(lo)), int(np.ceil(hi)))
        s = s[(s >= t_min) & (s <= t_max)]
        if s.size:
            bins.append(s)
    return bins


def _binned(curve: np.ndarray, bins: list[np.ndarray]) -> np.ndarray:
    """Average the last axis of ``curve`` (indexed by step) over each window."""
    return np.stack([curve[..., b].mean(axis=-1) for b in bins], axis=-1)


def _window_compare(theory_curve, sim_losses, bins):
    """Windowed theory, sim mean, sim s.e. and relative error."""
    th = _binned(theory_curve, bins)
    per_seed = _binned(sim_losses, bins)
    m = per_seed.mean(0)
    se = per_seed.std(0, ddof=1) / np.sqrt(per_seed.shape[0])
    return th, m, se, np.abs(m / th - 1.0)


def _centres(bins):
    return np.array([np.exp(np.mean(np.log(b))) for b in bins])


# =========================================================================== learning curves
@dataclass(frozen=True)
class GaussianCurveSetting(Setting):
    """Online SGD on Gaussian features with a power-law spectrum; configs = (lr, batch, noise, seeds)."""

    n_modes: int = 100
    spectrum_exponent: float = 1.3
    target_exponent: float = 1.6
    steps: int = 800
    n_bins: int = 10
    configs: tuple[tuple[float, int, float, int], ...] = (
        (0.5, 1, 0.0, 400), (1.0, 8, 0.0, 80), (2.0, 8, 0.0, 60), (0.5, 4, 0.1, 120))

    @classmethod
    def full(cls):
        return cls(n_modes=200, steps=2000, n_bins=14, configs=(
            (0.5, 1, 0.0, 1000), (1.0, 1, 0.0, 2500), (1.0, 8, 0.0, 250), (2.0, 8, 0.0, 250), (1.0, 4, 0.1, 500)))


@claim(
    "sgd.learning_curve.gaussian",
    paper=SGD_PAPER,
    statement="The exact mode-wise recursion (S1) predicts the expected test loss of online minibatch SGD on "
    "Gaussian features at every step, for any batch size, learning rate and label noise.",
    metric="max relative error |sim/theory - 1| of seed-mean losses averaged over log-spaced step windows",
    tolerance=0.05,
    setting=GaussianCurveSetting,
)
def gaussian_curve_claim(setting: GaussianCurveSetting, seed: int) -> ClaimOutcome:
    lam, v2 = _power_law(setting.n_modes, setting.spectrum_exponent, setting.target_exponent)
    T = setting.steps
    bins = _log_bins(5, T, setting.n_bins)
    x = _centres(bins)
    series, errs, details = [], [], {}
    for i, (lr, B, noise, seeds) in enumerate(setting.configs):
        th = learning_curve(lam, v2, lr, B, T, noise)
        sim = sgd_gaussian(lam, v2, lr, B, T, noise, n_seeds=seeds, seed=seed * 100 + i)
        th_w, m, se, e = _window_compare(th.loss, sim.losses, bins)
        errs.append(e.max())
        lab = f"lr={lr:g} B={B}" + (f" noise={noise:g}" if noise else "")
        tt = np.unique(np.geomspace(1, T, 200).astype(int))
        series += [Series(f"{lab} theory", tt, th.loss[tt]), Series(f"{lab} sim", x, m, se, role="simulation")]
        details[lab] = {"rel_err": e, "sim_se_rel": se / m, "critical_lr": float(th.critical_lr),
                        "asymptotic_loss": float(th.asymptotic_loss), "seeds": seeds}
    panel = Panel("Online SGD on Gaussian features", "step t", "test loss E(f - f*)^2", series, "log", "log")
    return ClaimOutcome(value=float(np.max(errs)), panels=[panel], details=details)


@dataclass(frozen=True)
class BatchSizeSetting(Setting):
    """Fixed sample budget C = B t; lr tuned per batch size by the theory."""

    n_modes: int = 100
    spectrum_exponent: float = 1.3
    target_exponent: float = 1.6
    noise: float = 0.0
    budget: int = 512
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    sample_seeds: int = 600  # seeds per batch size = sample_seeds / sqrt(B) (at least 50)

    @classmethod
    def full(cls):
        return cls(n_modes=200, budget=4096, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256), sample_seeds=1500)


@claim(
    "sgd.learning_curve.batch_size",
    paper=SGD_PAPER,
    statement="At a fixed sample budget, with the learning rate tuned per batch size, the theory predicts the "
    "final loss of every batch size and that the compute-optimal batch size is small; simulated SGD confirms both.",
    metric="max relative error |sim/theory - 1| of the final loss over batch sizes",
    tolerance=0.05,
    setting=BatchSizeSetting,
)
def batch_size_claim(setting: BatchSizeSetting, seed: int) -> ClaimOutcome:
    lam, v2 = _power_law(setting.n_modes, setting.spectrum_exponent, setting.target_exponent)
    opt = optimal_batch(lam, v2, setting.budget, setting.noise, batch_sizes=setting.batch_sizes)
    sim_m, sim_se = [], []
    for i, (B, lr, T) in enumerate(zip(opt.batch_sizes, opt.lr, opt.steps)):
        seeds = max(int(setting.sample_seeds / np.sqrt(B)), 50)
        # average the last few steps' losses (same window for the theory)
        w = max(1, int(T) // 20)
        times = np.arange(int(T) - w + 1, int(T) + 1)
        sim = sgd_gaussian(lam, v2, lr, int(B), int(T), setting.noise, n_seeds=seeds, seed=seed * 100 + i, times=times)
        per_seed = sim.losses.mean(1)
        sim_m.append(per_seed.mean())
        sim_se.append(per_seed.std(ddof=1) / np.sqrt(seeds))
    sim_m, sim_se = np.array(sim_m), np.array(sim_se)
    th = []
    for B, lr, T in zip(opt.batch_sizes, opt.lr, opt.steps):
        w = max(1, int(T) // 20)
        th.append(learning_curve(lam, v2, lr, int(B), int(T), setting.noise).loss[-w:].mean())
    th = np.array(th)
    err = np.abs(sim_m / th - 1.0)
    j = int(np.argmin(th))
    best_b = int(opt.batch_sizes[j])
    sim_best = int(np.argmin(sim_m))
    checks = {
        "theory optimum at a small batch (<= 1/8 of the largest tried)": best_b <= max(opt.batch_sizes) / 8,
        "simulated loss at the theory's optimal batch is within 2 s.e. of the simulated minimum":
            bool(sim_m[j] <= sim_m[sim_best] + 2 * np.hypot(sim_se[j], sim_se[sim_best])),
    }
    bs = opt.batch_sizes.astype(float)
    panel = Panel(f"Final loss at a budget of {setting.budget} samples (lr tuned per B)", "batch size B",
                  "final test loss",
                  [Series("tuned-lr theory", bs, th), Series("tuned-lr sim", bs, sim_m, sim_se, role="simulation")],
                  "log", "log")
    lr_panel = Panel("Tuned learning rate vs batch size", "batch size B", "learning rate",
                     [Series("tuned lr theory", bs, opt.lr),
                      Series("critical lr", bs, opt.critical_lr, role="reference")],
                     "log", "log")
    return ClaimOutcome(value=float(err.max()), panels=[panel, lr_panel], checks=checks,
                        details={"rel_err": err, "tuned_lr": opt.lr, "theory_best_batch": best_b,
                                 "sim_best_batch": int(opt.batch_sizes[sim_best]), "sim_se_rel": sim_se / sim_m})


@dataclass(frozen=True)
class DivergenceSetting(Setting):
    """Growth rate of the mean loss around the predicted critical learning rate.

    A flat-ish spectrum (many effective dimensions) is used on purpose: the theory's
    threshold is that of the *mean* loss, which a finite number of runs sees only when the
    per-step multiplicative fluctuations self-average (see the claim statement).
    """

    n_modes: int = 300
    spectrum_exponent: float = 0.5
    target_exponent: float = 1.5
    batch_sizes: tuple[int, ...] = (1, 4)
    factors: tuple[float, ...] = (0.9, 0.97, 1.03, 1.1)
    steps: int = 300
    seeds: int = 40

    @classmethod
    def full(cls):
        return cls(n_modes=500, batch_sizes=(1, 4, 16), factors=(0.9, 0.95, 0.98, 1.02, 1.05, 1.1), steps=600,
                   seeds=100)


def _zero_crossing(f, r):
    """Linear interpolation of the first sign change of r(f) from - to +; nan if none."""
    for i in range(len(f) - 1):
        if r[i] < 0 <= r[i + 1]:
            return f[i] + (f[i + 1] - f[i]) * (-r[i]) / (r[i + 1] - r[i])
    return float("nan")


@claim(
    "sgd.learning_curve.divergence",
    paper=SGD_PAPER,
    statement="The critical learning rate eta_c(B) of (S1) (largest stable constant rate, from the secular "
    "equation (eta/B) sum_k lam_k/(2 - eta(1+1/B) lam_k) = 1) is where simulated SGD's mean loss switches from "
    "decaying to growing, for every batch size. Caveat found here: eta_c is the threshold of the MEAN (second "
    "moment); for steep spectra at small B typical runs stay bounded above eta_c, so this claim uses a "
    "high-effective-dimension spectrum.",
    metric="max over batch sizes of |eta_sim/eta_c - 1|, eta_sim = zero crossing of the simulated growth rate",
    tolerance=0.05,
    setting=DivergenceSetting,
)
def divergence_claim(setting: DivergenceSetting, seed: int) -> ClaimOutcome:
    lam, v2 = _power_law(setting.n_modes, setting.spectrum_exponent, setting.target_exponent)
    T = setting.steps
    f = np.asarray(setting.factors, dtype=float)
    series, errs, details = [], [], {}
    sign_ok = True
    for i, B in enumerate(setting.batch_sizes):
        ec = critical_lr(lam, B)
        th = learning_curve(lam, v2, ec * f, B, T, times=[T // 2, T])
        r_th = np.log(th.loss[:, 1] / th.loss[:, 0]) / (T - T // 2)
        r_sim = []
        for j, fj in enumerate(f):
            sim = sgd_gaussian(lam, v2, fj * ec, B, T, n_seeds=setting.seeds, seed=seed * 1000 + 10 * i + j,
                               times=[T // 2, T])
            r_sim.append(np.log(sim.loss[1] / sim.loss[0]) / (T - T // 2))
        r_sim = np.array(r_sim)
        f_sim = _zero_crossing(f, r_sim)
        f_th = _zero_crossing(f, r_th)
        errs.append(abs(f_sim - 1.0) if np.isfinite(f_sim) else np.inf)
        sign_ok &= bool(r_sim[0] < 0 < r_sim[-1]) and bool(np.all(th.stable == (f < 1)))
        series += [Series(f"B={B} theory", f, r_th), Series(f"B={B} sim", f, r_sim, role="simulation")]
        details[f"B={B}"] = {"critical_lr": ec, "sim_threshold_factor": f_sim, "theory_window_threshold_factor": f_th,
                             "rate_sim": r_sim, "rate_theory": r_th,
                             "rate_theory_asymptotic": np.log(th.growth_factor)}
    series.append(Series("eta = eta_c", [1.0, 1.0], [min(min(s.y) for s in series), max(max(s.y) for s in series)],
                         role="reference"))
    panel = Panel("Growth rate of the mean loss around eta_c(B)", "lr / eta_c(B)", "d log L / dt (second half)",
                  series)
    return ClaimOutcome(value=float(np.max(errs)), panels=[panel],
                        checks={"mean loss decays below and grows above the window (sim), theory flags agree": sign_ok},
                        details=details)


@dataclass(frozen=True)
class PowerLawSetting(Setting):
    """lam_k ∝ k^-b, lam_k w*_k^2 ∝ k^-a: L_t ∝ (eta t)^{-(a-1)/b} while SGD noise is subleading."""

    problems: tuple[tuple[float, float], ...] = ((1.5, 2.0),)  # (b, a)
    n_modes: int = 2000
    lr: float = 0.5
    batch_size: int = 1
    fit_window: tuple[int, int] = (10, 1000)
    seeds: int = 16

    @classmethod
    def full(cls):
        return cls(problems=((1.5, 2.0), (2.0, 2.5), (1.2, 1.8)), n_modes=4000, fit_window=(10, 3000), seeds=24)


@claim(
    "sgd.learning_curve.power_law",
    paper=SGD_PAPER,
    statement="For power-law features lam_k ~ k^-b and target power lam_k w*_k^2 ~ k^-a, online SGD's loss decays "
    "as (eta t)^{-(a-1)/b} (the SGD-noise term is subleading); the exponent fitted to simulated SGD matches.",
    metric="max |fitted exponent (sim) - (a-1)/b| over problems",
    tolerance=0.05,
    setting=PowerLawSetting,
)
def power_law_claim(setting: PowerLawSetting, seed: int) -> ClaimOutcome:
    lo, hi = setting.fit_window
    tt = np.unique(np.geomspace(lo, hi, 40).astype(int))
    series, errs, details = [], [], {}
    th_ok = True
    for i, (b, a) in enumerate(setting.problems):
        lam, v2 = _power_law(setting.n_modes, b, a)
        pred = (a - 1.0) / b
        th = learning_curve(lam, v2, setting.lr, setting.batch_size, hi)
        sim = sgd_gaussian(lam, v2, setting.lr, setting.batch_size, hi, n_seeds=setting.seeds, seed=seed * 100 + i,
                           times=tt)
        s_sim = -np.polyfit(np.log(tt), np.log(sim.loss), 1)[0]
        s_th = -np.polyfit(np.log(tt), np.log(th.loss[tt]), 1)[0]
        errs.append(abs(s_sim - pred))
        th_ok &= abs(s_th - pred) <= 0.05
        lab = f"b={b:g} a={a:g}"
        series += [Series(f"{lab} theory", tt, th.loss[tt]),
                   Series(f"{lab} sim", tt, sim.loss, sim.loss_sem, role="simulation"),
                   Series(f"{lab} slope -(a-1)/b", tt, th.loss[tt[0]] * (tt / tt[0]) ** -pred, role="reference")]
        details[lab] = {"predicted": pred, "fitted_sim": s_sim, "fitted_theory": s_th}
    panel = Panel("Power-law decay of the SGD loss", "step t", "test loss", series, "log", "log")
    return ClaimOutcome(value=float(np.max(errs)), panels=[panel],
                        checks={"exponent fitted to the theory curve within 0.05 of (a-1)/b": th_ok}, details=details)


@dataclass(frozen=True)
class DigitsSetting(Setting):
    """ReLU random features of scikit-learn digits (a pool of ``n_images``), target = parity (+-1);
    configs = (lr / eta_c, B, seeds)."""

    n_images: int = 800
    n_features: int = 64
    steps: int = 600
    n_bins: int = 8
    configs: tuple[tuple[float, int, int], ...] = ((0.3, 1, 400), (0.3, 8, 150))

    @classmethod
    def full(cls):
        return cls(n_images=1797, n_features=128, steps=2000, n_bins=12,
                   configs=((0.3, 1, 1000), (0.6, 1, 1000), (0.3, 8, 300)))


def _digit_features(n_images: int, n_features: int, seed: int):
    from lmech.data.vision import load_digits

    ds = load_digits()
    rng = np.random.default_rng(20_000 + seed)
    keep = np.sort(rng.permutation(ds.X.shape[0])[:n_images])
    X = ds.X[keep]
    W = rng.standard_normal((X.shape[1], n_features))
    Psi = np.maximum(X @ W / np.sqrt(X.shape[1]), 0.0) / np.sqrt(n_features)
    return Psi, np.where(ds.y[keep] % 2 == 0, 1.0, -1.0)


@claim(
    "sgd.learning_curve.digits",
    paper=SGD_PAPER,
    statement="For arbitrary (non-Gaussian) features the exact theory, which replaces the Gaussian fourth moment of "
    "(S1) by the empirical one of the data, predicts online SGD on ReLU random features of the digits images "
    "(batches sampled from the image pool). The simpler Gaussian model, fed only the spectrum and target power, is "
    "only approximate here: measured 2-8% pessimistic at lr = 0.3 eta_c and 15-24% at 0.6 eta_c (B = 1), "
    "growing as the loss approaches its noise floor (reported, not tolerated).",
    metric="max relative error |sim/theory - 1| (exact arbitrary-feature theory) of seed-mean losses averaged over "
    "log-spaced step windows",
    tolerance=0.05,
    setting=DigitsSetting,
)
def digits_claim(setting: DigitsSetting, seed: int) -> ClaimOutcome:
    Psi, y = _digit_features(setting.n_images, setting.n_features, seed)
    lam, power, resid = gaussian_equivalent(Psi, y)
    T = setting.steps
    bins = _log_bins(2, T, setting.n_bins)
    bins = [b[np.unique(np.linspace(0, b.size - 1, min(4, b.size)).astype(int))] for b in bins]
    steps = np.concatenate(bins)
    pos = np.cumsum([0] + [b.size for b in bins])
    idx = [np.arange(pos[j], pos[j + 1]) for j in range(len(bins))]
    x = _centres(bins)
    series, errs, details = [], [], {"residual_variance": resid, "trace": float(lam.sum())}
    for i, (frac, B, seeds) in enumerate(setting.configs):
        lr = frac * critical_lr(lam, B)
        exact = learning_curve_features(Psi, y, lr, B, T, times=steps)
        gauss = learning_curve(lam, power, lr, B, T, resid, times=steps)
        sim = sgd_pool(Psi, y, lr, B, T, n_seeds=seeds, seed=seed * 100 + i, times=steps)
        th_w, m, se, e = _window_compare(exact.loss, sim.losses, idx)
        g_w = _binned(gauss.loss, idx)
        errs.append(e.max())
        lab = f"lr={frac:g} eta_c B={B}"
        series += [Series(f"{lab} theory", x, th_w), Series(f"{lab} sim", x, m, se, role="simulation"),
                   Series(f"{lab} Gaussian model", x, g_w, role="reference")]
        details[lab] = {"lr": lr, "rel_err": e, "sim_se_rel": se / m, "gaussian_model_signed_err": m / g_w - 1.0}
    panel = Panel("SGD on ReLU random features of digits: exact and Gaussian theories", "step t",
                  "excess test loss (pool)", series, "log", "log")
    return ClaimOutcome(value=float(np.max(errs)), panels=[panel], details=details)


# =========================================================================== two-point
@dataclass(frozen=True)
class ResolventSetting(Setting):
    """(D2) against sampled Sigma_hat: ridge pairs (l, l') and A in {Sigma, random PSD}."""

    dim: int = 300
    n_samples: int = 150
    spectrum_exponent: float = 1.4
    ridges: tuple[tuple[float, float], ...] = ((1e-2, 1e-2), (1e-3, 1e-1), (1e-4, 1e-2))
    draws: int = 60

    @classmethod
    def full(cls):
        return cls(dim=800, n_samples=400, draws=100)


@claim(
    "sgd.two_point.resolvent",
    paper=TWO_POINT_PAPER,
    statement="The two-point deterministic equivalent (D2) gives l l' u^T (Sigma_hat+l)^{-1} A (Sigma_hat+l')^{-1} u "
    "for different ridges l != l' and deterministic A, u (here A = Sigma and a random PSD matrix), "
    "up to O(1/P) finite-size corrections.",
    metric="max relative error |sim/theory - 1| over ridge pairs and A",
    tolerance=0.05,
    setting=ResolventSetting,
)
def resolvent_claim(setting: ResolventSetting, seed: int) -> ClaimOutcome:
    rng = np.random.default_rng(seed)
    M, P = setting.dim, setting.n_samples
    k = np.arange(1, M + 1)
    lam = k**-setting.spectrum_exponent
    lam /= lam.sum()
    u = rng.standard_normal(M) * k**-0.8 / lam**0.25
    Z = rng.standard_normal((M, M)) / np.sqrt(M)
    A_rand = (Z @ Z.T) * np.sqrt(np.outer(np.sqrt(lam), np.sqrt(lam)))
    mats = {"Sigma": np.diag(lam), "random PSD": A_rand}
    pairs = setting.ridges
    samples = {(i, name): [] for i in range(len(pairs)) for name in mats}
    for _ in range(setting.draws):
        X = rng.standard_normal((P, M)) * np.sqrt(lam)
        h, V = np.linalg.eigh(X.T @ X / P)
        Vu = V.T @ u
        for i, (l1, l2) in enumerate(pairs):
            a = V @ (Vu / (h + l1))
            b = V @ (Vu / (h + l2))
            for name, A in mats.items():
                samples[(i, name)].append(l1 * l2 * a @ A @ b)
    errs, details, xs, ths, sims, ses = [], {}, [], [], [], []
    for i, (l1, l2) in enumerate(pairs):
        for name, A in mats.items():
            th = two_point_equivalent(lam, P, l1, l2, u, A).value[0]
            s = np.asarray(samples[(i, name)])
            m, se = s.mean(), s.std(ddof=1) / np.sqrt(s.size)
            errs.append(abs(m / th - 1.0))
            details[f"l={l1:g},{l2:g} A={name}"] = {"theory": th, "sim": m, "sim_se": se, "rel_err": errs[-1]}
            xs.append(len(xs))
            ths.append(th)
            sims.append(m)
            ses.append(se)
    panel = Panel("Two-point equivalent vs sampled resolvents (index: ridge pair x A)", "case", "quadratic form",
                  [Series("two-point theory", xs, ths), Series("two-point sim", xs, sims, ses, role="simulation")],
                  "linear", "log")
    return ClaimOutcome(value=float(np.max(errs)), panels=[panel], details=details)


@dataclass(frozen=True)
class MultipassSetting(Setting):
    """Multi-pass SGD on P fixed Gaussian samples; configs = (lr, batch, noise, seeds)."""

    dim: int = 400
    n_samples: int = 200
    spectrum_exponent: float = 1.4
    target_exponent: float = 1.3
    max_time: float = 1000.0  # gradient-flow time lr * steps
    n_bins: int = 8
    configs: tuple[tuple[float, int, float, int], ...] = ((0.25, 1, 0.0, 200), (0.5, 2, 0.1, 200))

    @classmethod
    def full(cls):
        return cls(dim=800, n_samples=400, max_time=5000.0, n_bins=12,
                   configs=((0.25, 1, 0.0, 300), (0.5, 2, 0.0, 300), (1.0, 4, 0.1, 300), (0.25, 1, 0.2, 300)))


def _multipass_compare(th_fn, sim_fn, lr, max_time, n_bins, per_bin=4):
    """Theory and simulation on log-spaced windows of steps (``per_bin`` steps recorded per window)."""
    T = int(np.ceil(max_time / lr))
    # from lr * t = 5 on: the continuous-time theory's discretisation error is ~ lr lam / (lr t)
    bins = _log_bins(max(1, int(np.ceil(5.0 / lr))), T, n_bins)
    bins = [b[np.unique(np.linspace(0, b.size - 1, min(per_bin, b.size)).astype(int))] for b in bins]
    steps = np.concatenate(bins)
    th = th_fn(steps)
    sim = sim_fn(T, steps)
    # map bins to positions in `steps`
    pos, out = 0, []
    for b in bins:
        out.append(np.arange(pos, pos + b.size))
        pos += b.size
    res = {}
    for key, th_curve, sim_curves in (("test", th.test_loss, sim.losses), ("train", th.train_loss, sim.train_losses)):
        res[key] = _window_compare(th_curve, sim_curves, out)
    res["gd"] = _binned(th.gd_test_loss, out)
    res["sgd_effect"] = float(np.max(np.abs(res["test"][1] / res["gd"] - 1.0)))
    return np.array([np.exp(np.mean(np.log(b))) for b in bins]) * lr, res


@claim(
    "sgd.two_point.linear",
    paper=TWO_POINT_PAPER,
    statement="For multi-pass minibatch SGD on a fixed training set (linear regression, Gaussian data), test and "
    "train loss follow the homogenised-SGD Volterra equations whose gradient-flow forcing is the two-point "
    "equivalent (D2) and whose SGD kernels are one-point equivalents. The SGD equations (homogenised noise, "
    "continuous time) are derived here, not transcribed; they hold to ~1% for lr*tr(Sigma)/(2B) <= 0.125 and "
    "degrade to ~3-5% (theory low) at 0.25.",
    metric="max relative error |sim/theory - 1| of test and train loss over log-spaced time windows and configs",
    tolerance=0.05,
    setting=MultipassSetting,
)
def multipass_linear_claim(setting: MultipassSetting, seed: int) -> ClaimOutcome:
    lam, v2 = _power_law(setting.dim, setting.spectrum_exponent, setting.target_exponent)
    P = setting.n_samples
    panels, errs, details, sgd_effects = [], [], {}, []
    for i, (lr, B, noise, seeds) in enumerate(setting.configs):
        x, res = _multipass_compare(
            lambda st: sgd_fixed_data(lam, v2, P, lr, B, st, noise),
            lambda T, st: sim_fixed_data(lam, v2, P, lr, B, T, noise, n_seeds=seeds, seed=seed * 100 + i, times=st,
                                          chunk=25),
            lr, setting.max_time, setting.n_bins)
        lab = f"lr={lr:g} B={B}" + (f" noise={noise:g}" if noise else "")
        e = max(res["test"][3].max(), res["train"][3].max())
        errs.append(e)
        details[lab] = {"rel_err_test": res["test"][3], "rel_err_train": res["train"][3],
                        "sim_se_rel_test": res["test"][2] / res["test"][1], "seeds": seeds,
                        "max_sgd_vs_gradient_flow": res["sgd_effect"]}
        sgd_effects.append(res["sgd_effect"])
        panels.append(Panel(f"Multi-pass SGD, P={P}, {lab}", "time lr x steps", "loss", [
            Series("test theory", x, res["test"][0]),
            Series("test sim", x, res["test"][1], res["test"][2], role="simulation"),
            Series("train theory", x, res["train"][0]),
            Series("train sim", x, res["train"][1], res["train"][2], role="simulation"),
            Series("gradient flow (test)", x, res["gd"], role="reference")], "log", "log"))
    return ClaimOutcome(value=float(np.max(errs)), panels=panels, details=details,
                        checks={"SGD noise resolved: gradient-flow theory alone is off by > 5% somewhere":
                                max(sgd_effects) > 0.05})


@dataclass(frozen=True)
class RFMultipassSetting(Setting):
    """Linear random-feature model psi = F x / sqrt(N) trained by multi-pass SGD on P samples."""

    dim: int = 600
    n_features: int = 150
    n_samples: int = 300
    spectrum_exponent: float = 1.4
    target_exponent: float = 1.3
    max_time: float = 1000.0
    n_bins: int = 8
    configs: tuple[tuple[float, int, float, int], ...] = ((0.25, 1, 0.0, 200), (0.5, 2, 0.05, 200))

    @classmethod
    def full(cls):
        return cls(dim=1500, n_features=300, n_samples=600, max_time=5000.0, n_bins=12,
                   configs=((0.25, 1, 0.0, 300), (1.0, 4, 0.05, 300), (0.25, 1, 0.1, 300)))


@claim(
    "sgd.two_point.random_features",
    paper=TWO_POINT_PAPER,
    statement="For a linear random-feature model trained by multi-pass SGD on P fixed samples, the two-point "
    "theory applied to the feature covariance F Lambda F^T/N (conditional on the projection F, with the "
    "width-limited residual acting as label noise) predicts test and train loss over training.",
    metric="max relative error |sim/theory - 1| of test and train loss over log-spaced time windows and configs",
    tolerance=0.05,
    setting=RFMultipassSetting,
)
def multipass_rf_claim(setting: RFMultipassSetting, seed: int) -> ClaimOutcome:
    lam, v2 = _power_law(setting.dim, setting.spectrum_exponent, setting.target_exponent)
    P = setting.n_samples
    F = np.random.default_rng(10_000 + seed).standard_normal((setting.n_features, setting.dim))
    ev, power, resid = random_feature_spectrum(lam, v2, F)
    lam_f, v2_f = np.append(ev, 0.0), np.append(power, resid)
    panels, errs, details, sgd_effects = [], [], {"width_residual": resid}, []
    for i, (lr, B, noise, seeds) in enumerate(setting.configs):
        x, res = _multipass_compare(
            lambda st: sgd_fixed_data(lam_f, v2_f, P, lr, B, st, noise),
            lambda T, st: sgd_random_features(lam, v2, F, lr, B, T, noise, n_samples=P, n_seeds=seeds,
                                              seed=seed * 100 + i, times=st, chunk=25),
            lr, setting.max_time, setting.n_bins)
        lab = f"lr={lr:g} B={B}" + (f" noise={noise:g}" if noise else "")
        errs.append(max(res["test"][3].max(), res["train"][3].max()))
        details[lab] = {"rel_err_test": res["test"][3], "rel_err_train": res["train"][3],
                        "sim_se_rel_test": res["test"][2] / res["test"][1], "seeds": seeds,
                        "max_sgd_vs_gradient_flow": res["sgd_effect"]}
        sgd_effects.append(res["sgd_effect"])
        panels.append(Panel(f"RF model N={setting.n_features}, P={P}, {lab}", "time lr x steps", "loss", [
            Series("test theory", x, res["test"][0]),
            Series("test sim", x, res["test"][1], res["test"][2], role="simulation"),
            Series("train theory", x, res["train"][0]),
            Series("train sim", x, res["train"][1], res["train"][2], role="simulation"),
            Series("gradient flow (test)", x, res["gd"], role="reference"),
            Series("width limit", [x[0], x[-1]], [resid, resid], role="reference")], "log", "log"))
    return ClaimOutcome(value=float(np.max(errs)), panels=panels, details=details,
                        checks={"SGD noise resolved: gradient-flow theory alone is off by > 5% somewhere":
                                max(sgd_effects) > 0.05})


@dataclass(frozen=True)
class TwoTimeSetting(Setting):
    """Gradient flow on P fixed samples: C(tau, tau') on a grid of times, with label noise."""

    dim: int = 600
    n_samples: int = 300
    spectrum_exponent: float = 1.5
    target_exponent: float = 1.2
    noise: float = 0.1
    times: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    draws: int = 30

    @classmethod
    def full(cls):
        return cls(dim=1500, n_samples=600, times=(1.0, 5.0, 30.0, 200.0, 1e3, 1e4), draws=40)


@claim(
    "sgd.two_point.two_time",
    paper=TWO_POINT_PAPER,
    statement="The two-time test correlation C(tau, tau') = E (w(tau)-w*)^T Sigma (w(tau')-w*) of gradient flow on "
    "a fixed training set is the double inverse Laplace transform of the two-point equivalent (plus a one-point "
    "label-noise term), for all pairs of times (time x time).",
    metric="max relative error |sim/theory - 1| over all pairs (tau, tau')",
    tolerance=0.05,
    setting=TwoTimeSetting,
)
def two_time_claim(setting: TwoTimeSetting, seed: int) -> ClaimOutcome:
    rng = np.random.default_rng(seed)
    lam, v2 = _power_law(setting.dim, setting.spectrum_exponent, setting.target_exponent)
    P, M = setting.n_samples, setting.dim
    tau = np.asarray(setting.times, dtype=float)
    th = two_time_correlation(lam, v2, P, tau, setting.noise)
    w = np.sqrt(v2 / lam)
    Cs = []
    for _ in range(setting.draws):
        X = rng.standard_normal((P, M)) * np.sqrt(lam)
        eps = np.sqrt(setting.noise) * rng.standard_normal(P)
        mu, U = np.linalg.eigh(X @ X.T / P)
        keep = mu > 1e-12 * mu.max()
        mu, U = mu[keep], U[:, keep]
        V = X.T @ U / np.sqrt(P * mu)  # eigenvectors of Sigma_hat with nonzero eigenvalue
        pw = V.T @ w
        pe = V.T @ (X.T @ eps / P) / mu  # Sigma_hat^+ X^T eps / P in that basis
        # w(tau) - w* = -(w - V pw) - V e^{-tau mu} pw + V (1 - e^{-tau mu}) pe
        D = np.stack([-(w - V @ pw) + V @ (-np.exp(-t * mu) * pw + (1 - np.exp(-t * mu)) * pe) for t in tau])
        Cs.append((D * lam) @ D.T)
    Cs = np.asarray(Cs)
    m = Cs.mean(0)
    se = Cs.std(0, ddof=1) / np.sqrt(setting.draws)
    err = np.abs(m / th.correlation - 1.0)
    series = []
    for j, t0 in enumerate(tau):
        series += [Series(f"tau'={t0:g} theory", tau, th.correlation[:, j]),
                   Series(f"tau'={t0:g} sim", tau, m[:, j], se[:, j], role="simulation")]
    panel = Panel(f"Two-time test correlation, gradient flow, P={P}", "tau", "C(tau, tau')", series, "log", "log")
    return ClaimOutcome(value=float(err.max()), panels=[panel],
                        details={"rel_err": err, "sim_se_rel": se / m, "theory": th.correlation, "sim": m})
