"""Onset of variance-limited behaviour: the noisy-feature toy model and onset detectors.

Paper: A. Atanasov, B. Bordelon, S. Sainathan, C. Pehlevan, "The Onset of Variance-Limited
Behavior for Networks in the Lazy and Rich Regimes". Finite-width networks match their
infinite-width limit up to a sample size P*, after which variance over initialisations
dominates; for polynomial regression with ReLU networks P* ~ sqrt(N). The paper explains
this with kernel regression on the *final* NTK, whose fluctuations over initialisations
are O(1/N), and a toy "signal plus noise correlated feature" model (its Section 4):

    psi(x, theta) = psibar(x) + delta(x, theta),   y = w* . psibar(x),
    Sigma_s = <psibar psibar^T> = diag(lam),  Sigma_n = <delta delta^T> = diag(eta),

with delta uncorrelated with psibar and white across inputs (delta = Sigma_n^{1/2} A b(x)
with a random A). Ridgeless regression on psi is then exactly kernel regression with
eigenvalues lam + eta on a target that psi explains only partly: in mode k the explained
power is v_k^2 = p_k lam_k / (lam_k + eta_k) (p_k = lam_k w*_k^2) and the unexplained part
acts as label noise of variance sigma_eff^2 = sum_k p_k eta_k / (lam_k + eta_k). With the
kernel-sum renormalised ridge kappa of (K1) for eigenvalues lam + eta and
gamma = sum_k P (lam_k + eta_k)^2 / (P (lam_k + eta_k) + kappa)^2,

    E_g(P) = [ sum_k v_k^2 kappa^2 / (P(lam_k+eta_k) + kappa)^2 + gamma sigma_eff^2 ] / (1 - gamma)
             + sigma_eff^2,                                                            (VO)

which plateaus at sigma_eff^2 and reduces to the standard learning curve for eta = 0. The
paper's equation (5) is this mode decomposition without the 1/(1 - gamma) enhancement
(derived here; (VO) is checked against simulation). With eta_k = sigma^2 lam_k and
sigma^2 ~ 1/N, E_N / E_inf - 1 ~ sigma^2 / E_inf(P): a target that is an eigenfunction of
the kernel has E_inf ~ P^{-2}, so the onset is at P* ~ sqrt(N).

Onset detectors for measured curves: :func:`onset_sample_size` (first P where E_N / E_inf
exceeds 1 + tol, after isotonic smoothing) and :func:`half_variance_sample_size` (the
paper's P_1/2: the P where ensembling removes half the error). :func:`gram_learning_curve`
evaluates the kernel learning curve from a kernel's Gram matrix on a sample (e.g. a
network's final empirical NTK).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, check_array, check_int, check_real, fail
from lmech.results import LmechWarning, SolverResult, warn_not_converged
from lmech.theory.kappa import solve_kappa

__all__ = [
    "NoisyFeatureCurve",
    "noisy_feature_curve",
    "OnsetResult",
    "onset_sample_size",
    "half_variance_sample_size",
    "OnsetExponent",
    "fit_onset_exponent",
    "ToyOnset",
    "toy_onset",
    "relu_ntk_sphere_spectrum",
    "gram_learning_curve",
]


@dataclass(frozen=True, kw_only=True)
class NoisyFeatureCurve(SolverResult):
    """Learning curve of ridgeless regression on noisy features, equation (VO).

    Attributes
    ----------
    P : ndarray, shape (n,)
    error : ndarray, shape (n,)
        E_g(P) = E_x (f(x) - y(x))^2.
    bias : ndarray, shape (n,)
        The part from the explained target (first term of (VO) without the noise).
    noise_part : ndarray, shape (n,)
        The part caused by the feature noise: gamma sigma_eff^2/(1 - gamma) + sigma_eff^2.
    plateau : float
        sigma_eff^2, the P -> inf limit.
    kappa, gamma : ndarray, shape (n,)
    """

    P: np.ndarray
    error: np.ndarray
    bias: np.ndarray
    noise_part: np.ndarray
    plateau: float
    kappa: np.ndarray
    gamma: np.ndarray


def noisy_feature_curve(eigenvalues, target_power, P, *, noise_eigenvalues=None, multiplicities=None,
                        ridge: float = 0.0) -> NoisyFeatureCurve:
    """Learning curve E_g(P) of the signal-plus-noise feature model, equation (VO).

    Equation (eq:variance_onset.toy): ``E_g(P) = [sum_k v_k^2 kappa^2 / (P(lam_k+eta_k) + kappa)^2
        + gamma sigma_eff^2] / (1 - gamma) + sigma_eff^2,
        v_k^2 = p_k lam_k / (lam_k + eta_k),  sigma_eff^2 = sum_k p_k eta_k / (lam_k + eta_k)``

    Parameters
    ----------
    eigenvalues : array_like, shape (K,)
        Signal (mean-feature) eigenvalues lam_k >= 0, e.g. the infinite-width NTK's.
    target_power : array_like, shape (K,)
        p_k = lam_k w*_k^2 >= 0: the target's total power in entry k (summed over its
        multiplicity).
    P : float or array_like, shape (n,)
        Sample sizes (> 0).
    noise_eigenvalues : array_like, shape (K,), optional
        Feature-noise eigenvalues eta_k >= 0 (codiagonal with the signal); None or zeros
        give the infinite-width learning curve.
    multiplicities : array_like, shape (K,), optional
        Degeneracy of each entry (per-mode eigenvalues are lam_k, eta_k; target_power is
        the entry's total).
    ridge : float
        Explicit ridge in the kernel-sum convention (>= 0). Use it for the eigenvalue mass
        of a truncated spectrum: unresolved modes act as a ridge.

    Returns
    -------
    NoisyFeatureCurve
    """
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, nonnegative=True, min_size=1)
    p = check_array(target_power, "target_power", shape=(lam.shape[0],), nonnegative=True)
    eta = np.zeros_like(lam) if noise_eigenvalues is None else check_array(
        noise_eigenvalues, "noise_eigenvalues", shape=(lam.shape[0],), nonnegative=True)
    mult = np.ones_like(lam) if multiplicities is None else check_array(
        multiplicities, "multiplicities", shape=(lam.shape[0],), nonnegative=True)
    if np.any((lam == 0) & (p > 0)):
        fail("target_power", "zero where the signal eigenvalue is zero", p)
    P_arr = np.atleast_1d(check_array(P, "P", ndim=(0, 1), positive=True))
    ridge = check_real(ridge, "ridge", lo=0)
    tot = lam + eta
    if not np.any(tot * mult > 0):
        fail("eigenvalues", "not all zero (signal plus noise)", lam)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(tot > 0, lam / np.where(tot > 0, tot, 1.0), 0.0)   # explained fraction per mode
    v2 = p * frac
    sigma_eff = float(np.sum(p * (1 - frac)))
    res = solve_kappa(tot, P_arr, ridge, multiplicities=mult)
    kap = res.kappa
    keep = tot > 0
    tot_k, mult_k, v2_k = tot[keep], mult[keep], v2[keep]
    den = P_arr[:, None] * tot_k[None, :] + kap[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        gam = np.sum(mult_k * P_arr[:, None] * tot_k**2 / den**2, axis=1)
        bias_modes = np.where(kap[:, None] > 0, v2_k * kap[:, None] ** 2 / np.where(den > 0, den, 1.0) ** 2, 0.0)
    bias_num = bias_modes.sum(axis=1)
    diverged = gam >= 1 - 1e-12
    with np.errstate(invalid="ignore", divide="ignore"):
        bias = np.where(diverged, np.inf, bias_num / (1 - gam))
        noise_part = np.where(diverged, np.inf, gam * sigma_eff / (1 - gam)) + sigma_eff
    error = bias + noise_part
    converged = bool(res.converged)
    message = res.message
    if np.any(diverged & (sigma_eff > 0)):
        message = "interpolation peak (gamma = 1): error is infinite at some P"
    if not converged:
        warn_not_converged("noisy_feature_curve", message)
    return NoisyFeatureCurve(P=P_arr, error=error, bias=bias, noise_part=noise_part, plateau=sigma_eff, kappa=kap,
                             gamma=gam, converged=converged, status=res.status, iterations=res.iterations,
                             residual=res.residual,
                             message=message, extras={"interpolation_peak": diverged})


# --------------------------------------------------------------------------- detectors
def _isotonic_increasing(y, w=None):
    """Pool-adjacent-violators fit of a non-decreasing sequence."""
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    vals, wts, sizes = [], [], []
    for yi, wi in zip(y, w):
        vals.append(yi)
        wts.append(wi)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / (wts[-2] + wts[-1])
            wts[-2] += wts[-1]
            sizes[-2] += sizes[-1]
            vals[-2] = v
            vals.pop(), wts.pop(), sizes.pop()
    return np.repeat(vals, sizes)


@dataclass(frozen=True)
class OnsetResult:
    """Crossing of a monotone-smoothed curve through a threshold.

    Attributes
    ----------
    P_star : float
        Crossing sample size (log-linear interpolation between grid points); NaN if the
        curve never crosses inside the grid.
    found : bool
    smoothed : ndarray, shape (n,)
        The isotonic (non-decreasing) fit of the quantity that was thresholded.
    threshold : float
    """

    P_star: float
    found: bool
    smoothed: np.ndarray
    threshold: float


def _crossing(P, q, threshold, weights=None) -> OnsetResult:
    order = np.argsort(P)
    P, q = P[order], q[order]
    w = None if weights is None else check_array(weights, "weights", shape=P.shape, nonnegative=True)[order]
    sm = _isotonic_increasing(q, w)
    above = np.nonzero(sm > threshold)[0]
    if len(above) == 0:
        return OnsetResult(float("nan"), False, sm, threshold)
    j = int(above[0])
    if j == 0:
        return OnsetResult(float(P[0]), True, sm, threshold)
    x0, x1 = np.log(P[j - 1]), np.log(P[j])
    y0, y1 = sm[j - 1], sm[j]
    x = x0 + (threshold - y0) * (x1 - x0) / (y1 - y0) if y1 > y0 else x1
    return OnsetResult(float(np.exp(x)), True, sm, threshold)


def onset_sample_size(P, error_finite, error_infinite, *, tol: float = 0.1, weights=None) -> OnsetResult:
    """First P where E_N(P) / E_inf(P) - 1 exceeds ``tol``.

    The excess ratio is smoothed by isotonic regression (it is non-decreasing in P when the
    finite-width error is variance-limited) before locating the crossing.

    Parameters
    ----------
    P : array_like, shape (n,)
        Sample sizes (> 0).
    error_finite, error_infinite : array_like, shape (n,)
        Finite-width and infinite-width test errors (> 0).
    tol : float
        Relative excess defining the onset (> 0).
    weights : array_like, shape (n,), optional
        Weights of the isotonic fit (e.g. inverse variances).
    """
    P = check_array(P, "P", ndim=1, positive=True, min_size=2)
    eN = check_array(error_finite, "error_finite", shape=P.shape, positive=True)
    eI = check_array(error_infinite, "error_infinite", shape=P.shape, positive=True)
    tol = check_real(tol, "tol", lo=0, lo_closed=False)
    return _crossing(P, eN / eI - 1.0, tol, weights)


def half_variance_sample_size(P, error_ensemble, error_single, *, fraction: float = 0.5,
                              ensemble_size: int | None = None, weights=None) -> OnsetResult:
    """The paper's P_1/2: first P where the initialisation variance is ``fraction`` of the error.

    With E(f) = B + V for single networks and E(fbar) = B + V/E for an E-member ensemble,
    the variance fraction is V/E(f) = (1 - E(fbar)/E(f)) E/(E - 1) (the paper uses E = 20
    and no correction, i.e. ``ensemble_size=None``). It is smoothed by isotonic regression
    and the P where it crosses ``fraction`` is returned.

    Parameters
    ----------
    P : array_like, shape (n,)
    error_ensemble : array_like, shape (n,)
        Error of the ensemble-averaged predictor E_g(fbar).
    error_single : array_like, shape (n,)
        Mean error of single networks E_g(f).
    fraction : float
        In (0, 1); 1/2 in the paper.
    ensemble_size : int, optional
        E >= 2 to correct for the variance left in a finite ensemble.
    """
    P = check_array(P, "P", ndim=1, positive=True, min_size=2)
    eE = check_array(error_ensemble, "error_ensemble", shape=P.shape, positive=True)
    eS = check_array(error_single, "error_single", shape=P.shape, positive=True)
    fraction = check_real(fraction, "fraction", lo=0, hi=1, lo_closed=False, hi_closed=False)
    factor = 1.0
    if ensemble_size is not None:
        E = int(check_real(ensemble_size, "ensemble_size", lo=2))
        factor = E / (E - 1)
    return _crossing(P, (1.0 - eE / eS) * factor, fraction, weights)


@dataclass(frozen=True)
class OnsetExponent:
    """Fit P* ~ c N^exponent (least squares in log-log)."""

    exponent: float
    prefactor: float
    stderr: float
    n_points: int


def fit_onset_exponent(widths, P_star) -> OnsetExponent:
    """Fit log P* = log c + exponent log N over the finite entries of ``P_star``.

    Parameters
    ----------
    widths : array_like, shape (n,)
        Widths N (> 0).
    P_star : array_like, shape (n,)
        Onset sample sizes. NaN entries (no onset found) are skipped with a
        :class:`lmech.results.LmechWarning` saying how many; ``n_points`` counts those used.
    """
    N = check_array(widths, "widths", ndim=1, positive=True)
    Ps = check_array(P_star, "P_star", shape=N.shape, finite=False)
    ok = np.isfinite(Ps) & (Ps > 0)
    if ok.sum() < 2:
        fail("P_star", "finite and positive for at least two widths", Ps)
    if not ok.all():
        warnings.warn(f"fit_onset_exponent: {int((~ok).sum())} of {len(Ps)} onset sizes are NaN, "
                      "infinite or non-positive (no onset found) and were left out of the fit",
                      LmechWarning, stacklevel=2)
    lx, ly = np.log(N[ok]), np.log(Ps[ok])
    A = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    n = int(ok.sum())
    stderr = float("nan")
    if n > 2:
        r = ly - A @ coef
        stderr = float(np.sqrt(r @ r / (n - 2) / np.sum((lx - lx.mean()) ** 2)))
    return OnsetExponent(float(coef[0]), float(np.exp(coef[1])), stderr, n)


@dataclass(frozen=True)
class ToyOnset:
    """Onset of the toy model with feature noise eta = noise_scale * lam / N, per width.

    Attributes
    ----------
    widths : ndarray, shape (W,)
    P_star : ndarray, shape (W,)
    fit : OnsetExponent
    P : ndarray, shape (n,)
        Sample-size grid.
    error_infinite : ndarray, shape (n,)
    error_finite : ndarray, shape (W, n)
    """

    widths: np.ndarray
    P_star: np.ndarray
    fit: OnsetExponent
    P: np.ndarray
    error_infinite: np.ndarray
    error_finite: np.ndarray


def toy_onset(eigenvalues, target_power, widths, P, *, noise_scale: float = 1.0, tol: float = 0.1,
              multiplicities=None, signal_boost=None, ridge: float = 0.0) -> ToyOnset:
    """Predicted onset P*(N) of the noisy-feature toy model and its fitted exponent.

    Feature noise eta_k = noise_scale * lam_k / N (kernel fluctuations are O(1/N)); the
    onset is :func:`onset_sample_size` of E_N against E_inf on the grid ``P``.

    Parameters
    ----------
    eigenvalues, target_power, multiplicities
        As in :func:`noisy_feature_curve` (the infinite-width kernel and target).
    widths : array_like, shape (W,)
        Widths N (> 0).
    P : array_like, shape (n,)
        Sample-size grid.
    noise_scale : float
        sigma^2 N: the relative kernel variance times the width (> 0).
    tol : float
        Onset threshold on E_N/E_inf - 1.
    signal_boost : array_like, shape (K,), optional
        Multiplies the signal eigenvalues of the finite-width model (the paper's model of
        feature learning as enhanced alignment: lam_k -> lam_k + Delta lam_k on the target's
        modes); the target power is held fixed.
    ridge : float
        Kernel-sum ridge standing for a truncated spectral tail (see :func:`noisy_feature_curve`).
    """
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, nonnegative=True, min_size=1)
    Ns = check_array(widths, "widths", ndim=1, positive=True, min_size=2)
    P_arr = check_array(P, "P", ndim=1, positive=True, min_size=2)
    noise_scale = check_real(noise_scale, "noise_scale", lo=0, lo_closed=False)
    ridge = check_real(ridge, "ridge", lo=0)
    boost = np.ones_like(lam) if signal_boost is None else check_array(
        signal_boost, "signal_boost", shape=lam.shape, positive=True)
    p = check_array(target_power, "target_power", shape=lam.shape, nonnegative=True)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            e_inf = noisy_feature_curve(lam, p, P_arr, multiplicities=multiplicities, ridge=ridge).error
            e_fin = np.empty((len(Ns), len(P_arr)))
            stars = np.empty(len(Ns))
            lam_b = lam * boost    # the target function (its power p) is fixed; only the kernel's signal grows
            for i, N in enumerate(Ns):
                e_fin[i] = noisy_feature_curve(lam_b, p, P_arr, noise_eigenvalues=noise_scale * lam / N,
                                               multiplicities=multiplicities, ridge=ridge).error
                stars[i] = onset_sample_size(P_arr, e_fin[i], e_inf, tol=tol).P_star
            fit = fit_onset_exponent(Ns, stars)
    except ValueError as exc:
        # the intermediate curves are not arguments: say which inputs produced them
        raise ValueError(
            "`eigenvalues`, `target_power`, `widths`, `P` and `ridge` must give finite, positive "
            "error curves and an onset at two or more widths (e.g. ridge = 0 with P beyond the "
            f"number of modes gives zero error); got: {exc}") from None
    return ToyOnset(widths=Ns, P_star=stars, fit=fit, P=P_arr,
                    error_infinite=e_inf, error_finite=e_fin)


def relu_ntk_sphere_spectrum(d: int, n_levels: int = 40, *, n_quad: int = 800):
    """Mercer eigenvalues of the two-layer ReLU NTK Theta(u) = [k1(u) + u k0(u)]/2 on S^{d-1}.

    lam_l = c_d int_{-1}^{1} Theta(t) P_l^{(d)}(t) (1 - t^2)^{(d-3)/2} dt with the normalised
    Gegenbauer polynomial P_l^{(d)} and c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2))
    (Gauss-Jacobi quadrature); level l has multiplicity N(d, l). This is the kernel of
    :func:`lmech.kernels.ntk_mlp` (depth 1, no bias) in the scaling where w . x has unit variance
    on the sphere (k0, k1: arc-cosine kernels of degree 0, 1).

    Parameters
    ----------
    d : int
        Ambient dimension (>= 3).
    n_levels : int
        Levels l = 0..n_levels-1 to return (at most 2000: one Gegenbauer evaluation per
        level over all nodes).
    n_quad : int
        Quadrature nodes (at most 10**5; d at most 10**6).

    Returns
    -------
    eigenvalues : ndarray, shape (n_levels,)
        Per-mode eigenvalue of each level (tiny negative round-off clipped to 0).
    multiplicities : ndarray, shape (n_levels,)
    tail : float
        Theta(1) - sum_l N(d,l) lam_l: the trace not captured by the returned levels (add it
        as a ridge when using the truncated spectrum).
    """
    from scipy.special import comb, eval_gegenbauer, gammaln, roots_jacobi

    d = check_int(d, "d", lo=3, hi=10**6)
    n_levels = check_int(n_levels, "n_levels", lo=1, hi=2000)
    n_quad = check_int(n_quad, "n_quad", lo=2, hi=10**5)
    a = (d - 3) / 2
    t, w = roots_jacobi(n_quad, a, a)
    ac = np.arccos(np.clip(t, -1, 1))
    k0 = (np.pi - ac) / np.pi
    k1 = (t * (np.pi - ac) + np.sqrt(np.clip(1 - t * t, 0, None))) / np.pi
    theta = 0.5 * (k1 + t * k0)
    cd = np.exp(gammaln(d / 2) - 0.5 * np.log(np.pi) - gammaln((d - 1) / 2))
    alpha = (d - 2) / 2
    lams, mults = [], []
    for level in range(n_levels):
        P = eval_gegenbauer(level, alpha, t) / eval_gegenbauer(level, alpha, 1.0)
        lams.append(max(cd * float(np.sum(w * theta * P)), 0.0))
        mults.append(1.0 if level == 0 else (2 * level + d - 2) / level * comb(level + d - 3, level - 1))
    lam_arr, mult_arr = np.array(lams), np.array(mults)
    tail = max(0.5 * (1.0 + 1.0) - float(np.sum(lam_arr * mult_arr)), 0.0)   # Theta(1) = (k1(1) + k0(1))/2 = 1
    return lam_arr, mult_arr, tail


def gram_learning_curve(gram, y, P, *, keep_fraction: float = 0.5) -> np.ndarray:
    """Ridgeless kernel learning curve predicted from a Gram matrix on a sample of the data.

    The Gram matrix K on M sample points gives the kernel's spectrum (eigenvalues of K / M)
    and the target's power on each eigenvector (:func:`lmech.spectra.empirical_spectrum`).
    Only the top ``keep_fraction`` of the modes are resolved by a finite sample; the rest
    enter :func:`lmech.theory.kernel_curves.learning_curve` as a tail through the kernel's
    trace (mean diagonal of K) and the target's total power (mean of y^2).

    Parameters
    ----------
    gram : array_like, shape (M, M)
        Symmetric positive semi-definite Gram matrix.
    y : array_like, shape (M,)
        Target on the same points.
    P : float or array_like, shape (n,)
        Training-set sizes.
    keep_fraction : float in (0, 1]
        Fraction of the M modes used individually.

    Returns
    -------
    ndarray, shape (n,)
        Predicted generalisation error at each P.
    """
    from lmech.spectra import empirical_spectrum
    from lmech.theory.kernel_curves import learning_curve

    K = check_array(gram, "gram", ndim=2, max_abs=MAX_MAGNITUDE)
    if K.shape[0] != K.shape[1] or K.shape[0] < 2:
        fail("gram", "a square matrix of size >= 2", K.shape)
    target = check_array(y, "y", shape=(K.shape[0],), max_abs=MAX_MAGNITUDE)
    keep_fraction = check_real(keep_fraction, "keep_fraction", lo=0, hi=1, lo_closed=False)
    spec = empirical_spectrum(K)
    keep = max(1, int(len(spec.eigenvalues) * keep_fraction))
    if not np.any(spec.eigenvalues[:keep] > 0):
        fail("gram", "a Gram matrix with positive eigenvalues among those kept", K)
    power = spec.target_power(target)
    return learning_curve(spec.eigenvalues[:keep], power[:keep], P, trace=float(np.trace(K)) / len(K),
                          total_power=float(np.mean(target**2))).generalization_error
