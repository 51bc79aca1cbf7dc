"""Simulators for "How Feature Learning Can Improve Neural Scaling Laws".

1. The paper's solvable model at finite width N and finite feature count M: a two-layer
   linear network f(x) = a . B A0 psi(x) / sqrt(N) on Gaussian power-law features psi,
   frozen random A0 (N x M), trainable B (B(0) = I, so A(t) = B(t) A0: projected gradient
   descent) and readout a (a(0) = 0), trained on the population loss E (f - y)^2 / 2 with
   learning rate lr for a and gamma * lr for B.

   * :func:`train_projected_gd` runs literal gradient descent with torch autograd on
     (a, B) (step size capped by the current curvature so it tracks gradient flow).
   * :func:`simulate_projected_gd` computes the same training trajectories exactly and fast
     through the conservation law B B^T - gamma a a^T = I, which reduces gradient flow to a
     preconditioned flow of u = B^T a in the eigenbasis of Sigma_F = A0 Lambda A0^T / N
     (see :mod:`lmech.theory.feature_learning`); its agreement with the literal training is
     tested. This is what makes N, M ~ 10^3 affordable on a CPU.

(The paper's nonlinear check -- an MLP fitting a power-law Fourier target on the circle --
is in :mod:`lmech.sim.circle`.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, fail

__all__ = [
    "FLSimulation",
    "simulate_projected_gd",
    "train_projected_gd",
]


@dataclass(frozen=True)
class FLSimulation:
    """Population losses of trained finite models, mean over draws of the projection.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Gradient-flow time (readout learning rate x steps).
    loss, loss_se : ndarray, shape (T,)
    losses : ndarray, shape (draws, T)
    bottleneck : float
        Mean over draws of L_inf(N|A0), the loss of the best predictor in the N features.
    """

    t: np.ndarray
    loss: np.ndarray
    loss_se: np.ndarray
    losses: np.ndarray
    bottleneck: float
    settings: dict = field(default_factory=dict)


def _check_problem(eigenvalues, target_power, t, N, gamma, draws, seed):
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, positive=True, min_size=1)
    p = check_array(target_power, "target_power", ndim=1, nonnegative=True)
    if p.shape != lam.shape:
        fail("target_power", f"of shape {lam.shape}", p)
    t = np.atleast_1d(check_array(t, "t", ndim=(0, 1), positive=True, min_size=1, max_abs=MAX_MAGNITUDE))
    if np.any(np.diff(t) <= 0):
        fail("t", "strictly increasing", t)
    N = check_int(N, "N", lo=1, hi=10**5)  # the N x N feature covariance is diagonalised
    gamma = check_real(gamma, "gamma", lo=0)
    draws = check_int(draws, "draws", lo=1, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0)
    return lam, p, t, N, gamma, draws, seed


def _projection_problem(lam, p, N, gen):
    """Draw A0 and return (mu, a*^2, L_inf) in the eigenbasis of Sigma_F = A0 Lambda A0^T / N."""
    dt = torch.float64
    lam_t = torch.as_tensor(lam, dtype=dt)
    wstar = torch.sqrt(torch.as_tensor(p, dtype=dt) / lam_t)
    A0 = torch.randn(N, len(lam), generator=gen, dtype=dt)
    S = (A0 * lam_t) @ A0.T / N
    b = (A0 * lam_t) @ wstar / np.sqrt(N)
    mu, U = torch.linalg.eigh(S)
    c = U.T @ b
    keep = mu > 1e-12 * mu.max()
    mu, c = mu[keep], c[keep]
    astar2 = c**2 / mu**2
    l_inf = float(wstar @ (lam_t * wstar) - torch.sum(c**2 / mu))
    return mu.numpy(), astar2.numpy(), max(l_inf, 0.0)


def _reduced_flow(mu, q, gamma, t_out, eps):
    """Exact-in-distribution training curve of the projected-GD model given Sigma_F's spectrum.

    Variables: learned fractions x_j = u_j / a*_j in the eigenbasis (weights q_j = a*_j^2);
    dx/dt = c mu - (c mu - g) x, c = 1 + gamma s, g = gamma s (u.Sigma e)/||u||^2, s from
    ||u||^2 = s + gamma s^2. Exponential-midpoint steps h = eps t (second order, stiff-stable).
    """
    x = np.zeros_like(mu)
    qmu = q * mu

    def scalars(y):
        n2 = float(q @ y**2)
        s = 2 * n2 / (1 + np.sqrt(1 + 4 * gamma * n2)) if gamma > 0 else 0.0
        g = gamma * s * float(qmu @ (y * (1 - y))) / n2 if (gamma > 0 and n2 > 0) else 0.0
        return 1 + gamma * s, g

    def advance(y, h, c, g):
        k = c * mu - g
        kh = k * h
        small = np.abs(kh) < 1e-8
        frac = np.where(small, h, -np.expm1(-kh) / np.where(small, 1.0, k))
        return y * np.exp(-kh) + c * mu * frac

    out = np.empty(len(t_out))
    t, i = 0.0, 0
    h_min = min(1e-3, 1e-2 * float(t_out[0])) / max(1.0, float(mu.max()))
    while i < len(t_out):
        h = max(eps * t, h_min)
        if t + h >= t_out[i] * (1 - 1e-13):
            h = t_out[i] - t
        mid = advance(x, 0.5 * h, *scalars(x))
        x = advance(x, h, *scalars(mid))
        t += h
        if t >= t_out[i] * (1 - 1e-13):
            out[i] = float(qmu @ (1 - x) ** 2)
            i += 1
    return out


def simulate_projected_gd(eigenvalues, target_power, t, *, N: int, gamma: float, draws: int = 4,
                          seed: int = 0, eps: float = 0.01) -> FLSimulation:
    """Training curves of the finite projected-GD two-layer linear network (fast, exact).

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Covariance eigenvalues of the M base features (the model's feature count is M).
    target_power : array_like, shape (M,)
        p_k = lam_k w*_k^2.
    t : array_like, shape (T,)
        Increasing gradient-flow times.
    N : int
        Width (rows of the frozen projection A0).
    gamma : float
        Feature-learning strength (learning-rate ratio of B to a); 0 = lazy random features.
    draws, seed : int
        Independent draws of A0 (torch generator seeded with ``seed``).
    eps : float
        Relative time step of the exponential-midpoint integrator.

    Returns
    -------
    FLSimulation
    """
    lam, p, t, N, gamma, draws, seed = _check_problem(eigenvalues, target_power, t, N, gamma, draws, seed)
    eps = check_real(eps, "eps", lo=0, lo_closed=False, hi=0.2)
    gen = torch.Generator().manual_seed(seed)
    losses = np.empty((draws, len(t)))
    floors = np.empty(draws)
    for d in range(draws):
        mu, q, l_inf = _projection_problem(lam, p, N, gen)
        losses[d] = _reduced_flow(mu, q, gamma, t, eps) + l_inf
        floors[d] = l_inf
    se = losses.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(len(t), np.nan)
    return FLSimulation(t=t, loss=losses.mean(0), loss_se=se, losses=losses, bottleneck=float(floors.mean()),
                        settings=dict(N=N, gamma=gamma, draws=draws, seed=seed, method="reduced", eps=eps))


def train_projected_gd(eigenvalues, target_power, t, *, N: int, gamma: float, draws: int = 1, seed: int = 0,
                       max_lr: float = 0.1, stability: float = 0.1) -> FLSimulation:
    """Literal gradient descent on (a, B) with torch autograd (the reference for small sizes).

    The population loss L = (v - w*)^T Lambda (v - w*), v = A0^T B^T a / sqrt(N), is
    differentiated by autograd; each step uses lr = min(max_lr, stability / h_max) with
    h_max = (1 + 2 gamma ||a||^2) * lambda_max(Sigma_F), an upper bound on the curvature of
    L/2 (so the iterates follow gradient flow), and stops exactly at the requested times.
    Cost per step O(N M); meant for N, M of a few hundred.

    Parameters
    ----------
    eigenvalues, target_power, t, N, gamma, draws, seed
        As in :func:`simulate_projected_gd`.
    max_lr : float
        Largest learning rate used.
    stability : float
        Step size as a fraction of the inverse curvature bound (< 2 is stable; small
        values track gradient flow closely).
    """
    lam, p, t, N, gamma, draws, seed = _check_problem(eigenvalues, target_power, t, N, gamma, draws, seed)
    max_lr = check_real(max_lr, "max_lr", lo=0, lo_closed=False)
    stability = check_real(stability, "stability", lo=0, lo_closed=False, hi=1.0)
    dt = torch.float64
    gen = torch.Generator().manual_seed(seed)
    lam_t = torch.as_tensor(lam, dtype=dt)
    wstar = torch.sqrt(torch.as_tensor(p, dtype=dt) / lam_t)
    losses = np.empty((draws, len(t)))
    floors = np.empty(draws)
    for d in range(draws):
        A0 = torch.randn(N, len(lam), generator=gen, dtype=dt)
        mu_max = float(torch.linalg.eigvalsh((A0 * lam_t) @ A0.T / N).max())
        a = torch.zeros(N, dtype=dt, requires_grad=True)
        B = torch.eye(N, dtype=dt, requires_grad=True)
        time, i = 0.0, 0
        while i < len(t):
            v = A0.T @ (B.T @ a) / np.sqrt(N)
            e = v - wstar
            half_loss = 0.5 * (e * lam_t) @ e
            ga, gB = torch.autograd.grad(half_loss, (a, B))
            with torch.no_grad():
                h_max = (1 + 2 * gamma * float(a @ a)) * mu_max
                lr = min(max_lr, stability / h_max, t[i] - time)
                a -= lr * ga
                B -= gamma * lr * gB
            time += lr
            if time >= t[i] * (1 - 1e-12):
                with torch.no_grad():
                    e = A0.T @ (B.T @ a) / np.sqrt(N) - wstar
                    losses[d, i] = float((e * lam_t) @ e)
                i += 1
        S = (A0 * lam_t) @ A0.T / N
        b = (A0 * lam_t) @ wstar / np.sqrt(N)
        floors[d] = float(wstar @ (lam_t * wstar) - b @ torch.linalg.solve(S, b))
    se = losses.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(len(t), np.nan)
    return FLSimulation(t=t, loss=losses.mean(0), loss_se=se, losses=losses, bottleneck=float(floors.mean()),
                        settings=dict(N=N, gamma=gamma, draws=draws, seed=seed, method="autograd",
                                      max_lr=max_lr, stability=stability))
