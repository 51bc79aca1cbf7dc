"""Shared pieces of the sampling DMFT solvers (:mod:`lmech.theory.dmft.sampling`): the validated
problem, the residual closure and small linear-algebra helpers."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import (
    MAX_SIZE,
    check_choice, check_int, check_real, check_regression_data,
)
from lmech.nonlinearities import NONLINEARITIES

#: gamma0 below which the fields are frozen to ~1e-6 relative and the "gd" closure (which
#: divides a field difference by gamma0) is replaced by the kernel closure, exact for a
#: static kernel.
LAZY_GAMMA0 = 1e-6

#: name -> (phi, phi', phi'', smooth), from :data:`lmech.nonlinearities.NONLINEARITIES`. Pathwise
#: responses need phi'' (deep nets only); ReLU's phi'' is a Dirac delta that a pathwise derivative
#: cannot see.
DMFT_ACTIVATIONS = {name: (nl.phi, nl.dphi, nl.ddphi, nl.smooth) for name, nl in NONLINEARITIES.items()}


def _psd_sqrt(C: torch.Tensor) -> torch.Tensor:
    """Factor R with R R^T = C for a symmetric PSD C (negative eigenvalues clipped; no
    Cholesky: the (t, s) covariances are singular)."""
    C = 0.5 * (C + C.T)
    evals, evecs = torch.linalg.eigh(C)
    return evecs * evals.clamp(min=0.0).sqrt()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    nb = float(torch.linalg.vector_norm(b))
    return float(torch.linalg.vector_norm(a - b)) / max(nb, 1e-300)


def _residual_recursion(K: torch.Tensor, rho: torch.Tensor | None, y: torch.Tensor, lr: float, P: int):
    """Delta(t+1) = Delta(t) - (lr/P) K_tr,tr(t) Delta(t) - rho_tr(t), and the test predictions
    f_te(t+1) = f_te(t) + (lr/P) K_te,tr(t) Delta(t) + rho_te(t).

    K: (T1, M, M) equal-time NTK; rho: (T1, M) higher-order (in lr) part of the function
    increment of discrete GD, or None (Euler discretisation of gradient flow).
    """
    T1 = K.shape[0]
    delta = torch.empty(T1, P, dtype=K.dtype)
    ftest = torch.zeros(T1, K.shape[1] - P, dtype=K.dtype)
    delta[0] = y
    for t in range(T1 - 1):
        step = (lr / P) * (K[t, :, :P] @ delta[t])
        if rho is not None:
            step = step + rho[t]
        delta[t + 1] = delta[t] - step[:P]
        ftest[t + 1] = ftest[t] + step[P:]
    return delta, ftest


def _gd_remainder(psi: torch.Tensor, K: torch.Tensor, delta: torch.Tensor, lr: float, P: int) -> torch.Tensor:
    """rho(t) = <psi(t+1) - psi(t)> - (lr/P) K(t) Delta(t): the part of the exact GD function
    increment beyond the kernel (first-order) term. psi: (T1, M) sample mean of
    z^L phi(h^L) / gamma0 (control-variated); returns (T1, M) with a zero last row."""
    rho = torch.zeros_like(psi)
    rho[:-1] = (psi[1:] - psi[:-1]) - (lr / P) * torch.einsum("tmp,tp->tm", K[:-1, :, :P], delta[:-1])
    return rho


@dataclass
class _Problem:
    """Validated inputs shared by the solvers (torch float64 tensors)."""

    Kx: torch.Tensor  # (M, M)
    y: torch.Tensor  # (P,)
    y_test: torch.Tensor | None
    P: int
    M: int
    depth: int
    gamma0: float
    lr: float
    steps: int
    activation: str
    dynamics: str
    phi: Callable[[torch.Tensor], torch.Tensor]
    dphi: Callable[[torch.Tensor], torch.Tensor]
    ddphi: Callable[[torch.Tensor], torch.Tensor]


def _validate(X, y, X_test, y_test, *, depth, gamma0, lr, steps, activation, dynamics, samples,
              damping, tol, max_sweeps, average, noise_factor, seed) -> _Problem:
    Xa, ya, Xt, yt = check_regression_data(X, y, X_test, y_test, test_labels_required=True)
    P, D = Xa.shape
    Xall = Xa if Xt is None else np.concatenate([Xa, Xt])
    L = check_int(depth, "depth", lo=1, hi=1000)
    g0 = check_real(gamma0, "gamma0", lo=0.0)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    T = check_int(steps, "steps", lo=1, hi=10**5)
    check_choice(activation, "activation", DMFT_ACTIVATIONS)
    check_choice(dynamics, "dynamics", ("gd", "flow"))
    check_int(samples, "samples", lo=16, hi=MAX_SIZE)
    check_real(damping, "damping", lo=0.0, hi=1.0, lo_closed=False)
    check_real(tol, "tol", lo=0.0)
    check_int(max_sweeps, "max_sweeps", lo=1)
    check_int(average, "average", lo=1)
    check_real(noise_factor, "noise_factor", lo=0.0)
    check_int(seed, "seed", lo=0, hi=2**63 - 1)
    phi, dphi, ddphi, _ = DMFT_ACTIVATIONS[activation]
    Kx = torch.as_tensor(Xall @ Xall.T / D, dtype=torch.float64)
    return _Problem(
        Kx=Kx, y=torch.as_tensor(ya), y_test=None if yt is None else torch.as_tensor(yt), P=P,
        M=Xall.shape[0], depth=L, gamma0=g0, lr=eta, steps=T, activation=activation,
        dynamics=dynamics if g0 >= LAZY_GAMMA0 else "flow", phi=phi, dphi=dphi, ddphi=ddphi,
    )


def _edge_index(n: int, T1: int) -> torch.Tensor:
    return torch.clamp(torch.arange(T1), max=n - 1)


