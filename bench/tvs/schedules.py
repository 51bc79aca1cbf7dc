"""Optimal learning-rate schedules: theory vs simulation of the same final loss
(see bench/theory_vs_sim.py). Sizes mirror the quick claim settings."""
from __future__ import annotations

import functools

from lmech.sim.linear_sgd import sgd_gaussian
from lmech.theory.schedules import cosine_schedule, final_loss, optimal_schedule, power_law_problem

_LAM, _V2 = power_law_problem(500, 1.5, 0.5)
_T = 300
_COS = 1.0 * cosine_schedule(_T)


@functools.lru_cache(maxsize=1)
def _optimal():
    return optimal_schedule(_LAM, _V2, _T).lr


def _sim_optimal():
    eta = _optimal()  # cached after the warm-up round: only the simulation is timed
    return sgd_gaussian(_LAM, _V2, float(eta.max()), 1, _T, schedule=eta / eta.max(), n_seeds=250, seed=0, times=[_T])

CASES = [
    ("cosine schedule L_T, N=500 T=300",
     lambda: final_loss(_LAM, _V2, _COS),
     lambda: sgd_gaussian(_LAM, _V2, 1.0, 1, _T, schedule=_COS, n_seeds=250, seed=0, times=[_T])),
    ("optimise schedule + L_T, N=500 T=300",
     lambda: optimal_schedule(_LAM, _V2, _T),
     _sim_optimal),
]
