"""Simulated TD(0) policy evaluation with linear value functions (NumPy, vectorised over runs).

The real systems behind Bordelon, Masset, Kuo & Pehlevan, "Loss Dynamics of Temporal
Difference Reinforcement Learning":

* :func:`simulate_td_chain`: a finite Markov chain (an MDP under a fixed policy) with state
  features ``phi(s)`` and rewards ``r(s)``; each update uses B episodes of length T started
  from the stationary distribution (T = 1: i.i.d. transitions ``(s, s')``).
* :func:`simulate_td_gaussian`: features and rewards drawn as a zero-mean Gaussian process with
  prescribed stationary lag moments ``K_d = E[z_t z_{t+d}^T]``, ``z = (phi, r)`` (the
  Gaussian-equivalent system itself).

Both run semi-gradient TD(0),
``w <- w + (lr/B) sum_b sum_{t<T} phi_t (r_t + gamma phi_{t+1} . w - phi_t . w)``, for
``n_runs`` independent runs at once, and report the value error
``(w - w_V)^T S (w - w_V)`` with ``S = E_pi[phi phi^T]`` and ``w_V`` the TD fixed point, both
computed here from the system's exact statistics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import check_array, check_int, check_real, fail

__all__ = ["TDSimResult", "simulate_td_chain", "simulate_td_gaussian", "ring_chain", "fourier_features", "ring_mdp",
           "ar_gaussian_process", "random_chain_mdp", "simulate_td_online"]


@dataclass(frozen=True)
class TDSimResult:
    """Measured TD(0) learning curve.

    Attributes
    ----------
    steps : ndarray (n_steps + 1,)
    value_error : ndarray (n_steps + 1,)   mean over runs of (w - w_V)^T S (w - w_V)
    stderr : ndarray (n_steps + 1,)        standard error of that mean
    diverged : bool                        some run's weights became non-finite / exploded
    n_runs : int
    """

    steps: np.ndarray
    value_error: np.ndarray
    stderr: np.ndarray
    diverged: bool
    n_runs: int


def _lr_schedule(lr, n: int) -> np.ndarray:
    arr = check_array(lr, "lr", ndim=(0, 1), positive=True)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        fail("lr", f"a positive scalar or an array of shape (n_steps,) = ({n},)", arr)
    return arr


def _run(sample_episode, S, w_value, gamma, lrs, B, T, n_runs, N, record_every):
    n = len(lrs)
    w = np.zeros((n_runs, N))
    keep = np.arange(0, n + 1, record_every)
    if keep[-1] != n:
        keep = np.append(keep, n)
    out = np.full((len(keep), n_runs), np.inf)
    D = w - w_value
    out[0] = np.einsum("ri,ij,rj->r", D, S, D)
    j = 1
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(n):
            phi, r = sample_episode()  # phi (runs, B, T+1, N), r (runs, B, T)
            v = phi @ w[:, None, :, None]  # (runs, B, T+1, 1)
            v = v[..., 0]
            delta = r + gamma * v[:, :, 1:] - v[:, :, :-1]  # (runs, B, T)
            G = np.einsum("rbtn,rbt->rn", phi[:, :, :-1], delta)
            w = w + (lrs[k] / B) * G
            if not np.all(np.isfinite(w)):
                diverged = True
                break
            if k + 1 == keep[j]:
                D = w - w_value
                out[j] = np.einsum("ri,ij,rj->r", D, S, D)
                j += 1
    mean = out.mean(axis=1)
    se = out.std(axis=1, ddof=1) / np.sqrt(n_runs) if n_runs > 1 else np.zeros(len(keep))
    se = np.where(np.isfinite(mean), se, np.inf)
    return keep, mean, se, diverged


def _td_fixed_point(S0, S1, q0, gamma):
    return np.linalg.solve(S0 - gamma * S1, q0)


def _chain(transition, features, rewards):
    """Validated ``(P, Phi, r, pi)`` of a finite chain: row-stochastic P, one feature row and one
    reward per state, and the stationary distribution pi (the eigenvector of P^T at 1)."""
    P = check_array(transition, "transition", ndim=2, nonnegative=True)
    n = P.shape[0]
    if P.shape != (n, n) or not np.allclose(P.sum(1), 1.0, atol=1e-10):
        fail("transition", "a square row-stochastic matrix", P)
    Phi = check_array(features, "features", ndim=2)
    if Phi.shape[0] != n:
        fail("features", f"of shape ({n}, N)", Phi)
    r = check_array(rewards, "rewards", shape=(n,))
    evals, evecs = np.linalg.eig(P.T)
    pi = np.abs(np.real(evecs[:, int(np.argmin(np.abs(evals - 1.0)))]))
    return P, Phi, r, pi / pi.sum()


def simulate_td_chain(
    transition,
    features,
    rewards,
    *,
    discount: float,
    lr,
    n_steps: int,
    batch_size: int = 1,
    episode_length: int = 1,
    reward_noise: float = 0.0,
    n_runs: int = 100,
    seed: int = 0,
    record_every: int = 1,
) -> TDSimResult:
    """TD(0) on a finite Markov chain with episodes started from the stationary distribution.

    Parameters
    ----------
    transition : array_like, shape (n, n)
        Row-stochastic transition matrix under the evaluated policy.
    features : array_like, shape (n, N)
    rewards : array_like, shape (n,)
        Mean reward in each state (Gaussian noise of variance ``reward_noise`` is added).
    discount, lr, n_steps, batch_size, episode_length : see :func:`lmech.theory.td.td_learning_curve`
    n_runs : int
        Independent runs averaged (vectorised).
    seed : int
    record_every : int
        Record the value error every this many steps (and at the end).
    """
    P, Phi, r_s, pi = _chain(transition, features, rewards)
    n = P.shape[0]
    gamma = check_real(discount, "discount", lo=0.0, hi=1.0, hi_closed=False)
    steps = check_int(n_steps, "n_steps", lo=0)
    B = check_int(batch_size, "batch_size", lo=1)
    T = check_int(episode_length, "episode_length", lo=1)
    s2 = check_real(reward_noise, "reward_noise", lo=0.0)
    runs = check_int(n_runs, "n_runs", lo=1)
    every = check_int(record_every, "record_every", lo=1)
    lrs = _lr_schedule(lr, steps)
    rng = np.random.default_rng(seed)

    # exact statistics under the stationary distribution
    S0 = Phi.T @ (pi[:, None] * Phi)
    S1 = Phi.T @ (pi[:, None] * (P @ Phi))
    w_value = _td_fixed_point(S0, S1, Phi.T @ (pi * r_s), gamma)
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = 1.0 + 1e-12
    pi_cdf = np.cumsum(pi)
    pi_cdf[-1] = 1.0 + 1e-12
    N = Phi.shape[1]

    def sample_episode():
        s = np.searchsorted(pi_cdf, rng.random((runs, B)), side="right")
        states = np.empty((runs, B, T + 1), dtype=np.int64)
        states[:, :, 0] = s
        for t in range(T):
            u = rng.random((runs, B))
            s = (cdf[s] <= u[..., None]).sum(axis=-1)
            states[:, :, t + 1] = s
        r = r_s[states[:, :, :T]]
        if s2 > 0:
            r = r + np.sqrt(s2) * rng.standard_normal(r.shape)
        return Phi[states], r

    keep, mean, se, div = _run(sample_episode, S0, w_value, gamma, lrs, B, T, runs, N, every)
    return TDSimResult(steps=keep, value_error=mean, stderr=se, diverged=div, n_runs=runs)


def simulate_td_gaussian(
    lag_moments,
    *,
    discount: float,
    lr,
    n_steps: int,
    batch_size: int = 1,
    episode_length: int = 1,
    reward_noise: float = 0.0,
    n_runs: int = 100,
    seed: int = 0,
    record_every: int = 1,
) -> TDSimResult:
    """TD(0) on a stationary Gaussian feature/reward process with lag moments ``K_d``.

    Episodes ``(z_0, ..., z_T)`` are drawn from the zero-mean Gaussian whose block-Toeplitz
    covariance has blocks ``E[z_t z_{t'}^T] = K_{t'-t}`` (transposed for t' < t); rewards
    ``r_0..r_{T-1}`` are the last coordinate of z (plus optional i.i.d. noise).

    Parameters
    ----------
    lag_moments : array_like, shape (L, N + 1, N + 1), L >= episode_length + 1
        Lag moments ``K_l = E[z_t z_{t+l}^T]``; the other parameters are as in
        :func:`simulate_td_chain`.
    """
    K = check_array(lag_moments, "lag_moments", ndim=3)
    if K.shape[1] != K.shape[2] or K.shape[1] < 2:
        fail("lag_moments", "of shape (L, N+1, N+1)", K)
    gamma = check_real(discount, "discount", lo=0.0, hi=1.0, hi_closed=False)
    steps = check_int(n_steps, "n_steps", lo=0)
    B = check_int(batch_size, "batch_size", lo=1)
    T = check_int(episode_length, "episode_length", lo=1)
    if K.shape[0] < T + 1:
        fail("lag_moments", f"to hold at least episode_length + 1 = {T + 1} lags", K)
    s2 = check_real(reward_noise, "reward_noise", lo=0.0)
    runs = check_int(n_runs, "n_runs", lo=1)
    every = check_int(record_every, "record_every", lo=1)
    lrs = _lr_schedule(lr, steps)
    rng = np.random.default_rng(seed)
    d = K.shape[1]
    N = d - 1
    # joint covariance of (z_0, ..., z_T)
    big = np.empty(((T + 1) * d, (T + 1) * d))
    for t in range(T + 1):
        for tp in range(T + 1):
            blk = K[tp - t] if tp >= t else K[t - tp].T
            big[t * d:(t + 1) * d, tp * d:(tp + 1) * d] = blk
    big = 0.5 * (big + big.T)
    ev, U = np.linalg.eigh(big)
    if ev.min() < -1e-8 * ev.max():
        fail("lag_moments", "the lag moments of a stationary process (block-Toeplitz matrix not PSD)",
             f"min eigenvalue {ev.min():.3g}")
    root = U * np.sqrt(np.clip(ev, 0.0, None))  # big = root root^T
    S0 = K[0, :N, :N]
    w_value = _td_fixed_point(S0, K[1, :N, :N], K[0, :N, N], gamma)

    def sample_episode():
        z = rng.standard_normal((runs, B, (T + 1) * d)) @ root.T
        z = z.reshape(runs, B, T + 1, d)
        r = z[:, :, :T, N]
        if s2 > 0:
            r = r + np.sqrt(s2) * rng.standard_normal(r.shape)
        return np.ascontiguousarray(z[..., :N]), r

    keep, mean, se, div = _run(sample_episode, S0, w_value, gamma, lrs, B, T, runs, N, every)
    return TDSimResult(steps=keep, value_error=mean, stderr=se, diverged=div, n_runs=runs)


# --------------------------------------------------------------------------- example MDPs
def ring_chain(n_states: int, p_right: float = 0.7) -> np.ndarray:
    """Transition matrix of a biased random walk on a ring of ``n_states`` states."""
    n = check_int(n_states, "n_states", lo=3, hi=10**4)
    p = check_real(p_right, "p_right", lo=0.0, hi=1.0)
    P = np.zeros((n, n))
    idx = np.arange(n)
    P[idx, (idx + 1) % n] += p
    P[idx, (idx - 1) % n] += 1 - p
    return P


def fourier_features(n_states: int, n_features: int, max_frequency: int, *, seed: int = 0) -> np.ndarray:
    """Smooth random features on a ring: random mixtures of Fourier modes 1..max_frequency.

    Returns an array (n_states, n_features), columns scaled so that ``E_uniform[phi phi^T]``
    has unit trace per feature on average.
    """
    n = check_int(n_states, "n_states", lo=3, hi=10**4)
    N = check_int(n_features, "n_features", lo=1, hi=10**4)
    K = check_int(max_frequency, "max_frequency", lo=1, hi=(n - 1) // 2)
    seed = check_int(seed, "seed", lo=0)
    ang = 2 * np.pi * np.arange(n) / n
    basis = np.hstack([np.cos(np.outer(ang, np.arange(1, K + 1))), np.sin(np.outer(ang, np.arange(1, K + 1)))])
    mix = np.random.default_rng(seed).standard_normal((2 * K, N)) / np.sqrt(K)
    return basis @ mix


def ring_mdp(n_states: int = 60, n_features: int = 12, p_right: float = 0.7, *, max_frequency: int = 6,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A biased random walk on a ring with smooth random features and a smooth reward.

    Returns ``(transition, features, rewards)``: :func:`ring_chain`, :func:`fourier_features`
    (random mixtures of Fourier modes up to ``max_frequency``, drawn with ``seed``) and the
    reward ``r(s) = cos(theta_s) + 0.5 sin(3 theta_s)``, ``theta_s = 2 pi s / n_states``.
    """
    P = ring_chain(n_states, p_right)
    Phi = fourier_features(n_states, n_features, max_frequency, seed=seed)
    ang = 2 * np.pi * np.arange(P.shape[0]) / P.shape[0]
    return P, Phi, np.cos(ang) + 0.5 * np.sin(3 * ang)


def ar_gaussian_process(n_features: int, rho: float, *, spectrum_exponent: float = 1.0,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A stationary Gaussian feature process with a power-law spectrum and a linear reward.

    Features ``phi_t = S^{1/2} x_t`` with ``S = diag(k^-a) / sum_k k^-a`` and a whitened AR(1)
    process ``x_{t+1} = R x_t + noise`` whose transition ``R = rho Q`` is ``rho`` times a
    random orthogonal matrix, so ``E[phi_t phi_{t+1}^T] = S^{1/2} R^T S^{1/2}``. The reward
    is ``r_t = phi_t . w_reward`` with ``w_reward_k = g_k / sqrt(N lam_k k)``, g_k ~ N(0, 1)
    (reward power ``lam_k w_k^2`` decaying as 1/k).

    Returns
    -------
    feature_lags : ndarray, shape (2, N, N)
        ``E[phi_t phi_{t+d}^T]`` for d = 0, 1 (for
        :func:`lmech.theory.td.linear_reward_moments`).
    w_reward : ndarray, shape (N,)
    """
    N = check_int(n_features, "n_features", lo=1, hi=10**4)  # N x N matrices
    r = check_real(rho, "rho", lo=0.0, hi=1.0, hi_closed=False)
    a = check_real(spectrum_exponent, "spectrum_exponent", lo=0.0, hi=100.0)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    k = np.arange(1, N + 1, dtype=float)
    lam = k**-a / np.sum(k**-a)
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    sh = np.sqrt(lam)
    lag1 = sh[:, None] * (r * Q).T * sh[None, :]
    w_reward = rng.standard_normal(N) / np.sqrt(N) / sh * k**-0.5
    return np.stack([np.diag(lam), lag1]), w_reward


def random_chain_mdp(n_states: int = 30, n_features: int = 8, *, concentration: float = 0.3,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random dense Markov chain with rough (state-wise i.i.d.) features and rewards.

    Rows of the transition matrix are Dirichlet(``concentration``) draws (small values give
    uneven, nearly sparse rows), features ``phi(s) ~ N(0, I / n_features)`` independently per
    state and rewards ``r(s) ~ N(0, 1)``: far from Gaussian in their fourth moments, unlike
    :func:`ring_mdp`'s smooth features. Returns ``(transition, features, rewards)``.
    """
    n = check_int(n_states, "n_states", lo=2, hi=10**4)  # an n x n transition matrix
    N = check_int(n_features, "n_features", lo=1, hi=n)
    a = check_real(concentration, "concentration", lo=0.0, lo_closed=False)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    P = rng.dirichlet(a * np.ones(n), size=n)
    return P, rng.standard_normal((n, N)) / np.sqrt(N), rng.standard_normal(n)


def simulate_td_online(transition, features, rewards, *, discount: float, lr, n_steps: int,
                       reward_noise: float = 0.0, n_runs: int = 100, seed: int = 0) -> TDSimResult:
    """Online TD(0) along one continuing trajectory per run (``s_0 ~ pi``), one update per transition.

    ``w <- w + lr phi(s_t) (r_t + gamma phi(s_{t+1}) . w - phi(s_t) . w)``; value error as in
    :func:`simulate_td_chain` (``lr`` scalar or one per step; other parameters as there).
    """
    P, Phi, r_s, pi = _chain(transition, features, rewards)
    n = P.shape[0]
    gamma = check_real(discount, "discount", lo=0.0, hi=1.0, hi_closed=False)
    steps = check_int(n_steps, "n_steps", lo=0)
    s2 = check_real(reward_noise, "reward_noise", lo=0.0)
    runs = check_int(n_runs, "n_runs", lo=1)
    lrs = _lr_schedule(lr, steps)
    rng = np.random.default_rng(seed)
    S0 = Phi.T @ (pi[:, None] * Phi)
    w_value = _td_fixed_point(S0, Phi.T @ (pi[:, None] * (P @ Phi)), Phi.T @ (pi * r_s), gamma)
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = 1.0 + 1e-12
    pi_cdf = np.cumsum(pi)
    pi_cdf[-1] = 1.0 + 1e-12
    s = np.searchsorted(pi_cdf, rng.random(runs), side="right")
    w = np.zeros((runs, Phi.shape[1]))
    out = np.full((steps + 1, runs), np.inf)
    D = w - w_value
    out[0] = np.einsum("ri,ij,rj->r", D, S0, D)
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            s_next = (cdf[s] <= rng.random(runs)[:, None]).sum(axis=-1)
            r = r_s[s] + (np.sqrt(s2) * rng.standard_normal(runs) if s2 > 0 else 0.0)
            delta = r + np.einsum("ri,ri->r", Phi[s_next] * gamma - Phi[s], w)
            w = w + lrs[k] * delta[:, None] * Phi[s]
            s = s_next
            if not np.all(np.isfinite(w)):
                diverged = True
                break
            D = w - w_value
            out[k + 1] = np.einsum("ri,ij,rj->r", D, S0, D)
    mean = out.mean(axis=1)
    se = out.std(axis=1, ddof=1) / np.sqrt(runs) if runs > 1 else np.zeros(steps + 1)
    se = np.where(np.isfinite(mean), se, np.inf)
    return TDSimResult(steps=np.arange(steps + 1), value_error=mean, stderr=se, diverged=diverged, n_runs=runs)
