"""The pointwise nonlinearities shared by theory and simulation (base layer: imports no lmech layer).

One table, :data:`NONLINEARITIES`, maps a name to the function, its first and second
derivatives (torch, elementwise) and whether the derivative is smooth; :func:`gaussian_kernels`
gives the Gaussian expectations ``E[phi(h_a) phi(h_b)]`` and ``E[phi'(h_a) phi'(h_b)]`` for
``h ~ N(0, K)`` -- in closed form where one exists (Williams' arcsine kernel for erf, "Computing
with Infinite Networks"; the arc-cosine kernels of "Kernel Methods for Deep Learning" (Cho & Saul)
for ReLU) and by two-dimensional Gauss-Hermite quadrature otherwise (tanh).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.special
import torch

__all__ = ["Nonlinearity", "NONLINEARITIES", "gaussian_kernels"]

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Nonlinearity:
    """``phi``, ``phi'`` and ``phi''`` as elementwise torch functions; ``smooth`` is False where
    ``phi''`` has a Dirac delta that the function ``ddphi`` (zero almost everywhere) cannot show.
    ``dphi_of_phi``, where given, computes ``phi'(h)`` from ``phi(h)`` (saves a transcendental).
    ``fill`` writes ``phi(h)`` and ``phi'(h)`` of a numpy array into two preallocated arrays in
    place (for loops over small arrays, where allocation and per-call overhead dominate)."""

    name: str
    phi: Fn
    dphi: Fn
    ddphi: Fn
    smooth: bool
    dphi_of_phi: Fn | None = None
    fill: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None

    def value_and_grad(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi(h), phi'(h))``."""
        v = self.phi(h)
        return v, (self.dphi_of_phi(v) if self.dphi_of_phi is not None else self.dphi(h))


def _tanh_d(h: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(h) ** 2


def _tanh_dd(h: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(h)
    return -2.0 * t * (1.0 - t * t)


def _erf_d(h: torch.Tensor) -> torch.Tensor:
    return (2.0 / math.sqrt(math.pi)) * torch.exp(-h * h)


def _erf_dd(h: torch.Tensor) -> torch.Tensor:
    return -2.0 * h * _erf_d(h)


def _relu_d(h: torch.Tensor) -> torch.Tensor:
    return (h > 0).to(h.dtype)


def _identity(h: torch.Tensor) -> torch.Tensor:
    return h


def _one_minus_sq(v: torch.Tensor) -> torch.Tensor:
    return 1.0 - v * v


def _fill_tanh(h: np.ndarray, v: np.ndarray, g: np.ndarray) -> None:
    np.tanh(h, out=v)
    np.multiply(v, v, out=g)
    np.subtract(1.0, g, out=g)


def _fill_erf(h: np.ndarray, v: np.ndarray, g: np.ndarray) -> None:
    scipy.special.erf(h, out=v)
    np.multiply(h, h, out=g)
    np.negative(g, out=g)
    np.exp(g, out=g)
    g *= 2.0 / math.sqrt(math.pi)


def _fill_linear(h: np.ndarray, v: np.ndarray, g: np.ndarray) -> None:
    v[...] = h
    g[...] = 1.0


def _fill_relu(h: np.ndarray, v: np.ndarray, g: np.ndarray) -> None:
    np.maximum(h, 0.0, out=v)
    np.greater(h, 0.0, out=g, casting="unsafe")


NONLINEARITIES: dict[str, Nonlinearity] = {
    "tanh": Nonlinearity("tanh", torch.tanh, _tanh_d, _tanh_dd, True, _one_minus_sq, _fill_tanh),
    "erf": Nonlinearity("erf", torch.erf, _erf_d, _erf_dd, True, fill=_fill_erf),
    "linear": Nonlinearity("linear", _identity, torch.ones_like, torch.zeros_like, True, fill=_fill_linear),
    "relu": Nonlinearity("relu", torch.relu, _relu_d, torch.zeros_like, False, fill=_fill_relu),
}


def gaussian_kernels(name: str, K: np.ndarray, *, nodes: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi(h) phi(h)^T], E[phi'(h) phi'(h)^T])`` for ``h ~ N(0, K)``, K a PSD (M, M) matrix.

    Closed forms: linear ``(K, 1)``; erf ``(2/pi) arcsin(2 K_ab / sqrt((1 + 2 K_aa)(1 + 2 K_bb)))``
    and ``(4/pi) / sqrt((1 + 2 K_aa)(1 + 2 K_bb) - 4 K_ab^2)``; ReLU
    ``sqrt(K_aa K_bb) (sin th + (pi - th) cos th) / (2 pi)`` and ``(pi - th) / (2 pi)`` with
    ``cos th = K_ab / sqrt(K_aa K_bb)``. Otherwise a ``nodes`` x ``nodes`` Gauss-Hermite rule on
    each 2 x 2 marginal (64 nodes: 2e-7 absolute or better on the erf closed forms at variances
    up to ~3, tests/test_nonlinearities.py). Cost O(M^2 nodes^2).
    """
    K = np.asarray(K, dtype=np.float64)
    d = np.clip(np.diag(K), 0.0, None)
    if name == "linear":
        return K.copy(), np.ones_like(K)
    if name == "erf":
        a = 1.0 + 2.0 * d
        den = np.outer(a, a)
        return ((2.0 / math.pi) * np.arcsin(np.clip(2.0 * K / np.sqrt(den), -1.0, 1.0)),
                (4.0 / math.pi) / np.sqrt(np.maximum(den - 4.0 * K**2, 1e-300)))
    if name == "relu":
        s = np.sqrt(np.outer(d, d))
        cos = np.clip(np.where(s > 0, K / np.where(s > 0, s, 1.0), 0.0), -1.0, 1.0)
        th = np.arccos(cos)
        return s * (np.sin(th) + (math.pi - th) * cos) / (2.0 * math.pi), (math.pi - th) / (2.0 * math.pi)
    nl = NONLINEARITIES[name]
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(-x^2 / 2)
    w = w / w.sum()
    sa = np.sqrt(d)
    rho = np.clip(np.where(np.outer(sa, sa) > 0, K / np.maximum(np.outer(sa, sa), 1e-300), 0.0), -1.0, 1.0)
    z1, z2 = x[:, None], x[None, :]
    # h_a = sa z1, h_b = sb (rho z1 + sqrt(1 - rho^2) z2), for every pair (a, b)
    ha = torch.as_tensor(sa[:, None, None] * np.broadcast_to(z1, (len(x), 1))[None])  # (M, n, 1)
    outs = []
    for fn in (nl.phi, nl.dphi):
        fa = fn(ha)[:, None]  # (M, 1, n, 1)
        hb = torch.as_tensor(sa[None, :, None, None]
                             * (rho[..., None, None] * z1 + np.sqrt(1.0 - rho**2)[..., None, None] * z2))
        vals = fa * fn(hb)  # (M, M, n, n)
        wt = torch.as_tensor(np.outer(w, w))
        outs.append((vals * wt).sum((-2, -1)).numpy())
    return outs[0], outs[1]
