"""The infinite-width NTK of a two-layer ReLU network on the circle, and its lazy learning curve.

The theory side of the nonlinear check of "How Feature Learning Can Improve Neural Scaling
Laws" (Bordelon, Atanasov, Pehlevan); the networks are trained in :mod:`lmech.sim.circle`.
For inputs x = (cos theta, sin theta) and f(x) = (1/sqrt N) sum_i a_i relu(w_i . x + b_i)
with w ~ N(0, I_2), b, a ~ N(0, 1), the NTK depends on the angle difference D only:

    Theta(D) = [ sin(phi) + 2 (pi - phi) u ] / pi,   u = (1 + cos D)/2 = cos(phi),

so its eigenfunctions under the uniform measure are cos(k theta), sin(k theta), with
eigenvalues lam_k = (1/2pi) int Theta(D) cos(k D) dD ~ 0.0717 k^-2 (capacity alpha = 2; the
bias keeps every frequency learnable). In the lazy limit gradient flow on the loss
(1/2) mean_x (f - y)^2 gives L(t) = sum_k p_k exp(-2 lam_k t), which decays as t^-beta for
a target of source beta.
"""
from __future__ import annotations

import numpy as np

from lmech._validation import MAX_SIZE, check_array, check_int

__all__ = ["circle_ntk", "circle_ntk_spectrum", "lazy_circle_curve"]


def circle_ntk(delta) -> np.ndarray:
    """Infinite-width NTK Theta(D) of (1/sqrt N) sum_i a_i relu(w_i . x + b_i), x on the circle.

    w ~ N(0, I_2), b, a ~ N(0, 1); D = angle between the two inputs (vectorised).
    """
    D = np.asarray(check_array(delta, "delta", ndim=(0, 1, 2)), dtype=float)
    u = 0.5 * (1.0 + np.cos(D))
    phi = np.arccos(np.clip(u, -1.0, 1.0))
    return (np.sin(phi) + 2.0 * (np.pi - phi) * u) / np.pi


def circle_ntk_spectrum(n_freq: int, *, n_grid: int = 2**16) -> np.ndarray:
    """Eigenvalues lam_0..lam_{n_freq} of :func:`circle_ntk` under the uniform measure.

    lam_k (k >= 1) is the eigenvalue of both cos(k theta) and sin(k theta). Computed by the
    FFT of Theta on ``n_grid`` equispaced angles (trapezoid rule, spectrally accurate up to
    the kink of Theta at D = 0, error ~ n_grid^-2 relative to lam_k ~ k^-2; keep
    n_freq << n_grid). Cost O(n_grid log n_grid).
    """
    n_freq = check_int(n_freq, "n_freq", lo=1, hi=MAX_SIZE)
    n_grid = check_int(n_grid, "n_grid", lo=4 * n_freq + 4, hi=MAX_SIZE)
    D = 2 * np.pi * np.arange(n_grid) / n_grid
    return np.real(np.fft.rfft(circle_ntk(D)))[: n_freq + 1] / n_grid


def lazy_circle_curve(t, target_power, n_grid: int) -> np.ndarray:
    """Infinite-width lazy loss mean_x (f_t - y)^2 = sum_k p_k exp(-2 lam_k^grid t).

    ``target_power[k-1]`` is the target's power at frequency k = 1..K (amplitude^2 / 2) and
    ``n_grid`` the number of equispaced training angles (>= 2 K + 2). lam_k^grid are the
    eigenvalues of Theta under the uniform measure on that grid (the DFT of Theta on the grid,
    i.e. the continuum lam_k plus aliases): exact for the gradient flow a network follows as
    N -> inf at fixed small richness gamma.
    """
    t = np.atleast_1d(check_array(t, "t", ndim=(0, 1), nonnegative=True))
    p = check_array(target_power, "target_power", ndim=1, nonnegative=True, min_size=1)
    P = check_int(n_grid, "n_grid", lo=2 * len(p) + 2, hi=MAX_SIZE)
    lam = np.real(np.fft.rfft(circle_ntk(2 * np.pi * np.arange(P) / P))) / P
    return np.exp(-2.0 * np.outer(t, lam[1:len(p) + 1])) @ p
