"""Kernel learning curves: theory vs simulation of the same curve (see bench/theory_vs_sim.py)."""
from __future__ import annotations

import functools

import numpy as np

from lmech.sim.kernel_regression import gaussian_feature_regression, population_kernel_regression
from lmech.spectra import empirical_spectrum, power_law
from lmech.theory.kernel_curves import learning_curve, ood_learning_curve

_LAM = power_law(800, 1.5, normalize=True)
_V = power_law(800, 1.0)
_P = np.array([25, 50, 100, 200, 400])


@functools.lru_cache(maxsize=1)
def _digits():
    from lmech.data.vision import load_digits
    from lmech.kernels import ntk_mlp

    ds = load_digits()
    return ntk_mlp(ds.X, depth=1), ds.one_hot()


def _digits_theory():
    K, Y = _digits()
    spec = empirical_spectrum(K)  # the eigen-decomposition is part of the prediction's cost
    return learning_curve(spec.eigenvalues, spec.target_power(Y), [10, 30, 100, 300])


def _digits_sim():
    K, Y = _digits()
    return population_kernel_regression(K, Y, [10, 30, 100, 300], n_trials=20, seed=0)


def _ood_overlap(M=400, n_rot=50):
    rng = np.random.default_rng(0)
    lam = power_law(M, 1.5, normalize=True)
    Q, _ = np.linalg.qr(rng.standard_normal((n_rot, n_rot)))
    R = np.eye(M)
    R[:n_rot, :n_rot] = Q
    lt = power_law(M, 1.0, normalize=True)
    return lam, (R * lt) @ R.T / np.sqrt(np.outer(lam, lam))


_OOD_LAM, _OOD_O = _ood_overlap()
_OOD_V = power_law(400, 1.0)

CASES = [
    ("synthetic M=800, 5 P x 40 sets",
     lambda: learning_curve(_LAM, _V**2, _P, 1e-3, 0.05),
     lambda: gaussian_feature_regression(_LAM, _V, _P, 1e-3, 0.05, n_trials=40, seed=0)),
    ("digits NTK, 4 P x 20 sets",
     _digits_theory,
     _digits_sim),
    ("OOD M=400, 3 P x 60 sets",
     lambda: ood_learning_curve(_OOD_LAM, _OOD_V, _OOD_O, [25, 100, 300], 1e-3, 0.05),
     lambda: gaussian_feature_regression(_OOD_LAM, _OOD_V, [25, 100, 300], 1e-3, 0.05, n_trials=60, seed=0,
                                         test_overlap=_OOD_O)),
]
