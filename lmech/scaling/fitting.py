"""Fit a scaling law to one's own training runs, with bootstrap intervals.

Two forms, both fitted the same way:

* ``"chinchilla"``: ``L(N, D) = E + A / N^alpha + B / D^beta`` (parameters N, tokens D).
* ``"precision"``: the precision-aware law of :mod:`lmech.theory.precision` ("Scaling Laws for
  Precision"), ``L = E + A / N_eff^alpha + B / D^beta`` with
  ``N_eff = N (1 - exp(-bits / gamma))``. A single ``bits`` column is read as the training
  precision of the weights (:func:`lmech.theory.precision.precision_loss` with
  ``weight_bits=bits``); when activations and KV cache share that precision their factors are
  absorbed into the one fitted ``gamma`` (an approximation). ``bits = inf`` means full precision.

The fit follows the third approach of "Training Compute-Optimal Large Language Models": the
parameters are ``a = log A``, ``b = log B``, ``e = log E``, ``alpha``, ``beta`` (and
``g = log gamma``), the prediction is ``log L = logsumexp(a - alpha log N, b - beta log D, e)``,
and the Huber loss (delta 1e-3) of ``log L_pred - log L_obs`` summed over runs is minimised by
L-BFGS. Starting points: the objective is evaluated on a grid of starts (exponents, scales set
from the data, E below the smallest loss) and L-BFGS is run from the best few (the paper runs it
from every grid point; the best few give the same optimum on the data tried here at a fraction of
the cost). Intervals come from a nonparametric bootstrap over runs (resampling runs with
replacement and refitting); they are percentile intervals at ``level``.

The compute-optimal allocation under ``C = 6 N D`` is closed form for both forms:
``N*(C) = G (C/6)^a``, ``D*(C) = (C/6)^b / G`` with ``a = beta / (alpha + beta)``,
``b = alpha / (alpha + beta)``, ``G = (alpha A_eff / (beta B))^{1/(alpha+beta)}`` and
``A_eff = A (1 - exp(-bits/gamma))^{-alpha}`` (``A`` for the Chinchilla form).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from lmech._json import jsonable
from lmech._validation import check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.precision import PrecisionLaw, precision_loss

__all__ = ["FORMS", "ScalingFit", "ComputeOptimal", "Holdout", "fit", "read_runs"]

FORMS = ("chinchilla", "precision")
HUBER_DELTA = 1e-3
_NAMES = {"chinchilla": ("A", "B", "E", "alpha", "beta"),
          "precision": ("A", "B", "E", "alpha", "beta", "gamma")}
# bounds of the optimised (log-space) parameters: a, b, e, alpha, beta, g
_BOUNDS = [(-50.0, 200.0), (-50.0, 200.0), (-30.0, 10.0), (1e-3, 5.0), (1e-3, 5.0),
           (math.log(0.05), math.log(64.0))]


# --------------------------------------------------------------------------- objective
def _terms(theta, logN, logD, bits):
    """Log terms (n, 3), and log f(bits) for the precision form."""
    a, b, e, al, be = theta[:5]
    if theta.shape[0] == 6:
        u = bits * math.exp(-theta[5])
        with np.errstate(over="ignore", invalid="ignore"):
            logf = np.where(np.isinf(u), 0.0, np.log(-np.expm1(-u)))
    else:
        u, logf = None, 0.0
    t = np.empty((logN.shape[0], 3))
    t[:, 0] = a - al * (logN + logf)
    t[:, 1] = b - be * logD
    t[:, 2] = e
    return t, u, logf


def _objective(theta, logN, logD, logL, bits, delta):
    """Sum of Huber(log L_pred - log L_obs) / delta, and its gradient."""
    t, u, logf = _terms(theta, logN, logD, bits)
    m = t.max(axis=1, keepdims=True)
    w = np.exp(t - m)
    s = w.sum(axis=1, keepdims=True)
    pred = (m + np.log(s))[:, 0]
    w /= s
    r = pred - logL
    ar = np.abs(r)
    h = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))
    dh = np.clip(r, -delta, delta) / delta
    g = np.empty(theta.shape[0])
    g[0] = dh @ w[:, 0]
    g[1] = dh @ w[:, 1]
    g[2] = dh @ w[:, 2]
    g[3] = -(dh * w[:, 0]) @ (logN + logf)
    g[4] = -(dh * w[:, 1]) @ logD
    if theta.shape[0] == 6:
        with np.errstate(over="ignore", invalid="ignore"):
            dlogf = np.where(np.isinf(u), 0.0, -u / np.expm1(u))
        g[5] = -theta[3] * (dh * w[:, 0]) @ dlogf
    return float(h.sum() / delta), g


def _grid_objective(thetas, logN, logD, logL, bits, delta):
    """Objective of every row of ``thetas`` (k, p), vectorised (no gradient)."""
    a, b, e, al, be = (thetas[:, i : i + 1] for i in range(5))
    if thetas.shape[1] == 6:
        u = bits[None, :] * np.exp(-thetas[:, 5:6])
        with np.errstate(over="ignore", invalid="ignore"):
            logf = np.where(np.isinf(u), 0.0, np.log(-np.expm1(-u)))
    else:
        logf = 0.0
    t1 = a - al * (logN[None, :] + logf)
    t2 = b - be * logD[None, :]
    t3 = np.broadcast_to(e, t1.shape)
    pred = np.logaddexp(np.logaddexp(t1, t2), t3)
    ar = np.abs(pred - logL[None, :])
    h = np.where(ar <= delta, 0.5 * ar * ar, delta * (ar - 0.5 * delta))
    return h.sum(axis=1) / delta


def _start_grid(logN, logD, logL, precision):
    """Starting points: exponents on a grid, scales set so each term is a fraction of the data's
    median loss at the median size, E a fraction of the smallest loss."""
    Lmed, Lmin = math.exp(float(np.median(logL))), math.exp(float(np.min(logL)))
    mN, mD = float(np.median(logN)), float(np.median(logD))
    rows = []
    for al in (0.15, 0.3, 0.6, 1.2):
        for be in (0.15, 0.3, 0.6, 1.2):
            for sa in (0.1, 0.5):
                for sb in (0.1, 0.5):
                    for fe in (0.05, 0.5, 0.9):
                        row = [math.log(sa * Lmed) + al * mN, math.log(sb * Lmed) + be * mD, math.log(fe * Lmin), al, be]
                        if precision:
                            for gam in (0.5, 2.0, 6.0):
                                rows.append(row + [math.log(gam)])
                        else:
                            rows.append(row)
    return np.array(rows)


def _clip_to_bounds(theta):
    p = theta.shape[-1]
    lo = np.array([b[0] for b in _BOUNDS[:p]])
    hi = np.array([b[1] for b in _BOUNDS[:p]])
    return np.clip(theta, lo, hi)


def _lbfgs(theta0, logN, logD, logL, bits, delta):
    p = theta0.shape[0]
    return minimize(_objective, _clip_to_bounds(theta0), args=(logN, logD, logL, bits, delta), jac=True,
                    method="L-BFGS-B", bounds=_BOUNDS[:p], options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})


def _fit_once(logN, logD, logL, bits, precision, *, starts, delta):
    """Best L-BFGS optimum from the ``starts`` best grid points."""
    grid = _start_grid(logN, logD, logL, precision)
    vals = _grid_objective(grid, logN, logD, logL, bits, delta)
    order = np.argsort(vals)[:starts]
    best = None
    nfev = 0
    for theta0 in grid[order]:
        res = _lbfgs(theta0, logN, logD, logL, bits, delta)
        nfev += int(res.nfev)
        if best is None or res.fun < best.fun:
            best = res
    return best, nfev


def _refit(logN, logD, logL, bits, precision, theta, delta):
    """Bootstrap refit: L-BFGS from the full-data optimum ``theta``; also from the best grid
    point when that point is already better than where the warm start ended."""
    res = _lbfgs(theta, logN, logD, logL, bits, delta)
    grid = _start_grid(logN, logD, logL, precision)
    vals = _grid_objective(grid, logN, logD, logL, bits, delta)
    i = int(np.argmin(vals))
    if vals[i] < res.fun:
        other = _lbfgs(grid[i], logN, logD, logL, bits, delta)
        if other.fun < res.fun:
            res = other
    return res


def _converged(res) -> bool:
    # L-BFGS-B stops "ABNORMAL" on the kinks of the Huber loss at an optimum; accept when the
    # projected gradient is small there (the objective is in units of |log-loss residual| / delta)
    if res.success:
        return True
    g = np.asarray(res.jac, dtype=float)
    x = np.asarray(res.x, dtype=float)
    lo = np.array([b[0] for b in _BOUNDS[: x.size]])
    hi = np.array([b[1] for b in _BOUNDS[: x.size]])
    g = np.where((x <= lo) & (g > 0), 0.0, g)
    g = np.where((x >= hi) & (g < 0), 0.0, g)
    return bool(np.max(np.abs(g)) < 1e-3)


def _natural(theta) -> np.ndarray:
    """(a, b, e, alpha, beta[, g]) -> (A, B, E, alpha, beta[, gamma])."""
    theta = np.asarray(theta, dtype=float)
    out = theta.copy()
    out[..., 0:3] = np.exp(theta[..., 0:3])
    if theta.shape[-1] == 6:
        out[..., 5] = np.exp(theta[..., 5])
    return out


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ComputeOptimal:
    """Compute-optimal allocation under ``C = 6 N D`` at each compute in ``compute``.

    ``n_params``, ``n_data``, ``loss`` are from the fitted parameters; ``*_lo``/``*_hi`` are the
    percentile band over the bootstrap fits at ``level``. ``exponent_a``/``exponent_b`` are
    ``N* ~ C^a``, ``D* ~ C^b`` (``a + b = 1``) with their intervals.
    """

    compute: np.ndarray
    n_params: np.ndarray
    n_data: np.ndarray
    loss: np.ndarray
    n_params_lo: np.ndarray
    n_params_hi: np.ndarray
    n_data_lo: np.ndarray
    n_data_hi: np.ndarray
    loss_lo: np.ndarray
    loss_hi: np.ndarray
    exponent_a: float
    exponent_b: float
    exponent_a_interval: tuple
    exponent_b_interval: tuple
    level: float
    bits: float

    def to_dict(self) -> dict:
        """Plain JSON data (NaN and inf become None)."""
        return jsonable(dict(self.__dict__))


@dataclass(frozen=True)
class Holdout:
    """Leave-largest-out check: fitted without the ``n_held`` largest-compute runs, then asked to
    predict them. ``rel_error`` is ``|L_pred - L_obs| / L_obs`` per held-out run (in the order of
    ``compute``); ``message`` says why the check was skipped when ``n_held == 0``."""

    n_held: int
    compute: np.ndarray
    loss: np.ndarray
    predicted: np.ndarray
    rel_error: np.ndarray
    max_rel_error: float
    mean_rel_error: float
    message: str = "ok"

    def to_dict(self) -> dict:
        """Plain JSON data (NaN and inf become None)."""
        return jsonable(dict(self.__dict__))


@dataclass(frozen=True, kw_only=True)
class ScalingFit(SolverResult):
    """A scaling law fitted to runs, with bootstrap intervals.

    Attributes
    ----------
    form : str
        ``"chinchilla"`` or ``"precision"``.
    params : dict[str, float]
        Fitted ``A, B, E, alpha, beta`` (and ``gamma`` for the precision form).
    intervals : dict[str, tuple[float, float]]
        Percentile bootstrap interval of every parameter (and of the compute-optimal exponents
        ``a`` and ``b``) at ``level``; NaN when ``bootstrap == 0``.
    level : float
        Coverage of the intervals.
    bootstrap_samples : ndarray, shape (n_boot, n_params)
        Refitted parameters (columns in the order of ``names``) on each resample of the runs.
    summary : dict[str, dict]
        Per parameter: mean, std and median over the bootstrap (no covariance is assumed).
    names : tuple of str
    n_runs : int
    log_rmse : float
        Root-mean-square residual of ``log L`` on the runs.
    holdout : Holdout or None
        The leave-largest-out check (None when not asked for).
    runs : dict[str, ndarray]
        The data fitted (``N``, ``D``, ``loss``, ``bits``) for plotting and prediction.
    """

    form: str
    params: dict
    intervals: dict
    level: float
    bootstrap_samples: np.ndarray
    summary: dict
    names: tuple
    n_runs: int
    log_rmse: float
    holdout: Holdout | None
    runs: dict = field(repr=False)

    @property
    def law(self) -> PrecisionLaw:
        """The fit as a :class:`lmech.theory.precision.PrecisionLaw` (weights' gamma = ``gamma``)."""
        p = self.params
        return PrecisionLaw(A=p["A"], alpha=p["alpha"], B=p["B"], beta=p["beta"], E=p["E"],
                            gamma_w=p.get("gamma", 2.5))

    @property
    def exponents(self) -> tuple[float, float]:
        """Compute-optimal exponents ``(a, b)``: ``N* ~ C^a``, ``D* ~ C^b``."""
        al, be = self.params["alpha"], self.params["beta"]
        return be / (al + be), al / (al + be)

    def _bits(self, bits):
        if self.form == "chinchilla":
            if bits is not None:
                fail("bits", "None for the chinchilla form", bits)
            return np.inf
        if bits is None:
            return float(np.max(self.runs["bits"]))
        return bits

    def predict(self, N, D, bits=None) -> np.ndarray:
        """Predicted loss at ``(N, D)`` (and ``bits`` for the precision form; default: the
        largest precision in the runs)."""
        return precision_loss(N, D, self.law, weight_bits=self._bits(bits))

    def compute_optimal(self, compute, bits=None) -> ComputeOptimal:
        """Compute-optimal ``N*, D*`` and loss at each ``compute`` (FLOPs, ``C = 6 N D``) with
        bootstrap bands (see the module docstring). ``bits``: training precision for the
        precision form (default: the largest in the runs)."""
        C = np.atleast_1d(np.asarray(compute, dtype=float))
        if C.ndim != 1 or not np.all(np.isfinite(C)) or np.any(C <= 0):
            fail("compute", "positive finite FLOP counts", compute)
        P = self._bits(bits)
        if self.form == "precision":
            P = check_real(P, "bits", lo=0.0, lo_closed=False) if np.isfinite(P) else np.inf

        def alloc(par):
            A, B, E, al, be = (par[..., i] for i in range(5))
            if par.shape[-1] == 6 and np.isfinite(P):
                A = A * (-np.expm1(-P / par[..., 5])) ** (-al)
            G = (al * A / (be * B)) ** (1.0 / (al + be))
            N = G[..., None] * (C / 6.0) ** (be / (al + be))[..., None]
            D = C / (6.0 * N)
            L = A[..., None] * N ** -al[..., None] + B[..., None] * D ** -be[..., None] + E[..., None]
            return N, D, L

        par = np.array([self.params[k] for k in self.names])
        N, D, L = alloc(par)
        S = self.bootstrap_samples
        q = ((1 - self.level) / 2, (1 + self.level) / 2)
        if S.shape[0]:
            Nb, Db, Lb = alloc(S)
            (nlo, nhi), (dlo, dhi), (llo, lhi) = (np.quantile(x, q, axis=0) for x in (Nb, Db, Lb))
        else:
            nlo = nhi = dlo = dhi = llo = lhi = np.full(C.shape, np.nan)
        a, b = self.exponents
        return ComputeOptimal(compute=C, n_params=N, n_data=D, loss=L, n_params_lo=nlo, n_params_hi=nhi,
                              n_data_lo=dlo, n_data_hi=dhi, loss_lo=llo, loss_hi=lhi, exponent_a=a, exponent_b=b,
                              exponent_a_interval=self.intervals["a"], exponent_b_interval=self.intervals["b"],
                              level=self.level, bits=float(P))

    def to_dict(self) -> dict:
        """Plain JSON data for ``fit.json`` (no bootstrap samples, which can be large; NaN and inf
        become None)."""
        C = np.asarray(self.runs["N"]) * np.asarray(self.runs["D"]) * 6.0
        grid = np.geomspace(C.min(), C.max() * 100.0, 7)
        return jsonable({
            "form": self.form, "n_runs": self.n_runs, "params": self.params,
            "intervals": {k: list(v) for k, v in self.intervals.items()}, "level": self.level,
            "bootstrap": {"n": int(self.bootstrap_samples.shape[0]), "summary": self.summary},
            "compute_optimal_exponents": dict(zip(("a", "b"), self.exponents)),
            "frontier": self.compute_optimal(grid).to_dict(),
            "holdout": None if self.holdout is None else self.holdout.to_dict(),
            "log_rmse": self.log_rmse, "huber_delta": HUBER_DELTA,
            "converged": self.converged, "status": getattr(self, "status", None) or
            ("converged" if self.converged else "max_iter"), "message": self.message,
            "iterations": self.iterations, "residual": self.residual,
        })

    def plot(self, path) -> None:
        """Write a figure: the runs and fitted curves (loss vs compute, one curve per model size)
        with the compute-optimal frontier, and ``N*(C)``, ``D*(C)`` with their bands."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        N, D, L = (np.asarray(self.runs[k]) for k in ("N", "D", "loss"))
        C = 6.0 * N * D
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        sizes = np.unique(N)
        if sizes.size > 8:
            sizes = np.unique(np.quantile(sizes, np.linspace(0, 1, 8), method="nearest"))
        cmap = plt.get_cmap("viridis")
        bits = None if self.form == "chinchilla" else float(np.max(self.runs["bits"]))
        for i, n in enumerate(sizes):
            colour = cmap(i / max(sizes.size - 1, 1))
            sel = N == n
            ax.scatter(C[sel], L[sel], s=14, color=colour, zorder=3)
            dd = np.geomspace(D.min() / 2, D.max() * 2, 100)
            ax.plot(6 * n * dd, self.predict(np.full(dd.shape, n), dd, bits), color=colour, lw=1,
                    label=f"N = {n:.3g}")
        if sizes.size < np.unique(N).size:
            ax.scatter(C, L, s=6, color="0.5", zorder=2)
        grid = np.geomspace(C.min() / 2, C.max() * 10, 60)
        opt = self.compute_optimal(grid)
        ax.plot(grid, opt.loss, "k--", lw=1.5, label="compute-optimal frontier")
        if np.all(np.isfinite(opt.loss_lo)):
            ax.fill_between(grid, opt.loss_lo, opt.loss_hi, color="k", alpha=0.12)
        ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel="loss",
               title=f"{self.form} fit: alpha={self.params['alpha']:.3g}, beta={self.params['beta']:.3g}")
        ax.legend(fontsize=7)
        for key, lo, hi, label, colour in (("n_params", opt.n_params_lo, opt.n_params_hi, "N*", "C0"),
                                           ("n_data", opt.n_data_lo, opt.n_data_hi, "D*", "C1")):
            ax2.plot(grid, getattr(opt, key), color=colour, label=label)
            if np.all(np.isfinite(lo)):
                ax2.fill_between(grid, lo, hi, color=colour, alpha=0.2)
        ax2.scatter(C, N, s=8, color="C0", alpha=0.5, label="runs' N")
        ax2.scatter(C, D, s=8, color="C1", alpha=0.5, label="runs' D")
        a, b = self.exponents
        ax2.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="N*, D*",
                title=f"N* ~ C^{a:.3f}, D* ~ C^{b:.3f} (bands: {self.level:.0%} bootstrap)")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


# --------------------------------------------------------------------------- fitting
def _check_runs(N, D, loss, bits, form):
    """Arrays of runs, each value checked with the run's index in the message."""
    cols = {"N": N, "D": D, "loss": loss}
    if form == "precision":
        if bits is None:
            fail("bits", "given for the precision form (training precision of every run)", bits)
        cols["bits"] = bits
    elif bits is not None:
        fail("bits", "None for the chinchilla form (use form='precision')", "array")
    out = {}
    n = None
    for name, x in cols.items():
        if isinstance(x, (str, bytes)) or x is None:
            fail(name, "an array of numbers", x, TypeError)
        try:
            arr = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            fail(name, "an array of numbers", x, TypeError)
        if arr.ndim != 1:
            fail(name, "1-dimensional", arr)
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            fail(name, f"of length {n} (as N)", arr)
        for i, v in enumerate(arr):
            finite_ok = name == "bits" and v == np.inf
            if not (np.isfinite(v) or finite_ok):
                fail(f"{name}[{i}]", "a finite number" + (" or inf" if name == "bits" else ""), v)
            if v <= 0:
                fail(f"{name}[{i}]", "positive", v)
        out[name] = arr
    out.setdefault("bits", np.full(n, np.inf))
    return out


def fit(N, D, loss, bits=None, *, form: str = "chinchilla", bootstrap: int = 200, seed: int = 0,
        level: float = 0.9, holdout: float = 0.2, starts: int = 8) -> ScalingFit:
    """Fit a scaling law to training runs (see the module docstring for the method).

    Parameters
    ----------
    N, D, loss : array_like, shape (n_runs,)
        Parameters, training tokens (or samples) and final loss of each run; all > 0 and finite.
    bits : array_like, shape (n_runs,), optional
        Training precision (bits; ``inf`` = full precision); required for ``form="precision"``.
    form : {"chinchilla", "precision"}
    bootstrap : int
        Bootstrap resamples of the runs (0: no intervals).
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the percentile intervals, in (0, 1).
    holdout : float
        Fraction of runs (the largest compute ``6 N D``; at least one) left out for the
        leave-largest-out check; 0 skips it.
    starts : int
        L-BFGS runs from the best grid points (bootstrap refits start from the full-data optimum,
        and also from the best grid point when it is already better than that optimum's refit).

    Returns
    -------
    ScalingFit
        ``converged`` is False (and a ConvergenceWarning issued) when L-BFGS did not converge on
        the full data.

    Raises
    ------
    ValueError
        Non-positive, NaN or infinite values (the message names the column and the run's index),
        mismatched lengths, or fewer than ``n_params + 2`` runs.
    """
    form = form if form in FORMS else fail("form", f"one of {FORMS}", form)
    runs = _check_runs(N, D, loss, bits, form)
    names = _NAMES[form]
    n = runs["N"].shape[0]
    need = len(names) + 2
    if n < need:
        raise ValueError(f"too few runs: got {n}; the {form} form has {len(names)} parameters and needs at "
                         f"least {need} runs")
    if form == "precision" and np.unique(runs["bits"]).size < 2:
        fail("bits", "varying across runs (gamma is not identifiable from a single precision)",
             np.unique(runs["bits"]).tolist())
    bootstrap = check_int(bootstrap, "bootstrap", lo=0)
    seed = check_int(seed, "seed", lo=0)
    level = check_real(level, "level", lo=0.0, hi=1.0, lo_closed=False, hi_closed=False)
    holdout = check_real(holdout, "holdout", lo=0.0, hi=0.5)
    starts = check_int(starts, "starts", lo=1)
    precision = form == "precision"
    logN, logD, logL, P = np.log(runs["N"]), np.log(runs["D"]), np.log(runs["loss"]), runs["bits"]
    delta = HUBER_DELTA

    best, nfev = _fit_once(logN, logD, logL, P, precision, starts=starts, delta=delta)
    theta = best.x
    converged = _converged(best)
    par = _natural(theta)
    params = {k: float(v) for k, v in zip(names, par)}

    rng = np.random.default_rng(seed)
    samples = np.empty((bootstrap, len(names)))
    n_bad = 0
    for i in range(bootstrap):
        idx = rng.integers(0, n, n)
        r = _refit(logN[idx], logD[idx], logL[idx], P[idx], precision, theta, delta)
        n_bad += not _converged(r)
        samples[i] = _natural(r.x)
    q = ((1 - level) / 2, (1 + level) / 2)
    intervals, summary = {}, {}
    cols = {k: samples[:, j] for j, k in enumerate(names)}
    cols["a"] = samples[:, 4] / (samples[:, 3] + samples[:, 4])
    cols["b"] = samples[:, 3] / (samples[:, 3] + samples[:, 4])
    for k, v in cols.items():
        if bootstrap:
            lo, hi = np.quantile(v, q)
            intervals[k] = (float(lo), float(hi))
            summary[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                          "median": float(np.median(v))}
        else:
            intervals[k] = (float("nan"), float("nan"))
            summary[k] = {"mean": float("nan"), "std": float("nan"), "median": float("nan")}

    r_log = _terms(theta, logN, logD, P)[0]
    resid = np.logaddexp(np.logaddexp(r_log[:, 0], r_log[:, 1]), r_log[:, 2]) - logL
    held = _holdout(runs, holdout, precision, need, starts, delta) if holdout > 0 else None

    msg = "converged" if converged else f"L-BFGS-B: {best.message}"
    if bootstrap and n_bad:
        msg += f"; {n_bad} of {bootstrap} bootstrap refits stopped early (kept)"
    if not converged:
        warn_not_converged("lmech.scaling.fit", msg)
    return ScalingFit(form=form, params=params, intervals=intervals, level=level, bootstrap_samples=samples,
                      summary=summary, names=names, n_runs=n, log_rmse=float(np.sqrt(np.mean(resid**2))),
                      holdout=held, runs={k: v.copy() for k, v in runs.items()},
                      converged=converged, iterations=nfev, residual=float(np.max(np.abs(resid))), message=msg,
                      extras={"objective": float(best.fun), "theta": theta.tolist(), "bootstrap_not_converged": n_bad})


def _holdout(runs, fraction, precision, need, starts, delta) -> Holdout:
    n = runs["N"].shape[0]
    C = 6.0 * runs["N"] * runs["D"]
    k = max(1, int(round(fraction * n)))
    empty = np.empty(0)
    if n - k < need:
        return Holdout(0, empty, empty, empty, empty, float("nan"), float("nan"),
                       message=f"skipped: leaving out {k} runs would leave {n - k} < {need} to fit")
    order = np.argsort(C, kind="stable")
    keep, out = order[: n - k], order[n - k :]
    logs = {key: np.log(runs[key]) for key in ("N", "D", "loss")}
    res, _ = _fit_once(logs["N"][keep], logs["D"][keep], logs["loss"][keep], runs["bits"][keep], precision,
                       starts=starts, delta=delta)
    t = _terms(res.x, logs["N"][out], logs["D"][out], runs["bits"][out])[0]
    pred = np.exp(np.logaddexp(np.logaddexp(t[:, 0], t[:, 1]), t[:, 2]))
    obs = runs["loss"][out]
    rel = np.abs(pred - obs) / obs
    return Holdout(n_held=int(k), compute=C[out], loss=obs, predicted=pred, rel_error=rel,
                   max_rel_error=float(rel.max()), mean_rel_error=float(rel.mean()))


# --------------------------------------------------------------------------- CSV
def read_runs(path, *, form: str = "chinchilla") -> dict:
    """Read runs from a CSV file with a header row naming the columns ``N``, ``D``, ``loss``
    (and ``bits`` for the precision form; names are case-insensitive, other columns ignored).

    Returns ``{"N": ndarray, "D": ndarray, "loss": ndarray, "bits": ndarray or None}``.

    Raises
    ------
    ValueError
        Missing file or column, an unreadable, NaN, infinite or non-positive value (naming the
        column, the data row and the file line), or fewer than two runs.
    """
    form = form if form in FORMS else fail("form", f"one of {FORMS}", form)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"runs file {str(path)!r} does not exist")
    wanted = ["N", "D", "loss"] + (["bits"] if form == "precision" else [])
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: the file is empty (expected a header row with columns "
                             f"{', '.join(wanted)})") from None
        keys = [h.strip().lower() for h in header]
        where = {}
        for col in wanted:
            if col.lower() not in keys:
                raise ValueError(f"{path}: column {col!r} is missing (header has: {', '.join(h.strip() for h in header)}); "
                                 f"needed: {', '.join(wanted)}")
            where[col] = keys.index(col.lower())
        values = {c: [] for c in wanted}
        row = 0
        for line_no, rec in enumerate(reader, start=2):
            if not rec or all(not x.strip() for x in rec):
                continue
            row += 1
            for col in wanted:
                j = where[col]
                text = rec[j].strip() if j < len(rec) else ""
                try:
                    v = float(text)
                except ValueError:
                    raise ValueError(f"{path}: column {col!r}, row {row} (line {line_no}): "
                                     f"{text!r} is not a number") from None
                ok_inf = col == "bits" and v == math.inf
                if math.isnan(v) or (math.isinf(v) and not ok_inf):
                    raise ValueError(f"{path}: column {col!r}, row {row} (line {line_no}): value {text!r} must be "
                                     f"finite" + (" (inf allowed for bits only)" if col == "bits" else ""))
                if v <= 0:
                    raise ValueError(f"{path}: column {col!r}, row {row} (line {line_no}): value {text!r} must be "
                                     f"positive")
                values[col].append(v)
    if row < 2:
        raise ValueError(f"{path}: only {row} run(s); a fit needs several (at least {len(_NAMES[form]) + 2} "
                         f"for the {form} form)")
    out = {c: np.array(v) for c, v in values.items()}
    out.setdefault("bits", None)
    return out
