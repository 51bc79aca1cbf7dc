"""SGD learning curves and two-point theory: theory vs simulation of the same curve
(see bench/theory_vs_sim.py). Sizes mirror the quick claim settings."""
from __future__ import annotations

import numpy as np

from lmech.sim.linear_sgd import sgd_fixed_data as sim_fixed_data
from lmech.sim.linear_sgd import sgd_gaussian, sgd_random_features
from lmech.spectra import power_law
from lmech.theory.sgd import learning_curve
from lmech.theory.two_point import random_feature_spectrum, sgd_fixed_data, two_point_equivalent

_LAM = power_law(200, 1.3, normalize=True)
_V2 = power_law(200, 1.6, normalize=True)
_LR = np.array([0.25, 0.5, 1.0, 2.0])
_B = np.array([1, 2, 4, 8])

_FD_LAM = power_law(400, 1.4, normalize=True)
_FD_V2 = power_law(400, 1.3, normalize=True)
_FD_STEPS = np.unique(np.geomspace(4, 8000, 24).astype(int))

_RF_LAM = power_law(600, 1.4, normalize=True)
_RF_V2 = power_law(600, 1.3, normalize=True)
_RF_F = np.random.default_rng(0).standard_normal((150, 600))


def _rf_theory():
    ev, power, resid = random_feature_spectrum(_RF_LAM, _RF_V2, _RF_F)  # conditional spectrum: part of the cost
    return sgd_fixed_data(np.append(ev, 0.0), np.append(power, resid), 300, 0.25, 1, _FD_STEPS)


def _d2_sim(draws=40, M=300, P=150):
    rng = np.random.default_rng(0)
    lam = power_law(M, 1.4, normalize=True)
    u = rng.standard_normal(M)
    out = []
    for _ in range(draws):
        X = rng.standard_normal((P, M)) * np.sqrt(lam)
        h, V = np.linalg.eigh(X.T @ X / P)
        a, b = V @ (V.T @ u / (h + 1e-3)), V @ (V.T @ u / (h + 1e-1))
        out.append(1e-4 * a @ (lam * b))
    return np.mean(out)


CASES = [
    ("online N=200 T=2000 (1 config)",
     lambda: learning_curve(_LAM, _V2, 0.5, 1, 2000),
     lambda: sgd_gaussian(_LAM, _V2, 0.5, 1, 2000, n_seeds=200, seed=0)),
    ("online N=200 T=2000 (4 lr x B configs)",
     lambda: learning_curve(_LAM, _V2, _LR, _B, 2000),
     lambda: [sgd_gaussian(_LAM, _V2, lr, int(b), 2000, n_seeds=50, seed=0) for lr, b in zip(_LR, _B)]),
    ("two-point (D2) M=300 P=150",
     lambda: two_point_equivalent(power_law(300, 1.4, normalize=True), 150, 1e-3, 1e-1, np.ones(300)),
     _d2_sim),
    ("multi-pass SGD M=400 P=200, 24 t",
     lambda: sgd_fixed_data(_FD_LAM, _FD_V2, 200, 0.25, 1, _FD_STEPS),
     lambda: sim_fixed_data(_FD_LAM, _FD_V2, 200, 0.25, 1, 8000, n_seeds=100, seed=0, times=_FD_STEPS)),
    ("RF multi-pass SGD N=150 P=300, 24 t",
     _rf_theory,
     lambda: sgd_random_features(_RF_LAM, _RF_V2, _RF_F, 0.25, 1, 8000, n_samples=300, n_seeds=100, seed=0,
                                 times=_FD_STEPS)),
]
