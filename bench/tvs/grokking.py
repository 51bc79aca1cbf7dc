"""Grokking and overtraining margins: exact moment recursion / closed forms vs trained networks.

The network sizes are those at which the simulation matches the theory to the claims' accuracy
(0.9% for the test-loss curve with N = 1000 and two initialisations, as in the quick claim; the margin asymptotics
to ~1.5% at 3e4 GD steps).
"""
from lmech.sim import grokking as sim
from lmech.theory import grokking as th

_X, _B, _Y, _XT, _YT = sim.polynomial_task(40, 10, n_test=4000, seed=4)
_XS, _YS, _XST, _YST = sim.separable_task(40, 20, n_test=2000, seed=1)

CASES = [
    ("test loss, P=40 D=10, 2 alphas, 600 GD steps",
     lambda: th.grokking_dynamics(_X, _B, [1.0, 4.0], eps=0.1, lr=6.0, steps=600, record_every=25),
     lambda: sim.train_two_layer(_X, _Y, _XT, _YT, [1.0, 4.0], eps=0.1, lr=6.0, steps=600, width=1000, n_seeds=2,
                                 record_every=25, seed=0)),
    ("margin, P=40 D=20, 3e4 GD steps",
     lambda: th.margin_asymptotics(_XS, _YS, [1e4, 3e4], lr=0.5),
     lambda: sim.overtrain_logistic(_XS, _YS, _XST, _YST, lr=0.5, record_steps=[10_000, 30_000])),
]
