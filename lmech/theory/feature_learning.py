"""Feature learning and scaling laws: exponents, task classes, and the rich linear model.

Paper: B. Bordelon, A. Atanasov, C. Pehlevan, "How Feature Learning Can Improve Neural
Scaling Laws". Power-law features psi(x) with covariance eigenvalues lam_k ~ k^{-alpha}
(capacity alpha > 1) and a target y = w* . psi whose power obeys the source condition
lam_k w*_k^2 ~ k^{-alpha beta - 1} (source beta > 0). Tasks are *hard* for beta < 1 (target
outside the RKHS of the initial kernel), *easy* for 1 < beta < 2 - 1/alpha and *super-easy*
above (there finite-batch SGD noise sets the rate; that boundary is taken from the paper's
phase diagram and is not modelled here).

Exponents (L ~ t^{-chi}, online / infinite data):

    lazy:  chi = beta;      rich (feature learning):  chi(beta) = beta * max(1, 2/(1+beta)),
    width bottleneck L ~ N^{-alpha min(beta, 1)} in both regimes,

so feature learning nearly doubles the time exponent of hard tasks and leaves easy tasks
unchanged; compute-optimal allocations follow from :func:`lmech.theory.scaling.compute_optimal`
(rich hard: L* ~ C^{-2 alpha beta / (2 + alpha (1 + beta))}).

The rich model solved here (:func:`rich_linear_curve`). A two-layer linear network on the
features, f(x) = a . B A0 psi(x) / sqrt(N), with a frozen random projection A0 (N x M), a
trainable N x N matrix B (B(0) = I: "projected gradient descent", A(t) = B(t) A0 stays in
the row space of A0) and readout a (a(0) = 0), trained by gradient flow on the population
loss (1/2) E (f - y)^2 with learning rate 1 for a and gamma for B. Gradient flow conserves
B B^T - gamma a a^T = I, which reduces the dynamics *exactly* to a preconditioned flow of
the N-dimensional weights u = B^T a:

    du/dt = [(1 + gamma s) I + gamma s u_hat u_hat^T] (b - Sigma_F u),
    s = ||a||^2 = 2 ||u||^2 / (1 + sqrt(1 + 4 gamma ||u||^2)),

with Sigma_F = A0 Lambda A0^T / N, b = A0 Lambda w* / sqrt(N). As N -> infinity (A0^T A0 / N -> I)
this becomes the deterministic flow of the effective weights v in feature space,

    dv/dt = (1 + gamma s) Lambda e + gamma s v (v . Lambda e) / ||v||^2,   e = w* - v,     (FL)

and, because the preconditioner depends on v only through scalars, the error ratios
rho_k = e_k / w*_k of all modes with the same eigenvalue coincide: (FL) is a closed
equation for rho(lam, t) coupled through three spectral sums. Modes can therefore be
binned, which lets :func:`power_law_task` represent an *infinite* power-law spectrum with
a few thousand entries (no truncation). gamma -> 0 recovers the lazy random-feature model
(:mod:`lmech.theory.scaling` at N = inf). The kernel scale 1 + gamma s grows like
sqrt(gamma) ||f||_H, which is the mechanism behind chi(beta) = 2 beta / (1 + beta).

This reduction is derived here (the paper's model details and DMFT were not transcribed);
its exponent chi(beta) is checked numerically against the paper's formula.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.scaling import ComputeOptimal, compute_optimal

__all__ = [
    "chi",
    "task_class",
    "FeatureLearningExponents",
    "feature_learning_exponents",
    "power_law_task",
    "RichLinearCurve",
    "rich_linear_curve",
]


def chi(beta) -> np.ndarray | float:
    """Rich-regime time exponent chi(beta) = beta * max(1, 2 / (1 + beta)) (L ~ t^{-chi}).

    Equation (eq:feature_learning.chi): ``chi(beta) = beta * max(1, 2 / (1 + beta))   (rich);
        chi = beta   (lazy)``

    Vectorised over ``beta`` (> 0). For hard tasks (beta < 1) chi = 2 beta/(1 + beta) > beta;
    for beta >= 1 chi = beta, the lazy exponent.
    """
    b = check_array(beta, "beta", ndim=(0, 1), positive=True)
    out = b * np.maximum(1.0, 2.0 / (1.0 + b))
    return float(out) if out.ndim == 0 else out


def task_class(alpha: float, beta: float) -> str:
    """'hard' (beta < 1), 'easy' (1 <= beta < 2 - 1/alpha) or 'super-easy' (beta >= 2 - 1/alpha)."""
    alpha = check_real(alpha, "alpha", lo=1, lo_closed=False)
    beta = check_real(beta, "beta", lo=0, lo_closed=False)
    if beta < 1:
        return "hard"
    return "easy" if beta < 2 - 1 / alpha else "super-easy"


@dataclass(frozen=True)
class FeatureLearningExponents:
    """Scaling exponents (decay exponents, L ~ x^{-e}) in the lazy and rich regimes.

    Attributes
    ----------
    lazy_time, rich_time : float
        beta and chi(beta).
    width : float
        alpha * min(beta, 1) (unchanged by feature learning).
    lazy_compute, rich_compute : ComputeOptimal
        Compute-optimal allocations at C = N t for the two regimes.
    task : str
        :func:`task_class`.
    """

    alpha: float
    beta: float
    lazy_time: float
    rich_time: float
    width: float
    lazy_compute: ComputeOptimal
    rich_compute: ComputeOptimal
    task: str


def feature_learning_exponents(alpha: float, beta: float) -> FeatureLearningExponents:
    """Exponents of the lazy and rich models for capacity ``alpha`` > 1 and source ``beta`` > 0."""
    alpha = check_real(alpha, "alpha", lo=1, lo_closed=False)
    beta = check_real(beta, "beta", lo=0, lo_closed=False)
    width = alpha * min(beta, 1.0)
    rich = float(chi(beta))
    return FeatureLearningExponents(
        alpha=alpha, beta=beta, lazy_time=beta, rich_time=rich, width=width,
        lazy_compute=compute_optimal(beta, width), rich_compute=compute_optimal(rich, width),
        task=task_class(alpha, beta),
    )


def power_law_task(alpha: float, beta: float, *, exact_modes: int = 2000, k_max: float | None = 1e16,
                   per_decade: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and target powers of lam_k = k^{-alpha}, lam_k w*_k^2 = k^{-alpha beta - 1}.

    Modes 1..exact_modes are listed one by one; modes beyond, up to ``k_max``, are grouped
    into logarithmic bins (``per_decade`` per decade). A bin [k1, k2] carries its total
    target power int k^{-alpha beta - 1} dk and the eigenvalue at which the bin's total
    w*^2 = int k^{alpha - alpha beta - 1} dk reproduces that power. Binning is exact for the
    N = inf rich model (:func:`rich_linear_curve`) up to the eigenvalue spread inside a bin,
    and for any linear-in-modes quantity up to quadrature error. ``k_max=None`` truncates
    at ``exact_modes`` instead (a finite model with M = exact_modes features).
    Limits: ``alpha, beta <= 1000`` (larger exponents underflow float64 at the second mode),
    ``exact_modes <= 10**7``, ``per_decade <= 10**4``.

    Returns
    -------
    eigenvalues, target_power : ndarray, shape (K,)
    """
    alpha = check_real(alpha, "alpha", lo=1, lo_closed=False, hi=1000)
    beta = check_real(beta, "beta", lo=0, lo_closed=False, hi=1000)
    n = check_int(exact_modes, "exact_modes", lo=1, hi=MAX_SIZE)
    k = np.arange(1, n + 1, dtype=float)
    lam = k**-alpha
    p = k ** (-alpha * beta - 1)
    if k_max is None:
        return lam, p
    k_max = check_real(k_max, "k_max", lo=n + 1)
    per_decade = check_int(per_decade, "per_decade", lo=1, hi=10**4)
    n_bins = max(1, int(np.ceil(np.log10(k_max / (n + 0.5)) * per_decade)))
    edges = np.geomspace(n + 0.5, k_max, n_bins + 1)
    a, b = edges[:-1], edges[1:]

    def integral(ex):  # int_a^b k^ex dk, ex != -1
        return (b ** (ex + 1) - a ** (ex + 1)) / (ex + 1) if abs(ex + 1) > 1e-12 else np.log(b / a)

    p_bin = integral(-alpha * beta - 1)
    q_bin = integral(alpha - alpha * beta - 1)      # total w*^2 in the bin
    return np.concatenate([lam, p_bin / q_bin]), np.concatenate([p, p_bin])


@dataclass(frozen=True, kw_only=True)
class RichLinearCurve(SolverResult):
    """Loss curve of the N = inf rich two-layer linear model (FL).

    Attributes
    ----------
    t : ndarray, shape (T,)
        Gradient-flow time (learning rate of the readout x steps).
    loss : ndarray, shape (T,)
        Population loss E (f - y)^2 = sum_k p_k rho_k^2.
    kernel_scale : ndarray, shape (T,)
        1 + gamma s: the growth of the (isotropic part of the) neural tangent kernel.
    effective_time : ndarray, shape (T,)
        tau(t) = int_0^t (1 + gamma s) dt' (the lazy model's clock).
    weight_norm : ndarray, shape (T,)
        ||v|| (the RKHS norm of the learned function).
    gamma : float
    """

    t: np.ndarray
    loss: np.ndarray
    kernel_scale: np.ndarray
    effective_time: np.ndarray
    weight_norm: np.ndarray
    gamma: float


def _integrate(lam, q, gamma, t_out, eps):
    """Exponential-midpoint integrator of (FL) in the learned fractions sigma = v / w* = 1 - rho.

    dsigma/dt = c lam - (c lam - g) sigma with c = 1 + gamma s and
    g = gamma s (v . Lambda e)/||v||^2; over a step the scalars (c, g) are frozen at the
    midpoint (from a half-step predictor) and each mode's linear equation is solved exactly,
    so stiff modes are stable and the scheme is second order. sigma (not rho) is the state
    so that the tiny learned fractions of far-tail modes, which carry huge w*^2 for hard
    tasks, are not lost to round-off. Steps are log-spaced, h = eps t.
    """
    sig = np.zeros_like(lam)
    qlam = q * lam

    def scalars(x):
        n2 = float(q @ x**2)
        s = 2 * n2 / (1 + np.sqrt(1 + 4 * gamma * n2)) if gamma > 0 else 0.0
        g = gamma * s * float(qlam @ (x * (1 - x))) / n2 if (gamma > 0 and n2 > 0) else 0.0
        return 1 + gamma * s, g, n2

    def step(x, h, c, g):
        k = c * lam - g
        kh = k * h
        small = np.abs(kh) < 1e-8
        frac = np.where(small, h, -np.expm1(-kh) / np.where(small, 1.0, k))   # (1 - e^{-kh})/k
        return x * np.exp(-kh) + c * lam * frac

    T = len(t_out)
    loss, scale, tau_out, norm = (np.empty(T) for _ in range(4))
    t, tau, i, steps = 0.0, 0.0, 0, 0
    h_min = min(1e-3, 1e-2 * float(t_out[0])) / max(1.0, float(lam.max()))
    while i < T:
        h = max(eps * t, h_min)
        if t + h >= t_out[i] * (1 - 1e-13):
            h = t_out[i] - t
        c0, g0, _ = scalars(sig)
        mid = step(sig, 0.5 * h, c0, g0)
        c, g, _ = scalars(mid)
        sig = step(sig, h, c, g)
        t += h
        tau += h * c
        steps += 1
        if t >= t_out[i] * (1 - 1e-13):
            cc, _, n2 = scalars(sig)
            loss[i], scale[i], tau_out[i], norm[i] = float(qlam @ (1 - sig) ** 2), cc, tau, np.sqrt(n2)
            i += 1
    return loss, scale, tau_out, norm, steps


def rich_linear_curve(eigenvalues, target_power, t, *, gamma: float, eps: float = 0.02,
                      check: bool = True, rtol: float = 1e-3) -> RichLinearCurve:
    """Population loss of the infinite-width rich two-layer linear model, equation (FL).

    Equation (eq:feature_learning.rich_flow): ``dv/dt = (1 + gamma s) Lambda e
        + gamma s v (v . Lambda e) / ||v||^2,  e = w* - v``

    Parameters
    ----------
    eigenvalues : array_like, shape (K,)
        Feature covariance eigenvalues lam_k > 0 (an entry may stand for a bin of modes
        sharing one eigenvalue, see :func:`power_law_task`).
    target_power : array_like, shape (K,)
        Total target power p_k = (multiplicity) lam_k w*_k^2 of each entry (>= 0).
    t : array_like, shape (T,)
        Increasing positive times (learning rate x steps of the readout).
    gamma : float
        Feature-learning strength (>= 0; 0 is the lazy random-feature model at N = inf).
    eps : float
        Relative step h = eps t of the log-time integrator (second order in eps).
    check : bool
        Re-solve with eps/2; ``residual`` is the largest relative change of the loss and
        ``converged`` requires it below ``rtol``.

    Returns
    -------
    RichLinearCurve
    """
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, positive=True, min_size=1)
    p = check_array(target_power, "target_power", ndim=1, nonnegative=True)
    if p.shape != lam.shape:
        fail("target_power", f"of shape {lam.shape} (one entry per eigenvalue)", p)
    t_arr = np.atleast_1d(check_array(t, "t", ndim=(0, 1), positive=True, min_size=1, max_abs=MAX_MAGNITUDE))
    if np.any(np.diff(t_arr) <= 0):
        fail("t", "strictly increasing", t_arr)
    gamma = check_real(gamma, "gamma", lo=0)
    eps = check_real(eps, "eps", lo=0, lo_closed=False, hi=0.5)
    rtol = check_real(rtol, "rtol", lo=0, lo_closed=False)
    q = p / lam
    loss, scale, tau, norm, steps = _integrate(lam, q, gamma, t_arr, eps)
    residual = float("nan")
    finite = bool(np.all(np.isfinite(loss)))
    converged = finite
    # unchecked: a fixed-step integration without a tolerance (closed form, residual NaN)
    status = "closed_form" if finite else "diverged"
    message = "fixed-step integration (not checked)" if finite else "the integrated loss is not finite"
    if check and finite:
        loss2, *_ = _integrate(lam, q, gamma, t_arr, eps / 2)
        residual = float(np.max(np.abs(loss / loss2 - 1)))
        converged = residual <= rtol
        status = "converged" if converged else "max_iter"
        message = "converged" if converged else (
            f"loss changed by {residual:.3g} (relative) when halving the step; reduce eps")
    if not converged:
        warn_not_converged("rich_linear_curve", message)
    return RichLinearCurve(t=t_arr, loss=loss, kernel_scale=scale, effective_time=tau, weight_norm=norm,
                           gamma=gamma, converged=converged, status=status, iterations=steps, residual=residual,
                           message=message)
