"""Test-loss dynamics of online (one-pass) minibatch SGD on a linear model with Gaussian features.

Theory of Bordelon & Pehlevan, "Learning Curves for SGD on Structured Features".

Conventions (used by every function here and by :mod:`lmech.sim.linear_sgd`)
------------------------------------------------------------------------------
* Features ``psi(x)`` in R^N are Gaussian with covariance ``Sigma = sum_k lam_k u_k u_k^T``
  (``eigenvalues[k] = lam_k``). Work in the eigenbasis: ``psi_k = sqrt(lam_k) z_k``, z iid N(0, 1).
* Target ``y = f*(x) + eps`` with ``f*(x) = sum_k v_k z_k`` and ``eps ~ (0, noise)``;
  ``target_power[k] = v_k**2`` is the squared coefficient of the target on the k-th
  *orthonormal* eigenfunction, i.e. ``lam_k w*_k**2`` in weight space. Power on modes with
  ``lam_k = 0`` cannot be learned and acts exactly like extra label noise.
* Model ``f(x) = w . psi(x)``, ``w_0 = 0``; one SGD step (t -> t+1) on the half squared loss
  with a batch of ``B`` *fresh* samples and learning rate ``eta_t``::

      w_{t+1} = w_t - (eta_t / B) sum_{mu=1}^{B} psi_mu (psi_mu . w_t - y_mu).

  Time is counted in steps; ``B t`` samples have been seen after t steps.
* ``loss[t] = E_x (f_t(x) - f*(x))**2``: the *clean-target* test MSE, expectation over the
  SGD randomness, with no factor 1/2 (the paper plots half of this; add ``noise`` for the
  error on noisy test labels).

The mode-wise error second moments ``c_k(t) = E[(u_k . (w_t - w*))^2]`` obey the closed
N-dimensional linear recursion (exact at every finite N, B, t for Gaussian features; the
Gaussian fourth moment E[psi psi^T C psi psi^T] = 2 Sigma C Sigma + Sigma tr(Sigma C))::

    c_k(t+1) = (1 - 2 eta_t lam_k + eta_t^2 (1 + 1/B) lam_k^2) c_k(t)
               + (eta_t^2 / B) lam_k (sum_l lam_l c_l(t) + sigma2)                      (S1)
    loss[t]  = sum_k lam_k c_k(t) + sum_{k: lam_k = 0} v_k^2,     c_k(0) = v_k^2 / lam_k,

with ``sigma2 = noise + sum_{lam_k = 0} v_k^2``. For a constant rate the iteration matrix
``A = diag(a) + (eta^2/B) lam lam^T`` is symmetric positive definite, and since it is a
rank-one update of a diagonal its largest eigenvalue is below 1 iff ``eta (1 + 1/B) lam_max < 2``
and ``g(eta) = (eta/B) sum_k lam_k / (2 - eta (1 + 1/B) lam_k) < 1`` (secular equation at 1).
The critical learning rate solves ``g(eta) = 1``; below it the loss tends to
``sigma2 g / (1 - g)`` (+ the unlearnable floor), above it the loss grows geometrically.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, check_scale, fail
from lmech.results import SolverResult, warn_not_converged

__all__ = [
    "SGDCurveResult",
    "OptimalBatchResult",
    "learning_curve",
    "critical_lr",
    "optimal_batch",
    "gaussian_equivalent",
    "GaussianEquivalent",
    "FeatureCurveResult",
    "learning_curve_features",
]

# loss values above this (times the initial scale) mark a run as numerically diverged
_BLOWUP = 1e250


@dataclass(frozen=True, kw_only=True)
class SGDCurveResult(SolverResult):
    """Expected test loss of online SGD, on a grid of (lr, batch_size) configurations.

    Attributes
    ----------
    steps : ndarray of int, shape (n_times,)
        Step indices at which the loss is reported (0 = initialisation).
    loss : ndarray, shape grid_shape + (n_times,)
        Expected clean-target test MSE ``E (f_t - f*)^2`` (no factor 1/2). Once a
        configuration has diverged numerically its remaining entries are ``+inf`` (never NaN).
    lr : ndarray, shape grid_shape
        Learning rate of each configuration (the peak rate when a ``schedule`` was given).
    batch_size : ndarray of int, shape grid_shape
        Batch size of each configuration.
    critical_lr : ndarray, shape grid_shape
        Largest stable *constant* learning rate for that batch size.
    stable : ndarray of bool, shape grid_shape
        Whether every step's learning rate is below ``critical_lr`` (a schedule may exceed
        the constant-rate bound transiently and still converge; see ``diverged``).
    diverged : ndarray of bool, shape grid_shape
        Whether the loss blew up (overflowed float64) within the horizon.
    asymptotic_loss : ndarray, shape grid_shape
        t -> infinity loss at the configuration's constant learning rate
        (``sigma2 g/(1-g) + floor``); ``inf`` where unstable.
    growth_factor : ndarray, shape grid_shape
        Spectral radius rho of the constant-rate iteration matrix A(eta, B) of (S1) at the
        configuration's (peak) rate: the loss ultimately changes by a factor rho per step,
        towards ``asymptotic_loss`` when rho < 1 and geometrically up (divergence, the loss
        ~ rho^t) when rho >= 1. ``stable`` for a constant rate is ``rho < 1``.
    noise_floor : float
        ``sum_{lam_k = 0} v_k^2``: target power no linear model on these features can learn.
    """

    steps: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    batch_size: np.ndarray
    critical_lr: np.ndarray
    stable: np.ndarray
    diverged: np.ndarray
    asymptotic_loss: np.ndarray
    growth_factor: np.ndarray
    noise_floor: float


@dataclass(frozen=True, kw_only=True)
class OptimalBatchResult(SolverResult):
    """Best final loss at a fixed sample budget, per batch size (lr tuned per batch size).

    Attributes
    ----------
    budget : int
        Number of samples ``C = B * steps``.
    batch_sizes : ndarray of int, shape (n,)
    steps : ndarray of int, shape (n,)
        ``C // B`` for each batch size.
    lr : ndarray, shape (n,)
        Tuned learning rate for each batch size.
    loss : ndarray, shape (n,)
        Final loss at the tuned learning rate.
    critical_lr : ndarray, shape (n,)
    best_batch_size : int
    best_lr : float
    best_loss : float
    """

    budget: int
    batch_sizes: np.ndarray
    steps: np.ndarray
    lr: np.ndarray
    loss: np.ndarray
    critical_lr: np.ndarray
    best_batch_size: int
    best_lr: float
    best_loss: float


# --------------------------------------------------------------------------- validation
def _check_problem(eigenvalues, target_power, noise):
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail("eigenvalues", "not all zero", lam)
    check_scale(lam, "eigenvalues")
    v2 = check_array(target_power, "target_power", shape=(lam.shape[0],), nonnegative=True)
    s2 = check_real(noise, "noise", lo=0.0)
    return lam, v2, s2


def _split_modes(lam, v2, s2):
    """Learnable modes (lam > 0) and the unlearnable floor (acts as label noise)."""
    pos = lam > 0
    floor = float(v2[~pos].sum())
    lam_p = lam[pos]
    c0 = v2[pos] / lam_p
    return lam_p, c0, floor, s2 + floor


def _check_batch(batch_size):
    b = np.asarray(batch_size)
    if b.size == 0:
        fail("batch_size", "an integer or a non-empty array of integers", batch_size)
    if b.dtype == bool or not (np.issubdtype(b.dtype, np.integer) or np.issubdtype(b.dtype, np.floating)):
        fail("batch_size", "an integer or an array of integers", batch_size, TypeError)
    if not np.all(np.isfinite(b)) or np.any(b != np.round(b)):
        fail("batch_size", "integer-valued", batch_size, TypeError)
    if np.any(b < 1):
        fail("batch_size", ">= 1", batch_size)
    return b.astype(np.int64)


# --------------------------------------------------------------------------- stability
def _g(eta, lam, B):
    """(eta/B) sum lam/(2 - eta (1+1/B) lam); +inf beyond the diagonal stability bound."""
    denom = 2.0 - eta * (1.0 + 1.0 / B) * lam
    if np.any(denom <= 0):
        return np.inf
    return float(eta / B * np.sum(lam / denom))


def _critical_lr_one(lam_p, B):
    upper = 2.0 / ((1.0 + 1.0 / B) * lam_p.max())
    # g increases from 0 to +inf on (0, upper): a unique root
    f = lambda e: _g(e, lam_p, B) - 1.0 if e < upper else np.inf  # noqa: E731
    hi = upper * (1 - 1e-15)
    if f(hi) <= 0:  # numerically the diagonal bound binds (g(hi) finite but < 1)
        return hi
    return brentq(f, 0.0, hi, xtol=1e-15 * upper, rtol=1e-15, maxiter=500)


def critical_lr(eigenvalues, batch_size=1):
    """Largest stable constant learning rate of online SGD with Gaussian features.

    Equation (eq:sgd.critical_lr): ``g(eta) = (eta / B) sum_k lam_k / (2 - eta (1 + 1/B) lam_k) = 1``

    The expected second moments follow (S1); with a constant rate eta their iteration matrix
    ``A = diag(1 - 2 eta lam + eta^2 (1+1/B) lam^2) + (eta^2/B) lam lam^T`` is a positive
    definite rank-one update of a diagonal, whose top eigenvalue crosses 1 exactly when the
    secular function ``g(eta) = (eta/B) sum_k lam_k / (2 - eta (1+1/B) lam_k)`` reaches 1.

    Parameters
    ----------
    eigenvalues : array_like, shape (N,)
        Feature-covariance eigenvalues (>= 0; zeros ignored).
    batch_size : int or array_like of int
        Batch size(s) B >= 1.

    Returns
    -------
    float or ndarray
        eta_max(B), same shape as ``batch_size``. For B = 1 and a flat spectrum it is close to
        ``2 / (tr Sigma + 2 lam_max)``; as B -> infinity it tends to ``2 / lam_max`` (gradient descent).

    Notes
    -----
    This is the threshold of the *expected* (mean-square) loss. With many effective
    dimensions (flat spectra) single runs diverge at the same rate; for steep spectra and
    small B the per-step multiplicative noise does not self-average and typical runs can stay
    bounded well above eta_max while the mean diverges through rare runs (measured here:
    lam_k ~ k^-1.5, B = 8, at 1.05 eta_max the mean grows ~e^{0.13 t} but the median run decays).
    """
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail("eigenvalues", "not all zero", lam)
    check_scale(lam, "eigenvalues")
    b = _check_batch(batch_size)
    lam_p = lam[lam > 0]
    out = np.array([_critical_lr_one(lam_p, int(B)) for B in b.ravel()]).reshape(b.shape)
    return float(out) if out.ndim == 0 else out


def _growth_factor(eta, lam_p, B):
    """Top eigenvalue of A = diag(a) + (eta^2/B) lam lam^T (positive definite: a_k > 0 always).

    With ``d_k = max(a) - a_k >= 0`` and ``r_k = (eta^2/B) lam_k^2`` it is ``max(a) + y``, y the
    root in ``(0, sum r]`` of the secular equation ``sum_k r_k / (y + d_k) = 1`` (the left side
    decreases from +inf to <= 1 there); O(N) per evaluation.
    """
    a = 1.0 - 2.0 * eta * lam_p + eta * eta * (1.0 + 1.0 / B) * lam_p**2
    r = eta * eta / B * lam_p**2
    amax = float(a.max())
    d = amax - a
    hi = float(r.sum())
    h = lambda y: float(np.sum(r / (y + d))) - 1.0  # noqa: E731
    lo = 1e-300
    with np.errstate(over="ignore", divide="ignore"):
        if not h(lo) > 0:  # no weight on the top diagonal entries: the root is below 1e-300
            return amax
    if h(hi) >= 0:
        return amax + hi
    return amax + brentq(h, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)


def _asymptotic(eta, lam_p, B, s2_eff):
    g = _g(eta, lam_p, B)
    if not np.isfinite(g) or g >= 1:
        return np.inf
    return s2_eff * g / (1.0 - g)


# --------------------------------------------------------------------------- recursion
def _sgd_recursion(lam_p, c0, etas, batch_sizes, sigma2, record=None):
    """Iterate (S1) for G configurations at once (no validation; internal workhorse).

    Parameters
    ----------
    lam_p : (N,) positive eigenvalues.  c0 : (N,) initial second moments.
    etas : (G, T) learning rate of each configuration at each step.
    batch_sizes : (G,) batch sizes.  sigma2 : effective label-noise variance.
    record : sorted int array of steps to report, or None for all 0..T.

    Returns
    -------
    loss : (G, n_record) excess loss sum_k lam_k c_k(t); ``inf`` after numerical blow-up.
    diverged : (G,) bool.
    """
    G, T = etas.shape
    steps = np.arange(T + 1) if record is None else record
    want = np.zeros(T + 1, dtype=bool)
    want[steps] = True
    slot = np.cumsum(want) - 1
    out = np.empty((G, len(steps)))
    inv_b = 1.0 / batch_sizes.astype(float)
    c = np.tile(c0, (G, 1))
    L = c @ lam_p
    scale = max(float(L.max()), sigma2, 1e-300)
    alive = np.ones(G, dtype=bool)
    lam2 = lam_p * lam_p
    if want[0]:
        out[:, 0] = L
    with np.errstate(over="ignore", invalid="ignore"):
        _iterate(T, etas, lam_p, lam2, inv_b, sigma2, c, L, scale, alive, want, slot, out)
    return out, ~alive


def _iterate(T, etas, lam_p, lam2, inv_b, sigma2, c, L, scale, alive, want, slot, out):
    constant = T > 0 and bool(np.all(etas == etas[:, :1]))
    if constant:
        eta = etas[:, 0]
        a = 1.0 - 2.0 * eta[:, None] * lam_p + ((eta * eta) * (1.0 + inv_b))[:, None] * lam2
        coef = (eta * eta * inv_b)[:, None] * lam_p
    for t in range(T):
        if not constant:
            eta = etas[:, t]
            a = 1.0 - 2.0 * eta[:, None] * lam_p + ((eta * eta) * (1.0 + inv_b))[:, None] * lam2
            coef = (eta * eta * inv_b)[:, None] * lam_p
        c = a * c + coef * (L + sigma2)[:, None]
        L = c @ lam_p
        if not np.all(L < _BLOWUP * scale):  # also catches inf/nan
            bad = ~(L < _BLOWUP * scale)
            alive &= ~bad
            c[bad] = np.inf
            L = np.where(bad, np.inf, L)
        if want[t + 1]:
            out[:, slot[t + 1]] = L


def _as_times(times, steps):
    if times is None:
        return None
    tt = check_array(times, "times", max_abs=MAX_MAGNITUDE, ndim=1, min_size=1, dtype=np.float64)
    if np.any(tt != np.round(tt)) or np.any(tt < 0) or np.any(tt > steps):
        fail("times", f"integers in [0, steps={steps}]", times)
    return np.unique(tt.astype(np.int64))


def learning_curve(
    eigenvalues,
    target_power=None,
    lr=None,
    batch_size=None,
    steps=None,
    noise=None,
    *,
    schedule=None,
    times=None,
) -> SGDCurveResult:
    """Expected test loss vs step of online minibatch SGD on Gaussian features (S1).

    Equation (eq:sgd.recursion): ``c_k(t+1) = (1 - 2 eta_t lam_k + eta_t^2 (1 + 1/B) lam_k^2) c_k(t)
        + (eta_t^2 / B) lam_k (sum_l lam_l c_l(t) + sigma2),   loss[t] = sum_k lam_k c_k(t)``

    Solves the exact mode-wise second-moment recursion (S1) of Bordelon & Pehlevan,
    "Learning Curves for SGD on Structured Features" (see the module docstring for every
    convention: loss without the factor 1/2, clean targets, time in steps, fresh batches).
    ``lr`` and ``batch_size`` broadcast against each other, so a whole grid of
    configurations is solved in one vectorised pass; each step costs O(grid x N).

    Parameters
    ----------
    eigenvalues : array_like, shape (N,), or GaussianEquivalent
        Feature-covariance eigenvalues lam_k >= 0 (any order); or the result of
        :func:`gaussian_equivalent`, which supplies the eigenvalues, the target power and the
        label noise (its residual), and then ``target_power`` and ``noise`` must be left out.
    target_power : array_like, shape (N,)
        Target power v_k^2 = lam_k w*_k^2 on each eigenfunction (>= 0). Power on zero
        eigenvalues is an unlearnable floor and acts as label noise.
    lr : float or array_like
        Learning rate(s) eta > 0. With ``schedule`` this is the peak rate that multiplies it.
    batch_size : int or array_like of int
        Batch size(s) B >= 1, broadcast against ``lr`` (e.g. ``lr[:, None]`` and
        ``batch_size[None, :]`` give the full lr x B grid).
    steps : int
        Number of SGD steps T >= 0; the curve has T + 1 points (t = 0..T) unless ``times``.
    noise : float
        Label-noise variance sigma2 >= 0 of the training labels (default 0).
    schedule : array_like, shape (T,), optional
        Multiplier of ``lr`` at each step (step t -> t+1 uses ``lr * schedule[t]``), >= 0.
    times : array_like of int, optional
        Steps at which to report the loss (default: every step 0..T).

    Returns
    -------
    SGDCurveResult
        ``loss`` has shape ``broadcast(lr, batch_size).shape + (n_times,)``.
        The recursion is exact (``status="closed_form"``, ``residual`` NaN, ``iterations`` =
        steps); settings the theory predicts to diverge are reported through
        ``stable``/``critical_lr``/``diverged`` (and the loss reads ``+inf`` once it
        overflows), never as NaN. When any configuration overflowed, the result says
        ``status="diverged"``, ``converged=False`` and a ConvergenceWarning is issued.

    Examples
    --------
    >>> from lmech.spectra import power_law
    >>> lam = power_law(200, 1.3, normalize=True)
    >>> res = learning_curve(lam, power_law(200, 1.5, normalize=True), lr=[0.5, 1.0], batch_size=1, steps=100)
    >>> res.loss.shape
    (2, 101)
    """
    if isinstance(eigenvalues, GaussianEquivalent):
        if target_power is not None:
            fail("target_power", "left out when `eigenvalues` is a GaussianEquivalent (it carries the target power)",
                 target_power, TypeError)
        if noise is not None:
            fail("noise", "left out when `eigenvalues` is a GaussianEquivalent (its residual is the noise)",
                 noise, TypeError)
        eigenvalues, target_power, noise = eigenvalues
    for name, value in (("target_power", target_power), ("lr", lr), ("batch_size", batch_size), ("steps", steps)):
        if value is None:
            fail(name, "given (it has no default)", value, TypeError)
    lam, v2, s2 = _check_problem(eigenvalues, target_power, 0.0 if noise is None else noise)
    T = check_int(steps, "steps", lo=0, hi=MAX_SIZE)
    eta = check_array(lr, "lr", positive=True, min_size=1)
    b = _check_batch(batch_size)
    try:
        eta_b, b_b = np.broadcast_arrays(eta, b)
    except ValueError:
        raise ValueError(f"`lr` (shape {eta.shape}) and `batch_size` (shape {b.shape}) must broadcast") from None
    grid_shape = eta_b.shape
    eta_f = np.array(eta_b, dtype=float).ravel()
    b_f = np.array(b_b, dtype=np.int64).ravel()
    if schedule is None:
        sched = np.ones(T)
    else:
        sched = check_array(schedule, "schedule", shape=(T,), nonnegative=True)
    record = _as_times(times, T)

    lam_p, c0, floor, s2_eff = _split_modes(lam, v2, s2)
    etas = eta_f[:, None] * sched[None, :]
    loss, diverged = _sgd_recursion(lam_p, c0, etas, b_f, s2_eff, record)
    loss = loss + floor

    crit_by_b = {int(B): _critical_lr_one(lam_p, int(B)) for B in np.unique(b_f)}
    crit = np.array([crit_by_b[int(B)] for B in b_f])
    peak = etas.max(axis=1) if T > 0 else eta_f
    stable = peak < crit
    asym = np.array([_asymptotic(e, lam_p, int(B), s2_eff) for e, B in zip(eta_f, b_f)]) + floor
    peak_f = np.asarray(peak, dtype=float).reshape(-1)
    rho = np.array([_growth_factor(e, lam_p, int(B)) for e, B in zip(peak_f, b_f)])

    # divergence is a prediction of the theory: it is reported through
    # `stable`/`diverged`/`critical_lr` (and the loss reads +inf), never as NaN; a numerical
    # overflow also sets status="diverged" (with a ConvergenceWarning) so it cannot pass unseen
    n_div = int(diverged.sum())
    n_unstable = int((~stable).sum())
    message = "ok" if n_div == n_unstable == 0 else (
        f"{n_unstable} configuration(s) above the critical learning rate (divergent: loss ~ rho^t, "
        f"max growth factor rho = {rho.max():.4g} per step), {n_div} diverged numerically "
        "(loss = inf from the overflow on); see `stable`, `diverged`, `growth_factor` and `critical_lr`")
    status = "diverged" if n_div else "closed_form"
    if n_div:
        warn_not_converged("sgd.learning_curve", message)
    n_times = loss.shape[1]
    steps_out = np.arange(T + 1) if record is None else record
    return SGDCurveResult(
        steps=steps_out,
        loss=loss.reshape(grid_shape + (n_times,)),
        lr=eta_f.reshape(grid_shape),
        batch_size=b_f.reshape(grid_shape),
        critical_lr=crit.reshape(grid_shape),
        stable=stable.reshape(grid_shape),
        diverged=diverged.reshape(grid_shape),
        asymptotic_loss=asym.reshape(grid_shape),
        growth_factor=rho.reshape(grid_shape),
        noise_floor=floor,
        converged=status == "closed_form",
        status=status,
        iterations=T,
        residual=float("nan"),
        message=message,
    )


# --------------------------------------------------------------------------- batch size
def _final_loss(lam_p, c0, s2_eff, eta, B, T):
    out, _ = _sgd_recursion(lam_p, c0, np.full((np.size(eta), T), 1.0) * np.reshape(eta, (-1, 1)),
                           np.full(np.size(eta), B), s2_eff, np.array([T]))
    return out[:, 0]


def optimal_batch(
    eigenvalues,
    target_power,
    budget,
    noise=0.0,
    *,
    batch_sizes=None,
    n_grid: int = 24,
) -> OptimalBatchResult:
    """Batch size minimising the final loss at a fixed sample budget, lr tuned per batch size.

    For each B in ``batch_sizes`` run T = budget // B steps of (S1) and minimise the final
    loss over constant learning rates in (0, eta_max(B)): a vectorised log-spaced grid of
    ``n_grid`` rates followed by a bounded Brent refinement in log eta. "Learning Curves for
    SGD on Structured Features" finds the optimum at small B for power-law spectra.

    Parameters
    ----------
    eigenvalues, target_power, noise
        As in :func:`learning_curve`.
    budget : int
        Total number of samples C = B * T (>= 1).
    batch_sizes : array_like of int, optional
        Candidates; default powers of two up to ``budget``.
    n_grid : int
        Size of the coarse learning-rate grid (>= 4).

    Returns
    -------
    OptimalBatchResult
    """
    lam, v2, s2 = _check_problem(eigenvalues, target_power, noise)
    C = check_int(budget, "budget", lo=1, hi=MAX_SIZE)
    n_grid = check_int(n_grid, "n_grid", lo=4, hi=MAX_SIZE)
    if batch_sizes is None:
        bs = 2 ** np.arange(int(np.floor(np.log2(C))) + 1)
    else:
        bs = _check_batch(batch_sizes).ravel()
        if bs.size == 0:
            fail("batch_sizes", "non-empty", batch_sizes)
        if np.any(bs > C):
            fail("batch_sizes", f"<= budget ({C})", batch_sizes)
    lam_p, c0, floor, s2_eff = _split_modes(lam, v2, s2)
    lrs, losses, crits, steps = [], [], [], []
    iters = 0
    failed = []
    for b_raw in bs:
        B = int(b_raw)
        T = C // B
        crit = _critical_lr_one(lam_p, B)
        grid = crit * np.geomspace(1e-3, 0.999, n_grid)
        vals = _final_loss(lam_p, c0, s2_eff, grid, B, T)
        i = int(np.argmin(vals))
        lo = np.log(grid[max(i - 1, 0)])
        hi = np.log(grid[min(i + 1, n_grid - 1)])
        res = minimize_scalar(lambda u: float(np.log(_final_loss(lam_p, c0, s2_eff, np.exp(u), B, T)[0])),
                              bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
        e_best, l_best = (float(np.exp(res.x)), float(np.exp(res.fun)))
        if vals[i] < l_best:
            e_best, l_best = float(grid[i]), float(vals[i])
        iters += int(res.nfev) + n_grid
        if not res.success:
            failed.append(B)
        lrs.append(e_best)
        losses.append(l_best + floor)
        crits.append(crit)
        steps.append(T)
    loss_arr = np.array(losses)
    j = int(np.argmin(loss_arr))
    message = "converged (bounded Brent refinement to xatol 1e-6 in log lr; no residual)"
    if failed:
        message = f"bounded lr minimisation failed for batch sizes {failed}"
        warn_not_converged("optimal_batch", message)
    return OptimalBatchResult(
        budget=C, batch_sizes=bs.astype(np.int64), steps=np.array(steps), lr=np.array(lrs), loss=loss_arr,
        critical_lr=np.array(crits), best_batch_size=int(bs[j]), best_lr=float(lrs[j]),
        best_loss=float(loss_arr[j]), converged=not failed, iterations=iters, residual=float("nan"),
        message=message,
    )


# --------------------------------------------------------------------------- real features
@dataclass(frozen=True)
class GaussianEquivalent:
    """Spectral inputs of the Gaussian-feature theory for a pool of real features.

    Pass it straight to :func:`learning_curve` (``learning_curve(ge, lr=..., batch_size=...,
    steps=...)``), which then uses ``noise`` as the label noise. For backward compatibility it
    unpacks (and indexes) as the tuple ``(eigenvalues, target_power, noise)``.

    Attributes
    ----------
    eigenvalues : ndarray, shape (N,)
        Eigenvalues of the pool's uncentred second moment ``Psi^T Psi / n``.
    target_power : ndarray, shape (N,)
        ``lam_k (u_k . w*)^2`` of the best linear predictor ``w*``.
    noise : float
        Residual target variance ``mean(y^2) - sum(target_power)`` (acts as label noise).
    """

    eigenvalues: np.ndarray
    target_power: np.ndarray
    noise: float

    def _astuple(self):
        return (self.eigenvalues, self.target_power, self.noise)

    def __iter__(self):
        return iter(self._astuple())

    def __getitem__(self, index):
        return self._astuple()[index]

    def __len__(self) -> int:
        return 3


def gaussian_equivalent(features, targets):
    """Spectral inputs of the Gaussian-feature theory for a finite pool of real features.

    Treat the pool (n samples, uniform weights) as the data distribution. With
    ``Sigma = Psi^T Psi / n`` (uncentred second moment; SGD from w = 0 sees it), the best
    linear predictor ``w* = Sigma^+ Psi^T y / n`` and the residual variance
    ``mean(y^2) - w*^T Sigma w*``, return the eigenvalues of Sigma, the target power
    ``lam_k (u_k . w*)^2`` and the residual as a :class:`GaussianEquivalent`, which
    :func:`learning_curve` takes in place of ``(eigenvalues, target_power, noise=residual)``. The *Gaussian model* of "Learning Curves
    for SGD on Structured Features" then predicts SGD on the real features (sampling the
    pool) by replacing their fourth moments with Gaussian ones: an approximation whose
    accuracy the claim ``sgd.learning_curve.digits`` measures.

    Parameters
    ----------
    features : array_like, shape (n, N)
        Feature vectors of the pool.
    targets : array_like, shape (n,)
        Scalar targets.

    Returns
    -------
    GaussianEquivalent
        ``eigenvalues``, ``target_power`` and ``noise`` (the residual: unexplained target
        variance, acting as label noise; the clean-target loss the theory reports excludes
        it). Unpacks as the tuple ``(eigenvalues, target_power, residual)``.
    """
    Psi = check_array(features, "features", max_abs=MAX_MAGNITUDE, ndim=2, min_size=1)
    y = check_array(targets, "targets", max_abs=MAX_MAGNITUDE, shape=(Psi.shape[0],))
    n = Psi.shape[0]
    S = Psi.T @ Psi / n
    lam, U = np.linalg.eigh(S)
    lam = np.clip(lam, 0.0, None)
    proj = U.T @ (Psi.T @ y / n)  # = lam * (U^T w*)
    keep = lam > 1e-12 * max(lam.max(), 1e-300)
    power = np.zeros_like(lam)
    power[keep] = proj[keep] ** 2 / lam[keep]
    residual = float(max(np.mean(y * y) - power.sum(), 0.0))
    return GaussianEquivalent(lam, power, residual)


@dataclass(frozen=True, kw_only=True)
class FeatureCurveResult(SolverResult):
    """Expected excess test loss of online SGD on a finite pool of arbitrary features.

    Attributes
    ----------
    steps : ndarray of int, shape (n_times,)
    loss : ndarray, shape (n_times,)
        ``E (w_t - w*)^T Sigma (w_t - w*)`` (pool MSE minus that of the best linear predictor).
    noise_floor : float
        Pool MSE of the best linear predictor (add it for the total pool MSE).
    """

    steps: np.ndarray
    loss: np.ndarray
    noise_floor: float


def learning_curve_features(features, targets, lr, batch_size, steps, *, schedule=None, times=None):
    """Exact expected loss of online SGD sampling a finite pool of arbitrary (non-Gaussian) features.

    The "arbitrary features" theory of "Learning Curves for SGD on Structured Features":
    with the pool as the data distribution, ``Sigma = Psi^T Psi / n``, ``w* = Sigma^+ Psi^T y / n``,
    pool residuals ``r_i = y_i - psi_i . w*`` and ``Delta = w - w*``, the first and second
    moments ``m = E Delta``, ``M = E Delta Delta^T`` obey (batches of B drawn with replacement)::

        m_{t+1} = (I - eta Sigma) m_t
        M_{t+1} = M - eta (Sigma M + M Sigma) + eta^2 [ (1 - 1/B) Sigma M Sigma
                  + (1/B) E_i psi_i psi_i^T ((psi_i^T M psi_i) - 2 r_i (psi_i . m) + r_i^2) ]

    exactly (the empirical fourth moment replaces the Gaussian one of (S1)); cost O(n N^2) per
    step. Same conventions as :func:`learning_curve` (``w_0 = 0``, loss without factor 1/2).

    Parameters
    ----------
    features : array_like, shape (n, N)
    targets : array_like, shape (n,)
    lr : float
        Learning rate (peak rate with ``schedule``), > 0.
    batch_size : int
    steps : int
    schedule : array_like, shape (steps,), optional
    times : array_like of int, optional

    Returns
    -------
    FeatureCurveResult
    """
    Psi = check_array(features, "features", max_abs=MAX_MAGNITUDE, ndim=2, min_size=1)
    y = check_array(targets, "targets", max_abs=MAX_MAGNITUDE, shape=(Psi.shape[0],))
    eta0 = check_real(lr, "lr", lo=0.0, lo_closed=False)
    B = int(_check_batch(batch_size).ravel()[0]) if np.ndim(batch_size) == 0 else None
    if B is None:
        fail("batch_size", "a single integer", batch_size, TypeError)
    T = check_int(steps, "steps", lo=0, hi=MAX_SIZE)
    sched = np.ones(T) if schedule is None else check_array(schedule, "schedule", shape=(T,), nonnegative=True)
    record = _as_times(times, T)
    steps_out = np.arange(T + 1) if record is None else record
    want = np.zeros(T + 1, dtype=bool)
    want[steps_out] = True
    n, N = Psi.shape
    S = Psi.T @ Psi / n
    w_star = np.linalg.lstsq(S, Psi.T @ y / n, rcond=None)[0]
    r = y - Psi @ w_star
    residual = float(np.mean(r * r))
    R = (Psi * (r * r)[:, None]).T @ Psi / n
    m = -w_star
    M = np.outer(m, m)
    out = np.empty(len(steps_out))
    j = 0
    if want[0]:
        out[j] = np.sum(S * M)
        j += 1
    inv_b = 1.0 / B
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            e = eta0 * sched[t]
            SM = S @ M
            q = np.sum((Psi @ M) * Psi, axis=1) - 2.0 * r * (Psi @ m)
            fourth = (Psi * q[:, None]).T @ Psi / n + R
            M = M - e * (SM + SM.T) + e * e * ((1.0 - inv_b) * SM @ S + inv_b * fourth)
            M = 0.5 * (M + M.T)
            m = m - e * (S @ m)
            if want[t + 1]:
                out[j] = np.sum(S * M)
                j += 1
    blown = not bool(np.all(np.isfinite(out)))
    out = np.where(np.isfinite(out), out, np.inf)
    message = "exact recursion"
    if blown:
        message = "exact recursion diverged: the loss overflowed (reads +inf from then on)"
        warn_not_converged("learning_curve_features", message)
    return FeatureCurveResult(steps=steps_out, loss=out, noise_floor=residual, converged=not blown,
                              status="diverged" if blown else "closed_form", iterations=T,
                              residual=float("nan"), message=message)
