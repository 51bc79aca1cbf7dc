"""Theory vs simulation timings: onset of variance-limited behaviour.

"toy curve": the noisy-feature learning curve (VO) vs ridgeless regression on sampled
noisy Gaussian features. "finite-width curve": the toy model on the two-layer ReLU NTK
spectrum with kernel noise lam/N vs lazy width-N ReLU networks (empirical-NTK regression)
on the same task, both E_N(P) on a P grid.
"""
import numpy as np

from lmech.sim.variance_onset import ntk_learning_curves, simulate_noisy_features, sphere_task
from lmech.theory.variance_onset import noisy_feature_curve, relu_ntk_sphere_spectrum

_k = np.arange(1, 201, dtype=float)
_LAM = _k**-1.5
_P = _LAM * _k**-0.5
_PS = np.array([10, 20, 40, 80, 150])
_ETA = 0.1 * _LAM
_SPEC, _MULT, _TAIL = relu_ntk_sphere_spectrum(10, 30)
_TARGET = np.where(np.arange(30) == 2, 1.0, 0.0)
_PS_NET = np.array([10, 25, 63, 160, 400])
_TASK = sphere_task(10, 2, seed=0)

CASES = [
    ("toy curve (5 P, 40 draws)",
     lambda: noisy_feature_curve(_LAM, _P, _PS, noise_eigenvalues=_ETA),
     lambda: simulate_noisy_features(_LAM, _P, _PS, noise_eigenvalues=_ETA, draws=40, seed=0)),
    ("finite-width curve N=256 (5 P)",
     lambda: noisy_feature_curve(_SPEC, _TARGET, _PS_NET, noise_eigenvalues=_SPEC / 256, multiplicities=_MULT,
                                 ridge=_TAIL),
     lambda: ntk_learning_curves(_TASK, [256], _PS_NET, datasets=2, ensemble=2, n_test=1000, seed=0)),
]
