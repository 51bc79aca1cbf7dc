"""MoE init stream: closed-form per-coordinate variance vs GPTs initialised by the paper's rules.

Theory (one MoE layer per block, CompleteP branches (L_base/L), E[gelu(z)^2] = 0.4252 for
z ~ N(0, 1)): sum_l (L_base/L)^2 g2 E[gelu^2] M s_down^2 / n_act with
s_down = sqrt(D/D_base) / (M/M_base) / (4 sqrt(M_base)) and g2 the mean sigmoid(r)^2 of the
n_act largest of E iid r ~ N(0, 1) (router init 1/sqrt(D) at the base width; 0.57 here, 1/4
only once the router has shrunk).
"""
import numpy as np

from lmech.sim.moe import init_stream, moe_param

_BASE = dict(width=32, depth=2, n_experts=8, n_active=2, expert_width=32)
_M = np.array([32, 64, 128, 256])


def _theory():
    r = np.sort(np.random.default_rng(0).standard_normal((20_000, 8)), axis=1)[:, -2:]
    g2 = float(np.mean(1.0 / (1.0 + np.exp(-r)) ** 2))
    s_down = 1.0 / (_M / 32) / (4 * np.sqrt(32))
    return 2 * g2 * 0.4252 * _M * s_down**2 / 2


CASES = [
    ("stream variance over M = 32..256",
     _theory,
     lambda: [init_stream(dict(_BASE, expert_width=int(m)), moe_param("completep", _BASE), n_seeds=2).stream_var
              for m in _M]),
]
