"""Silent alignment: closed-form / Gram-map theory vs gradient descent on two-layer linear networks."""
import numpy as np

from lmech.sim import alignment as sim
from lmech.theory import alignment as th

_X = sim.whitened_inputs(60, 20, seed=0)
_Y = _X @ (np.ones(20) / np.sqrt(20))

CASES = [
    ("two-layer linear, whitened, sigma=0.01 (N=1024), closed form",
     lambda: th.silent_alignment_two_layer(np.linspace(0, 10, 201), target_norm=1.0, sigma=0.01, dim=20),
     lambda: sim.train_deep_linear(_X, _Y, depth=2, width=1024, sigma=0.01, lr=0.05, n_steps=200, n_records=200,
                                   n_seeds=2, seed=0)),
    ("two-layer linear, non-whitened, sigma=0.01 (N=1024), Gram map",
     lambda: th.two_layer_linear_gd(sim.whitened_inputs(60, 20, seed=0, spectrum=np.geomspace(1, 0.05, 20)), _Y,
                                    sigma=0.01, lr=0.05, n_steps=320),
     lambda: sim.train_deep_linear(sim.whitened_inputs(60, 20, seed=0, spectrum=np.geomspace(1, 0.05, 20)), _Y,
                                   depth=2, width=1024, sigma=0.01, lr=0.05, n_steps=320, n_records=320, n_seeds=2,
                                   seed=0)),
]
