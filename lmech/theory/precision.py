"""Precision-aware scaling laws: loss vs parameters, data and training/inference precision.

Kumar, Ankner, Spector et al., "Scaling Laws for Precision". The paper's functional form
(its fitted constants are not reproduced here: they must be copied from the paper's tables by
a person, or fitted to one's own runs with :func:`fit_precision_law`):

* Chinchilla base ``L(N, D) = A N^{-alpha} + B D^{-beta} + E``.
* Training in low precision shrinks the *effective parameter count* with saturating factors,

      N_eff = N (1 - exp(-P_w / gamma_w)) (1 - exp(-P_a / gamma_a)) (1 - exp(-P_kv / gamma_kv)),
      L = A N_eff^{-alpha} + B D^{-beta} + E,

  (``P = inf`` for a part kept in high precision, giving a factor 1).
* Post-training quantisation (PTQ) to ``P_post`` bits adds a degradation that grows with the
  data/parameter ratio,

      delta_PTQ(N, D, P_post) = C_T exp(-P_post / gamma_post) D^{gamma_D} / N^{gamma_N},

  so beyond some D more pretraining data *increases* the post-quantisation loss. (The paper
  additionally suppresses delta_PTQ for models trained in low precision; pass any callable
  ``suppression(P_w, P_a, P_kv)`` to :func:`ptq_degradation` for that.)
* Compute ``C ~ N D P`` (cost linear in the training precision). At fixed C the optimal
  training precision minimises ``P / f(P)`` with ``f(P) = N_eff / N``, which does not depend on
  C (:func:`optimal_precision`); with N held fixed the optimal precision grows with C.

All fits are nonlinear least squares on ``log L`` with log-parameterised positive constants
(scipy ``least_squares``, Huber loss, several starts).
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from lmech._validation import check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged

__all__ = [
    "PrecisionLaw",
    "PTQLaw",
    "precision_factor",
    "effective_parameters",
    "precision_loss",
    "ptq_degradation",
    "PrecisionFit",
    "fit_precision_law",
    "PTQFit",
    "fit_ptq_law",
    "OptimalPrecision",
    "optimal_precision",
]


@dataclass(frozen=True)
class PrecisionLaw:
    """Constants of ``L = A N_eff^{-alpha} + B D^{-beta} + E`` with saturating N_eff.

    ``gamma_*`` are the precision scales (bits) of weights, activations and KV cache; a part
    that is never quantised may keep any value (its precision is passed as ``inf``).
    """

    A: float
    alpha: float
    B: float
    beta: float
    E: float
    gamma_w: float = 2.5
    gamma_a: float = 2.5
    gamma_kv: float = 2.5

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = check_real(getattr(self, f.name), f.name)
            if f.name != "E" and v <= 0:
                fail(f.name, "positive", v)
            if f.name == "E" and v < 0:
                fail("E", "non-negative", v)


@dataclass(frozen=True)
class PTQLaw:
    """Constants of ``delta_PTQ = C_T exp(-P_post/gamma_post) D^{gamma_D} / N^{gamma_N}``."""

    C_T: float
    gamma_post: float
    gamma_D: float
    gamma_N: float

    def __post_init__(self) -> None:
        check_real(self.C_T, "C_T", lo=0.0, lo_closed=False)
        check_real(self.gamma_post, "gamma_post", lo=0.0, lo_closed=False)
        check_real(self.gamma_D, "gamma_D")
        check_real(self.gamma_N, "gamma_N")


def _check_law(law, cls, name: str = "law"):
    if not isinstance(law, cls):
        fail(name, f"a {cls.__name__}", law, TypeError)
    return law


def _bits(x, name: str) -> np.ndarray:
    if x is None or isinstance(x, (str, bytes)):
        fail(name, "positive bit counts (inf for full precision)", x, TypeError)
    try:
        arr = np.asarray(x, dtype=float)
    except OverflowError:
        fail(name, "bit counts within float range", x)
    except (TypeError, ValueError):
        fail(name, "positive bit counts (inf for full precision)", x, TypeError)
    if arr.ndim > 1:
        fail(name, "a scalar or 1-d array", arr)
    if np.any(np.isnan(arr)) or np.any(arr < 1e-6):
        fail(name, "bit counts of at least 1e-6 (inf for full precision)", x)
    return arr


def precision_factor(bits, gamma: float) -> np.ndarray:
    """``1 - exp(-bits / gamma)`` (1 for ``bits = inf``)."""
    b = _bits(bits, "bits")
    g = check_real(gamma, "gamma", lo=0.0, lo_closed=False)
    return -np.expm1(-b / g)


def effective_parameters(n_params, law: PrecisionLaw, *, weight_bits=np.inf, act_bits=np.inf,
                         kv_bits=np.inf) -> np.ndarray:
    """``N_eff = N (1 - e^{-P_w/gamma_w}) (1 - e^{-P_a/gamma_a}) (1 - e^{-P_kv/gamma_kv})``."""
    N = check_array(n_params, "n_params", ndim=(0, 1), positive=True)
    _check_law(law, PrecisionLaw)
    shapes = [N.shape]
    for name, bits in (("weight_bits", weight_bits), ("act_bits", act_bits), ("kv_bits", kv_bits)):
        shapes.append(_bits(bits, name).shape)
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            fail(name, f"broadcastable with n_params (shape {N.shape}) and the other bit counts", bits)
    return (N * precision_factor(weight_bits, law.gamma_w) * precision_factor(act_bits, law.gamma_a)
            * precision_factor(kv_bits, law.gamma_kv))


def precision_loss(n_params, n_data, law: PrecisionLaw, *, weight_bits=np.inf, act_bits=np.inf,
                   kv_bits=np.inf) -> np.ndarray:
    """Predicted loss ``A N_eff^{-alpha} + B D^{-beta} + E`` (broadcast over all arguments).

    Equation (eq:precision.loss): ``L = A N_eff^{-alpha} + B D^{-beta} + E,
        N_eff = N (1 - e^{-P_w/gamma_w}) (1 - e^{-P_a/gamma_a}) (1 - e^{-P_kv/gamma_kv})``

    Parameters
    ----------
    n_params, n_data : float or array_like
        Parameter count N and training data D (tokens / samples), > 0.
    law : PrecisionLaw
    weight_bits, act_bits, kv_bits : float or array_like
        Training precisions in bits (``inf``: not quantised).
    """
    D = check_array(n_data, "n_data", ndim=(0, 1), positive=True)
    Neff = effective_parameters(n_params, law, weight_bits=weight_bits, act_bits=act_bits, kv_bits=kv_bits)
    try:
        np.broadcast_shapes(Neff.shape, D.shape)
    except ValueError:
        fail("n_data", f"broadcastable with n_params and the bit counts (shape {Neff.shape})", D)
    return law.A * Neff ** (-law.alpha) + law.B * D ** (-law.beta) + law.E


def ptq_degradation(n_params, n_data, post_bits, law: PTQLaw, *, suppression: Callable | None = None,
                    weight_bits=np.inf, act_bits=np.inf, kv_bits=np.inf) -> np.ndarray:
    """Post-training-quantisation loss increase ``C_T e^{-P_post/gamma_post} D^{gamma_D} / N^{gamma_N}``.

    Equation (eq:precision.ptq): ``delta_PTQ = C_T e^{-P_post/gamma_post} D^{gamma_D} / N^{gamma_N}``

    ``suppression(weight_bits, act_bits, kv_bits)``, if given, multiplies the result (the
    paper's robustness of low-precision-trained models to PTQ; its exact form is the paper's).
    """
    N = check_array(n_params, "n_params", ndim=(0, 1), positive=True)
    D = check_array(n_data, "n_data", ndim=(0, 1), positive=True)
    P = _bits(post_bits, "post_bits")
    _check_law(law, PTQLaw)
    try:
        N, D, P = np.broadcast_arrays(N, D, P)
    except ValueError:
        fail("post_bits", f"broadcastable with n_params {np.shape(N)} and n_data {np.shape(D)}", P)
    out = law.C_T * np.exp(-P / law.gamma_post) * D**law.gamma_D / N**law.gamma_N
    if suppression is not None:
        out = out * np.asarray(suppression(weight_bits, act_bits, kv_bits), dtype=float)
    return out


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True, kw_only=True)
class PrecisionFit(SolverResult):
    """Least-squares fit of a :class:`PrecisionLaw` to measured losses.

    Attributes
    ----------
    law : PrecisionLaw
    log_rmse : float
        Root-mean-square error of ``log L`` on the fitted runs.
    fitted : tuple of str
        Names of the constants that were fitted (the others were held fixed).
    """

    law: PrecisionLaw
    log_rmse: float
    fitted: tuple


_LAW_FIELDS = ("A", "alpha", "B", "beta", "E", "gamma_w", "gamma_a", "gamma_kv")


def _as_bits(x, n, name):
    if x is None:
        return np.full(n, np.inf)
    arr = _bits(x, name)
    if arr.ndim == 1 and arr.shape[0] != n:
        fail(name, f"a scalar or an array of length {n} (one per run)", arr)
    return np.broadcast_to(arr, (n,)).astype(float)


def fit_precision_law(
    n_params,
    n_data,
    loss,
    *,
    weight_bits=None,
    act_bits=None,
    kv_bits=None,
    fixed: dict | None = None,
    starts: int = 4,
    huber_delta: float = 0.05,
) -> PrecisionFit:
    """Fit ``L = A N_eff^{-alpha} + B D^{-beta} + E`` to runs by least squares on log L.

    Parameters
    ----------
    n_params, n_data, loss : array_like, shape (n_runs,)
    weight_bits, act_bits, kv_bits : array_like (n_runs,) or None
        Training precisions (inf or None = full precision). Constants whose precision never
        varies in the data cannot be identified and are held at their ``fixed`` (or default)
        values.
    fixed : dict, optional
        Constants to hold fixed, e.g. ``{"alpha": 0.5}``.
    starts : int
        Starting points per free constant on a small grid (the best fit is kept).
    huber_delta : float
        Huber transition (in log-loss units).

    Returns
    -------
    PrecisionFit
    """
    N = check_array(n_params, "n_params", ndim=1, positive=True, min_size=3)
    n = N.shape[0]
    D = check_array(n_data, "n_data", shape=(n,), positive=True)
    Lobs = check_array(loss, "loss", shape=(n,), positive=True)
    bits = {"gamma_w": _as_bits(weight_bits, n, "weight_bits"), "gamma_a": _as_bits(act_bits, n, "act_bits"),
            "gamma_kv": _as_bits(kv_bits, n, "kv_bits")}
    fixed = dict(fixed or {})
    for k in fixed:
        if k not in _LAW_FIELDS:
            fail("fixed", f"keys among {_LAW_FIELDS}", k)
    defaults = {"gamma_w": 2.5, "gamma_a": 2.5, "gamma_kv": 2.5}
    free = [k for k in _LAW_FIELDS if k not in fixed and not (k in bits and np.all(np.isinf(bits[k])))]
    for k in _LAW_FIELDS:
        if k not in free and k not in fixed:
            fixed[k] = defaults.get(k, 1.0)
    if len(free) > n:
        fail("loss", f"at least as many runs as free constants ({len(free)})", n)
    delta = check_real(huber_delta, "huber_delta", lo=0.0, lo_closed=False)
    starts = check_int(starts, "starts", lo=1, hi=1000)
    logN, logD, logL = np.log(N), np.log(D), np.log(Lobs)

    def unpack(theta):
        vals = dict(fixed)
        vals.update({k: float(np.exp(np.clip(t, -700, 700))) for k, t in zip(free, theta)})
        return vals

    def predict(vals):
        logf = sum(np.log(-np.expm1(-bits[g] / vals[g])) for g in ("gamma_w", "gamma_a", "gamma_kv"))
        term_n = vals["A"] * np.exp(-vals["alpha"] * (logN + logf))
        term_d = vals["B"] * np.exp(-vals["beta"] * logD)
        return term_n + term_d + vals["E"]

    def resid(theta):
        with np.errstate(all="ignore"):
            r = np.log(predict(unpack(theta))) - logL
        return np.where(np.isfinite(r), r, 1e3)

    # starting grid (Chinchilla-style): exponents, scales relative to the data, gammas in bits
    base = {
        "A": [np.median(Lobs) * np.median(N) ** 0.5], "alpha": [0.3, 0.7], "B": [np.median(Lobs) * np.median(D) ** 0.5],
        "beta": [0.3, 0.7], "E": [0.5 * np.min(Lobs), 0.05 * np.min(Lobs)], "gamma_w": [1.0, 3.0],
        "gamma_a": [1.0, 3.0], "gamma_kv": [1.0, 3.0],
    }
    grids = [base[k][: max(1, starts)] for k in free]
    best = None
    tried = 0
    for combo in itertools.product(*grids):
        theta0 = np.log(np.array(combo, dtype=float))
        try:
            res = optimize.least_squares(resid, theta0, loss="huber", f_scale=delta, max_nfev=4000,
                                         x_scale="jac")
        except (ValueError, FloatingPointError):
            continue
        tried += 1
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        raise RuntimeError("fit_precision_law: every start failed")
    vals = unpack(best.x)
    law = PrecisionLaw(**{k: vals[k] for k in _LAW_FIELDS})
    r = resid(best.x)
    rmse = float(np.sqrt(np.mean(r**2)))
    converged = bool(best.success)
    msg = "converged" if converged else f"least_squares: {best.message}"
    if not converged:
        warn_not_converged("fit_precision_law", msg)
    return PrecisionFit(law=law, log_rmse=rmse, fitted=tuple(free), converged=converged,
                        iterations=int(best.nfev), residual=float(np.max(np.abs(r))), message=msg,
                        extras={"starts_tried": tried})


@dataclass(frozen=True, kw_only=True)
class PTQFit(SolverResult):
    """Least-squares fit of a :class:`PTQLaw` to measured PTQ degradations (log space)."""

    law: PTQLaw
    log_rmse: float


def fit_ptq_law(n_params, n_data, post_bits, degradation) -> PTQFit:
    """Fit ``log delta = log C_T - P_post/gamma_post + gamma_D log D - gamma_N log N``.

    Linear in (log C_T, 1/gamma_post, gamma_D, gamma_N) -- solved by ordinary least squares.

    Parameters
    ----------
    n_params, n_data, post_bits, degradation : array_like, shape (n_runs,)
        Degradations must be positive (drop runs where PTQ did not hurt measurably).
    """
    N = check_array(n_params, "n_params", ndim=1, positive=True, min_size=4)
    n = N.shape[0]
    D = check_array(n_data, "n_data", shape=(n,), positive=True)
    P = check_array(post_bits, "post_bits", shape=(n,), positive=True)
    d = check_array(degradation, "degradation", shape=(n,), positive=True)
    X = np.column_stack([np.ones(n), -P, np.log(D), -np.log(N)])
    coef, *_ = np.linalg.lstsq(X, np.log(d), rcond=None)
    r = X @ coef - np.log(d)
    if coef[1] <= 0:
        fail("degradation", "decreasing with post_bits (fitted 1/gamma_post <= 0)", coef[1])
    law = PTQLaw(C_T=float(np.exp(coef[0])), gamma_post=float(1 / coef[1]), gamma_D=float(coef[2]),
                 gamma_N=float(coef[3]))
    rmse = float(np.sqrt(np.mean(r**2)))
    # ordinary least squares: a closed form; residual = largest log-space misfit of the fit
    return PTQFit(law=law, log_rmse=rmse, converged=True, status="closed_form", iterations=0,
                  residual=float(np.max(np.abs(r))), message="closed-form least squares")


# --------------------------------------------------------------------------- compute-optimal precision
@dataclass(frozen=True, kw_only=True)
class OptimalPrecision(SolverResult):
    """Compute-optimal (N, D, P) under ``C = N D P`` (cost linear in training precision).

    Attributes
    ----------
    bits : float           optimal training precision (weights, activations and KV in P bits)
    n_params, n_data : float
    loss : float
    """

    bits: float
    n_params: float
    n_data: float
    loss: float


def _optimal_n(C, P, law: PrecisionLaw, f: float) -> float:
    # minimise A (N f)^-a + B (C/(N P))^-b over N: N^{a+b} = a A f^{-a} (C/P)^b / (b B)
    a, b = law.alpha, law.beta
    return float((a * law.A * f ** (-a) * (C / P) ** b / (b * law.B)) ** (1.0 / (a + b)))


def optimal_precision(compute: float, law: PrecisionLaw, *, n_params: float | None = None,
                      bits_range: tuple[float, float] = (1.0, 32.0)) -> OptimalPrecision:
    """Training precision minimising the loss at fixed compute ``C = N D P``.

    Equation (eq:precision.optimal): ``P* = argmin_P L(N, D, P)  subject to  C = N D P``

    Weights, activations and KV cache share the precision P. With ``n_params=None`` N and D are
    chosen optimally for each P (closed form) and P by bounded 1-D search; the optimum is then
    independent of C (it minimises ``P / f(P)^{alpha beta/(alpha+beta)}``-type expressions that
    do not contain C). With ``n_params`` fixed, ``D = C / (N P)`` and only P is optimised; the
    optimal P then grows with C.
    """
    C = check_real(compute, "compute", lo=1.0)  # in FLOPs: below one the law's powers underflow
    lo, hi = bits_range
    lo = check_real(lo, "bits_range[0]", lo=0.0, lo_closed=False)
    hi = check_real(hi, "bits_range[1]", lo=lo, lo_closed=False)
    N_fixed = None if n_params is None else check_real(n_params, "n_params", lo=0.0, lo_closed=False)
    _check_law(law, PrecisionLaw)

    def f(P):
        return float(precision_factor(P, law.gamma_w) * precision_factor(P, law.gamma_a)
                     * precision_factor(P, law.gamma_kv))

    def loss_at(P):
        fp = f(P)
        N = N_fixed if N_fixed is not None else _optimal_n(C, P, law, fp)
        D = C / (N * P)
        return law.A * (N * fp) ** (-law.alpha) + law.B * D ** (-law.beta) + law.E, N, D

    # coarse grid then bounded refinement (unimodal in practice)
    grid = np.linspace(lo, hi, 400)
    vals = np.array([np.log(loss_at(P)[0] - law.E + 1e-300) for P in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda P: np.log(loss_at(P)[0] - law.E + 1e-300), bounds=(a, b),
                                   method="bounded", options={"xatol": 1e-10})
    P = float(res.x)
    Lval, N, D = loss_at(P)
    at_edge = P - lo < 1e-6 * hi or hi - P < 1e-6 * hi
    msg = "optimum on the boundary of bits_range" if at_edge else "ok"
    if not res.success:
        msg = f"bounded precision search did not converge: {res.message}"
        warn_not_converged("optimal_precision", msg)
    # bounded 1-d search to xatol 1e-10 bits: there is no equation residual to report
    return OptimalPrecision(bits=P, n_params=float(N), n_data=float(D), loss=float(Lval), converged=bool(res.success),
                            iterations=int(res.nfev), residual=float("nan"), message=msg)
