"""Spectra: power laws, empirical eigen-systems of kernels on data, target decompositions.

Conventions used across lmech: ``eigenvalues[k]`` are kernel (or feature-covariance)
eigenvalues with respect to the data distribution; ``target_power[k]`` is the squared
coefficient of the target on the k-th *orthonormal* eigenfunction (summed over outputs for
vector targets, and over the modes of a level when ``multiplicities`` are used).

For a finite population of N points (or a large sample standing in for the distribution), the
eigen-system of the kernel under the uniform distribution on the points is that of the Gram
matrix divided by N: ``K/N = U diag(lam) U^T`` gives eigenvalues ``lam`` and eigenfunction
values ``phi_k(x_i) = sqrt(N) U_ik`` (so that ``mean_i phi_k(x_i) phi_l(x_i) = delta_kl``). The
top ~N/2 modes of a sample estimate those of the underlying distribution reliably; for the
population itself they are exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import eval_gegenbauer, gammaln, roots_jacobi

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, fail

__all__ = [
    "power_law",
    "PowerLawProblem",
    "power_law_problem",
    "EmpiricalSpectrum",
    "empirical_spectrum",
    "target_coefficients",
    "target_power",
    "cumulative_power",
    "nystrom_extension",
    "sphere_multiplicity",
    "LevelSpectrum",
    "dot_product_kernel_spectrum",
]


def power_law(n_modes: int, exponent: float, *, scale: float = 1.0, normalize: bool = False) -> np.ndarray:
    """``scale * k**(-exponent)`` for k = 1..n_modes (float64).

    With ``normalize=True`` the result is rescaled to sum to ``scale``. ``|exponent| <= 1000``
    (beyond, k**(-exponent) leaves float64 at k = 2); ``n_modes <= 10**7``.
    """
    n = check_int(n_modes, "n_modes", lo=1, hi=MAX_SIZE)
    a = check_real(exponent, "exponent", lo=-1000, hi=1000)  # beyond: k**-a leaves float64 at k = 2
    if a < 0 and -a * np.log(n) > 700:
        fail("exponent", f"such that n_modes**(-exponent) fits in float64 (n_modes = {n})", exponent)
    s = check_real(scale, "scale", lo=0, lo_closed=False)
    out = np.arange(1, n + 1, dtype=np.float64) ** (-a)
    if normalize:
        out /= out.sum()
    return s * out


class PowerLawProblem(NamedTuple):
    """A spectrum and a target's power per mode, both power laws (unpacks as a pair)."""

    eigenvalues: np.ndarray
    target_power: np.ndarray


def power_law_problem(n_modes: int, spectrum_exponent: float, power_exponent: float, *,
                      normalize: bool = False) -> PowerLawProblem:
    """The standard power-law problem: ``lam_k = k^-b`` and target power ``p_k = k^-a``.

    With ``normalize=True`` both are rescaled to sum to 1 (so the initial loss is 1 and the
    kernel's trace is 1). A target with coefficients ``v_k = k^-c`` has power exponent
    ``a = 2c``. Used by kernel, SGD, random-feature and scaling-law claims alike.
    """
    check_real(spectrum_exponent, "spectrum_exponent", lo=-1000, hi=1000)
    check_real(power_exponent, "power_exponent", lo=-1000, hi=1000)
    lam = power_law(n_modes, spectrum_exponent, normalize=normalize)
    power = power_law(n_modes, power_exponent, normalize=normalize)
    return PowerLawProblem(lam, power)


# --------------------------------------------------------------------------- empirical
@dataclass(frozen=True)
class EmpiricalSpectrum:
    """Eigen-system of a kernel under the uniform distribution on N points.

    Attributes
    ----------
    eigenvalues : ndarray, shape (M,)
        Descending, >= 0 (round-off negatives clipped to 0).
    eigenfunctions : ndarray, shape (N, M)
        phi_k(x_i), orthonormal under the uniform distribution: ``phi.T @ phi / N = I``.
    """

    eigenvalues: np.ndarray
    eigenfunctions: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.eigenfunctions.shape[0])

    def target_coefficients(self, y) -> np.ndarray:
        """v_k = mean_i phi_k(x_i) y_i: shape (M,) or (M, C)."""
        return target_coefficients(self.eigenfunctions, y)

    def target_power(self, y) -> np.ndarray:
        """v_k^2 (summed over outputs): shape (M,)."""
        return target_power(self.eigenfunctions, y)


def empirical_spectrum(gram, *, n_modes: int | None = None) -> EmpiricalSpectrum:
    """Eigen-decompose ``gram / N`` (symmetric PSD, N x N) into an :class:`EmpiricalSpectrum`.

    Parameters
    ----------
    gram : array_like, shape (N, N)
        Kernel Gram matrix of the N points (symmetric; asymmetry beyond 1e-8 relative is an
        error).
    n_modes : int, optional
        Keep only the top ``n_modes`` modes (default: all N).
    """
    K = check_array(gram, "gram", max_abs=MAX_MAGNITUDE, ndim=2)
    N = K.shape[0]
    if K.shape != (N, N) or N == 0:
        fail("gram", "a non-empty square matrix", K)
    scale = np.abs(K).max()
    if scale > 0 and np.abs(K - K.T).max() > 1e-8 * scale:
        fail("gram", "symmetric", K)
    M = N if n_modes is None else check_int(n_modes, "n_modes", lo=1, hi=N)
    # torch's LAPACK runs in torch's thread pool (set by torch.set_num_threads, as the claim
    # runner does); numpy/scipy's OpenBLAS would start its own pool of spinning threads
    w_t, U_t = torch.linalg.eigh(torch.from_numpy((K + K.T) / (2.0 * N)))
    w, U = w_t.numpy()[::-1][:M].copy(), np.ascontiguousarray(U_t.numpy()[:, ::-1][:, :M])
    if scale > 0 and w.min() < -1e-8 * max(w.max(), 0.0):
        fail("gram", f"positive semi-definite (smallest eigenvalue of gram/N is {w.min():.3g})", K)
    return EmpiricalSpectrum(eigenvalues=np.clip(w, 0.0, None), eigenfunctions=U * math.sqrt(N))


def _check_targets(eigenfunctions, y):
    phi = check_array(eigenfunctions, "eigenfunctions", max_abs=MAX_MAGNITUDE, ndim=2)
    Y = check_array(y, "y", max_abs=MAX_MAGNITUDE, ndim=(1, 2))
    if Y.shape[0] != phi.shape[0]:
        fail("y", f"of first dimension {phi.shape[0]} (one row per point)", Y)
    return phi, Y


def target_coefficients(eigenfunctions, y) -> np.ndarray:
    """Coefficients v_k = mean_i phi_k(x_i) y_i of targets y on orthonormal eigenfunctions.

    ``eigenfunctions`` (N, M) as in :class:`EmpiricalSpectrum`; ``y`` (N,) or (N, C).
    Returns (M,) or (M, C).
    """
    phi, Y = _check_targets(eigenfunctions, y)
    return phi.T @ Y / phi.shape[0]


def target_power(eigenfunctions, y) -> np.ndarray:
    """v_k^2 summed over outputs, shape (M,)."""
    v = target_coefficients(eigenfunctions, y)
    return v**2 if v.ndim == 1 else np.sum(v**2, axis=1)


def cumulative_power(eigenvalues, target_power) -> np.ndarray:
    """Task-model alignment curve C(k) = sum_{i<=k} v_i^2 / sum_i v_i^2.

    Modes are sorted by decreasing eigenvalue (Canatar, Bordelon & Pehlevan, "Spectral Bias
    and Task-Model Alignment Explain Generalization in Kernel Regression and Infinitely Wide
    Neural Networks"). Of two targets of equal power on the same kernel, the one whose C(k)
    is higher at every k has the lower predicted error at every P, ridge and noise level.

    Returns
    -------
    ndarray, shape (M,)
        Non-decreasing, ending at 1 (all zeros if the target has no power).
    """
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    v2 = check_array(target_power, "target_power", shape=(lam.shape[0],), nonnegative=True)
    order = np.argsort(-lam, kind="stable")
    c = np.cumsum(v2[order])
    total = c[-1]
    return c / total if total > 0 else c


def nystrom_extension(spectrum: EmpiricalSpectrum, cross_gram) -> np.ndarray:
    """Eigenfunction values at new points: phi_k(x) = sum_j K(x, x_j) phi_k(x_j) / (N lam_k).

    ``cross_gram`` (n_new, N) holds K(x_new, x_j) against the points of ``spectrum``. Modes
    with zero eigenvalue get 0. Returns (n_new, M).
    """
    if not isinstance(spectrum, EmpiricalSpectrum):
        fail("spectrum", "an EmpiricalSpectrum", spectrum, TypeError)
    C = check_array(cross_gram, "cross_gram", ndim=2)
    if C.shape[1] != spectrum.n_samples:
        fail("cross_gram", f"of shape (n_new, {spectrum.n_samples})", C)
    lam = spectrum.eigenvalues
    inv = np.where(lam > 0, 1.0 / np.where(lam > 0, lam * spectrum.n_samples, 1.0), 0.0)
    return (C @ spectrum.eigenfunctions) * inv


# --------------------------------------------------------------------------- sphere
def sphere_multiplicity(d: int, level) -> np.ndarray:
    """Number of spherical harmonics of degree ``level`` on S^{d-1} (in R^d), d >= 2.

    N(d, 0) = 1 and N(d, l) = (2l + d - 2)/l * C(l + d - 3, l - 1) for l >= 1.
    """
    d = check_int(d, "d", lo=2, hi=10**6)
    lv = np.atleast_1d(check_array(level, "level", ndim=(0, 1), nonnegative=True))
    if np.any(lv != np.round(lv)):
        fail("level", "integers", lv)
    lv = lv.astype(np.int64)
    out = np.ones(lv.shape, dtype=np.float64)
    pos = lv > 0
    l = lv[pos].astype(np.float64)
    logc = gammaln(l + d - 2) - gammaln(l) - gammaln(d - 1.0)  # log C(l+d-3, l-1)
    out[pos] = np.round((2 * l + d - 2) / l * np.exp(logc))
    return out if np.ndim(level) else out[0]


@dataclass(frozen=True)
class LevelSpectrum:
    """Eigenvalues of a dot-product kernel on the sphere, one per degree l.

    Attributes
    ----------
    eigenvalues : ndarray, shape (L,)
        lam_l (each with multiplicity N(d, l)), l = 0..L-1, under the uniform measure.
    multiplicities : ndarray, shape (L,)
    trace : float
        K(1) = E K(x, x): the full eigenvalue mass, to pass as ``trace=`` to
        :func:`lmech.theory.kernel_curves.learning_curve` (truncated-tail correction).
    """

    eigenvalues: np.ndarray
    multiplicities: np.ndarray
    trace: float

    @property
    def tail(self) -> float:
        """Eigenvalue mass of the degrees not listed."""
        return float(self.trace - np.sum(self.eigenvalues * self.multiplicities))


def dot_product_kernel_spectrum(kernel_fn, d: int, n_levels: int, *, n_nodes: int | None = None) -> LevelSpectrum:
    """Mercer eigenvalues of ``K(x, x') = kernel_fn(x . x')`` on the unit sphere S^{d-1}.

    lam_l = c_d int_{-1}^{1} k(t) P_l(t) (1 - t^2)^{(d-3)/2} dt with P_l the Gegenbauer
    polynomial normalised to P_l(1) = 1 and c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)),
    by Gauss-Jacobi quadrature (Bordelon, Canatar & Pehlevan, "Spectrum Dependent Learning
    Curves ..."). Round-off negatives are clipped to 0.

    Parameters
    ----------
    kernel_fn : callable
        Vectorised function of the cosine t in [-1, 1].
    d : int
        Ambient dimension, >= 3.
    n_levels : int
        Degrees l = 0 .. n_levels - 1.
    n_nodes : int, optional
        Quadrature nodes (default max(800, 4 n_levels)).
    """
    d = check_int(d, "d", lo=3, hi=10**6)
    L = check_int(n_levels, "n_levels", lo=1, hi=2000)
    n = check_int(n_nodes if n_nodes is not None else max(800, 4 * L), "n_nodes", lo=L + 1, hi=10**5)
    if not callable(kernel_fn):
        fail("kernel_fn", "callable", kernel_fn, TypeError)
    a = (d - 3) / 2.0
    t, w = roots_jacobi(n, a, a)
    kt = np.asarray(kernel_fn(t), dtype=np.float64)
    if kt.shape != t.shape or not np.all(np.isfinite(kt)):
        fail("kernel_fn", "a finite vectorised function of the cosine", kernel_fn)
    c_d = math.exp(gammaln(d / 2.0) - 0.5 * math.log(math.pi) - gammaln((d - 1) / 2.0))
    alpha = (d - 2) / 2.0
    levels = np.arange(L)
    P = eval_gegenbauer(levels[:, None], alpha, t[None, :]) / eval_gegenbauer(levels, alpha, 1.0)[:, None]
    lam = c_d * (P * (w * kt)[None, :]).sum(axis=1)
    trace = float(np.asarray(kernel_fn(np.array([1.0])), dtype=np.float64)[0])
    return LevelSpectrum(eigenvalues=np.clip(lam, 0.0, None), multiplicities=sphere_multiplicity(d, levels),
                         trace=trace)
