"""TD(0) learning curves: Gaussian-equivalent recursion vs simulated minibatch TD(0)."""
import numpy as np

from lmech.sim import td as sim
from lmech.theory import td as th


def _gaussian():
    rng = np.random.default_rng(3)
    N = 30
    k = np.arange(1, N + 1)
    lam = 1.0 / k
    lam /= lam.sum()
    Sh = np.diag(np.sqrt(lam))
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    wR = rng.standard_normal(N) / np.sqrt(N) / np.sqrt(lam) * k**-0.5
    return th.linear_reward_moments(np.stack([np.diag(lam), Sh @ (0.8 * Q).T @ Sh]), wR)


_K = _gaussian()
_P = sim.ring_chain(60, 0.7)
_PHI = sim.fourier_features(60, 12, 6, seed=31)
_ANG = 2 * np.pi * np.arange(60) / 60
_R = np.cos(_ANG) + 0.5 * np.sin(3 * _ANG)
_KR = th.markov_chain_moments(_P, _PHI, _R, 10)

CASES = [
    ("gaussian N=30 lr=1 B=4, 1500 steps",
     lambda: th.td_learning_curve(_K, discount=0.9, lr=1.0, n_steps=1500, batch_size=4, plateau=False),
     lambda: sim.simulate_td_gaussian(_K, discount=0.9, lr=1.0, n_steps=1500, batch_size=4, n_runs=1000, seed=0)),
    ("ring MDP, T=10 episodes, 600 steps",
     lambda: th.td_learning_curve(_KR, discount=0.9, lr=0.02, n_steps=600, batch_size=4, episode_length=10,
                                  plateau=False),
     lambda: sim.simulate_td_chain(_P, _PHI, _R, discount=0.9, lr=0.02, n_steps=600, batch_size=4, episode_length=10,
                                   n_runs=1000, seed=0)),
]
