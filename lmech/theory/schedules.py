"""Optimal learning-rate schedules for online SGD on a power-law linear model.

Theory of Bordelon & Mori, "Theory of Optimal Learning Rate Schedules and Scaling Laws for
a Random Feature Model" (also circulated as "Optimal learning rate schedules under
functional scaling laws"). The dynamics are the exact second-moment recursion (S1) of online SGD on
Gaussian features (:mod:`lmech.theory.sgd`, same conventions: loss without factor 1/2,
time in steps, fresh batches), now with a step-dependent learning rate ``eta_t``::

    c_{t+1} = A(eta_t) c_t + (eta_t^2/B) sigma2 lam,
    A(eta)  = diag(1 - 2 eta lam + eta^2 (1 + 1/B) lam^2) + (eta^2/B) lam lam^T,
    L_T     = lam . c_T.

The schedule minimising the final loss L_T over ``0 <= eta_t <= cap`` is found by optimal
control: the adjoint (co-state) ``p_T = lam``, ``p_t = A(eta_t)^T p_{t+1}`` gives the exact
gradient

    dL_T / d eta_t = p_{t+1} . [ (-2 lam + 2 eta_t (1+1/B) lam^2) * c_t ]
                     + (2 eta_t / B) (p_{t+1} . lam) (lam . c_t + sigma2)

in O(T N), and L-BFGS-B with box constraints does the rest (on every step's rate for short
horizons, on piecewise-linear knots for long ones). The same control problem can be posed on
the paper's *functional scaling law* (S2), the small-step (Volterra) limit of (S1) in which
the loss depends on the schedule only through ``tau = sum eta`` and the SGD-noise kernel
``K(u) = sum_k lam_k^2 e^{-2 lam_k u}`` (:func:`functional_scaling_law`; there
``A(eta) = diag(e^{-2 eta lam}) + (eta^2/B) lam lam^T``). Phase structure reported by the paper
The paper's statements: in the *hard* phase the optimal schedule keeps a T-independent rate for most of
training and anneals over a vanishing fraction of steps (warmup-stable-decay-like); in the
*easy* phase it decays polynomially, eta*(t) ~ T^{-xi} (1 - t/T)^delta. Which phase applies
is read off the numbers here; the boundary ``beta = 2 - 1/alpha`` of
:func:`phase_heuristic` is a scaling heuristic, not a result of the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import daxpy as _daxpy
from scipy.optimize import minimize, minimize_scalar

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_choice, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.sgd import (_check_batch, _check_problem, _critical_lr_one, _sgd_recursion, _split_modes,
                              learning_curve)

__all__ = [
    "OptimalScheduleResult",
    "FSLResult",
    "functional_scaling_law",
    "final_loss",
    "final_loss_gradient",
    "tune_peak_lr",
    "optimal_schedule",
    "ScheduleStudy",
    "schedule_study",
    "cosine_schedule",
    "constant_schedule",
    "schedule_shape",
    "phase_heuristic",
    "power_law_problem",
]


# --------------------------------------------------------------------------- problems
def power_law_problem(n_modes: int, alpha: float, beta: float, *, trace: float = 1.0):
    """Eigenvalues ``lam_k ∝ k^{-alpha}`` (summing to ``trace``) and target power with tail
    ``sum_{l > k} lam_l w*_l^2 ∝ k^{-alpha beta}`` (per-mode power ∝ k^{-alpha beta - 1},
    summing to 1, so L_0 = 1): the source/capacity parameterisation of the schedules paper.

    Returns
    -------
    eigenvalues, target_power : ndarray, shape (n_modes,)
    """
    n = check_int(n_modes, "n_modes", lo=1, hi=MAX_SIZE)
    a = check_real(alpha, "alpha", lo=0, lo_closed=False)
    b = check_real(beta, "beta", lo=0, lo_closed=False)
    tr = check_real(trace, "trace", lo=0, lo_closed=False)
    k = np.arange(1, n + 1, dtype=float)
    lam = k**-a
    lam *= tr / lam.sum()
    p = k ** (-a * b - 1.0)
    return lam, p / p.sum()


def constant_schedule(steps: int) -> np.ndarray:
    """All-ones shape of length ``steps`` (multiply by a peak rate)."""
    return np.ones(check_int(steps, "steps", lo=1, hi=MAX_SIZE))


def cosine_schedule(steps: int, *, warmup: int = 0, final_fraction: float = 0.0) -> np.ndarray:
    """Cosine-decay shape in [0, 1] of length ``steps`` (step t uses ``peak * shape[t]``).

    Linear warmup over ``warmup`` steps, then ``f + (1 - f)(1 + cos(pi u))/2`` with u going
    from 0 to 1 over the remaining steps and ``f = final_fraction``.
    """
    T = check_int(steps, "steps", lo=1, hi=MAX_SIZE)
    W = check_int(warmup, "warmup", lo=0, hi=T - 1)
    f = check_real(final_fraction, "final_fraction", lo=0.0, hi=1.0)
    t = np.arange(T, dtype=float)
    warm = (t + 1) / max(W, 1)
    u = (t - W) / max(T - W, 1)
    cos = f + (1.0 - f) * 0.5 * (1.0 + np.cos(np.pi * np.clip(u, 0.0, 1.0)))
    return np.where(t < W, warm, cos)


# --------------------------------------------------------------------------- loss and gradient
_DENSE_LIMIT = 2e7  # T * N above which the adjoint is computed step by step (memory)


def _diag(e, lam_p, inv_b, fsl):
    """Diagonal of A(eta) and of dA/deta (broadcast over e): (S1), or (S2) when ``fsl``."""
    if fsl:
        a = np.exp(-2.0 * e * lam_p)
        return a, -2.0 * lam_p * a
    a = 1.0 - 2.0 * e * lam_p + (e * e * (1.0 + inv_b)) * (lam_p * lam_p)
    return a, -2.0 * lam_p + (2.0 * (1.0 + inv_b)) * e * (lam_p * lam_p)


def _axpy(x, y, n, a):
    """``y += a * x`` in place (BLAS daxpy: no temporary, unlike ``y += a * x``)."""
    _daxpy(x, y, n=n, a=a)


def _loss_and_grad(lam_p, c0, s2, B, etas, want_grad=True, fsl=False):
    """Final excess loss and its gradient wrt every step's rate (adjoint method).

    The dynamics are ``c_{t+1} = A(eta_t) c_t + (eta_t^2/B)(lam . c_t + s2) lam`` with the diagonal
    part of A from (S1), or ``exp(-2 eta lam)`` for the functional scaling law (S2) (``fsl``).
    """
    if etas.shape[0] * lam_p.size <= _DENSE_LIMIT:
        return _loss_and_grad_dense(lam_p, c0, s2, B, etas, want_grad, fsl)
    return _loss_and_grad_steps(lam_p, c0, s2, B, etas, want_grad, fsl)


def _loss_and_grad_dense(lam_p, c0, s2, B, etas, want_grad=True, fsl=False):
    """As :func:`_loss_and_grad`, with the per-step diagonals precomputed as (T, N) arrays.

    The loops write in place (rows of the state arrays, BLAS axpy for the rank-one term), and
    the gradient's ``p . (dA * c)`` is formed from ``p * c`` with two matrix-vector products
    (dA is affine in lam for (S1)), so no (T, N) array of dA is built.
    """
    T, N = etas.shape[0], lam_p.size
    inv_b = 1.0 / B
    e = etas[:, None]
    if fsl:
        A = np.exp((-2.0 * e) * lam_p)
    else:  # 1 - 2 e lam + e^2 (1 + 1/B) lam^2 = 1 + u ((1 + 1/B) u - 2), u = e lam
        A = e * lam_p
        A *= (1.0 + inv_b) * A - 2.0
        A += 1.0
    coef = etas * etas * inv_b  # (T,)
    C = np.empty((T + 1, N))
    Ls = np.empty(T + 1)
    C[0] = c0
    for t in range(T):
        Ls[t] = L = C[t] @ lam_p
        np.multiply(A[t], C[t], out=C[t + 1])
        _axpy(lam_p, C[t + 1], N, coef[t] * (L + s2))
    LT = float(C[T] @ lam_p)
    if not want_grad:
        return LT, None
    Pn = np.empty((T + 1, N))  # Pn[t] = p_{t+1}
    pl = np.empty(T)
    Pn[T - 1] = lam_p
    for t in range(T - 1, -1, -1):
        pl[t] = q = Pn[t] @ lam_p
        if t:
            np.multiply(A[t], Pn[t], out=Pn[t - 1])
            _axpy(lam_p, Pn[t - 1], N, coef[t] * q)
    PC = Pn[:T]
    PC *= C[:T]
    if fsl:  # dA = -2 lam A
        PC *= A
        g = -2.0 * (PC @ lam_p)
    else:  # dA = -2 lam + 2 (1 + 1/B) e lam^2
        g = (2.0 * (1.0 + inv_b)) * etas * (PC @ (lam_p * lam_p)) - 2.0 * (PC @ lam_p)
    g += (2.0 * etas * inv_b) * pl * (Ls[:T] + s2)
    return LT, g


def _loss_and_grad_steps(lam_p, c0, s2, B, etas, want_grad=True, fsl=False):
    """Step-by-step adjoint (O(T N) memory for the forward states only)."""
    T = etas.shape[0]
    inv_b = 1.0 / B
    C = np.empty((T + 1, lam_p.size)) if want_grad else None
    c = c0.copy()
    for t in range(T):
        e = etas[t]
        if want_grad:
            C[t] = c
        L = c @ lam_p
        c = _diag(e, lam_p, inv_b, fsl)[0] * c + (e * e * inv_b) * (L + s2) * lam_p
    LT = float(c @ lam_p)
    if not want_grad:
        return LT, None
    g = np.empty(T)
    p = lam_p.copy()
    for t in range(T - 1, -1, -1):
        e = etas[t]
        c = C[t]
        L = c @ lam_p
        pl = p @ lam_p
        a, da = _diag(e, lam_p, inv_b, fsl)
        g[t] = p @ (da * c) + (2.0 * e * inv_b) * pl * (L + s2)
        p = a * p + (e * e * inv_b) * pl * lam_p
    return LT, g


def _setup(eigenvalues, target_power, batch_size, noise):
    lam, v2, s2 = _check_problem(eigenvalues, target_power, noise)
    B = int(_check_batch(batch_size).ravel()[0]) if np.ndim(batch_size) == 0 else None
    if B is None:
        fail("batch_size", "a single integer", batch_size, TypeError)
    lam_p, c0, floor, s2_eff = _split_modes(lam, v2, s2)
    return lam_p, c0, floor, s2_eff, B


def _require_signal(c0) -> None:
    if not np.any(np.asarray(c0) > 0):
        fail("target_power", "positive on at least one mode of positive eigenvalue (with no signal "
             "to learn, every schedule is equally good and the optimum is lr = 0)", c0)


def final_loss(eigenvalues, target_power, lrs, batch_size=1, noise=0.0) -> float:
    """Final test loss L_T of online SGD run with the per-step rates ``lrs`` (shape (T,)).

    Equation (eq:schedules.recursion): ``c_{t+1} = A(eta_t) c_t + (eta_t^2/B) sigma2 lam,  L_T = lam . c_T,
        A(eta) = diag(1 - 2 eta lam + eta^2 (1 + 1/B) lam^2) + (eta^2/B) lam lam^T``

    Same conventions and recursion as :func:`lmech.theory.sgd.learning_curve`.
    """
    lam_p, c0, floor, s2_eff, B = _setup(eigenvalues, target_power, batch_size, noise)
    etas = check_array(lrs, "lrs", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    out, _ = _sgd_recursion(lam_p, c0, etas[None, :], np.array([B]), s2_eff, np.array([etas.size]))
    return float(out[0, 0]) + floor


def final_loss_gradient(eigenvalues, target_power, lrs, batch_size=1, noise=0.0, *, dynamics="exact"):
    """L_T and dL_T/d eta_t for every step t (adjoint method, O(T N)).

    ``dynamics`` is "exact" (the recursion (S1), as :func:`final_loss`) or "fsl" (the functional
    scaling law (S2), as :func:`functional_scaling_law`).

    Returns
    -------
    loss : float
    gradient : ndarray, shape (T,)
    """
    lam_p, c0, floor, s2_eff, B = _setup(eigenvalues, target_power, batch_size, noise)
    etas = check_array(lrs, "lrs", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    fsl = check_choice(dynamics, "dynamics", ("exact", "fsl")) == "fsl"
    LT, g = _loss_and_grad(lam_p, c0, s2_eff, B, etas, fsl=fsl)
    return LT + floor, g


def _final(lam_p, c0, s2_eff, B, etas, fsl):
    """L_T for a (G, T) batch of schedules under (S1) (vectorised) or (S2)."""
    T = etas.shape[1]
    if not fsl:
        return _sgd_recursion(lam_p, c0, etas, np.full(etas.shape[0], B), s2_eff, np.array([T]))[0][:, 0]
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array([_loss_and_grad(lam_p, c0, s2_eff, B, e, want_grad=False, fsl=True)[0] for e in etas])
    return np.where(np.isfinite(out), out, np.inf)


def _tune_peak(lam_p, c0, s2_eff, B, shape, cap, fsl=False):
    """Best peak rate in (0, cap] for a given schedule shape (max of shape = 1)."""

    def f(u):
        v = float(_final(lam_p, c0, s2_eff, B, np.exp(u) * shape[None, :], fsl)[0])
        return np.log(v) if np.isfinite(v) and v > 0 else 1e300

    grid = cap * np.geomspace(1e-3, 1.0, 25)
    vals = _final(lam_p, c0, s2_eff, B, grid[:, None] * shape[None, :], fsl)
    i = int(np.nanargmin(np.where(np.isfinite(vals), vals, np.inf)))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, grid.size - 1)])
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7})
    best_u, best_f = (res.x, res.fun) if res.fun < np.log(vals[i]) else (np.log(grid[i]), np.log(vals[i]))
    return float(np.exp(best_u)), float(np.exp(best_f))


def tune_peak_lr(eigenvalues, target_power, shape, batch_size=1, noise=0.0, *, lr_cap=None):
    """Best peak learning rate for a fixed schedule shape, and the resulting final loss.

    Parameters
    ----------
    eigenvalues, target_power, batch_size, noise
        As in :func:`lmech.theory.sgd.learning_curve`.
    shape : array_like, shape (T,)
        Schedule shape (>= 0, maximum 1), e.g. :func:`cosine_schedule` or
        :func:`constant_schedule`; step t uses ``peak * shape[t]``.
    lr_cap : float, optional
        Upper bound of the peak rate (default: the constant-rate critical lr).

    Returns
    -------
    peak : float
    loss : float
        Final loss L_T at that peak (including the unlearnable floor).
    """
    lam_p, c0, floor, s2_eff, B = _setup(eigenvalues, target_power, batch_size, noise)
    _require_signal(c0)
    sh = check_array(shape, "shape", ndim=1, nonnegative=True, min_size=1)
    if sh.max() <= 0:
        fail("shape", "not all zero", sh)
    sh = sh / sh.max()
    crit = _critical_lr_one(lam_p, B)
    cap = crit if lr_cap is None else check_real(lr_cap, "lr_cap", lo=0, lo_closed=False)
    peak, loss = _tune_peak(lam_p, c0, s2_eff, B, sh, cap)
    return peak, loss + floor


# --------------------------------------------------------------------------- functional scaling law
@dataclass(frozen=True, kw_only=True)
class FSLResult(SolverResult):
    """Loss curve of the functional scaling law (S2) for a given schedule.

    Attributes
    ----------
    time : ndarray, shape (T + 1,)
        Intrinsic time ``tau_t = sum_{s < t} eta_s`` (the area under the schedule).
    loss : ndarray, shape (T + 1,)
        ``L_t`` of (S2) at every step (clean target, no factor 1/2, + the unlearnable floor).
    signal : ndarray, shape (T + 1,)
        The noiseless gradient-flow part ``F(tau_t) = sum_k v_k^2 e^{-2 lam_k tau_t}`` (+ floor).
    """

    time: np.ndarray
    loss: np.ndarray
    signal: np.ndarray


def functional_scaling_law(eigenvalues, target_power, lrs, batch_size=1, noise=0.0) -> FSLResult:
    """Loss of online SGD under a schedule from the functional scaling law (S2), step-discretised.

    Equation (eq:schedules.fsl): ``L_t = F(tau_t)
        + (1/B) sum_{s<t} eta_s^2 (L_s + sigma2) K(tau_t - tau_{s+1}),
        F(tau) = sum_k v_k^2 e^{-2 lam_k tau},  K(u) = sum_k lam_k^2 e^{-2 lam_k u}``

    (S2) is the small-step limit of the exact recursion (S1), in which the loss depends on the
    schedule only through the intrinsic time ``tau(t) = int_0^t eta`` and the SGD-noise memory
    kernel ``K(u) = sum_k lam_k^2 e^{-2 lam_k u}``::

        L_t = F(tau_t) + (1/B) sum_{s < t} eta_s^2 (L_s + sigma2) K(tau_t - tau_{s+1}),
        F(tau) = sum_k v_k^2 e^{-2 lam_k tau},

    (the left-point rule for the Volterra integral of "Theory of Optimal Learning Rate
    Schedules and Scaling Laws for a Random Feature Model"). It is evaluated in O(T N) through
    its mode form ``c_{t+1} = e^{-2 eta_t lam} c_t + (eta_t^2/B) lam (L_t + sigma2)``, ``L = lam . c``,
    i.e. (S1) without the O(eta^2 lam^2) drift terms; the two agree to relative O(eta lam_max).

    Parameters
    ----------
    eigenvalues, target_power, batch_size, noise
        As in :func:`lmech.theory.sgd.learning_curve` (a single batch size).
    lrs : array_like, shape (T,)
        Learning rate of every step (>= 0).

    Returns
    -------
    FSLResult
    """
    lam_p, c0, floor, s2_eff, B = _setup(eigenvalues, target_power, batch_size, noise)
    etas = check_array(lrs, "lrs", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    T = etas.size
    loss = np.empty(T + 1)
    c = c0.copy()
    loss[0] = c @ lam_p
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            e = etas[t]
            c = np.exp(-2.0 * e * lam_p) * c + (e * e / B) * (loss[t] + s2_eff) * lam_p
            loss[t + 1] = c @ lam_p
    loss = np.where(np.isfinite(loss), loss, np.inf)
    tau = np.concatenate([[0.0], np.cumsum(etas)])
    signal = np.exp(-2.0 * np.outer(tau, lam_p)) @ (c0 * lam_p)
    finite = bool(np.all(np.isfinite(loss)))
    # an exact evaluation (closed form); a blow-up is the model's prediction of divergence and is
    # reported as status="diverged" with a ConvergenceWarning so it cannot pass unseen
    message = ("exact recursion" if finite else
               "divergent: the SGD-noise feedback outgrew the decay; loss = inf from the overflow on")
    if not finite:
        warn_not_converged("functional_scaling_law", message)
    return FSLResult(time=tau, loss=loss + floor, signal=signal + floor, converged=finite,
                     status="closed_form" if finite else "diverged", iterations=T,
                     residual=float("nan"), message=message)


# --------------------------------------------------------------------------- optimal control
@dataclass(frozen=True, kw_only=True)
class OptimalScheduleResult(SolverResult):
    """Optimal learning-rate schedule for a horizon T.

    Attributes
    ----------
    lr : ndarray, shape (T,)
        Optimal rate at each step (step t -> t+1 uses lr[t]).
    loss : float
        Predicted final test loss L_T under ``lr`` (clean target, no factor 1/2).
    curve : ndarray, shape (T + 1,)
        Predicted loss at every step under ``lr``.
    constant_lr, constant_loss : float
        Best constant rate (below the cap) and its final loss.
    gain : float
        ``loss / constant_loss`` (< 1: the schedule beats every constant rate).
    lr_cap : float
        Upper bound imposed on every step's rate.
    critical_lr : float
        Largest stable constant rate for this batch size.
    knots : ndarray or None
        Knot positions (steps) when the schedule was parameterised piecewise-linearly.
    dynamics : str
        Loss model that was optimised: "exact" (S1) or "fsl" (S2).
    exact_loss : float
        Final loss of ``lr`` under the exact recursion (S1) (= ``loss`` for "exact").
    """

    lr: np.ndarray
    loss: float
    curve: np.ndarray
    constant_lr: float
    constant_loss: float
    gain: float
    lr_cap: float
    critical_lr: float
    knots: np.ndarray | None
    dynamics: str
    exact_loss: float


def _knot_matrix(T, n_knots):
    """Knot positions dense near both ends (log-spaced in t and in T - t) and the (T, K)
    linear-interpolation matrix."""
    half = max(n_knots // 2, 2)
    left = np.geomspace(1.0, T / 2.0, half) - 1.0
    right = (T - 1) - (np.geomspace(1.0, T / 2.0, n_knots - half + 1) - 1.0)
    knots = np.unique(np.round(np.concatenate([left, right])).astype(int))
    knots = knots[(knots >= 0) & (knots <= T - 1)]
    t = np.arange(T)
    W = np.zeros((T, knots.size))
    j = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, knots.size - 2)
    x0, x1 = knots[j], knots[j + 1]
    frac = (t - x0) / (x1 - x0)
    W[t, j] = 1.0 - frac
    W[t, j + 1] += frac
    return knots, W


def optimal_schedule(
    eigenvalues,
    target_power,
    steps,
    batch_size=1,
    noise=0.0,
    *,
    lr_cap=None,
    n_knots=None,
    dynamics: str = "exact",
    max_iter: int = 2000,
    tol: float = 1e-10,
) -> OptimalScheduleResult:
    """Learning-rate schedule minimising the final test loss of online SGD (optimal control).

    Equation (eq:schedules.optimal_schedule): ``eta* = argmin_{0 <= eta_t <= cap} L_T,   p_T = lam,
        p_t = A(eta_t)^T p_{t+1},
        dL_T/d eta_t = p_{t+1} . [(-2 lam + 2 eta_t (1+1/B) lam^2) * c_t]
        + (2 eta_t / B) (p_{t+1} . lam) (lam . c_t + sigma2)``

    Minimises ``log L_T`` over ``0 <= eta_t <= lr_cap`` for the exact recursion (S1) (or the
    functional scaling law (S2), see :func:`functional_scaling_law`) with the adjoint
    gradient (module docstring) and L-BFGS-B, starting from the best constant rate
    ("Theory of Optimal Learning Rate Schedules and Scaling Laws for a Random Feature Model").
    Cost O(T N) per L-BFGS-B iteration.

    Parameters
    ----------
    eigenvalues, target_power, batch_size, noise
        As in :func:`lmech.theory.sgd.learning_curve` (a single batch size).
    steps : int
        Horizon T >= 1.
    lr_cap : float, optional
        Upper bound on every step's rate; default 0.98 x the constant-rate critical lr
        (time-varying schedules may exceed the constant-rate bound transiently, so the cap
        is a modelling choice, reported in the result).
    n_knots : int, optional
        Optimise a piecewise-linear schedule on this many knots (dense near both ends)
        instead of every step; default: every step for T <= 3000, else 64 knots.
    dynamics : {"exact", "fsl"}
        Loss model optimised: the exact recursion (S1) or the functional scaling law (S2).
        ``loss``/``curve``/``constant_*`` are under that model; ``exact_loss`` is always (S1).
    max_iter : int
        L-BFGS-B iteration cap.
    tol : float
        L-BFGS-B tolerance on the relative decrease of log L_T.

    Returns
    -------
    OptimalScheduleResult
        ``converged`` is L-BFGS-B's success flag (a ConvergenceWarning is issued if not).
    """
    lam_p, c0, floor, s2_eff, B = _setup(eigenvalues, target_power, batch_size, noise)
    _require_signal(c0)
    T = check_int(steps, "steps", lo=1, hi=MAX_SIZE)
    fsl = check_choice(dynamics, "dynamics", ("exact", "fsl")) == "fsl"
    max_iter = check_int(max_iter, "max_iter", lo=1)
    tol = check_real(tol, "tol", lo=0, lo_closed=False)
    crit = _critical_lr_one(lam_p, B)
    cap = 0.98 * crit if lr_cap is None else check_real(lr_cap, "lr_cap", lo=0, lo_closed=False)
    if n_knots is None:
        n_knots = None if T <= 3000 else 64
    elif T < 4:
        n_knots = None
    else:
        n_knots = check_int(n_knots, "n_knots", lo=4, hi=T)

    e_const, l_const = _tune_peak(lam_p, c0, s2_eff, B, np.ones(T), cap, fsl)
    if n_knots is None:
        knots, W = None, None
        x0 = np.full(T, e_const)
    else:
        knots, W = _knot_matrix(T, n_knots)
        x0 = np.full(knots.size, e_const)

    def fun(x):
        etas = x if W is None else W @ x
        LT, g = _loss_and_grad(lam_p, c0, s2_eff, B, etas, fsl=fsl)
        if not np.isfinite(LT) or LT <= 0:
            return 1e300, np.zeros_like(x)
        g = g / LT
        return float(np.log(LT)), (g if W is None else W.T @ g)

    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, cap)] * x0.size,
                   options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-12, "maxfun": 4 * max_iter})
    x = res.x if np.exp(res.fun) <= l_const else x0
    etas = x if W is None else W @ x
    exact, _ = _sgd_recursion(lam_p, c0, etas[None, :], np.array([B]), s2_eff)
    exact = exact[0] + floor
    if fsl:
        curve = functional_scaling_law(eigenvalues, target_power, etas, B, noise).loss
    else:
        curve = exact
    loss = float(curve[-1])
    # L-BFGS-B reports "ABNORMAL" line searches at a flat optimum; accept when the projected
    # gradient is small relative to the loss scale
    converged = bool(res.success or np.max(np.abs(_projected_grad(res, cap))) < 1e-6)
    message = str(res.message)
    if not converged:
        warn_not_converged("optimal_schedule", message)
    return OptimalScheduleResult(
        lr=etas, loss=loss, curve=curve, constant_lr=e_const, constant_loss=l_const + floor,
        gain=loss / (l_const + floor), lr_cap=cap, critical_lr=crit, knots=knots, dynamics=dynamics,
        exact_loss=float(exact[-1]),
        converged=converged, iterations=int(res.nit), residual=float(np.max(np.abs(_projected_grad(res, cap)))),
        message=message,
    )


def _projected_grad(res, cap):
    g = np.asarray(res.jac, dtype=float)
    x = np.asarray(res.x, dtype=float)
    g = np.where((x <= 0) & (g > 0), 0.0, g)
    g = np.where((x >= cap) & (g < 0), 0.0, g)
    return g


# --------------------------------------------------------------------------- shape summaries
def schedule_shape(lr) -> dict:
    """Summaries of a schedule's shape used to classify phases.

    Returns a dict with ``peak`` (max rate), ``peak_position`` (t/T of the max),
    ``decay_fraction`` (fraction of steps, counted from the end, after the rate last exceeded
    half its peak), ``quantiles`` (rate at t/T = 0, .25, .5, .75, .9, .99) and
    ``delta`` (slope of log eta vs log(1 - t/T) fitted over the last half of training,
    excluding the final 1 % of steps; NaN when fewer than three positive rates lie in that
    window, e.g. a schedule that is zero there).
    """
    eta = check_array(lr, "lr", ndim=1, nonnegative=True, min_size=4)
    T = eta.size
    peak = float(eta.max())
    above = np.nonzero(eta >= 0.5 * peak)[0]
    decay_fraction = float((T - 1 - above[-1]) / T)
    q = {f: float(eta[min(int(f * T), T - 1)]) for f in (0.0, 0.25, 0.5, 0.75, 0.9, 0.99)}
    t = np.arange(T)
    sel = (t >= T // 2) & (t <= int(0.99 * T)) & (eta > 0)
    if sel.sum() >= 3:
        x = np.log(1.0 - t[sel] / T)
        delta = float(np.polyfit(x, np.log(eta[sel]), 1)[0])
    else:
        delta = float("nan")
    return {"peak": peak, "peak_position": float(np.argmax(eta) / T), "decay_fraction": decay_fraction,
            "quantiles": q, "delta": delta}


def phase_heuristic(alpha: float, beta: float, noise: float = 0.0) -> str:
    """'hard' if beta < 2 - 1/alpha and noise == 0, else 'easy'.

    A heuristic scaling argument (not the paper's result): in the continuous-time Volterra form
    of (S1) the SGD-noise memory kernel decays as u^{-(2 - 1/alpha)}; when the bias decays
    more slowly (beta < 2 - 1/alpha) a T-independent constant rate is optimal for most of
    training (hard phase), otherwise the rate must shrink with T (easy phase). An additive
    noise floor always favours decaying rates.
    """
    a = check_real(alpha, "alpha", lo=1, lo_closed=False)
    b = check_real(beta, "beta", lo=0, lo_closed=False)
    s = check_real(noise, "noise", lo=0)
    return "hard" if (b < 2.0 - 1.0 / a and s == 0) else "easy"


# --------------------------------------------------------------------------- study
@dataclass(frozen=True)
class ScheduleStudy:
    """Optimal schedules at several horizons and three schedules to run at one horizon.

    Attributes
    ----------
    by_horizon : dict[int, OptimalScheduleResult]
        The exact-recursion optimum at every horizon (and at ``steps``).
    lr : dict[str, ndarray]
        Per-step rates at ``steps``: ``"optimal"``, ``"constant"`` (best constant rate) and
        ``"cosine"`` (10 % linear warmup + cosine decay, peak tuned).
    final_loss : dict[str, float]
        Their final losses L_T (exact recursion).
    window : ndarray of int
        The last 5 % of steps (at least one), over which a final loss is averaged.
    window_loss : dict[str, float]
        The predicted loss of each schedule averaged over ``window``.
    fsl : OptimalScheduleResult
        The optimum of the functional scaling law (S2) at ``steps`` (``exact_loss`` is its
        final loss under (S1)).
    """

    by_horizon: dict
    lr: dict
    final_loss: dict
    window: np.ndarray
    window_loss: dict
    fsl: OptimalScheduleResult

    def summary(self) -> dict:
        """Per-horizon optimum (losses, best constant rate, :func:`schedule_shape`) and the
        (S2) optimum's quality under (S1), as plain numbers for a report."""
        best = self.by_horizon[self.lr["optimal"].size].loss
        return {
            "by_horizon": {h: {"constant_lr": r.constant_lr, "constant_loss": r.constant_loss, "optimal_loss": r.loss,
                               "gain_vs_constant": r.gain, **schedule_shape(r.lr), "converged": r.converged}
                           for h, r in self.by_horizon.items()},
            "fsl_optimum": {"fsl_loss": self.fsl.loss, "exact_loss_of_fsl_schedule": self.fsl.exact_loss,
                            "ratio_to_exact_optimum": self.fsl.exact_loss / best, "converged": self.fsl.converged,
                            **schedule_shape(self.fsl.lr)},
        }


def schedule_study(eigenvalues, target_power, horizons, steps, batch_size=1, noise=0.0) -> ScheduleStudy:
    """Optimal schedules at each of ``horizons`` and, at ``steps``, the optimum against a tuned
    constant rate and a tuned warmup + cosine schedule (see :class:`ScheduleStudy`).

    Parameters
    ----------
    eigenvalues, target_power, batch_size, noise
        As in :func:`optimal_schedule`.
    horizons : sequence of int
        Horizons T (>= 4) whose optimal schedules are compared for shape.
    steps : int
        The horizon (>= 20) at which the three schedules are compared (e.g. in simulation).
    """
    T = check_int(steps, "steps", lo=20, hi=MAX_SIZE)
    Ts = sorted({check_int(h, "horizons", lo=4) for h in horizons} | {T})
    by_T = {h: optimal_schedule(eigenvalues, target_power, h, batch_size, noise) for h in Ts}
    opt = by_T[T]
    shape = cosine_schedule(T, warmup=T // 10)
    peak, cos_loss = tune_peak_lr(eigenvalues, target_power, shape, batch_size, noise, lr_cap=opt.lr_cap)
    lr = {"optimal": opt.lr, "constant": np.full(T, opt.constant_lr), "cosine": peak * shape}
    window = np.arange(T - max(1, T // 20) + 1, T + 1)
    window_loss = {k: float(learning_curve(eigenvalues, target_power, v.max(), batch_size, T, noise,
                                           schedule=v / v.max(), times=window).loss.mean()) for k, v in lr.items()}
    fsl = optimal_schedule(eigenvalues, target_power, T, batch_size, noise, dynamics="fsl")
    return ScheduleStudy(by_horizon=by_T, lr=lr, final_loss={"optimal": opt.loss, "constant": opt.constant_loss,
                                                             "cosine": cos_loss},
                         window=window, window_loss=window_loss, fsl=fsl)
