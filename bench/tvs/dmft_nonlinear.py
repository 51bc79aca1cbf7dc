"""Nonlinear DMFT: the solver's loss curve vs the simulated ensemble it is compared with in the
claims ``dmft.two_layer.tanh`` and ``dmft.deep.tanh_L2`` (quick sizes; see bench/theory_vs_sim.py)."""
from __future__ import annotations

from lmech.sim.mean_field import sphere_regression_task as _sphere_task
from lmech.sim.mean_field import train_mean_field
from lmech.theory.dmft.sampling import deep, two_layer

_X2, _Y2, _XT2, _YT2 = _sphere_task(8, 8, 10)
_TWO = dict(gamma0=1.5, lr=0.1, steps=100, activation="tanh", X_test=_XT2, y_test=_YT2)
_X3, _Y3, _XT3, _YT3 = _sphere_task(4, 4, 8)
_DEEP = dict(depth=2, gamma0=1.5, lr=0.2, steps=20, activation="tanh", X_test=_XT3, y_test=_YT3)

CASES = [
    ("two-layer tanh, S=2e4 vs 8 nets N=1024",
     lambda: two_layer(_X2, _Y2, samples=20000, **_TWO).train_loss,
     lambda: train_mean_field(_X2, _Y2, width=1024, seeds=range(8), **_TWO).train_loss.mean(0)),
    ("3-layer tanh, S=4e3 vs 6 nets N=1024",
     lambda: deep(_X3, _Y3, samples=4000, response_samples=1000, **_DEEP).train_loss,
     lambda: train_mean_field(_X3, _Y3, width=1024, seeds=range(6), **_DEEP).train_loss.mean(0)),
]
