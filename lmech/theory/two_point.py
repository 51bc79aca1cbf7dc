"""Two-point deterministic equivalents and SGD on a fixed training set (multi-pass).

Theory of Atanasov, Bordelon, Zavatone-Veth, Paquette & Pehlevan, "Two-Point Deterministic
Equivalence for Stochastic Gradient Dynamics in Linear Models" (re-derived here; the
derivation of the SGD equations below is ours, see "Equations").

Conventions
-----------
Sample-covariance convention throughout: rows ``x_mu ~ N(0, Sigma)``, mu = 1..P, and
``Sigma_hat = X^T X / P``; ``Sigma = diag(lam)`` (work in its eigenbasis). A ridge ``l`` here
equals ``ridge / P`` of the kernel-sum convention of :func:`lmech.theory.kappa.solve_kappa`,
and ``kappa_cov = kappa_kernel / P``. Target ``y = w* . x + eps`` with
``target_power[k] = lam_k w*_k^2``; label noise variance ``noise``. Losses have no factor 1/2:
test loss ``E_x (f - f*)^2`` (clean target), training loss ``mean_mu (f(x_mu) - y_mu)^2``
(noisy labels).

Equations
---------
One-point (D1) and two-point (D2) equivalents, for deterministic A and vectors::

    l (Sigma_hat + l)^{-1}  ~=  kappa (Sigma + kappa)^{-1},
        kappa = l + (kappa/P) tr[Sigma (Sigma + kappa)^{-1}]                              (D1)
    l l' (Sigma_hat + l)^{-1} A (Sigma_hat + l')^{-1}  ~=
        kappa kappa' (Sigma+kappa)^{-1} A (Sigma+kappa')^{-1}
      + kappa kappa' (Sigma+kappa)^{-1} Sigma (Sigma+kappa')^{-1} q(A) / (1 - gamma)      (D2)
        q(A) = tr[A Sigma (Sigma+kappa)^{-1} (Sigma+kappa')^{-1}] / P,
        gamma = tr[Sigma^2 (Sigma+kappa)^{-1} (Sigma+kappa')^{-1}] / P.

SGD on a fixed training set (batches of B drawn uniformly with replacement, step eta) is
treated in gradient-flow time ``tau = eta * t`` (t = steps), with the minibatch noise
replaced by a Gaussian of covariance ``(eta/B) L_train(tau) Sigma_hat`` ("homogenised" SGD:
the per-sample squared residuals are replaced by their mean, and the O(eta^2) mean-gradient
term is dropped). The error ``Delta = w - w*`` then has

    L_test(tau)  = F_test(tau) + V_test(tau) + (eta/B) int_0^tau K_test(tau-s) L_train(s) ds
    L_train(tau) = F_train(tau) + V_train(tau) + (eta/B) int_0^tau K_train(tau-s) L_train(s) ds

with the gradient-flow forcing ``F_test = w*^T e^{-tau Sigma_hat} Sigma e^{-tau Sigma_hat} w*``
(the only *two-point* object: Sigma sits between two functions of Sigma_hat) and the
one-point quantities ``F_train = w*^T Sigma_hat e^{-2 tau Sigma_hat} w*``,
``K_test = tr[Sigma Sigma_hat e^{-2u Sigma_hat}]``, ``K_train = tr[Sigma_hat^2 e^{-2u Sigma_hat}]``,
``V_test = (noise/P) tr[Sigma (1 - e^{-tau Sigma_hat})^2 Sigma_hat^+]``,
``V_train = noise (1 - tr[1 - e^{-2 tau Sigma_hat}]/P)``. In the Laplace variable p, with
kappa_h = kappa(p/2) and kappa_1 = kappa(p) from (D1)::

    F_train^(p) = (1/2) sum_k v_k^2 / (lam_k + kappa_h)
    V_train^(p) = noise / (2 kappa_h)
    K_train^(p) = (1/2) [tr Sigma - (p/2) P (1 - p / (2 kappa_h))]
    K_test^(p)  = (1/2) sum_k lam_k^2 / (lam_k + kappa_h)
    V_test^(p)  = (noise/P) (2/p) [Q(p) - Q(p/2)/2],   Q(l) = (kappa(l)/l) sum_k lam_k/(lam_k+kappa(l))
    L_train^(p) = (F_train^ + V_train^) / (1 - (eta/B) K_train^)
    L_test(tau) = F_test(tau) + InvLaplace[V_test^ + (eta/B) K_test^ L_train^](tau),

and ``F_test(tau)`` is the diagonal of the two-time function obtained from (D2) by a double
inverse Laplace transform::

    C(tau, tau') = InvLap_{s,s'} [ (kappa kappa'/(s s')) sum_k v_k^2 / ((lam_k+kappa)(lam_k+kappa'))
                                   / (1 - gamma(kappa, kappa')) ] (tau, tau').

The continuous-time SGD model is stable iff ``(eta/B) K_train^(0) = (eta/B) tr Sigma / 2 < 1``.
Its errors relative to real SGD are O(eta lam_max) (discrete time) and O(1/P) (finite size).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, MIN_SCALE, as_complex_array, check_array, check_int, check_real, check_scale, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.kappa import solve_kappa
from lmech.theory.laplace import solve_kappa_complex, talbot_nodes, talbot_sum

__all__ = [
    "TwoPointResult",
    "two_point_equivalent",
    "FixedDataResult",
    "sgd_fixed_data",
    "TwoTimeResult",
    "two_time_correlation",
    "random_feature_spectrum",
]


# --------------------------------------------------------------------------- validation
_NO_TARGET = object()


def _spectrum(eigenvalues, target_power=_NO_TARGET):
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail("eigenvalues", "not all zero", lam)
    if target_power is _NO_TARGET:
        return lam, None
    v2 = check_array(target_power, "target_power", shape=(lam.shape[0],), nonnegative=True)
    return lam, v2


def _kappa_real(lam_p, P, l):
    """Real kappa_cov at real ridges l > 0 (array)."""
    l = np.atleast_1d(np.asarray(l, dtype=float))
    res = solve_kappa(lam_p, P, P * l)
    return res.kappa / P, res


def _kappa_at(lam_p, P, s_upper):
    """kappa_cov on Talbot-like paths: s_upper (T, J) with s[:, 0] real > 0; continuation."""
    res = solve_kappa_complex(lam_p, P, s_upper)
    return res.kappa, res


# --------------------------------------------------------------------------- (D2)
@dataclass(frozen=True, kw_only=True)
class TwoPointResult(SolverResult):
    """Deterministic equivalent of ``l1 l2 u^T (Sigma_hat + l1)^{-1} A (Sigma_hat + l2)^{-1} u``.

    Attributes
    ----------
    value : ndarray, shape (n,)
        The quadratic form for each (ridge1, ridge2) pair (complex if a ridge is).
    first_term, second_term : ndarray, shape (n,)
        The two terms of (D2): the "naive" product of one-point equivalents and the
        two-point correction proportional to q(A) / (1 - gamma).
    kappa1, kappa2 : ndarray, shape (n,)
        Renormalised ridges (sample-covariance convention).
    gamma : ndarray, shape (n,)
        gamma(kappa1, kappa2); the equivalent is singular as gamma -> 1.
    """

    value: np.ndarray
    first_term: np.ndarray
    second_term: np.ndarray
    kappa1: np.ndarray
    kappa2: np.ndarray
    gamma: np.ndarray


def _complex_kappa_points(lam_p, P, ls):
    """kappa_cov at arbitrary points ls (1-d complex), by continuation along an arc from |l|."""
    ls = np.asarray(ls, dtype=complex)
    if np.all(np.abs(ls.imag) <= 1e-14 * np.abs(ls)) and np.all(ls.real > 0):
        k, res = _kappa_real(lam_p, P, ls.real)
        return k.astype(complex), res
    mod = np.abs(ls)
    ang = np.angle(ls)
    n_arc = 64
    frac = np.linspace(0.0, 1.0, n_arc + 1)
    path = mod[:, None] * np.exp(1j * ang[:, None] * frac[None, :])
    path[:, 0] = mod
    res = solve_kappa_complex(lam_p, P, path)
    return res.kappa[:, -1], res


def two_point_equivalent(
    eigenvalues,
    n_samples,
    ridge1,
    ridge2,
    vector,
    A=None,
) -> TwoPointResult:
    """Two-point deterministic equivalent (D2) of a product of two sample-covariance resolvents.

    Equation (eq:two_point.equivalent): ``l l' (Sigma_hat + l)^{-1} A (Sigma_hat + l')^{-1}
        ~= kappa kappa' (Sigma+kappa)^{-1} A (Sigma+kappa')^{-1}
        + kappa kappa' (Sigma+kappa)^{-1} Sigma (Sigma+kappa')^{-1} q(A) / (1 - gamma)``

    Computes the deterministic equivalent of ``l1 l2 u^T (Sigma_hat + l1)^{-1} A (Sigma_hat + l2)^{-1} u``
    with ``Sigma_hat = X^T X / P`` (rows ~ N(0, Sigma), Sigma = diag(eigenvalues)); see the
    module docstring for (D2) ["Two-Point Deterministic Equivalence for Stochastic Gradient
    Dynamics in Linear Models"]. At ``l1 = l2`` and ``A = Sigma`` it is the ridge bias
    ``kappa^2 u^T Sigma (Sigma+kappa)^{-2} u / (1 - gamma)``.

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Population covariance eigenvalues (>= 0).
    n_samples : float
        Number of samples P > 0.
    ridge1, ridge2 : complex or array_like
        Ridges l (sample-covariance convention; kernel-sum ridge / P). Real ridges must be
        > 0; complex ridges must avoid the negative real axis. Broadcast together.
    vector : array_like, shape (M,)
        The deterministic vector u, in the eigenbasis of Sigma.
    A : array_like, shape (M,) or (M, M), optional
        Deterministic matrix in the eigenbasis of Sigma: a 1-d array is its diagonal.
        Default ``Sigma`` (the test-error weighting).

    Returns
    -------
    TwoPointResult
    """
    lam, _ = _spectrum(eigenvalues)
    M = lam.shape[0]
    P = check_real(n_samples, "n_samples", lo=MIN_SCALE, hi=MAX_MAGNITUDE)
    u = check_array(vector, "vector", max_abs=MAX_MAGNITUDE, shape=(M,))
    if A is None:
        A_mat, diag = lam, True
    else:
        A_mat = check_array(A, "A", ndim=(1, 2))
        if A_mat.shape not in ((M,), (M, M)):
            fail("A", f"of shape ({M},) or ({M}, {M})", A_mat)
        diag = A_mat.ndim == 1
    l1 = np.atleast_1d(as_complex_array(ridge1, "ridge1"))
    l2 = np.atleast_1d(as_complex_array(ridge2, "ridge2"))
    for name, l in (("ridge1", l1), ("ridge2", l2)):
        if l.ndim != 1 or not np.all(np.isfinite(l)):
            fail(name, "a finite scalar or 1-d array", l)
        if np.any((np.abs(l.imag) <= 1e-14 * np.abs(l)) & (l.real <= 0)):
            fail(name, "off the non-positive real axis (real ridges must be > 0)", l)
    try:
        l1, l2 = np.broadcast_arrays(l1, l2)
    except ValueError:
        raise ValueError(f"`ridge1` (shape {l1.shape}) and `ridge2` (shape {l2.shape}) must broadcast") from None
    pos = lam > 0
    lam_p = lam[pos]
    k1, r1 = _complex_kappa_points(lam_p, P, l1)
    k2, r2 = _complex_kappa_points(lam_p, P, l2)
    R1 = 1.0 / (lam[None, :] + k1[:, None])
    R2 = 1.0 / (lam[None, :] + k2[:, None])
    gam = (R1 * R2) @ (lam**2) / P
    if diag:
        q = (R1 * R2) @ (A_mat * lam) / P
        first = k1 * k2 * ((R1 * R2) @ (A_mat * u * u))
    else:
        q = (R1 * R2) @ (np.diag(A_mat) * lam) / P
        first = k1 * k2 * np.einsum("nm,mj,nj->n", R1 * u, A_mat, R2 * u)
    second = k1 * k2 * ((R1 * R2) @ (lam * u * u)) * q / (1.0 - gam)
    value = first + second
    if np.all(np.abs(l1.imag) == 0) and np.all(np.abs(l2.imag) == 0):
        value, first, second = value.real, first.real, second.real
        k1, k2, gam = k1.real, k2.real, gam.real
    near = np.abs(1.0 - gam) < 1e-10
    converged = bool(r1.converged and r2.converged and not np.any(near))
    message = "converged" if converged else (
        "1 - gamma(kappa1, kappa2) < 1e-10 (interpolation singularity)" if np.any(near)
        else "kappa equation not solved to tolerance")
    if not converged:
        warn_not_converged("two_point_equivalent", message)
    return TwoPointResult(
        value=value, first_term=first, second_term=second, kappa1=k1, kappa2=k2, gamma=gam,
        converged=converged, iterations=max(r1.iterations, r2.iterations),
        residual=max(r1.residual, r2.residual), message=message,
    )


# --------------------------------------------------------------------------- dynamics
def _bias_two_time(lam_p, v2_p, P, tau1, tau2, M, kappa_diag=None):
    """C(tau1_i, tau2_i) = InvLap_{s,s'}[(k k'/(s s')) sum v^2/((lam+k)(lam+k')) / (1-gamma)].

    Double fixed-Talbot: outer upper-half contour (Re), inner full contour. Vectorised over
    the pairs. ``kappa_diag`` (kappa on the upper Talbot nodes of tau1, when tau1 == tau2)
    avoids solving for it twice. Returns (values, max kappa residual, converged).
    """
    outer = talbot_nodes(tau1, M)
    inner = talbot_nodes(tau2, M, full=True)
    if kappa_diag is not None:
        k_out = k_up2 = kappa_diag
        res_o = res_i = None
    else:
        k_out, res_o = _kappa_at(lam_p, P, outer.s)
        # kappa on the inner (full) nodes = upper path + conjugates
        k_up2, res_i = _kappa_at(lam_p, P, talbot_nodes(tau2, M).s)
    k_in = np.concatenate([k_up2, np.conj(k_up2[:, 1:])], axis=1)
    vals = np.empty(len(outer.t))
    for i in range(len(outer.t)):
        Ro = 1.0 / (lam_p[None, :] + k_out[i][:, None])  # (J, K)
        Ri = 1.0 / (lam_p[None, :] + k_in[i][:, None])  # (2J-1, K)
        S = (Ro * v2_p) @ Ri.T
        gam = (Ro * (lam_p**2 / P)) @ Ri.T
        so, si = outer.s[i], inner.s[i]
        G = (k_out[i][:, None] * k_in[i][None, :]) / (so[:, None] * si[None, :]) * S / (1.0 - gam)
        w_in = inner.weights[i] * np.exp(inner.t[i] * si) * inner.scale[i]
        g_inner = G @ w_in  # inverse over s' at tau2, for each outer node
        w_out = outer.weights[i] * np.exp(outer.t[i] * so) * outer.scale[i]
        vals[i] = float(np.real(w_out @ g_inner))
    if res_o is None or res_i is None:  # both None together (kappa_diag given)
        return vals, 0.0, True
    ok = bool(res_o.converged and res_i.converged)
    return vals, max(res_o.residual, res_i.residual), ok


@dataclass(frozen=True, kw_only=True)
class FixedDataResult(SolverResult):
    """Test and training loss of SGD (or gradient flow) on a fixed training set.

    Attributes
    ----------
    steps : ndarray, shape (T,)
        SGD steps t at which the losses are given.
    time : ndarray, shape (T,)
        Gradient-flow time tau = lr * t.
    test_loss, train_loss : ndarray, shape (T,)
        Expected clean-target test MSE and noisy training MSE (no factor 1/2).
    gd_test_loss, gd_train_loss : ndarray, shape (T,)
        The same for full-batch gradient flow (the SGD forcing terms F + V).
    stable : bool
        ``(lr / B) tr Sigma / 2 < 1`` (stability of the continuous-time SGD model).
    critical_lr : float
        ``2 B / tr Sigma`` (inf for gradient flow).
    noise_floor : float
        Target power on zero-eigenvalue modes (unlearnable; acts as label noise).
    """

    steps: np.ndarray
    time: np.ndarray
    test_loss: np.ndarray
    train_loss: np.ndarray
    gd_test_loss: np.ndarray
    gd_train_loss: np.ndarray
    stable: bool
    critical_lr: float
    noise_floor: float


def sgd_fixed_data(
    eigenvalues,
    target_power,
    n_samples,
    lr,
    batch_size,
    steps,
    noise=0.0,
    *,
    M: int = 32,
) -> FixedDataResult:
    """Test and training loss of multi-pass SGD on a fixed training set (two-point theory).

    Equation (eq:two_point.sgd_fixed_data): ``L_test(tau) = F_test(tau) + V_test(tau)
        + (eta/B) int_0^tau K_test(tau-s) L_train(s) ds,
        L_train(tau) = F_train(tau) + V_train(tau) + (eta/B) int_0^tau K_train(tau-s) L_train(s) ds``

    Linear regression on P fixed Gaussian samples with population covariance
    ``diag(eigenvalues)``, SGD with batches of ``batch_size`` drawn uniformly with
    replacement and learning rate ``lr``; ``batch_size=None`` gives full-batch gradient flow.
    Solves the homogenised-SGD Volterra equations of the module docstring ("Two-Point
    Deterministic Equivalence for Stochastic Gradient Dynamics in Linear Models"): the
    gradient-flow test loss via the two-point equivalent (D2) and a double Talbot inversion,
    the SGD correction in closed form in the Laplace domain via (D1).

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Population covariance eigenvalues (>= 0; power on zero modes acts as label noise).
    target_power : array_like, shape (M,)
        ``lam_k w*_k^2``.
    n_samples : float
        Training-set size P > 0.
    lr : float
        Learning rate eta > 0 (sets time units: tau = eta * steps).
    batch_size : int or None
        Batch size B >= 1, or None for gradient flow (no SGD noise).
    steps : array_like, shape (T,)
        SGD steps t > 0 at which to evaluate (need not be integers).
    noise : float
        Label-noise variance.
    M : int
        Talbot nodes (per variable for the double inversion).

    Returns
    -------
    FixedDataResult
        If the continuous-time SGD model is unstable (``lr >= 2 B / tr Sigma``) the losses
        are ``inf`` and ``stable`` is False.
    """
    lam, v2 = _spectrum(eigenvalues, target_power)
    P = check_real(n_samples, "n_samples", lo=MIN_SCALE, hi=MAX_MAGNITUDE)
    eta = check_real(lr, "lr", lo=MIN_SCALE)
    if batch_size is None:
        coupling = 0.0
    else:
        B = check_int(batch_size, "batch_size", lo=1, hi=MAX_SIZE)
        coupling = eta / B
    t = check_array(steps, "steps", ndim=(0, 1), positive=True, min_size=1)
    t = np.atleast_1d(t)
    s2 = check_real(noise, "noise", lo=0.0)
    M = check_int(M, "M", lo=8, hi=128)

    pos = lam > 0
    lam_p, v2_p = lam[pos], v2[pos]
    floor = float(v2[~pos].sum())
    s2_eff = s2 + floor
    trace = float(lam_p.sum())
    crit = np.inf if coupling == 0 else 2.0 * B / trace
    stable = coupling * trace / 2.0 < 1.0
    tau = eta * t

    # kappa at the Talbot nodes p and p/2 (p: upper half contour of each tau)
    nodes = talbot_nodes(tau, M)
    p = nodes.s
    kh, res_h = _kappa_at(lam_p, P, p / 2)
    k1, res_1 = _kappa_at(lam_p, P, p)

    # gradient-flow test bias: two-point, double Talbot on the diagonal
    bias, res_b, ok_b = _bias_two_time(lam_p, v2_p, P, tau, tau, M, kappa_diag=k1)

    # one-point pieces in the Laplace domain
    Rh = 1.0 / (lam_p[None, None, :] + kh[..., None])
    R1 = 1.0 / (lam_p[None, None, :] + k1[..., None])
    F_tr = 0.5 * (Rh @ v2_p)
    V_tr = s2_eff / (2.0 * kh)
    l_h = p / 2
    K_tr = 0.5 * (trace - l_h * P * (1.0 - l_h / kh))
    K_te = 0.5 * (Rh @ lam_p**2)
    Q1 = (k1 / p) * (R1 @ lam_p)
    Qh = (kh / l_h) * (Rh @ lam_p)
    V_te = (s2_eff / P) * (2.0 / p) * (Q1 - 0.5 * Qh)
    denom = 1.0 - coupling * K_tr
    L_tr_hat = (F_tr + V_tr) / denom
    gd_tr_hat = F_tr + V_tr
    extra_te_hat = V_te + coupling * K_te * L_tr_hat

    train = talbot_sum(nodes, L_tr_hat)
    gd_train = talbot_sum(nodes, gd_tr_hat)
    var_te = talbot_sum(nodes, V_te)
    test = bias + talbot_sum(nodes, extra_te_hat) + floor
    gd_test = bias + var_te + floor
    if not stable:
        test = np.full_like(test, np.inf)
        train = np.full_like(train, np.inf)

    residual = max(res_b, res_h.residual, res_1.residual)
    converged = bool(ok_b and res_h.converged and res_1.converged
                     and np.all(np.isfinite(gd_test)) and np.all(np.isfinite(gd_train)))
    message = "converged" if converged else "complex kappa or Talbot inversion failed"
    if not stable:
        message = (f"continuous-time SGD unstable: lr/B * tr(Sigma)/2 = {coupling * trace / 2:.3g} >= 1 "
                   f"(critical lr {crit:.4g}); losses set to inf")
    if not converged:
        warn_not_converged("sgd_fixed_data", message)
    return FixedDataResult(
        steps=t, time=tau, test_loss=test, train_loss=train, gd_test_loss=gd_test,
        gd_train_loss=gd_train, stable=bool(stable), critical_lr=float(crit), noise_floor=floor,
        converged=converged, iterations=M, residual=float(residual), message=message,
    )


@dataclass(frozen=True, kw_only=True)
class TwoTimeResult(SolverResult):
    """Two-time test correlation of gradient flow on a fixed training set.

    Attributes
    ----------
    time : ndarray, shape (T,)
        Gradient-flow times tau.
    correlation : ndarray, shape (T, T)
        ``C(tau, tau') = E (w(tau) - w*)^T Sigma (w(tau') - w*)`` (symmetric; its diagonal
        is the test excess loss, without the unlearnable floor).
    bias, variance : ndarray, shape (T, T)
        The target-driven (two-point) and label-noise (one-point) parts of C.
    """

    time: np.ndarray
    correlation: np.ndarray
    bias: np.ndarray
    variance: np.ndarray


def two_time_correlation(eigenvalues, target_power, n_samples, times, noise=0.0, *, M: int = 32) -> TwoTimeResult:
    """Two-time correlation C(tau, tau') of gradient flow on P fixed samples (time x time).

    ``w(tau) = w* - e^{-tau Sigma_hat} w* + (1 - e^{-tau Sigma_hat}) Sigma_hat^+ X^T eps / P`` from
    ``w(0) = 0``. The bias part ``w*^T e^{-tau Sigma_hat} Sigma e^{-tau' Sigma_hat} w*`` is the
    double inverse Laplace transform of the two-point equivalent (D2); the noise part is
    ``(noise/P) [N(tau) + N(tau') - N(tau + tau')]`` with
    ``N(u) = tr[Sigma (1 - e^{-u Sigma_hat}) Sigma_hat^+]`` (one-point, Laplace transform
    ``Q(p)/p``). From "Two-Point Deterministic Equivalence for Stochastic Gradient Dynamics in
    Linear Models".

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (M,)
    n_samples : float
        P > 0.
    times : array_like, shape (T,)
        Gradient-flow times tau > 0 (for GD with step eta after t steps, tau ~= eta t).
    noise : float
        Label-noise variance (power on zero-eigenvalue modes is added to it).
    M : int
        Talbot nodes per variable.

    Returns
    -------
    TwoTimeResult
    """
    lam, v2 = _spectrum(eigenvalues, target_power)
    P = check_real(n_samples, "n_samples", lo=MIN_SCALE, hi=MAX_MAGNITUDE)
    tau = np.atleast_1d(check_array(times, "times", max_abs=MAX_MAGNITUDE, ndim=(0, 1), positive=True, min_size=1))
    check_scale(tau, "times", each=True)
    s2 = check_real(noise, "noise", lo=0.0)
    M = check_int(M, "M", lo=8, hi=128)
    pos = lam > 0
    lam_p, v2_p = lam[pos], v2[pos]
    s2_eff = s2 + float(v2[~pos].sum())
    T = len(tau)
    iu = np.triu_indices(T)
    vals, res_b, ok = _bias_two_time(lam_p, v2_p, P, tau[iu[0]], tau[iu[1]], M)
    bias = np.zeros((T, T))
    bias[iu] = vals
    bias = bias + np.triu(bias, 1).T
    # noise part: N(u) for u in tau and tau + tau'
    u_all = np.unique(np.concatenate([tau, (tau[:, None] + tau[None, :]).ravel()]))
    nodes = talbot_nodes(u_all, M)
    k1, res_1 = _kappa_at(lam_p, P, nodes.s)
    R1 = 1.0 / (lam_p[None, None, :] + k1[..., None])
    Q = (k1 / nodes.s) * (R1 @ lam_p)
    N_u = talbot_sum(nodes, Q / nodes.s)
    lookup = dict(zip(u_all.tolist(), N_u))
    Nt = np.array([lookup[x] for x in tau.tolist()])
    Nsum = np.array([[lookup[x] for x in row] for row in (tau[:, None] + tau[None, :]).tolist()])
    variance = (s2_eff / P) * (Nt[:, None] + Nt[None, :] - Nsum)
    converged = bool(ok and res_1.converged)
    message = "converged" if converged else "complex kappa continuation failed"
    if not converged:
        warn_not_converged("two_time_correlation", message)
    return TwoTimeResult(
        time=tau, correlation=bias + variance, bias=bias, variance=variance,
        converged=converged, iterations=M, residual=float(max(res_b, res_1.residual)), message=message,
    )


def random_feature_spectrum(eigenvalues, target_power, projection):
    """Eigen-system of a linear random-feature model conditional on its projection.

    For ``psi = F x / sqrt(N)`` with ``x ~ N(0, diag(lam))`` and target ``y = w* . x``, the
    features are Gaussian with covariance ``Sigma_F = F Lambda F^T / N`` and, by joint
    Gaussianity, ``y = a* . psi + r`` with r independent of psi. Returns the eigenvalues of
    Sigma_F, the target power of ``a* . psi`` on its eigenvectors, and ``Var(r)`` (the
    width-limited loss, which acts as label noise for the random-feature model). Feeding
    ``(eigenvalues + [0], power + [residual])`` to :func:`sgd_fixed_data` or
    :func:`lmech.theory.sgd.learning_curve` gives the random-feature model's curves
    conditional on F.

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (M,)
        Latent covariance eigenvalues (> 0) and target power ``lam_k w*_k^2``.
    projection : array_like, shape (N, M)
        The random projection F.

    Returns
    -------
    feature_eigenvalues : ndarray, shape (min(N, M),)
    feature_target_power : ndarray, shape (min(N, M),)
    residual : float
    """
    lam, v2 = _spectrum(eigenvalues, target_power)
    F = check_array(projection, "projection", max_abs=MAX_MAGNITUDE, ndim=2)
    if F.shape[1] != lam.shape[0]:
        fail("projection", f"of shape (N, {lam.shape[0]})", F)
    N = F.shape[0]
    G = F * np.sqrt(lam) / np.sqrt(N)  # psi = G z, z ~ N(0, I)
    U, s, _ = np.linalg.svd(G, full_matrices=False)
    proj = U.T @ (G @ np.sqrt(v2))
    ev = s**2
    with np.errstate(divide="ignore", invalid="ignore"):
        power = np.where(ev > 1e-300, proj**2 / np.where(ev > 1e-300, ev, 1.0), 0.0)
    residual = float(max(v2.sum() - power.sum(), 0.0))
    return ev, power, residual
