"""Exact linear algebra on sampled training sets: what the two-point theory predicts.

The systems behind :mod:`lmech.theory.two_point` (Atanasov, Bordelon, Zavatone-Veth, Paquette
& Pehlevan, "Two-Point Deterministic Equivalence for Stochastic Gradient Dynamics in Linear
Models"), computed draw by draw with no approximation other than the finite number of draws:

* :func:`sampled_two_point_forms` - ``l l' u^T (Sigma_hat + l)^{-1} A (Sigma_hat + l')^{-1} u``
  for the empirical covariance of P Gaussian samples;
* :func:`gradient_flow_two_time` - the two-time test correlation
  ``C(tau, tau') = (w(tau) - w*)^T Sigma (w(tau') - w*)`` of gradient flow on P samples.

Data are in the covariance eigenbasis: rows ``x ~ N(0, diag(lam))``; targets
``y = x . w* + eps`` with ``lam_k w*_k^2 = target_power[k]`` and ``eps ~ N(0, noise)``.
"""
from __future__ import annotations

import numpy as np

from lmech._validation import check_array, check_int, check_real, fail

__all__ = ["sampled_two_point_forms", "gradient_flow_two_time"]


def _spectrum(eigenvalues) -> np.ndarray:
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail("eigenvalues", "not all zero", lam)
    return lam


def sampled_two_point_forms(eigenvalues, n_samples: int, ridge_pairs, u, matrices, *, draws: int,
                            seed: int = 0) -> np.ndarray:
    """Sampled two-point resolvent forms, one per draw of the training set.

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Population covariance ``Sigma = diag(eigenvalues)``.
    n_samples : int
        P, rows of each sampled data matrix X; ``Sigma_hat = X^T X / P``.
    ridge_pairs : array_like, shape (n_pairs, 2)
        Positive ridges ``(l, l')``.
    u : array_like, shape (M,)
    matrices : sequence of array_like, each shape (M, M)
        The matrices A.
    draws : int
        Independent training sets.
    seed : int

    Returns
    -------
    ndarray, shape (draws, n_pairs, n_matrices)
        ``l l' u^T (Sigma_hat + l)^{-1} A (Sigma_hat + l')^{-1} u`` for each draw.
    """
    lam = _spectrum(eigenvalues)
    M = lam.size
    P = check_int(n_samples, "n_samples", lo=1)
    pairs = check_array(ridge_pairs, "ridge_pairs", ndim=2, positive=True)
    if pairs.shape[1] != 2:
        fail("ridge_pairs", "of shape (n_pairs, 2)", pairs.shape)
    u = check_array(u, "u", shape=(M,))
    mats = [check_array(A, f"matrices[{i}]", shape=(M, M)) for i, A in enumerate(matrices)]
    if not mats:
        fail("matrices", "a non-empty sequence of (M, M) arrays", matrices)
    n = check_int(draws, "draws", lo=1)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    out = np.empty((n, len(pairs), len(mats)))
    for d in range(n):
        X = rng.standard_normal((P, M)) * np.sqrt(lam)
        h, V = np.linalg.eigh(X.T @ X / P)
        Vu = V.T @ u
        for i, (l1, l2) in enumerate(pairs):
            a = V @ (Vu / (h + l1))
            b = V @ (Vu / (h + l2))
            out[d, i] = [l1 * l2 * a @ A @ b for A in mats]
    return out


def gradient_flow_two_time(eigenvalues, target_power, n_samples: int, times, noise: float = 0.0, *,
                           draws: int, seed: int = 0) -> np.ndarray:
    """Two-time test correlation of gradient flow on P samples, one matrix per draw.

    Gradient flow on ``|X w - y|^2 / (2P)`` from ``w = 0`` has the closed form
    ``w(tau) = (1 - exp(-tau Sigma_hat)) Sigma_hat^+ X^T y / P``; this evaluates
    ``C(tau, tau') = (w(tau) - w*)^T Sigma (w(tau') - w*)`` exactly for each sampled
    training set.

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (M,)
        Positive eigenvalues; target power ``lam_k w*_k^2``.
    n_samples : int
        P.
    times : array_like, shape (n_times,)
        Non-negative gradient-flow times.
    noise : float
        Label-noise variance.
    draws : int
        Independent training sets.
    seed : int

    Returns
    -------
    ndarray, shape (draws, n_times, n_times)
    """
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, positive=True, min_size=1)
    M = lam.size
    v2 = check_array(target_power, "target_power", shape=(M,), nonnegative=True)
    P = check_int(n_samples, "n_samples", lo=1)
    tau = check_array(times, "times", ndim=1, nonnegative=True, min_size=1)
    s2 = check_real(noise, "noise", lo=0.0)
    n = check_int(draws, "draws", lo=1)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    w = np.sqrt(v2 / lam)
    out = np.empty((n, tau.size, tau.size))
    for d in range(n):
        X = rng.standard_normal((P, M)) * np.sqrt(lam)
        eps = np.sqrt(s2) * rng.standard_normal(P)
        mu, U = np.linalg.eigh(X @ X.T / P)
        keep = mu > 1e-12 * mu.max()
        mu, U = mu[keep], U[:, keep]
        V = X.T @ U / np.sqrt(P * mu)  # eigenvectors of Sigma_hat with nonzero eigenvalue
        pw = V.T @ w
        pe = V.T @ (X.T @ eps / P) / mu  # Sigma_hat^+ X^T eps / P in that basis
        # w(tau) - w* = -(w* - V pw) - V e^{-tau mu} pw + V (1 - e^{-tau mu}) pe
        D = np.stack([-(w - V @ pw) + V @ (-np.exp(-t * mu) * pw + (1 - np.exp(-t * mu)) * pe) for t in tau])
        out[d] = (D * lam) @ D.T
    return out
