"""Invariant capacity: Cover count with dim Fix(G) vs orbit-LP feasibility experiments."""
import numpy as np

from lmech.sim import capacity as sim
from lmech.theory import capacity as th

_REP = sim.cyclic_shift_rep(4, 8)
_P = np.array([10, 12, 14, 16, 18, 20, 24])

CASES = [
    ("Z_4 x 8 channels, 7 P values",
     lambda: th.separable_fraction(_P, th.fixed_space_dim(_REP)),
     lambda: sim.separability_experiment(_REP, _P, 100, seed=0)),
]
