"""Adaptive kernel predictors and transfer learning: the theory vs the simulation it is compared
with in the claims ``adaptive_kernel.*`` and ``transfer_learning.*`` (quick sizes; see
bench/theory_vs_sim.py). For the two-layer weight-decay fixed point the theory is itself a
population of sampled neurons, so its cost is that of a network as wide as its sample; the
closed forms (deep linear, Bayesian linear) replace training or sampling outright."""
from __future__ import annotations

import numpy as np

from lmech.data.vision import digits_binary_task
from lmech.sim.adaptive_kernel import langevin_posterior, train_weight_decay
from lmech.theory.adaptive_kernel import bayesian_deep_linear, weight_decay_deep_linear, weight_decay_two_layer

_X, _Y, _XT, _YT = digits_binary_task(40, 200)
_Y, _YT = np.sign(_Y), np.sign(_YT)
_WD = dict(gamma0=1.0, weight_decay=0.2, lr=0.05)
_rng = np.random.default_rng(0)
_XB = _rng.standard_normal((20, 6))
_XB *= np.sqrt(6) / np.linalg.norm(_XB, axis=1, keepdims=True)
_YB = _XB @ _rng.standard_normal(6) / np.sqrt(6) + 0.3 * _rng.standard_normal(20)

CASES = [
    ("two-layer tanh weight decay, S=2048 vs net N=512 (digits P=40)",
     lambda: weight_decay_two_layer(_X, _Y, _XT, _YT, max_steps=600, samples=2048, tol=1e-2, **_WD).f_test,
     lambda: train_weight_decay(_X, _Y, _XT, _YT, width=512, steps=600, activation="tanh", **_WD).f_test),
    ("deep linear (L=2) weight decay, closed form vs net N=256",
     lambda: weight_decay_deep_linear(_X, _Y, _XT, _YT, gamma0=1.0, weight_decay=0.2, depth=2).f_test,
     lambda: train_weight_decay(_X, _Y, _XT, _YT, width=256, gamma0=1.0, weight_decay=0.2, lr=0.01, steps=2000,
                                activation="linear", depth=2).f_test),
    ("Bayesian linear, closed form vs Langevin N=128 (4 chains)",
     lambda: bayesian_deep_linear(_XB[:10], _YB[:10], _XB[10:], gamma0=1.5, beta=1.0).f_test,
     lambda: langevin_posterior(_XB[:10], _YB[:10], _XB[10:], width=128, gamma0=1.5, beta=1.0, dt=0.03, steps=4000,
                                burn_in=800, chains=4).f_test),
]
