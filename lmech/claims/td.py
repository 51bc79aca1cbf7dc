"""Claims: learning curves of TD(0) with linear function approximation.

Paper: Bordelon, Masset, Kuo & Pehlevan, "Loss Dynamics of Temporal Difference Reinforcement
Learning". The theory (:mod:`lmech.theory.td`) iterates the Gaussian-equivalent mean and
second-moment recursion of the weight error; the simulations (:mod:`lmech.sim.td`) run
minibatch TD(0) on (a) a Gaussian feature process with the same moments and (b) a real Markov
chain (biased random walk on a ring with smooth random features), with i.i.d. transitions or
whole episodes. Curves are compared on log-spaced windows of steps (theory and simulation
averaged over the same window) to reduce Monte-Carlo noise without biasing either side.
``td.learning_curve.sweep`` varies the discount (0 = online regression .. 0.99) and the feature
spectrum exponent at a fixed fraction of each case's predicted maximal stable learning rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, claim
from lmech.sim import td as sim
from lmech.theory import td as th

PAPER = "Loss Dynamics of Temporal Difference Reinforcement Learning"


def _windows(n_steps: int, n_windows: int) -> list[tuple[int, int]]:
    """Log-spaced windows [a, b) covering steps 1..n_steps (first window starts at step 1)."""
    edges = np.unique(np.round(np.geomspace(1, n_steps + 1, n_windows + 1)).astype(int))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _window_means(curve: np.ndarray, wins) -> np.ndarray:
    return np.array([curve[a:b].mean() for a, b in wins])


def _window_se(per_run_se: np.ndarray, wins) -> np.ndarray:
    # conservative: the s.e. of a window mean is at most the largest pointwise s.e. in it
    return np.array([per_run_se[a:b].max() for a, b in wins])


def _compare(theory_curve, sim_res, wins, skip_first: int = 0):
    t_mean = _window_means(theory_curve, wins)
    s_mean = _window_means(sim_res.value_error, wins)
    s_se = _window_se(sim_res.stderr, wins)
    rel = np.abs(s_mean - t_mean) / t_mean
    return t_mean, s_mean, s_se, rel[skip_first:]


def _ar_gaussian_problem(n_features: int, rho: float, seed: int = 3, spectrum_exponent: float = 1.0):
    """Spec section 5(d): S = diag(k^-a)/sum (a = 1 there), whitened AR(1) transition with R = rho Q."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, n_features + 1)
    lam = k ** (-float(spectrum_exponent))
    lam /= lam.sum()
    Sh = np.diag(np.sqrt(lam))
    Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    S1 = Sh @ (rho * Q).T @ Sh
    w_reward = rng.standard_normal(n_features) / np.sqrt(n_features) / np.sqrt(lam) * k**-0.5
    return th.linear_reward_moments(np.stack([np.diag(lam), S1]), w_reward)


@dataclass(frozen=True)
class TDGaussianSetting(Setting):
    n_features: int = 30
    rho: float = 0.8
    discount: float = 0.9
    cases: tuple = ((0.5, 1), (1.0, 4), (2.0, 4))
    n_steps: int = 600
    n_runs: int = 300
    n_windows: int = 8

    @classmethod
    def quick(cls):
        return cls(n_steps=400, n_runs=250)

    @classmethod
    def full(cls):
        return cls(n_steps=1500, n_runs=2000, n_windows=10)


@claim(
    "td.learning_curve.gaussian",
    paper=PAPER,
    statement=("The Gaussian-equivalent second-moment recursion predicts the value-error learning curve of "
               "minibatch TD(0) with i.i.d. Gaussian transitions, including the semi-gradient-noise plateau, "
               "for several learning rates and batch sizes."),
    metric="max relative error of the window-averaged value error over log-spaced windows and (lr, B) cases",
    tolerance=0.05,
    setting=TDGaussianSetting,
)
def gaussian(setting: TDGaussianSetting, seed: int) -> ClaimOutcome:
    K = _ar_gaussian_problem(setting.n_features, setting.rho)
    wins = _windows(setting.n_steps, setting.n_windows)
    series, errs, details = [], [], {}
    for i, (lr, B) in enumerate(setting.cases):
        theory = th.td_learning_curve(K, discount=setting.discount, lr=lr, n_steps=setting.n_steps, batch_size=B,
                                      plateau=False)
        res = sim.simulate_td_gaussian(K, discount=setting.discount, lr=lr, n_steps=setting.n_steps, batch_size=B,
                                       n_runs=setting.n_runs, seed=seed * 1000 + i)
        t_m, s_m, s_se, rel = _compare(theory.value_error, res, wins)
        errs.append(rel.max())
        x = [np.sqrt(a * (b - 1)) for a, b in wins]
        label = f"lr={lr}, B={B}"
        series += [Series(f"{label} theory", theory.steps[1:], theory.value_error[1:]),
                   Series(f"{label} sim", x, s_m, yerr=s_se, role="simulation")]
        details[label] = {"rel_error": rel, "sim": s_m, "sim_se": s_se, "theory": t_m,
                          "fixed_point_noise": theory.fixed_point_noise}
    panel = Panel("TD(0), Gaussian features (N = %d, gamma = %.2g)" % (setting.n_features, setting.discount),
                  "step", "value error", tuple(series), xscale="log", yscale="log")
    return ClaimOutcome(value=float(max(errs)), panels=[panel], details=details)


@dataclass(frozen=True)
class TDSweepSetting(Setting):
    n_features: int = 20
    rho: float = 0.8
    spectrum_exponents: tuple = (0.5, 2.0)     # S = diag(k^-a) / sum
    discounts: tuple = (0.0, 0.5, 0.95)
    lr_fraction: float = 0.4                   # lr = fraction * predicted max stable lr of each case
    batch_size: int = 2
    reward_noise: float = 0.05
    n_steps: int = 400
    n_runs: int = 300
    n_windows: int = 8

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(spectrum_exponents=(0.5, 1.0, 1.5, 2.0), discounts=(0.0, 0.5, 0.9, 0.99), n_steps=1000,
                   n_runs=1500, n_windows=10)


@claim(
    "td.learning_curve.sweep",
    paper=PAPER,
    statement=("The Gaussian-equivalent recursion predicts TD(0) value-error curves across discount factors "
               "(gamma = 0 reduces to online linear regression) and feature spectra (S ~ k^-a, flat to steep), "
               "with noisy rewards and the learning rate set relative to the predicted maximal stable one."),
    metric="max relative error of the window-averaged value error over windows, discounts and spectra",
    tolerance=0.05,
    setting=TDSweepSetting,
)
def sweep(setting: TDSweepSetting, seed: int) -> ClaimOutcome:
    wins = _windows(setting.n_steps, setting.n_windows)
    x = [np.sqrt(a * (b - 1)) for a, b in wins]
    B = setting.batch_size
    errs, details, panels = [], {}, []
    lr_max_grid = np.zeros((len(setting.spectrum_exponents), len(setting.discounts)))
    for i, a in enumerate(setting.spectrum_exponents):
        K = _ar_gaussian_problem(setting.n_features, setting.rho, seed=7, spectrum_exponent=a)
        series = []
        for j, g in enumerate(setting.discounts):
            lr_max = th.max_stable_lr(K, discount=g, batch_size=B, rtol=1e-3)
            lr_max_grid[i, j] = lr_max
            lr = setting.lr_fraction * lr_max
            theory = th.td_learning_curve(K, discount=g, lr=lr, n_steps=setting.n_steps, batch_size=B,
                                          reward_noise=setting.reward_noise, plateau=False)
            res = sim.simulate_td_gaussian(K, discount=g, lr=lr, n_steps=setting.n_steps, batch_size=B,
                                           reward_noise=setting.reward_noise, n_runs=setting.n_runs,
                                           seed=seed * 1000 + 10 * i + j)
            t_m, s_m, s_se, rel = _compare(theory.value_error, res, wins)
            errs.append(rel.max())
            label = f"a={a}, gamma={g}"
            series += [Series(f"gamma={g} theory", theory.steps[1:], theory.value_error[1:]),
                       Series(f"gamma={g} sim", x, s_m, yerr=s_se, role="simulation")]
            details[label] = {"lr": lr, "rel_error": rel, "sim": s_m, "sim_se": s_se, "theory": t_m}
        panels.append(Panel(f"TD(0), S ~ k^-{a} (N = {setting.n_features}, lr = {setting.lr_fraction} lr_max, B = {B})",
                            "step", "value error", tuple(series), xscale="log", yscale="log"))
    return ClaimOutcome(
        value=float(max(errs)),
        panels=panels,
        checks={"predicted lr_max decreases with the discount (every spectrum)":
                bool(np.all(np.diff(lr_max_grid, axis=1) < 0))},
        details={**details, "lr_max": lr_max_grid},
    )


@dataclass(frozen=True)
class TDRingSetting(Setting):
    n_states: int = 60
    n_features: int = 12
    p_right: float = 0.7
    discount: float = 0.9
    episode_lengths: tuple = (1, 10)
    cases: tuple = ((0.05, 1), (0.2, 4))   # (lr * episode_length, B)
    n_steps: int = 400
    n_runs: int = 300
    n_windows: int = 8

    @classmethod
    def quick(cls):
        return cls(n_steps=400, n_runs=300)

    @classmethod
    def full(cls):
        return cls(n_steps=1000, n_runs=1500, n_windows=10)


def _ring_problem(setting):
    P = sim.ring_chain(setting.n_states, setting.p_right)
    Phi = sim.fourier_features(setting.n_states, setting.n_features, 6, seed=31)
    ang = 2 * np.pi * np.arange(setting.n_states) / setting.n_states
    r = np.cos(ang) + 0.5 * np.sin(3 * ang)
    return P, Phi, r


@claim(
    "td.learning_curve.ring_mdp",
    paper=PAPER,
    statement=("On a real Markov chain (biased random walk on a 60-state ring, smooth random features) the "
               "Gaussian-equivalent theory built from the chain's lag moments predicts TD(0) value-error curves "
               "for i.i.d. transitions and for batches of length-10 episodes."),
    metric="max relative error of the window-averaged value error over windows, episode lengths and (lr, B)",
    tolerance=0.05,
    setting=TDRingSetting,
)
def ring_mdp(setting: TDRingSetting, seed: int) -> ClaimOutcome:
    P, Phi, r = _ring_problem(setting)
    wins = _windows(setting.n_steps, setting.n_windows)
    series, errs, details = [], [], {}
    for T in setting.episode_lengths:
        K = th.markov_chain_moments(P, Phi, r, T)
        for i, (lr_T, B) in enumerate(setting.cases):
            lr = lr_T / T
            theory = th.td_learning_curve(K, discount=setting.discount, lr=lr, n_steps=setting.n_steps,
                                          batch_size=B, episode_length=T, plateau=False)
            res = sim.simulate_td_chain(P, Phi, r, discount=setting.discount, lr=lr, n_steps=setting.n_steps,
                                        batch_size=B, episode_length=T, n_runs=setting.n_runs,
                                        seed=seed * 1000 + 10 * T + i)
            t_m, s_m, s_se, rel = _compare(theory.value_error, res, wins)
            errs.append(rel.max())
            label = f"T={T}, lr={lr:.3g}, B={B}"
            x = [np.sqrt(a * (b - 1)) for a, b in wins]
            series += [Series(f"{label} theory", theory.steps[1:], theory.value_error[1:]),
                       Series(f"{label} sim", x, s_m, yerr=s_se, role="simulation")]
            details[label] = {"rel_error": rel, "sim": s_m, "sim_se": s_se, "theory": t_m}
    panel = Panel("TD(0) on a 60-state ring MDP", "step", "value error", tuple(series), xscale="log", yscale="log")
    return ClaimOutcome(value=float(max(errs)), panels=[panel], details=details)


@dataclass(frozen=True)
class TDPlateauSetting(Setting):
    n_features: int = 10
    rho: float = 0.8
    discount: float = 0.9
    lr_fractions: tuple = (0.2, 0.4, 0.8)   # learning rates as fractions of the predicted lr_max
    batch_size: int = 1
    n_steps: int = 1500
    n_runs: int = 200
    anneal_t0: float = 50.0

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(lr_fractions=(0.1, 0.2, 0.4, 0.6, 0.8), n_steps=6000, n_runs=1000)


@claim(
    "td.learning_curve.plateau",
    paper=PAPER,
    statement=("With a constant learning rate the TD value error plateaus at the level predicted by the fixed "
               "point of the second-moment recursion (growing with lr / B); annealing the learning rate removes "
               "the plateau; beyond the predicted maximal stable learning rate TD diverges."),
    metric="max relative error between the predicted plateau and the simulated late-time mean value error",
    tolerance=0.05,
    setting=TDPlateauSetting,
)
def plateau(setting: TDPlateauSetting, seed: int) -> ClaimOutcome:
    K = _ar_gaussian_problem(setting.n_features, setting.rho, seed=5)
    B = setting.batch_size
    half = setting.n_steps // 2
    lr_max = th.max_stable_lr(K, discount=setting.discount, batch_size=B, rtol=1e-3)
    lrs = lr_max * np.array(setting.lr_fractions)
    th_plateau, th_late, sim_plateau, sim_se = [], [], [], []
    for i, lr in enumerate(lrs):
        theory = th.td_learning_curve(K, discount=setting.discount, lr=lr, n_steps=setting.n_steps, batch_size=B)
        res = sim.simulate_td_gaussian(K, discount=setting.discount, lr=lr, n_steps=setting.n_steps, batch_size=B,
                                       n_runs=setting.n_runs, seed=seed * 1000 + i)
        th_plateau.append(theory.plateau)
        th_late.append(theory.value_error[half:].mean())
        sim_plateau.append(res.value_error[half:].mean())
        sim_se.append(res.stderr[half:].max())
    th_plateau, th_late, sim_plateau = np.array(th_plateau), np.array(th_late), np.array(sim_plateau)
    rel = np.abs(sim_plateau - th_plateau) / th_plateau
    settled = np.abs(th_late - th_plateau) / th_plateau

    # annealing: lr_t = lr0 / (1 + t / t0) with the largest swept lr
    lr0 = lrs[-1]
    sched = lr0 / (1 + np.arange(setting.n_steps) / setting.anneal_t0)
    th_ann = th.td_learning_curve(K, discount=setting.discount, lr=sched, n_steps=setting.n_steps, batch_size=B)
    sim_ann = sim.simulate_td_gaussian(K, discount=setting.discount, lr=sched, n_steps=setting.n_steps, batch_size=B,
                                       n_runs=setting.n_runs, seed=seed * 1000 + 99)
    ann_rel = abs(sim_ann.value_error[-1] - th_ann.value_error[-1]) / th_ann.value_error[-1]

    # divergence beyond the predicted maximal stable learning rate
    above = th.td_learning_curve(K, discount=setting.discount, lr=1.3 * lr_max, n_steps=400, batch_size=B)
    sim_above = sim.simulate_td_gaussian(K, discount=setting.discount, lr=1.3 * lr_max, n_steps=400, batch_size=B,
                                         n_runs=50, seed=seed * 1000 + 7)
    below = th.td_learning_curve(K, discount=setting.discount, lr=0.7 * lr_max, n_steps=0, batch_size=B)
    sim_below = sim.simulate_td_gaussian(K, discount=setting.discount, lr=0.7 * lr_max, n_steps=2000, batch_size=B,
                                         n_runs=50, seed=seed * 1000 + 8)
    v0 = sim_above.value_error[0]
    sim_diverges = sim_above.diverged or not np.isfinite(sim_above.value_error[-1]) or sim_above.value_error[-1] > 1e3 * v0
    sim_bounded = (not sim_below.diverged) and sim_below.value_error[-1] < 10 * v0

    panels = [
        Panel("TD plateau vs learning rate", "learning rate / B", "late-time value error",
              (Series("plateau theory", lrs / B, th_plateau),
               Series("plateau sim", lrs / B, sim_plateau, yerr=sim_se, role="simulation")),
              xscale="log", yscale="log"),
        Panel("Learning-rate annealing removes the plateau", "step", "value error",
              (Series("annealed theory", th_ann.steps[1:], th_ann.value_error[1:]),
               Series("annealed sim", sim_ann.steps[1::25], sim_ann.value_error[1::25], role="simulation"),
               Series(f"constant lr={lr0:.3g} plateau", [1, setting.n_steps], [th_plateau[-1]] * 2, role="reference")),
              xscale="log", yscale="log"),
    ]
    return ClaimOutcome(
        value=float(rel.max()),
        panels=panels,
        checks={
            "second half of the run is on the plateau (theory curve within 1% of its fixed point)": bool(settled.max() < 0.01),
            "plateau increases with lr (theory and sim)": bool(np.all(np.diff(th_plateau) > 0) and np.all(np.diff(sim_plateau) > 0)),
            "annealing ends below half the constant-lr plateau": bool(sim_ann.value_error[-1] < 0.5 * th_plateau[-1]
                                                                      and th_ann.value_error[-1] < 0.5 * th_plateau[-1]),
            "annealed final value error: theory within 10% of sim": bool(ann_rel < 0.10),
            "lr = 1.3 lr_max: theory flags instability and simulation diverges": bool(above.stable is False and sim_diverges),
            "lr = 0.7 lr_max: theory stable and simulation bounded": bool(below.stable and sim_bounded),
        },
        details={"lrs": lrs, "plateau_theory": th_plateau, "plateau_sim": sim_plateau, "plateau_sim_se": sim_se,
                 "rel_error": rel, "theory_late_mean": th_late, "annealed_final_theory": th_ann.value_error[-1],
                 "annealed_final_sim": sim_ann.value_error[-1], "annealed_rel_error": ann_rel, "lr_max": lr_max},
    )
