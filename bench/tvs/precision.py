"""Precision scaling law: closed-form fit + prediction vs the low-precision training runs it describes."""
import numpy as np

from lmech.sim import precision as sim
from lmech.theory import precision as th

_TASK = sim.TeacherTask(16, 256, noise=0.01, seed=0)
_CONFIGS = [(w, D, wb, ab) for w in (16, 32, 64) for D in (2048, 8192) for wb, ab in ((None, None), (3, None), (None, 3))]


def _theory():
    # the same number of runs, fitted and predicted (synthetic losses stand in for measured ones)
    N = np.array([w * w + 20 * w + 1 for w, *_ in _CONFIGS], dtype=float)
    D = np.array([c[1] for c in _CONFIGS], dtype=float)
    wb = np.array([c[2] or np.inf for c in _CONFIGS], dtype=float)
    ab = np.array([c[3] or np.inf for c in _CONFIGS], dtype=float)
    law = th.PrecisionLaw(A=0.3, alpha=0.3, B=20.0, beta=0.7, E=0.01, gamma_w=2.0, gamma_a=2.5)
    L = th.precision_loss(N, D, law, weight_bits=wb, act_bits=ab)
    fit = th.fit_precision_law(N, D, L, weight_bits=wb, act_bits=ab)
    return th.precision_loss(N, D, fit.law, weight_bits=wb, act_bits=ab)


def _sim():
    return [sim.train_low_precision(_TASK, w, D, weight_bits=wb, act_bits=ab, batch_size=32, lr=0.01).loss
            for w, D, wb, ab in _CONFIGS]


CASES = [("law fit+predict vs 18 training runs", _theory, _sim)]
