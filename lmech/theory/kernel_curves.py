"""Learning curves of kernel ridge regression from the kernel's spectrum.

Theory of Bordelon, Canatar & Pehlevan, "Spectrum Dependent Learning Curves in Kernel
Regression and Wide Neural Networks"; Canatar, Bordelon & Pehlevan, "Spectral Bias and
Task-Model Alignment Explain Generalization in Kernel Regression and Infinitely Wide Neural
Networks"; Canatar, Bordelon & Pehlevan, "Out-of-Distribution Generalization in Kernel
Regression".

Setting and conventions
-----------------------
Kernel ``K(x, x') = sum_k lam_k phi_k(x) phi_k(x')`` with eigenfunctions orthonormal under
the training distribution p; target ``f*(x) = sum_k v_k phi_k(x)``; labels
``y = f*(x) + eps`` with ``Var eps = noise``. Kernel ridge regression on P iid samples in the
kernel-sum convention: ``f(x) = k(x)^T (K + ridge I)^{-1} y`` with the *unnormalised* P x P
Gram matrix (the sample-covariance convention ``(X^T X/P + l I)^{-1}`` has ``ridge = P l``).
``ridge = 0`` is the minimum-norm interpolant, i.e. an infinitely wide network trained to
convergence from zero output. Because the ridge is added to the unnormalised Gram matrix, its
meaning depends on the kernel's scale: multiplying K by c is the same as dividing ridge by c.

With kappa the solution of ``kappa = ridge + kappa sum_k lam_k / (P lam_k + kappa)`` (see
:func:`lmech.theory.kappa.solve_kappa`), the learnability of mode k is
``L_k = P lam_k / (P lam_k + kappa)`` and

    gamma_k = L_k^2 / P,         gamma = sum_k gamma_k                 (0 <= gamma <= 1)
    delta_k = (1 - L_k) v_k      (mean error of the learned coefficient on mode k)
    E_g     = [sum_k delta_k^2 + gamma * noise] / (1 - gamma)
    mode error_k = delta_k^2 + gamma_k (E_g + noise)   (E over data sets of the squared
                                                        coefficient error on mode k; sums to E_g)
    E_train = (ridge / kappa)^2 (E_g + noise)

``1 - gamma`` is evaluated as ``ridge/kappa + sum_k L_k (1 - L_k) / P`` (a sum of non-negative
terms, equal by the kappa equation), which keeps it accurate next to interpolation peaks.
Ridgeless and under-parameterised (P >= number of non-zero modes n+): kappa = 0, L_k = 1 for
lam_k > 0, gamma = n+/P and ridge/kappa is read as its limit 1 - n+/P. At ridge = 0 and
P = n+ exactly, E_g diverges when the noise or the unlearnable power is non-zero: it is
returned as ``inf`` and flagged in ``divergent``.

Truncated spectra (the kernel's tail not listed): modes far in the tail have P lam_k << kappa,
so their eigenvalue mass acts as extra ridge and their target power as extra noise (it is
never learned and inflates the variance). Pass the full kernel trace ``trace = E_p K(x, x)``
and/or the full target power ``total_power = E_p f*(x)^2``; the missing parts are added in
that way. Leaving a substantial tail out without this correction biases the curve (by tens of
per cent for the ReLU NTK on the sphere at P >= 100).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.spectra import cumulative_power
from lmech.theory.kappa import check_spectrum, solve_kappa

__all__ = [
    "LearningCurve",
    "learning_curve",
    "OODCurve",
    "ood_learning_curve",
    "OverfittingPeaks",
    "overfitting_peaks",
    "asymptotic_level_curve",
    "cumulative_power",
]

ILL_CONDITIONED = 1e-8  # 1 - gamma below this is flagged: the curve is at an interpolation peak


@dataclass(frozen=True, kw_only=True)
class LearningCurve(SolverResult):
    """Predicted learning curve on a grid of (P, ridge) pairs (broadcast together, flattened).

    Attributes
    ----------
    P, ridge : ndarray, shape (n,)
        Sample sizes and explicit ridges (kernel-sum convention).
    kappa : ndarray, shape (n,)
        Renormalised ridge (includes the truncated tail's eigenvalue mass).
    gamma : ndarray, shape (n,)
        Overlap gamma = sum_k gamma_k; ``1 - gamma`` is stored in ``one_minus_gamma``.
    one_minus_gamma : ndarray, shape (n,)
    generalization_error : ndarray, shape (n,)
        E_D E_x (f(x) - f*(x))^2 against the clean target (``inf`` where ``divergent``).
    test_error : ndarray, shape (n,)
        Error against noisy test labels: ``generalization_error + noise``.
    training_error : ndarray, shape (n,)
        Mean squared training residual (labels include the noise).
    mode_errors : ndarray, shape (n, M)
        Expected squared error of the learned coefficient on each listed mode (or level, with
        multiplicities): delta_k^2 + gamma_k (E_g + noise). Row sums plus the tail's share
        equal ``generalization_error``.
    mode_bias : ndarray, shape (n, M)
        delta_k^2, the squared error of the mean learned coefficient.
    learnability : ndarray, shape (n, M)
        L_k = P lam_k / (P lam_k + kappa): the mean learned coefficient is L_k v_k.
    noise : float
    tail_eigenvalue_mass, tail_power : float
        Truncation corrections in use (0 when no ``trace`` / ``total_power`` was given).
    divergent : ndarray of bool, shape (n,)
        True where the theory predicts an infinite error (ridge 0, P = n+, noisy or
        unlearnable target).
    ill_conditioned : ndarray of bool, shape (n,)
        True where 1 - gamma < 1e-8 (next to an interpolation peak; the error is huge and
        sensitive to P). ``converged`` is False when any entry is flagged.
    """

    P: np.ndarray
    ridge: np.ndarray
    kappa: np.ndarray
    gamma: np.ndarray
    one_minus_gamma: np.ndarray
    generalization_error: np.ndarray
    test_error: np.ndarray
    training_error: np.ndarray
    mode_errors: np.ndarray
    mode_bias: np.ndarray
    learnability: np.ndarray
    noise: float
    tail_eigenvalue_mass: float
    tail_power: float
    divergent: np.ndarray
    ill_conditioned: np.ndarray


def _tail(captured: float, total, name: str) -> float:
    if total is None:
        return 0.0
    total = check_real(total, name, lo=0)
    slack = 1e-9 * max(abs(total), abs(captured), 1e-300)
    if total < captured - slack:
        fail(name, f">= the part carried by the listed modes ({captured:.12g})", total)
    return max(total - captured, 0.0)


_BLOCK_ELEMENTS = 1 << 17  # rows x modes per block: each block is finished while in cache


def _core(lam, mult, power, P, ridge, noise, tail_mass, tail_power, weights=None):
    """Shared computation, blockwise over rows. ``power`` is per listed entry (level totals).

    ``weights`` (M,), optional: also return sum_k gamma_k weights_k per row (OOD).
    """
    kres = solve_kappa(lam, P, ridge + tail_mass, multiplicities=mult)
    kappa, P_b = kres.kappa, kres.P
    r_eff = kres.ridge
    r_b = r_eff - tail_mass
    n, M = P_b.size, lam.size
    pos = lam > 0
    zero_cols = ~pos
    n_plus = float(mult[pos].sum())
    interp = kappa == 0  # ridgeless, under-parameterised (P >= n+)
    L = np.empty((n, M))
    bias = np.empty((n, M))
    mode_err = np.empty((n, M))
    gamma, s_ld, bias_sum = np.empty(n), np.empty(n), np.empty(n)
    wsum = np.empty(n) if weights is not None else None
    rows = max(1, _BLOCK_ELEMENTS // max(M, 1))
    for i0 in range(0, n, rows):
        sl = slice(i0, min(n, i0 + rows))
        Pb, kb = P_b[sl], kappa[sl]
        PL = Pb[:, None] * lam[None, :]
        inv = PL + kb[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):  # lam = 0 = kappa: fixed just below
            np.reciprocal(inv, out=inv)  # 1 / (P lam + kappa); inf only where lam = 0 = kappa
            Lb = np.multiply(PL, inv, out=L[sl])
            D = np.multiply(inv, kb[:, None], out=inv)  # 1 - L = kappa / (P lam + kappa)
        if np.any(zero_cols):
            Lb[:, zero_cols] = 0.0
            D[:, zero_cols] = 1.0
        if np.any(interp[sl]):
            D[interp[sl]] = zero_cols.astype(float)
        np.multiply(Lb, D, out=PL)
        s_ld[sl] = PL @ mult
        np.multiply(D, D, out=D)
        np.multiply(D, power, out=bias[sl])
        bias_sum[sl] = D @ power
        np.multiply(Lb, Lb, out=PL)  # L^2; gamma_k = mult L^2 / P
        gamma[sl] = (PL @ mult) / Pb
        if wsum is not None:  # allocated exactly when weights are given
            wsum[sl] = (PL @ (mult * weights)) / Pb
        # 1 - gamma as a sum of non-negative terms (equal to it by the kappa equation)
        with np.errstate(divide="ignore", invalid="ignore"):
            om = np.where(interp[sl], 1.0 - n_plus / Pb, r_eff[sl] / np.where(interp[sl], 1.0, kb) + s_ld[sl] / Pb)
        numer = bias_sum[sl] + tail_power + gamma[sl] * noise
        singular = om <= 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            Eb = np.where(singular, np.where(numer > 0, np.inf, 0.0), numer / np.where(singular, 1.0, om))
        # mode error = bias + gamma_k (E_g + noise)
        np.multiply(PL, mult * 1.0, out=PL)
        with np.errstate(invalid="ignore"):  # 0 * inf on divergent rows: fixed just below
            np.multiply(PL, ((Eb + noise) / Pb)[:, None], out=PL)
        np.add(bias[sl], PL, out=mode_err[sl])
        if not np.all(np.isfinite(Eb)):  # divergent rows: inf on learnable modes, never 0 * inf
            bad = ~np.isfinite(Eb)
            mode_err[sl][bad] = np.where(Lb[bad] > 0, np.inf, bias[sl][bad])
        s_ld[sl] = om  # reuse: store 1 - gamma
        bias_sum[sl] = numer  # reuse: store the numerator
    one_minus, numer = s_ld, bias_sum
    singular = one_minus <= 0.0
    divergent = singular & (numer > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        Eg = np.where(singular, np.where(numer > 0, np.inf, 0.0), numer / np.where(singular, 1.0, one_minus))
    # ridge / kappa; its ridgeless under-parameterised limit is 1 - n+/P
    safe_k = np.where(interp, 1.0, kappa)
    r_over_k = np.where(interp, np.maximum(1.0 - n_plus / P_b, 0.0), r_b / safe_k)
    with np.errstate(invalid="ignore"):
        E_train = np.where(r_over_k == 0, 0.0, r_over_k**2 * (Eg + noise))
    ill = (one_minus < ILL_CONDITIONED) & (numer > 0)
    return dict(kres=kres, P=P_b, ridge=r_b, kappa=kappa, L=L, gamma=gamma, wsum=wsum,
                one_minus=np.maximum(one_minus, 0.0), bias=bias, mode_errors=mode_err, Eg=Eg, E_train=E_train,
                divergent=divergent, ill=ill)


def _check_common(eigenvalues, multiplicities, P, ridge, noise):
    lam, mult = check_spectrum(eigenvalues, multiplicities)
    P_arr = check_array(P, "P", ndim=(0, 1), positive=True, min_size=1)
    r_arr = check_array(ridge, "ridge", ndim=(0, 1), nonnegative=True, min_size=1)
    noise = check_real(noise, "noise", lo=0)
    return lam, mult, P_arr, r_arr, noise


def _status(kres, ill, where):
    converged = bool(kres.converged and not np.any(ill))
    if not kres.converged:
        message = kres.message
    elif np.any(ill):
        message = (f"1 - gamma < {ILL_CONDITIONED:g} at P = {np.unique(kres.P[ill])[:5]} "
                   "(at an interpolation peak: the predicted error is huge and ill-conditioned)")
    else:
        message = "converged"
    if not converged:
        warn_not_converged(where, message)
    return converged, message


def learning_curve(
    eigenvalues,
    target_power,
    P,
    ridge=0.0,
    noise: float = 0.0,
    *,
    multiplicities=None,
    trace: float | None = None,
    total_power: float | None = None,
) -> LearningCurve:
    """Generalisation error of kernel ridge regression versus the number of samples.

    Equation (eq:kernel.learning_curve): ``E_g = [sum_k (1 - L_k)^2 v_k^2 + gamma * noise] / (1 - gamma),
        L_k = P lam_k / (P lam_k + kappa),  gamma = sum_k L_k^2 / P``

    Equation (eq:kernel.mode_error): ``mode_error_k = (1 - L_k)^2 v_k^2 + (L_k^2 / P) (E_g + noise)``

    Equation (eq:kernel.train_error): ``E_train = (ridge / kappa)^2 (E_g + noise)``

    Solves the theory of the module docstring at every (P, ridge) pair, vectorised.

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Kernel eigenvalues lam_k >= 0 under the data distribution (any order).
    target_power : array_like, shape (M,)
        Target power on each listed entry: v_k^2 for a single mode; with ``multiplicities``
        the *total* power of the level (sum of v^2 over its modes). For vector targets pass
        the power summed over outputs (errors are then summed over outputs too).
    P : float or array_like, shape (n,)
        Training-set sizes (> 0).
    ridge : float or array_like
        Explicit ridge, kernel-sum convention, >= 0; broadcast against ``P``.
    noise : float
        Label-noise variance (summed over outputs for vector targets).
    multiplicities : array_like, shape (M,), optional
        Degeneracy of each eigenvalue (e.g. spherical-harmonic level sizes).
    trace : float, optional
        Full kernel trace E_p K(x, x) = sum over *all* modes of lam_k; the part not in
        ``eigenvalues`` is added to the ridge (truncated-tail correction).
    total_power : float, optional
        Full target power E_p f*(x)^2; the part not in ``target_power`` is treated as an
        unlearnable component (it adds to the error and acts as label noise).

    Returns
    -------
    LearningCurve

    Examples
    --------
    >>> import numpy as np
    >>> lam = np.arange(1, 1001) ** -1.5
    >>> curve = learning_curve(lam, lam, P=[10, 100, 1000], ridge=1e-3)
    >>> bool(np.all(np.diff(curve.generalization_error) < 0))
    True
    """
    lam, mult, P_arr, r_arr, noise = _check_common(eigenvalues, multiplicities, P, ridge, noise)
    power = check_array(target_power, "target_power", nonnegative=True)
    if power.shape != lam.shape:
        fail("target_power", f"of shape {lam.shape} like `eigenvalues`", power)
    tail_mass = _tail(float(np.sum(mult * lam)), trace, "trace")
    tail_power = _tail(float(np.sum(power)), total_power, "total_power")
    try:
        np.broadcast_shapes(P_arr.shape, r_arr.shape)
    except ValueError:
        raise ValueError(f"`P` (shape {P_arr.shape}) and `ridge` (shape {r_arr.shape}) must broadcast") from None
    c = _core(lam, mult, power, P_arr, r_arr, noise, tail_mass, tail_power)
    converged, message = _status(c["kres"], c["ill"], "learning_curve")
    mode_errors = c["mode_errors"]
    return LearningCurve(
        P=c["P"], ridge=c["ridge"], kappa=c["kappa"], gamma=c["gamma"], one_minus_gamma=c["one_minus"],
        generalization_error=c["Eg"], test_error=c["Eg"] + noise, training_error=c["E_train"],
        mode_errors=mode_errors, mode_bias=c["bias"], learnability=c["L"], noise=noise,
        tail_eigenvalue_mass=tail_mass, tail_power=tail_power, divergent=c["divergent"],
        ill_conditioned=c["ill"], converged=converged, iterations=c["kres"].iterations,
        status=c["kres"].status if converged == c["kres"].converged else None,
        residual=c["kres"].residual, message=message,
    )


# --------------------------------------------------------------------------- OOD
@dataclass(frozen=True, kw_only=True)
class OODCurve(SolverResult):
    """Error under a test distribution q different from the training distribution p.

    Attributes
    ----------
    P, ridge, kappa, gamma : ndarray, shape (n,)
        As in :class:`LearningCurve` (all computed with the training spectrum).
    in_distribution_error : ndarray, shape (n,)
        E_g under p (clean target).
    ood_error : ndarray, shape (n,)
        E_{x ~ q} E_D (f(x) - f*(x))^2 (clean target).
    ood_bias : ndarray, shape (n,)
        delta^T O delta, the part of ``ood_error`` due to the mean predictor.
    """

    P: np.ndarray
    ridge: np.ndarray
    kappa: np.ndarray
    gamma: np.ndarray
    in_distribution_error: np.ndarray
    ood_error: np.ndarray
    ood_bias: np.ndarray
    divergent: np.ndarray
    ill_conditioned: np.ndarray


def ood_learning_curve(
    eigenvalues,
    target_coefficients,
    overlap,
    P,
    ridge=0.0,
    noise: float = 0.0,
    *,
    trace: float | None = None,
) -> OODCurve:
    """Learning curve when testing on q != p (Canatar, Bordelon & Pehlevan, OOD paper).

    With the training-distribution quantities of :func:`learning_curve` and the overlap
    matrix ``O_kl = E_{x~q}[phi_k(x) phi_l(x)]`` of the training eigenfunctions,

        E_ood = delta^T O delta + (E_g + noise) sum_k O_kk gamma_k,
        delta_k = kappa v_k / (P lam_k + kappa).

    The mean predictor is unchanged by the shift; the coefficient fluctuations are diagonal
    with variance gamma_k (E_g + noise). ``O = I`` gives back E_g.

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Kernel eigenvalues under the *training* distribution.
    target_coefficients : array_like, shape (M,) or (M, C)
        Signed target coefficients v_k (per output); errors are summed over outputs. The
        target must lie in the span of the listed modes.
    overlap : array_like, shape (M, M)
        Symmetric positive semi-definite O.
    P, ridge, noise, trace
        As in :func:`learning_curve` (``trace`` adds the unlisted eigenvalue mass to the ridge;
        the test distribution's weight on unlisted modes is taken to be zero).

    Returns
    -------
    OODCurve
    """
    lam, mult, P_arr, r_arr, noise = _check_common(eigenvalues, None, P, ridge, noise)
    v = check_array(target_coefficients, "target_coefficients", max_abs=MAX_MAGNITUDE, ndim=(1, 2))
    if v.shape[0] != lam.shape[0]:
        fail("target_coefficients", f"of first dimension {lam.shape[0]} like `eigenvalues`", v)
    V = v.reshape(lam.shape[0], -1)
    O = check_array(overlap, "overlap", shape=(lam.shape[0], lam.shape[0]))
    if not np.allclose(O, O.T, rtol=1e-8, atol=1e-12 * max(np.abs(O).max(), 1e-300)):
        fail("overlap", "symmetric", O)
    if np.any(np.diag(O) < 0):
        fail("overlap", "positive semi-definite (it has a negative diagonal entry)", O)
    tail_mass = _tail(float(np.sum(lam)), trace, "trace")
    power = np.sum(V**2, axis=1)
    c = _core(lam, mult, power, P_arr, r_arr, noise, tail_mass, 0.0, weights=np.diag(O).copy())
    D = (1.0 - c["L"])[:, :, None] * V[None, :, :]  # (n, M, C)
    bias = np.einsum("nkc,kl,nlc->n", D, O, D)
    fluct = c["wsum"]
    with np.errstate(invalid="ignore"):
        E = np.where(c["divergent"], np.where(fluct > 0, c["Eg"], bias), bias + (c["Eg"] + noise) * fluct)
    converged, message = _status(c["kres"], c["ill"], "ood_learning_curve")
    return OODCurve(
        P=c["P"], ridge=c["ridge"], kappa=c["kappa"], gamma=c["gamma"], in_distribution_error=c["Eg"],
        ood_error=E, ood_bias=bias, divergent=c["divergent"], ill_conditioned=c["ill"], converged=converged,
        status=c["kres"].status if converged == c["kres"].converged else None,
        iterations=c["kres"].iterations, residual=c["kres"].residual, message=message,
    )


# --------------------------------------------------------------------------- peaks
@dataclass(frozen=True, kw_only=True)
class OverfittingPeaks(SolverResult):
    """Interior local maxima of E_g(P) (noise-induced overfitting peaks).

    Attributes
    ----------
    P_peaks : ndarray, shape (m,)
        Sample sizes of the local maxima, refined to ``xtol`` in log P (empty: monotone curve).
    heights : ndarray, shape (m,)
        E_g at the peaks; ``inf`` for the divergence of the ridgeless noisy curve at P equal
        to the number of modes (ridge = 0, noise > 0), where E_g has a pole.
    P_grid, curve : ndarray
        The grid scanned and E_g on it.
    """

    P_peaks: np.ndarray
    heights: np.ndarray
    P_grid: np.ndarray
    curve: np.ndarray

    @property
    def has_peak(self) -> bool:
        return self.P_peaks.size > 0


def overfitting_peaks(
    eigenvalues,
    target_power,
    ridge: float,
    noise: float,
    P_range: tuple[float, float],
    *,
    multiplicities=None,
    trace: float | None = None,
    total_power: float | None = None,
    n_grid: int = 400,
    xtol: float = 1e-6,
) -> OverfittingPeaks:
    """Locate the peaks of the predicted E_g(P) in ``P_range`` (treating P as continuous).

    Scans a log-spaced grid of ``n_grid`` points, then refines every interior grid maximum
    with a bounded scalar maximisation in log P. Peaks are not assumed at P = n+ or at
    P = ``alpha`` times a level size: they are located numerically. A ridgeless curve that
    diverges inside the range reports the divergence point with height ``inf``.

    Parameters
    ----------
    eigenvalues, target_power, ridge, noise, multiplicities, trace, total_power
        As in :func:`learning_curve` (``ridge`` and ``noise`` scalars).
    P_range : (float, float)
        0 < P_min < P_max.
    """
    ridge = check_real(ridge, "ridge", lo=0)
    noise = check_real(noise, "noise", lo=0)
    if not isinstance(P_range, (tuple, list, np.ndarray)) or np.ndim(P_range) != 1 or len(P_range) != 2:
        fail("P_range", "a pair (P_min, P_max)", P_range, TypeError)
    lo = check_real(P_range[0], "P_range[0]", lo=0, lo_closed=False)
    hi = check_real(P_range[1], "P_range[1]", lo=lo, lo_closed=False)
    kw = dict(multiplicities=multiplicities, trace=trace, total_power=total_power)
    grid = np.geomspace(lo, hi, check_int(n_grid, "n_grid", lo=3, hi=MAX_SIZE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve = learning_curve(eigenvalues, target_power, grid, ridge, noise, **kw)
    E = curve.generalization_error

    def neg(logp):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return -float(learning_curve(eigenvalues, target_power, np.exp(logp), ridge, noise, **kw)
                          .generalization_error[0])

    peaks, heights = [], []
    refine_ok = True
    for i in range(1, len(grid) - 1):
        if not (E[i] >= E[i - 1] and E[i] > E[i + 1]):
            continue
        if not np.isfinite(E[i]):
            peaks.append(float(grid[i]))
            heights.append(np.inf)
            continue
        res = minimize_scalar(neg, bounds=(np.log(grid[i - 1]), np.log(grid[i + 1])), method="bounded",
                              options={"xatol": xtol})
        refine_ok &= bool(res.success)
        peaks.append(float(np.exp(res.x)))
        heights.append(-float(res.fun))
    # a ridgeless curve diverges at P = n+ exactly, which a grid almost never hits
    lam, mult = check_spectrum(eigenvalues, multiplicities)
    n_plus = float(np.sum(mult[lam > 0]))
    if ridge == 0 and lo < n_plus < hi and not np.any(np.isinf(heights)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            at = learning_curve(eigenvalues, target_power, n_plus, 0.0, noise, **kw)
        if at.divergent[0]:
            far = [abs(np.log(p / n_plus)) > 2 * np.log(grid[1] / grid[0]) for p in peaks]
            peaks = [p for p, f in zip(peaks, far) if f]
            heights = [h for h, f in zip(heights, far) if f]
            peaks.append(n_plus)
            heights.append(np.inf)
    order = np.argsort(peaks)
    # ill-conditioned or divergent grid points are what a peak search expects to meet
    curve_ok = bool(curve.converged or np.any(curve.ill_conditioned) or np.any(curve.divergent))
    converged = curve_ok and refine_ok
    message = f"{len(peaks)} peak(s) found"
    if not curve_ok:
        message = f"learning curve not solved on the grid: {curve.message}"
    elif not refine_ok:
        message = f"{len(peaks)} peak(s) found, but a bounded peak refinement did not converge"
    if not converged:
        warn_not_converged("overfitting_peaks", message)
    return OverfittingPeaks(
        P_peaks=np.asarray(peaks, dtype=float)[order], heights=np.asarray(heights, dtype=float)[order],
        P_grid=grid, curve=E, converged=converged, iterations=len(peaks), residual=float(curve.residual),
        message=message,
    )


def asymptotic_level_curve(alpha, effective_ridge: float, level_power: float = 1.0, noise: float = 0.0,
                           higher_power: float = 0.0) -> np.ndarray:
    """Large-dimension closed form for the learning curve of one degenerate level.

    Canatar, Bordelon & Pehlevan ("Spectral Bias and Task-Model Alignment ..."), the regime
    P = alpha N_L with N_L the level's degeneracy -> infinity: lower levels are learned, higher
    ones are not. With the level's total eigenvalue mass lbar_L as unit,
    ``lt = (ridge + sum_{l>L} lbar_l) / lbar_L`` (``effective_ridge``),

        kt    = ((1 + lt - alpha) + sqrt((1 + lt - alpha)^2 + 4 lt alpha)) / 2,
        gamma = alpha / (alpha + kt)^2,
        E_g   = [vbar_L^2 kt^2 / (alpha + kt)^2 + gamma (noise + vbar_>^2)] / (1 - gamma) + vbar_>^2,

    where vbar_L^2 = ``level_power`` and vbar_>^2 = ``higher_power``. For lt -> 0 the curve
    diverges at alpha = 1 (returned as ``inf``).

    Returns
    -------
    ndarray, shape of ``alpha``
    """
    a = check_array(alpha, "alpha", ndim=(0, 1), positive=True)
    lt = check_real(effective_ridge, "effective_ridge", lo=0, hi=MAX_MAGNITUDE)
    vL = check_real(level_power, "level_power", lo=0)
    s2 = check_real(noise, "noise", lo=0)
    vh = check_real(higher_power, "higher_power", lo=0)
    b = 1.0 + lt - a
    disc = np.sqrt(b * b + 4.0 * lt * a)
    # cancellation-free root for b < 0
    kt = np.where(b >= 0, 0.5 * (b + disc), 2.0 * lt * a / np.where(b >= 0, 1.0, disc - b))
    gamma = a / (a + kt) ** 2
    one_minus = 1.0 - gamma
    numer = vL * kt**2 / (a + kt) ** 2 + gamma * (s2 + vh)
    with np.errstate(divide="ignore", invalid="ignore"):
        E = np.where(one_minus > 0, numer / np.where(one_minus > 0, one_minus, 1.0), np.where(numer > 0, np.inf, 0.0))
    return E + vh
