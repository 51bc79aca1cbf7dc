"""Deep linear networks from random init: infinite-width reductions vs finite networks.

Each simulation is sized to reach the error its claim measures (about 1-2 % on the curve)."""
import numpy as np

from lmech.sim.deep_linear_init import train_deep_linear
from lmech.theory import deep_linear_init as th

_LAM, _B = th.power_law_task(128, 1.5, 2.0)
_LR = 0.3 / (2 * _LAM[0]) / 17.0

CASES = [
    ("whitened L=2, 16 steps (N=512)",
     lambda: th.whitened_online(depth=2, gamma0=1.0, lr=0.05, steps=16),
     lambda: train_deep_linear(dim=4, width=512, depth=2, lr=0.05, steps=16, data="population", n_seeds=64)),
    ("power law D=128, rich, 300 steps",
     lambda: th.two_layer_population(spectrum=_LAM, target=_B, gamma0=32.0, lr=_LR, steps=300),
     lambda: train_deep_linear(dim=128, width=256, depth=1, gamma0=32.0, lr=_LR, steps=300, data="population",
                               spectrum=_LAM, target=_B, center=True, n_seeds=2)),
    ("repeated P=8, D=4, 32 data sets",
     lambda: th.repeated_data(dim=4, n_samples=8, depth=1, gamma0=1.0, lr=0.05, steps=12, n_datasets=32),
     lambda: train_deep_linear(dim=4, width=256, depth=1, lr=0.05, steps=12, data="repeated", n_samples=8,
                               center=True, n_seeds=32)),
]
