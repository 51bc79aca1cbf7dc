"""In-context regression: MP-quadrature risk vs direct finite-D evaluation / trained attention."""
import numpy as np

from lmech.sim import icl as sim
from lmech.theory import icl as th

_STEPS = th.icl_risk(2.0, 4, noise=0.1).step_sizes[0]
_ETA = th.icl_risk(2.0, 2, noise=0.1, model="tied").step_sizes[0][0]
_LAM = np.arange(1, 33) ** -1.5

CASES = [
    ("iso optimal GD, alpha=2 L=4 (D=64)",
     lambda: th.icl_risk(2.0, 4, noise=0.1),
     lambda: sim.polynomial_predictor_risk(64, 128, _STEPS, noise=0.1, n_contexts=2000, seed=0)),
    ("iso trained tied, alpha=2 L=2 (D=24)",
     lambda: th.icl_risk(2.0, 2, noise=0.1, model="tied"),
     lambda: sim.train_icl(24, 2, 48, noise=0.1, tied=True, steps=600, batch_size=256, lr=0.02, seed=0)),
    ("rrs tied, depth 8, infinite context (D=32)",
     lambda: th.rrs_risk(_LAM, 8, model="tied"),
     lambda: sim.train_icl(32, 8, "inf", setting="rrs", spectrum=_LAM, tied=True, steps=250, batch_size=128,
                           lr=0.05, seed=0, n_test=8000, init_scale=2.0)),
]
