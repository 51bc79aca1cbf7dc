"""Predicted learning curve of kernel regression (an infinitely wide network) on a user's data.

The pool of N points is taken as the data distribution: the kernel's eigen-system under the
uniform distribution on the pool and the target's power on each mode give the learning curve
of :func:`lmech.theory.kernel_curves.learning_curve` (Bordelon, Canatar & Pehlevan, "Spectrum
Dependent Learning Curves in Kernel Regression and Wide Neural Networks"). Inputs are
standardised per feature (zero mean, unit variance; constant features become 0) and targets
centred; integer class labels become centred one-hot vectors, and errors are summed over outputs.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from lmech._validation import check_array, check_choice, check_int, check_real, fail
from lmech.fits import fit_power_law
from lmech.kernels import ACTIVATIONS, empirical_ntk, nngp_mlp, ntk_mlp
from lmech.results import LmechWarning, SolverResult, warn_not_converged
from lmech.spectra import EmpiricalSpectrum, empirical_spectrum, nystrom_extension
from lmech.theory.kernel_curves import learning_curve as _theory_curve

__all__ = ["LearningCurvePrediction", "Validation", "learning_curve", "LearningCurvePredictor",
           "prepare_data", "MAX_EXACT", "VALIDATION_TOLERANCE"]

#: Pools larger than this are not diagonalised: a Nystrom approximation on random landmarks is used.
MAX_EXACT = 2000
#: Relative gap between theory and measured kernel regression beyond which a warning is raised.
VALIDATION_TOLERANCE = 0.2
KERNELS = ("ntk", "nngp")
TASKS = ("auto", "regression", "classification")
_BOOT_MODES = 200  # modes kept when the pool is resampled for the band
_MAX_CLASSES = 20


# --------------------------------------------------------------------------- data
def prepare_data(X, y, *, task: str = "auto"):
    """Standardise X (n, ...) -> (n, d) and turn y into centred targets (n, C).

    Returns ``(Xs, Y, info)`` with ``info`` recording the means/scales and whether y was read
    as class labels (1-d integer values with at most 20 classes under ``task="auto"``).
    """
    task = check_choice(task, "task", TASKS)
    Xa = check_array(X, "X", ndim=None)
    if Xa.ndim < 2 or Xa.shape[0] < 2:
        fail("X", "an array of shape (n, d) with n >= 2 samples", Xa)
    Xa = Xa.reshape(Xa.shape[0], -1)
    n = Xa.shape[0]
    ya = np.asarray(y)
    if ya.ndim not in (1, 2) or ya.shape[0] != n:
        fail("y", f"of shape ({n},) or ({n}, C) (one row per row of X)", ya)
    ya = check_array(ya, "y", ndim=(1, 2))
    classes = None
    if ya.ndim == 1:
        distinct = np.unique(ya)
        integer = bool(np.all(ya == np.round(ya)))
        if task == "classification" or (task == "auto" and integer and 2 <= distinct.size <= _MAX_CLASSES):
            if not integer:
                fail("y", "integer class labels for task='classification'", ya)
            classes = distinct
            ya = (ya[:, None] == distinct[None, :]).astype(np.float64)
        else:
            ya = ya[:, None]
    mean = Xa.mean(axis=0)
    scale = Xa.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Xs = (Xa - mean) / scale
    Y = ya - ya.mean(axis=0)
    if not np.any(Y):
        fail("y", "not constant (centred targets are all zero)", y)
    info = dict(mean=mean, scale=scale, classes=classes, n_outputs=Y.shape[1])
    return Xs, Y, info


def _kernel_fn(kernel, depth, activation, bias_var, weight_var):
    fn = ntk_mlp if kernel == "ntk" else nngp_mlp

    def k(A, B=None):
        return fn(A, B, depth=depth, activation=activation, weight_var=weight_var, bias_var=bias_var)

    return k


def _model_kernel_fn(model, d, memory_gb):
    """Empirical NTK of a torch module (or of ``factory(d)``), in blocks within ``memory_gb``."""
    if not isinstance(model, torch.nn.Module):
        if not callable(model):
            fail("model", "a torch.nn.Module or a factory called with the input dimension", model, TypeError)
        model = model(d)
        if not isinstance(model, torch.nn.Module):
            fail("model", "a factory returning a torch.nn.Module", model, TypeError)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        fail("model", "a module with trainable parameters", model)
    n_params = sum(p.numel() for p in params)
    itemsize = max(p.element_size() for p in params)
    with torch.no_grad():
        out = model(torch.zeros(2, d, dtype=params[0].dtype))
    if out.reshape(2, -1).shape[1] != 1:
        fail("model", f"a module with one output per sample (it gives {out.reshape(2, -1).shape[1]})", model)
    # Jacobian rows held at once: a block of columns plus a chunk of rows, each n_params wide
    budget = int(memory_gb * 2**30 / (itemsize * n_params * 3))
    if budget < 2:
        fail("memory_gb", f"enough for two Jacobian rows of {n_params} parameters", memory_gb)
    block = max(1, budget // 2)
    chunk = max(1, min(256, budget - block))

    def k(A, B=None):
        B = A if B is None else B
        return np.hstack([empirical_ntk(model, A, B[j:j + block], chunk_size=chunk)
                          for j in range(0, B.shape[0], block)])

    return k


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Validation:
    """Measured kernel ridge regression beside the theory at a few small P.

    ``actual`` is the mean over ``n_splits`` random splits (train on P pool points, test on
    held-out pool points) of the squared error summed over outputs; ``rel_gap`` is
    theory / actual - 1; ``within`` says whether every |rel_gap| <= ``tolerance``.
    """

    P: np.ndarray
    theory: np.ndarray
    actual: np.ndarray
    actual_sem: np.ndarray
    rel_gap: np.ndarray
    n_splits: int
    n_test: int
    tolerance: float

    @property
    def within(self) -> bool:
        return bool(np.all(np.abs(self.rel_gap) <= self.tolerance))

    @property
    def max_abs_gap(self) -> float:
        return float(np.max(np.abs(self.rel_gap))) if self.rel_gap.size else float("nan")


@dataclass(frozen=True, kw_only=True)
class LearningCurvePrediction(SolverResult):
    """Predicted learning curve of kernel regression on a data pool.

    Attributes
    ----------
    P : ndarray (n,)
        Training-set sizes.
    generalization_error : ndarray (n,)
        Predicted mean squared error on held-out pool points against their labels (summed over
        outputs), averaged over training sets of P points drawn from the pool.
    lower, upper : ndarray (n,)
        Band from resampling the pool (``band_level`` coverage of the bootstrap replicates).
    clean_error : ndarray (n,)
        ``generalization_error`` minus the label-noise variance (given, or estimated) times
        ``n_outputs``: the error against noise-free targets.
    baseline : float
        The error of predicting 0 (the centred targets' total variance).
    exponent, exponent_stderr : float
        ``generalization_error ~ P^-exponent`` fitted over the larger half (in log P) of ``P``.
    samples_for : dict
        Fraction f of the P = 1 error -> smallest P predicted to reach it (None if not reached
        below ``reach``, the largest P the pool supports).
    learnability : ndarray (n, m)
        Per-mode learnability P lam_k / (P lam_k + kappa) for the top m modes.
    eigenvalues, target_power : ndarray (m,)
        Top kernel eigenvalues on the pool and the target's power on them.
    spectrum_fit : dict
        Power laws fitted to the spectrum over the modes the curve probes (k <= ``reach``,
        modes by decreasing eigenvalue, k from 1; see :func:`_fit_spectrum`):
        ``eigenvalue_exponent`` a with ``lam_k ~ k^-a`` (fitted over ``eigenvalue_fit_modes``,
        first and last mode) and ``target_power_exponent`` r with ``target_power_k ~ k^-r``
        (over ``target_fit_modes``), each with its ``..._stderr``. The power-law model of
        ``lmech schedule --from-prediction`` takes the capacity exponent alpha = a and the
        source exponent beta = (r - 1) / a.
    validation : Validation or None
    method : str
        ``"exact"`` (pool diagonalised) or ``"nystrom"`` (``landmarks`` random landmarks).
    """

    P: np.ndarray
    generalization_error: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    clean_error: np.ndarray
    baseline: float
    exponent: float
    exponent_stderr: float
    samples_for: dict
    learnability: np.ndarray
    eigenvalues: np.ndarray
    target_power: np.ndarray
    validation: Validation | None
    noise: float
    noise_estimate: float
    ridge: float
    n_samples: int
    n_features: int
    n_outputs: int
    method: str
    landmarks: int
    reach: int
    band_level: float
    settings: dict = field(default_factory=dict)
    spectrum_fit: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        v = self.validation
        out = dict(
            P=self.P.tolist(), generalization_error=self.generalization_error.tolist(), lower=self.lower.tolist(),
            upper=self.upper.tolist(), clean_error=self.clean_error.tolist(), baseline=self.baseline,
            exponent=self.exponent, exponent_stderr=self.exponent_stderr,
            samples_for={f"{k:g}": (None if p is None else int(p)) for k, p in self.samples_for.items()},
            band_level=self.band_level, noise=self.noise,
            noise_estimate=None if not np.isfinite(self.noise_estimate) else self.noise_estimate, ridge=self.ridge, n_samples=self.n_samples,
            n_features=self.n_features, n_outputs=self.n_outputs, method=self.method, landmarks=self.landmarks,
            reach=self.reach, eigenvalues=self.eigenvalues[:50].tolist(), target_power=self.target_power[:50].tolist(),
            settings=self.settings, spectrum_fit=dict(self.spectrum_fit), status=self.status, converged=self.converged, message=self.message,
            validation=None,
        )
        if v is not None:
            out["validation"] = dict(P=v.P.tolist(), theory=v.theory.tolist(), actual=v.actual.tolist(),
                                     actual_sem=v.actual_sem.tolist(), rel_gap=v.rel_gap.tolist(),
                                     n_splits=v.n_splits, n_test=v.n_test, tolerance=v.tolerance, within=v.within)
        return out

    def summary(self) -> str:
        lines = [f"predicted learning curve ({self.settings.get('kernel', '?')} kernel, {self.method} spectrum of "
                 f"{self.n_samples} points x {self.n_features} features, {self.n_outputs} output(s)):"]
        for p, e, lo, hi in zip(self.P, self.generalization_error, self.lower, self.upper):
            lines.append(f"  P = {int(p):>7d}  error {e:.4g}  [{lo:.4g}, {hi:.4g}]  ({e / self.baseline:.1%} of "
                         "predicting 0)")
        lines.append(f"data-scaling exponent: error ~ P^-{self.exponent:.3f} (+/- {self.exponent_stderr:.3f})")
        sf = self.spectrum_fit
        if sf:
            a, r = sf["eigenvalue_exponent"], sf["target_power_exponent"]
            (a0, a1), (r0, r1) = sf["eigenvalue_fit_modes"], sf["target_fit_modes"]
            lines.append(f"spectrum: eigenvalues ~ k^-{a:.3f} (modes {a0}..{a1}), target power per mode "
                         f"~ k^-{r:.3f} (modes {r0}..{r1})")
        for f, p in self.samples_for.items():
            lines.append(f"  {f:.0%} of the P=1 error: " + (f"P = {p}" if p is not None else
                                                            f"not reached below P = {self.reach}"))
        v = self.validation
        if v is not None:
            for p, t, a, g in zip(v.P, v.theory, v.actual, v.rel_gap):
                lines.append(f"  check at P = {int(p)}: theory {t:.4g}, kernel regression {a:.4g} ({g:+.1%})")
            if v.within:
                lines.append(f"the theory is within {v.max_abs_gap:.1%} of kernel regression on your data "
                             f"({v.n_splits} splits per P)")
            else:
                lines.append(f"WARNING: the theory is off by up to {v.max_abs_gap:.1%} (> {v.tolerance:.0%}) from "
                             "kernel regression on your data: treat the curve as rough")
        return "\n".join(lines)

    def plot(self, path) -> None:
        """Write the curve with its band and the validation points, and per-mode learnability."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        ax.fill_between(self.P, self.lower, self.upper, alpha=0.3, label=f"{self.band_level:.0%} band (resampled pool)")
        ax.plot(self.P, self.generalization_error, "-", label="theory")
        v = self.validation
        if v is not None:
            ax.errorbar(v.P, v.actual, yerr=2 * v.actual_sem, fmt="o", color="k", label="kernel regression")
        ax.set(xscale="log", yscale="log", xlabel="training samples P", ylabel="test error (summed over outputs)",
               title=f"exponent {self.exponent:.2f}")
        ax.legend(fontsize=8)
        m = self.learnability.shape[1]
        k = np.arange(1, m + 1)
        picks = np.unique(np.linspace(0, self.P.size - 1, min(4, self.P.size)).round().astype(int))
        for i in picks:
            ax2.plot(k, self.learnability[i], label=f"P = {int(self.P[i])}")
        tp = self.target_power[:m]
        if tp.sum() > 0:
            ax2.plot(k, np.cumsum(tp) / np.sum(self.target_power), "k--", lw=1, label="cumulative target power")
        ax2.set(xscale="log", xlabel="mode k (by decreasing eigenvalue)", ylabel="learnability", ylim=(0, 1.05))
        ax2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


# --------------------------------------------------------------------------- spectrum
def _spectrum(Xs, Y, kfn, max_exact, landmarks, rng, memory_gb):
    n = Xs.shape[0]
    if n <= max_exact:
        K = kfn(Xs)
        spec = empirical_spectrum(K)
        trace = float(np.trace(K) / n)
        return dict(method="exact", K=K, K_index=np.arange(n), lam=spec.eigenvalues, phi=spec.eigenfunctions, trace=trace, landmarks=n,
                    diag=np.diag(K).copy())
    m = min(landmarks, n)
    idx = np.sort(rng.choice(n, size=m, replace=False))
    Kmm = kfn(Xs[idx])
    spec = empirical_spectrum(Kmm)
    keep = spec.eigenvalues > 1e-12 * spec.eigenvalues[0]
    keep &= np.arange(keep.size) < m // 2  # only the top half of a sample's modes are reliable; the rest is tail
    spec = EmpiricalSpectrum(spec.eigenvalues[keep], spec.eigenfunctions[:, keep])
    M = spec.eigenvalues.size
    rows = max(1, int(memory_gb * 2**30 / (8 * 3 * max(m, M))))
    phi = np.empty((n, M))
    for s in range(0, n, rows):
        phi[s:s + rows] = nystrom_extension(spec, kfn(Xs[s:s + rows], Xs[idx]))
    trace = float(np.trace(Kmm) / m)
    return dict(method="nystrom", K=Kmm, K_index=idx, lam=spec.eigenvalues, phi=phi,
                trace=max(trace, float(spec.eigenvalues.sum())), landmarks=m, diag=None)


def _curve(lam, power, P, ridge, noise_total, trace, total_power):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _theory_curve(lam, power, P, ridge, noise_total, trace=max(trace, float(lam.sum())),
                             total_power=max(total_power, float(power.sum())))


def _held_out(curve, n):
    """Test error on the pool points outside the training set.

    The theory's error is the mean over the whole pool, training points included; those carry
    the training error, so the held-out mean is (n E - P E_train) / (n - P) (NaN for P >= n).
    """
    P = curve.P
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (n * curve.test_error - P * curve.training_error) / (n - P)
    return np.where(P < n, out, np.nan)


def _krr_check(Y, K, P_val, ridge, n_splits, rng, max_test=2000):
    """Kernel ridge regression on random splits of the points whose Gram matrix ``K`` is."""
    n = K.shape[0]
    actual, sem, n_test = [], [], 0
    for p in P_val:
        errs = []
        for _ in range(n_splits):
            perm = rng.permutation(n)
            tr, te = perm[:p], perm[p:p + max_test]
            n_test = te.size
            Ktr, Kte = K[np.ix_(tr, tr)], K[np.ix_(te, tr)]
            w, U = torch.linalg.eigh(torch.from_numpy(Ktr + ridge * np.eye(p)))
            w, U = w.numpy(), U.numpy()
            inv = np.where(w > 1e-10 * w.max(), 1.0 / np.where(w > 0, w, 1.0), 0.0)
            alpha = U @ (inv[:, None] * (U.T @ Y[tr]))
            errs.append(float(np.mean(np.sum((Kte @ alpha - Y[te]) ** 2, axis=1))))
        actual.append(np.mean(errs))
        sem.append(np.std(errs, ddof=1) / math.sqrt(len(errs)) if len(errs) > 1 else float("nan"))
    return np.array(actual), np.array(sem), n_test


def _fit_spectrum(lam, power, reach, floor=0.0) -> dict:
    """Power-law exponents of a spectrum and of a target's power over the modes a curve probes.

    Over modes ``k <= k_hi`` (by decreasing eigenvalue; ``k_hi`` is ``reach`` or the number of
    modes above 1e-10 of the top eigenvalue, whichever is smaller), ``log lam_k`` and
    ``log p_k`` are fitted as straight lines in ``log k`` by least squares with weights ``1/k``
    (every range of log k counts alike, not the many modes of the tail): ``lam_k ~ k^-a`` over
    modes ``2..k_hi`` (the top mode, often the data's constant direction, is left out) and
    ``p_k ~ k^-r`` over ``1..k_hi``, after taking ``floor`` (a white-noise power per mode) off
    every mode; modes left without power are skipped. A single mode's power scatters by a
    random factor (one coefficient per mode), which moves the intercept of a log fit but not its
    slope. In the source/capacity model of "Theory of Optimal Learning Rate Schedules and Scaling
    Laws for a Random Feature Model", ``lam_k ~ k^-alpha`` and ``p_k ~ k^-(alpha beta + 1)``:
    alpha = a, beta = (r - 1) / a. Exponents that cannot be fitted (fewer than 3 usable modes)
    are NaN.
    """
    k_hi = int(min(max(reach, 3), np.count_nonzero(lam > 1e-10 * lam[0])))
    p = np.clip(power - floor, 0.0, None)

    def fit(values, lo):
        k = np.arange(lo, k_hi + 1, dtype=float)
        v = values[lo - 1:k_hi]
        ok = v > 1e-14 * max(float(v.max()) if v.size else 0.0, 1e-300)
        if ok.sum() < 3:
            return float("nan"), float("nan"), [lo, k_hi]
        x, z, w = np.log(k[ok]), np.log(v[ok]), 1.0 / k[ok]
        w = w / w.sum()
        xm, zm = w @ x, w @ z
        sxx = w @ (x - xm) ** 2
        slope = (w @ ((x - xm) * (z - zm))) / sxx
        n_eff = 1.0 / (w @ w)  # effective number of points under the weights
        resid = w @ (z - zm - slope * (x - xm)) ** 2
        stderr = math.sqrt(resid / sxx / max(n_eff - 2.0, 1.0))
        return float(-slope), float(stderr), [int(k[ok][0]), int(k[ok][-1])]

    a, a_se, a_modes = fit(lam, 2)
    r, r_se, r_modes = fit(p, 1)
    return dict(eigenvalue_exponent=a, eigenvalue_exponent_stderr=a_se, eigenvalue_fit_modes=a_modes,
                target_power_exponent=r, target_power_exponent_stderr=r_se, target_fit_modes=r_modes)


def _first_crossing(grid, E, level):
    below = np.nonzero(E <= level)[0]
    if below.size == 0:
        return None
    i = below[0]
    if i == 0:
        return int(math.ceil(grid[0]))
    # log-log interpolation between grid[i-1] and grid[i]
    x0, x1, y0, y1 = np.log(grid[i - 1]), np.log(grid[i]), np.log(E[i - 1]), np.log(E[i])
    t = (np.log(level) - y0) / (y1 - y0) if y1 != y0 else 1.0
    return int(math.ceil(math.exp(x0 + t * (x1 - x0)) - 1e-9))


# --------------------------------------------------------------------------- entry point
def learning_curve(
    X,
    y,
    P=None,
    *,
    kernel: str = "ntk",
    depth: int = 1,
    activation: str = "relu",
    bias_var: float = 0.0,
    weight_var: float = 2.0,
    ridge: float = 0.0,
    noise="auto",
    task: str = "auto",
    n_bootstrap: int = 20,
    band_level: float = 0.9,
    validate=True,
    n_splits: int = 5,
    max_exact: int = MAX_EXACT,
    landmarks: int = 2000,
    memory_gb: float = 4.0,
    tolerance: float = VALIDATION_TOLERANCE,
    fractions=(0.5, 0.25, 0.1),
    seed: int = 0,
    model=None,
) -> LearningCurvePrediction:
    """Predict the learning curve of kernel regression (an infinitely wide MLP) on data (X, y).

    Parameters
    ----------
    X : array_like (n, ...)
        Inputs, flattened per sample and standardised per feature (zero mean, unit variance).
    y : array_like (n,) or (n, C)
        Targets: 1-d regression values, 1-d integer class labels (made centred one-hot under
        ``task="auto"`` when there are 2..20 classes, or always with ``task="classification"``),
        or (n, C) vectors. Targets are centred.
    P : array_like of int, optional
        Training-set sizes (default: 25 log-spaced sizes from 1 to ``reach``, the largest P the
        pool supports: n/4 for an exact spectrum, min(n/4, landmarks/2) with Nystrom).
    kernel : {"ntk", "nngp"}
        Infinite-width MLP kernel (``depth`` hidden layers, ``activation``, ``weight_var``,
        ``bias_var``; see :func:`lmech.kernels.mlp_kernels`). NTK: a network trained to
        convergence by gradient descent; NNGP: a Bayesian network / last layer only.
    ridge : float
        Ridge added to the unnormalised P x P Gram matrix (0: interpolation).
    noise : "auto" or float
        ``"auto"`` (default): any label noise stays part of the pool's target, as the labels of
        held-out points carry it (this matched kernel regression best in the tests); its variance
        is estimated from the target's power on the bottom half of the pool's modes (white noise
        puts noise/n on each mode; exact spectra only) and reported as ``noise_estimate``, and
        subtracted for ``clean_error``. A number: the label-noise variance per output, taken out
        of the target's power on each mode and treated as fresh noise by the theory.
    n_bootstrap : int
        Resamples of the pool for the band (0: no band; lower = upper = the curve). Each resample
        recomputes the spectrum and the target power in the span of the top 200 modes.
    validate : bool or sequence of int
        Run kernel ridge regression at three small P (or at the P given) on ``n_splits`` random
        train / held-out splits of the pool and compare with the theory.
    max_exact, landmarks, memory_gb
        Pools of more than ``max_exact`` points (default 2000) use a Nystrom spectrum on
        ``landmarks`` random points: the top landmarks/2 modes (and the target's power on them,
        measured on the landmarks, where the modes are orthonormal) are listed, the remaining
        kernel trace and target power of the whole pool enter as the theory's tail. Kernel rows
        of the pool against the landmarks are computed in chunks within ``memory_gb``.
    tolerance : float
        Relative theory-vs-measurement gap beyond which the result warns (default 0.2).
    fractions : sequence of float
        Fractions of the P = 1 error for ``samples_for``.
    model : torch.nn.Module or callable, optional
        Use the empirical NTK of this finite network instead of an analytic kernel (``kernel``,
        ``depth``, ``activation``, ``weight_var``, ``bias_var`` are then ignored); a callable is a
        factory called with the input dimension d. It must map a batch (n, d) of standardised
        inputs to one output per sample. Jacobians are computed in blocks within ``memory_gb``.

    Returns
    -------
    LearningCurvePrediction
    """
    kernel = check_choice(kernel, "kernel", KERNELS)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    depth = check_int(depth, "depth", lo=0)
    bias_var = check_real(bias_var, "bias_var", lo=0)
    weight_var = check_real(weight_var, "weight_var", lo=0, lo_closed=False)
    ridge = check_real(ridge, "ridge", lo=0)
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", lo=0)
    band_level = check_real(band_level, "band_level", lo=0, hi=1, lo_closed=False, hi_closed=False)
    n_splits = check_int(n_splits, "n_splits", lo=2)
    max_exact = check_int(max_exact, "max_exact", lo=2)
    landmarks = check_int(landmarks, "landmarks", lo=10)
    memory_gb = check_real(memory_gb, "memory_gb", lo=0, lo_closed=False)
    tolerance = check_real(tolerance, "tolerance", lo=0, lo_closed=False)
    seed = check_int(seed, "seed", lo=0)
    fr = check_array(fractions, "fractions", ndim=1, positive=True)
    if np.any(fr >= 1):
        fail("fractions", "values in (0, 1)", fr)
    if not (isinstance(noise, str) and noise == "auto"):
        noise = check_real(noise, "noise", lo=0)
    Xs, Y, info = prepare_data(X, y, task=task)
    n, d = Xs.shape
    C = Y.shape[1]
    if n < 8:
        fail("X", "at least 8 samples", Xs)
    rng = np.random.default_rng(seed)
    if model is None:
        kfn = _kernel_fn(kernel, depth, activation, bias_var, weight_var)
    else:
        kfn = _model_kernel_fn(model, d, memory_gb)
        kernel = "empirical-ntk"
        K_check = kfn(Xs[:2])
        if not np.all(np.isfinite(K_check)):
            fail("model", "a network whose tangent kernel is finite on the data", model)
    sp = _spectrum(Xs, Y, kfn, max_exact, landmarks, rng, memory_gb)
    lam, phi = sp["lam"], sp["phi"]
    reach = max(2, n // 4) if sp["method"] == "exact" else max(2, min(n // 4, sp["landmarks"] // 2))
    if P is None:
        P_arr = np.unique(np.round(np.geomspace(1, reach, 25)).astype(int)).astype(float)
    else:
        P_arr = np.unique(check_array(P, "P", ndim=(0, 1), positive=True, min_size=1))
        if np.any(P_arr != np.round(P_arr)):
            fail("P", "whole numbers of samples", P_arr)
    if sp["method"] == "exact":
        coef = phi.T @ Y / n  # (M, C)
    else:  # Nystrom: the extended eigenfunctions are orthonormal on the landmarks only
        coef = phi[sp["K_index"]].T @ Y[sp["K_index"]] / sp["landmarks"]
    power_raw = np.sum(coef**2, axis=1)
    total_raw = float(np.sum(Y**2) / n)
    # white label noise of variance s2 puts s2/n of power on every mode of the pool
    if sp["method"] == "exact" and lam.size >= 8:
        noise_estimate = float(n * np.median(power_raw[lam.size // 2:]) / C)
    else:
        noise_estimate = float("nan")
    noise_is_auto = isinstance(noise, str)
    if noise_is_auto:
        noise = 0.0  # the labels' noise stays part of the pool's target (what held-out points carry)
        clean_shift = C * noise_estimate if np.isfinite(noise_estimate) else 0.0
    else:
        clean_shift = C * noise
    noise_total = noise * C
    power = np.clip(power_raw - noise_total / n, 0.0, None) if sp["method"] == "exact" else power_raw
    total_power = max(total_raw - noise_total, float(power.sum()))
    curve = _curve(lam, power, P_arr, ridge, noise_total, sp["trace"], total_power)
    E = _held_out(curve, n)
    messages = []
    if not curve.converged:
        messages.append(curve.message)
    if np.any(P_arr > reach):
        messages.append(f"P above {reach} is beyond what the pool of {n} points supports (extrapolation)")

    # band: resample the pool, recompute spectrum and target power in the span of the top modes
    lower, upper = E.copy(), E.copy()
    if n_bootstrap:
        r = min(_BOOT_MODES, lam.size)
        rows = sp["K_index"]  # the points on which the eigenfunctions are orthonormal
        nb = rows.size
        Pr, sr, Yb = phi[rows, :r], np.sqrt(lam[:r]), Y[rows]
        tail_mass = max(sp["trace"] - float(lam[:r].sum()), 0.0)

        def replicate(w):
            G = Pr.T @ (w[:, None] * Pr)
            mu, V = np.linalg.eigh(sr[:, None] * G * sr[None, :])
            mu = np.clip(mu, 0.0, None)
            Yw = Yb - w @ Yb
            z = V.T @ (sr[:, None] * (Pr.T @ (w[:, None] * Yw)))
            c = np.where(mu[:, None] > 1e-14 * mu.max(), z / np.sqrt(np.where(mu > 0, mu, 1.0))[:, None], 0.0)
            pw = np.sum(c**2, axis=1)
            if sp["method"] == "exact":
                pw = np.clip(pw - noise_total / n, 0.0, None)
            tot = max(float(w @ np.sum(Yw**2, axis=1)) - noise_total, float(pw.sum()))
            return _held_out(_curve(mu, pw, P_arr, ridge, noise_total, float(mu.sum()) + tail_mass, tot), n)

        ref = replicate(np.full(nb, 1.0 / nb))
        reps = np.array([replicate(rng.multinomial(nb, np.full(nb, 1.0 / nb)) / nb) for _ in range(n_bootstrap)])
        # resampling with replacement repeats points, which shifts every replicate alike: centre
        # the band on the replicates' median (a median-unbiased percentile band)
        ratio = reps / ref
        ratio = ratio / np.median(ratio, axis=0)
        q = (1 - band_level) / 2
        lower = E * np.quantile(ratio, q, axis=0)
        upper = E * np.quantile(ratio, 1 - q, axis=0)
        lower, upper = np.minimum(lower, E), np.maximum(upper, E)

    # exponent over the larger half (in log P) of the grid
    ok = np.isfinite(E) & (E > 0)
    big = ok & (P_arr >= math.sqrt(P_arr[ok].min() * P_arr[ok].max())) if ok.any() else ok
    if big.sum() >= 2:
        pf = fit_power_law(P_arr[big], E[big])
        exponent, exponent_se = pf.exponent, pf.stderr
    else:
        exponent, exponent_se = float("nan"), float("nan")

    # sample sizes for target errors
    grid = np.geomspace(1, reach, 200)
    Eg = _held_out(_curve(lam, power, grid, ridge, noise_total, sp["trace"], total_power), n)
    samples_for = {float(f): _first_crossing(grid, Eg, f * Eg[0]) for f in fr}

    validation = None
    if validate is not False and validate is not None:
        # the pool itself (exact) or the landmarks (Nystrom): a random subset of the pool whose Gram is at hand
        nv = sp["K"].shape[0]
        if validate is True:
            P_val = np.unique(np.clip(np.array([nv // 40, nv // 16, nv // 8]), 2, None))
        else:
            P_val = np.unique(check_array(validate, "validate", ndim=1, positive=True, min_size=1))
            if np.any(P_val != np.round(P_val)) or P_val.max() > nv - 2:
                fail("validate", f"whole numbers below {nv - 1} (the points available for the check)", P_val)
        P_val = P_val.astype(int)
        actual, sem, n_test = _krr_check(Y[sp["K_index"]], sp["K"], P_val, ridge, n_splits, rng)
        theory = _held_out(_curve(lam, power, P_val.astype(float), ridge, noise_total, sp["trace"], total_power), n)
        validation = Validation(P=P_val.astype(float), theory=theory, actual=actual, actual_sem=sem,
                                rel_gap=theory / actual - 1.0, n_splits=n_splits, n_test=n_test, tolerance=tolerance)
        if not validation.within:
            messages.append(f"theory differs from kernel regression on this data by up to "
                            f"{validation.max_abs_gap:.1%} (tolerance {tolerance:.0%})")
            warnings.warn(f"lmech.predict.learning_curve: {messages[-1]}", LmechWarning, stacklevel=2)

    floor = C * noise_estimate / n if (noise_is_auto and np.isfinite(noise_estimate)) else 0.0
    spectrum_fit = _fit_spectrum(lam, power, reach, floor=floor)
    m = min(200, lam.size)
    settings = dict(kernel=kernel, depth=depth, activation=activation, bias_var=bias_var, weight_var=weight_var,
                    task="classification" if info["classes"] is not None else "regression", seed=seed,
                    n_bootstrap=n_bootstrap, standardised_inputs=True, centred_targets=True)
    converged = bool(curve.converged)
    if not converged:
        warn_not_converged("lmech.predict.learning_curve", curve.message)
    return LearningCurvePrediction(
        P=P_arr, generalization_error=E, lower=lower, upper=upper, clean_error=np.clip(E - clean_shift, 0.0, None),
        noise_estimate=noise_estimate,
        baseline=total_raw, exponent=float(exponent), exponent_stderr=float(exponent_se), samples_for=samples_for,
        learnability=curve.learnability[:, :m], eigenvalues=lam[:m].copy(), target_power=power[:m].copy(),
        validation=validation, noise=float(noise), ridge=ridge, n_samples=n, n_features=d, n_outputs=C,
        method=sp["method"], landmarks=int(sp["landmarks"]), reach=int(reach), band_level=band_level,
        settings=settings, spectrum_fit=spectrum_fit, converged=converged, status=curve.status if converged else None,
        iterations=int(curve.iterations), residual=float(curve.residual),
        message="; ".join(messages) if messages else "ok",
        extras=dict(spectrum=dict(eigenvalues=lam, target_power=power, trace=sp["trace"], total_power=total_power,
                                  noise_total=noise_total)),
    )


# --------------------------------------------------------------------------- estimator
class LearningCurvePredictor:
    """Estimator with scikit-learn conventions around :func:`learning_curve`.

    ``LearningCurvePredictor(kernel="ntk", depth=2).fit(X, y).predict_curve([10, 100])`` returns
    the predicted test error at those P; ``result_`` holds the full :class:`LearningCurvePrediction`.
    Constructor arguments are those of :func:`learning_curve` (keywords), stored unchanged.
    """

    def __init__(self, *, kernel="ntk", depth=1, activation="relu", bias_var=0.0, weight_var=2.0, ridge=0.0,
                 noise="auto", task="auto", n_bootstrap=20, validate=True, max_exact=MAX_EXACT, landmarks=2000,
                 memory_gb=4.0, seed=0, model=None):
        self.kernel, self.depth, self.activation = kernel, depth, activation
        self.bias_var, self.weight_var, self.ridge, self.noise, self.task = bias_var, weight_var, ridge, noise, task
        self.n_bootstrap, self.validate, self.max_exact = n_bootstrap, validate, max_exact
        self.landmarks, self.memory_gb, self.seed, self.model = landmarks, memory_gb, seed, model

    _PARAMS = ("kernel", "depth", "activation", "bias_var", "weight_var", "ridge", "noise", "task", "n_bootstrap",
               "validate", "max_exact", "landmarks", "memory_gb", "seed", "model")

    def get_params(self, deep=True) -> dict:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params) -> "LearningCurvePredictor":
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ValueError(f"set_params: unknown parameter {k!r} (one of {self._PARAMS})")
            setattr(self, k, v)
        return self

    def fit(self, X, y) -> "LearningCurvePredictor":
        self.result_ = learning_curve(X, y, **self.get_params())
        return self

    def predict_curve(self, P) -> np.ndarray:
        """Predicted test error at training-set sizes ``P`` (array, same order as given)."""
        if not hasattr(self, "result_"):
            raise RuntimeError("LearningCurvePredictor: call fit(X, y) before predict_curve")
        P_arr = check_array(P, "P", ndim=(0, 1), positive=True, min_size=1)
        s = self.result_.extras["spectrum"]
        flat = np.atleast_1d(P_arr)
        curve = _curve(s["eigenvalues"], s["target_power"], flat, self.result_.ridge, s["noise_total"], s["trace"],
                       s["total_power"])
        return _held_out(curve, self.result_.n_samples).reshape(np.shape(P_arr))
