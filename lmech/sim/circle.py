"""Two-layer ReLU MLPs on the circle fitting power-law Fourier targets, lazy vs rich.

The nonlinear check of "How Feature Learning Can Improve Neural Scaling Laws" (Bordelon,
Atanasov, Pehlevan): inputs x = (cos theta, sin theta) on the unit circle, a target with a
power-law Fourier spectrum

    y(theta) = sum_{k=1}^{K} k^{-(alpha beta + 1)/2} cos(k theta + phi_k),   phi_k ~ U[0, 2 pi),

and a network in mean-field / muP parameterisation with richness gamma (gamma0 in the paper)

    f(x) = (1 / (gamma N)) sum_i a_i relu(w_i . x + b_i)  -  f_0(x),     w, b, a ~ N(0, 1),

(the initial output f_0 is subtracted so that f starts at zero for every gamma), trained by
full-batch gradient descent on the loss (1/2) mean_x (f - y)^2 over a uniform grid of P angles
(the grid stands in for the uniform distribution on the circle), with learning rate
h * gamma^2 N per step. With this scaling the function-space dynamics at initialisation,
df/dt = -E_x' Theta(x, x') (f - y)(x'), do not depend on gamma or N (t = sum of h, the
gradient-flow time), and hidden weights move by O(gamma): gamma -> 0 is the lazy (NTK)
limit, gamma = O(1) is the rich regime.

The target's power per frequency is k^{-(alpha beta + 1)}/2, so the task has source beta
(beta < 1 is a hard task, outside the RKHS of the ReLU NTK, whose capacity on the circle is
alpha = 2; beta = 1/2 is a sawtooth-like 1/k spectrum). The infinite-width NTK and the lazy
learning curve are in :mod:`lmech.theory.circle`; the paper's rich exponent is
chi(beta) = 2 beta / (1 + beta) (:func:`lmech.theory.feature_learning.chi`).

Cost: per step O(P N) with hand-written gradients; steps ~ t / h, more in the rich regime
where the kernel sharpens and steps are backtracked (a step that increases the loss is
undone and h halved; h then regrows by 5 % per accepted step up to ``max_step``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lmech._validation import MAX_SIZE, check_array, check_int, check_real, fail

__all__ = [
    "CircleTask",
    "circle_task",
    "CircleTraining",
    "train_circle_mlp",
]


@dataclass(frozen=True)
class CircleTask:
    """Power-law Fourier target on a grid of P angles (see the module docstring).

    Attributes
    ----------
    theta : ndarray, shape (P,)
    y : ndarray, shape (P,)
    amplitudes, phases : ndarray, shape (K,)
        y = sum_k amplitudes[k-1] cos(k theta + phases[k-1]).
    alpha, beta : float
        Capacity (2 for the ReLU NTK on the circle) and source of the task.
    """

    theta: np.ndarray
    y: np.ndarray
    amplitudes: np.ndarray
    phases: np.ndarray
    alpha: float
    beta: float

    @property
    def power(self) -> np.ndarray:
        """Target power per frequency, amplitudes^2 / 2 (the mean of y^2 is their sum)."""
        return 0.5 * self.amplitudes**2


def circle_task(beta: float, *, n_freq: int = 128, n_grid: int = 512, alpha: float = 2.0, seed: int = 0) -> CircleTask:
    """Target with amplitudes k^{-(alpha beta + 1)/2}, k = 1..n_freq, random phases (seeded).

    ``n_grid`` equispaced angles (>= 2 n_freq + 2 so the grid resolves every frequency).
    """
    beta = check_real(beta, "beta", lo=0, lo_closed=False)
    alpha = check_real(alpha, "alpha", lo=1, lo_closed=False)
    K = check_int(n_freq, "n_freq", lo=1, hi=MAX_SIZE)
    P = check_int(n_grid, "n_grid", lo=2 * K + 2, hi=MAX_SIZE)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    phases = rng.uniform(0.0, 2 * np.pi, K)
    k = np.arange(1, K + 1, dtype=float)
    amp = k ** (-(alpha * beta + 1) / 2)
    theta = 2 * np.pi * np.arange(P) / P
    y = np.cos(np.outer(theta, k) + phases) @ amp
    return CircleTask(theta=theta, y=y, amplitudes=amp, phases=phases, alpha=alpha, beta=beta)


@dataclass(frozen=True)
class CircleTraining:
    """Loss curves of MLPs trained on a :class:`CircleTask`, mean over initialisations.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Gradient-flow time (sum of step sizes h).
    loss, loss_se : ndarray, shape (T,)
        mean_x (f - y)^2 on the grid (mean over seeds, standard error).
    losses : ndarray, shape (seeds, T)
    steps, rejected : ndarray of int, shape (seeds,)
        Accepted and backtracked steps.
    weight_change : ndarray, shape (seeds,)
        ||W_final - W_0||_F / ||W_0||_F for the hidden weights (with the bias column):
        small in the lazy regime, O(gamma) in the rich regime.
    """

    t: np.ndarray
    loss: np.ndarray
    loss_se: np.ndarray
    losses: np.ndarray
    steps: np.ndarray
    rejected: np.ndarray
    weight_change: np.ndarray
    settings: dict = field(default_factory=dict)


def _train_one(X, y, t_out, N, gamma, gen, max_step):
    dt = torch.float64
    P = X.shape[0]
    W = torch.randn(N, 2, generator=gen, dtype=dt)
    b = torch.randn(N, generator=gen, dtype=dt)
    a = torch.randn(N, generator=gen, dtype=dt)
    W0 = torch.cat([W, b[:, None]], 1).clone()
    s = 1.0 / (gamma * N)
    f0 = torch.relu(X @ W.T + b) @ a * s

    def forward(W, b, a):
        H = X @ W.T + b
        R = torch.relu(H)
        return H, R, R @ a * s - f0 - y

    H, R, e = forward(W, b, a)
    loss = float(e @ e) / P
    out = np.empty(len(t_out))
    h, t, i, steps, rejected = max_step, 0.0, 0, 0, 0
    while i < len(t_out):
        hh = min(h, t_out[i] - t)
        c = hh * gamma * gamma * N * s / P          # lr (h gamma^2 N) x d(mean e^2 / 2)/d(output) scale
        G = (e[:, None] * a[None, :]) * (H > 0)
        W2, b2, a2 = W - c * (G.T @ X), b - c * G.sum(0), a - c * (R.T @ e)
        H2, R2, e2 = forward(W2, b2, a2)
        loss2 = float(e2 @ e2) / P
        if not np.isfinite(loss2) or loss2 > loss * (1 + 1e-9):
            h *= 0.5
            rejected += 1
            if h < 1e-12 * max_step:
                raise RuntimeError("train_circle_mlp: step size underflow (loss keeps increasing)")
            continue
        W, b, a, H, R, e, loss = W2, b2, a2, H2, R2, e2, loss2
        t += hh
        steps += 1
        h = min(max_step, 1.05 * h)
        if t >= t_out[i] * (1 - 1e-12):
            out[i] = loss
            i += 1
    change = float(torch.linalg.norm(torch.cat([W, b[:, None]], 1) - W0) / torch.linalg.norm(W0))
    return out, steps, rejected, change


def train_circle_mlp(task: CircleTask, t, *, width: int, gamma: float, seeds: int = 1, seed: int = 0,
                     max_step: float = 1.4) -> CircleTraining:
    """Full-batch GD of the mean-field two-layer ReLU MLP on ``task`` (module docstring).

    Parameters
    ----------
    task : CircleTask
    t : array_like, shape (T,)
        Increasing positive gradient-flow times at which the loss is recorded.
    width : int
        Hidden width N.
    gamma : float
        Richness (> 0); ~1e-2 or below is lazy.
    seeds, seed : int
        Number of initialisations and the seed of the first (torch generator).
    max_step : float
        Largest step h (stable in the lazy regime for h < 2 / lam_0 ~ 1.9).

    Returns
    -------
    CircleTraining
    """
    if not isinstance(task, CircleTask):
        fail("task", "a CircleTask (see circle_task)", task, TypeError)
    t_arr = np.atleast_1d(check_array(t, "t", ndim=(0, 1), positive=True, min_size=1))
    if np.any(np.diff(t_arr) <= 0):
        fail("t", "strictly increasing", t_arr)
    N = check_int(width, "width", lo=1)
    gamma = check_real(gamma, "gamma", lo=0, lo_closed=False)
    seeds = check_int(seeds, "seeds", lo=1)
    seed = check_int(seed, "seed", lo=0)
    max_step = check_real(max_step, "max_step", lo=0, lo_closed=False)
    X = torch.as_tensor(np.c_[np.cos(task.theta), np.sin(task.theta)], dtype=torch.float64)
    y = torch.as_tensor(task.y, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    losses = np.empty((seeds, len(t_arr)))
    steps, rejected, change = (np.empty(seeds, dtype=np.int64), np.empty(seeds, dtype=np.int64), np.empty(seeds))
    for r in range(seeds):
        losses[r], steps[r], rejected[r], change[r] = _train_one(X, y, t_arr, N, gamma, gen, max_step)
    se = losses.std(0, ddof=1) / np.sqrt(seeds) if seeds > 1 else np.full(len(t_arr), np.nan)
    return CircleTraining(t=t_arr, loss=losses.mean(0), loss_se=se, losses=losses, steps=steps, rejected=rejected,
                          weight_change=change, settings=dict(width=N, gamma=gamma, seeds=seeds, seed=seed,
                                                              max_step=max_step, beta=task.beta, alpha=task.alpha))
