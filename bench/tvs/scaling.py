"""Theory vs simulation timings: random-feature scaling model and the rich linear model.

Each case computes the same curve twice: the Laplace-domain / reduced-flow theory, and the
simulation that the corresponding ``scaling.*`` claim compares it with.
"""
import numpy as np

from lmech.sim.feature_learning import simulate_projected_gd
from lmech.sim.random_features import simulate_rf
from lmech.theory.feature_learning import power_law_task, rich_linear_curve
from lmech.theory.scaling import rf_loss_curve

_k = np.arange(1, 2001, dtype=float)
_LAM, _P = _k**-1.5, _k**-1.5
_T = np.geomspace(0.5, 1e5, 12)
_LAM_N = _LAM[:1000] / _LAM[:1000].sum()
_P_D = _k[:1000] ** -1.2
_T_D = np.geomspace(1, 1e4, 9)
_FL_LAM_INF, _FL_P_INF = power_law_task(3.0, 0.3)
_FL_LAM, _FL_P = power_law_task(3.0, 0.3, exact_modes=2000, k_max=None)
_T_FL = np.geomspace(1, 100, 7)

CASES = [
    ("rf width N=200, 12 times",
     lambda: rf_loss_curve(_LAM, _P, _T, N=200),
     lambda: simulate_rf(_LAM, _P, _T, N=200, draws=10, seed=0)),
    ("rf data P=300 (test+train), 9 times",
     lambda: rf_loss_curve(_LAM_N, _P_D, _T_D, P=300, noise=0.1),
     lambda: simulate_rf(_LAM_N, _P_D, _T_D, P=300, noise=0.1, draws=10, seed=0)),
    ("rf joint N=120 P=200, 9 times",
     lambda: rf_loss_curve(_LAM_N, _P_D, _T_D, N=120, P=200, n_draws=4),
     lambda: simulate_rf(_LAM_N, _P_D, _T_D, N=120, P=200, draws=10, seed=0)),
    ("rich linear gamma=4 (N=inf vs N=500)",
     lambda: rich_linear_curve(_FL_LAM_INF, _FL_P_INF, _T_FL, gamma=4.0, check=False),
     lambda: simulate_projected_gd(_FL_LAM, _FL_P, _T_FL, N=500, gamma=4.0, draws=4, seed=0)),
]
