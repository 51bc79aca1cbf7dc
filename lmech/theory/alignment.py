"""Silent alignment and NTK alignment of small-initialisation networks.

Theory for "Neural Networks as Kernel Learners: The Silent Alignment Effect" and "A Theory of
Neural Tangent Kernel Alignment and Its Influence on Training". Networks are linear in the input,
``f(x) = v . x`` with ``v = W_1^T ... W_{L-1}^T w``, trained on the loss
``(1/2P) |X v - y|^2 = (1/2)(v - v*)^T Sigma (v - v*) + const`` (``Sigma = X^T X / P``); every
weight entry starts ``N(0, sigma^2 / N)`` (layer gain ``sigma``). The tangent kernel is
``K(x, x') = x^T M x'``.

Two-layer (``f = a^T W x``). The Gram quantities ``q = |a|^2``, ``v = W^T a``, ``C = W^T W`` obey a
closed map under gradient descent with step ``eta`` and ``g = Sigma v - X^T y / P``, exactly at any
width (derived here from ``a <- a - eta W g``, ``W <- W - eta a g^T``):

    q' = q - 2 eta v.g + eta^2 g^T C g,   v' = v - eta (C + q) g + eta^2 (v.g) g,
    C' = C - eta (v g^T + g v^T) + eta^2 q g g^T,        M = q I + C.

At large width the initial Gram is ``q = sigma^2``, ``C = sigma^2 I``, ``v = 0``. For whitened data
(``Sigma = I``) and a target ``v* = b e`` the flow (eta -> 0) keeps ``v = s e``,
``C = c0 (I - e e^T) + c e e^T``, ``q = c``, with ``c0 = sigma^2`` and ``c^2 - s^2 = c0^2``:
``ds/dt = 2 c (b - s)``. With ``s = c0 sinh(theta)``, ``u = e^theta``, ``R = sqrt(b^2 + c0^2)``,
``u_pm = (b pm R) / c0``, it integrates in closed form to

    (u - u_-) / (u_+ - u) = exp(2 R t) (1 - u_-) / (u_+ - 1),

and the kernel has eigenvalue ``2c`` along ``e`` and ``c + c0`` across it. Its shape
(``c / c0 = cosh(2 b t)`` early on) is set within a sigma-independent time while the loss
``(b - s)^2 / 2`` stays at its initial value until ``t ~ ln(b / sigma^2) / (2b)``: silent alignment.

Depth L (balanced mode picture): the strength ``s`` of the mode along the target obeys
``ds/dt = L s^{2 - 2/L} (b - s)`` (logistic for L = 2); from ``s0`` it escapes at
``t ~ ln(b/s0) / (2b)`` (L = 2) or ``t ~ s0^{-(1 - 2/L)} / (b (L - 2))`` (L >= 3), so with
``s0 ~ sigma^L`` the escape time grows as ``ln(1/sigma)`` for L = 2 and as ``sigma^{-(L-2)}`` for
L >= 3 (the gradient flow of a degree-L homogeneous network is invariant under
``theta -> theta / sigma``, ``t -> t sigma^{L-2}`` while the residual is still the target).
Its kernel has eigenvalue ``L u^{2(L-1)}`` along the target (``u = s^{1/L}``) and
``sum_l u^{2(L-l)} sigma^{2(l-1)}`` across it, so the final centred alignment on whitened data
is ``L / sqrt(L^2 + D - 1)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, fail
from lmech.kernels._alignment import centered_alignment_unchecked
from lmech.results import SolverResult, warn_not_converged

__all__ = ["centered_alignment", "SilentAlignment", "silent_alignment_two_layer", "GramDynamics",
           "two_layer_linear_gd", "ModeDynamics", "mode_dynamics", "final_alignment", "final_kernel_gap",
           "ToyKernelEvolution", "toy_kernel_evolution"]


def centered_alignment(K, y) -> np.ndarray:
    """Centred kernel-target alignment ``A = y~^T K~ y~ / (|K~|_F |y~|^2)``, ``K~ = H K H``, ``y~ = H y``.

    ``H = I - 11^T/P``. ``K`` may carry leading batch axes (..., P, P); returns their alignments.
    """
    K = check_array(K, "K", ndim=tuple(range(2, 8)), max_abs=1e150)
    y = check_array(y, "y", ndim=1, min_size=2, max_abs=1e75)
    if K.shape[-1] != len(y) or K.shape[-2] != len(y):
        fail("K", f"of trailing shape ({len(y)}, {len(y)}) to match y", K)
    if np.ptp(y) == 0:
        fail("y", "non-constant (its centred norm is 0)", y)
    A = centered_alignment_unchecked(K, y)
    if not np.all(np.isfinite(A)):
        fail("K", "non-constant after centring (|HKH|_F = 0)", K)
    return A


@dataclass(frozen=True, kw_only=True)
class SilentAlignment(SolverResult):
    """Gradient flow of a wide two-layer linear network on whitened data (closed form).

    Attributes
    ----------
    t : ndarray (T,)
    overlap : ndarray (T,)            s(t), the learned part of v along the target
    loss : ndarray (T,)               (b - s)^2 / 2
    kernel_parallel, kernel_perp : ndarray (T,)   NTK eigenvalues 2c and c + c0
    alignment : ndarray (T,)          centred alignment of the training-set NTK with y
    t_align : float                   alignment has made ``fraction`` of its rise
    t_loss : float                    loss has fallen by ``fraction`` of its initial value (0.5 default)
    final_alignment : float
    """

    t: np.ndarray
    overlap: np.ndarray
    loss: np.ndarray
    kernel_parallel: np.ndarray
    kernel_perp: np.ndarray
    alignment: np.ndarray
    t_align: float
    t_loss: float
    final_alignment: float


def _time_of_u(u, b, c0):
    R = np.sqrt(b * b + c0 * c0)
    up, um = (b + R) / c0, (b - R) / c0
    return np.log((up - 1) * (u - um) / ((up - u) * (1 - um))) / (2 * R)


def silent_alignment_two_layer(t, *, target_norm: float, sigma: float, dim: int,
                               align_fraction: float = 0.9, loss_fraction: float = 0.5) -> SilentAlignment:
    """Closed-form silent-alignment dynamics of a wide two-layer linear net on whitened data.

    Equation (eq:alignment.two_layer): ``ds/dt = 2 sqrt(s^2 + sigma^4) (b - s)``,
        ``K = x^T [2c e e^T + (c + sigma^2)(I - e e^T)] x'``, ``c = sqrt(s^2 + sigma^4)``

    ``t_align``: the centred alignment ``2c / sqrt(4c^2 + (D-1)(c + c0)^2)`` has made
    ``align_fraction`` of its rise from ``1/sqrt(D)``; ``t_loss``: the loss has fallen to
    ``(1 - loss_fraction)`` of ``b^2/2``. Both exact (inverse of the closed form), for data with
    ``X^T X / P = I`` and centred columns. From "Neural Networks as Kernel Learners: The Silent
    Alignment Effect".
    """
    t = check_array(t, "t", ndim=1, nonnegative=True, min_size=1)
    b = check_real(target_norm, "target_norm", lo=1e-6, hi=1e6)
    sig = check_real(sigma, "sigma", lo=1e-6, hi=1e3)
    D = check_int(dim, "dim", lo=2, hi=MAX_SIZE)
    fa = check_real(align_fraction, "align_fraction", lo=0, hi=1, lo_closed=False, hi_closed=False)
    fl = check_real(loss_fraction, "loss_fraction", lo=0, hi=1, lo_closed=False, hi_closed=False)
    c0 = sig * sig
    R = np.sqrt(b * b + c0 * c0)
    up, um = (b + R) / c0, (b - R) / c0
    Q = np.exp(np.minimum(2 * R * t, 700.0)) * (1 - um) / (up - 1)
    u = (um + Q * up) / (1 + Q)
    s, c = c0 * (u - 1 / u) / 2, c0 * (u + 1 / u) / 2

    def align(c):
        return 2 * c / np.sqrt(4 * c * c + (D - 1) * (c + c0) ** 2)

    c_inf = R
    a0, a_inf = 1 / np.sqrt(D), float(align(c_inf))
    target = a0 + fa * (a_inf - a0)  # solve 2x = A sqrt(4x^2 + (D-1)(x+1)^2) for x = c / c0
    qa, qb, qc = 4 * target**2 + (D - 1) * target**2 - 4, 2 * (D - 1) * target**2, (D - 1) * target**2
    x = (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
    t_align = float(_time_of_u(x + np.sqrt(x * x - 1), b, c0))
    s_l = b * (1 - np.sqrt(1 - fl))
    t_loss = float(_time_of_u((s_l + np.hypot(s_l, c0)) / c0, b, c0))
    return SilentAlignment(t=t, overlap=s, loss=(b - s) ** 2 / 2, kernel_parallel=2 * c, kernel_perp=c + c0,
                           alignment=align(c), t_align=t_align, t_loss=t_loss, final_alignment=a_inf,
                           converged=True, status="closed_form", iterations=0, residual=float("nan"),
                           message="closed form (gradient flow, whitened data, large width)")


@dataclass(frozen=True, kw_only=True)
class GramDynamics(SolverResult):
    """Exact gradient-descent dynamics of a two-layer linear network's Gram quantities.

    Attributes
    ----------
    t : ndarray (T,)              ``lr * step``
    v : ndarray (T, D)            end-to-end map
    ntk : ndarray (T, D, D)       ``M = q I + C``
    loss : ndarray (T,)           ``(1/2P)|X v - y|^2``
    alignment : ndarray (T,)      centred alignment of ``X M X^T`` with ``y``
    """

    t: np.ndarray
    v: np.ndarray
    ntk: np.ndarray
    loss: np.ndarray
    alignment: np.ndarray


def two_layer_linear_gd(X, y, *, sigma: float, lr: float, n_steps: int) -> GramDynamics:
    """Gradient descent of a wide two-layer linear net ``a^T W x`` via its closed Gram map.

    Equation (eq:alignment.gram_map): ``v' = v - eta (C + q) g + eta^2 (v.g) g``,
        ``q' = q - 2 eta v.g + eta^2 g^T C g``, ``C' = C - eta (v g^T + g v^T) + eta^2 q g g^T``

    with ``g = X^T (X v - y) / P`` and the large-width initial Gram ``q = sigma^2``,
    ``C = sigma^2 I``, ``v = 0`` (any data, whitened or not). Exact finite recursion
    (``status="closed_form"``); ``"diverged"`` if the map leaves float range. From "Neural
    Networks as Kernel Learners: The Silent Alignment Effect".
    """
    X = check_array(X, "X", ndim=2, min_size=2, max_abs=1e30)
    y = check_array(y, "y", shape=(X.shape[0],), max_abs=1e30)
    if len(y) < 2 or not np.sum((y - y.mean()) ** 2) > 1e-200:
        fail("y", "non-constant with at least 2 entries (its alignment is undefined otherwise)", y)
    if not np.sum((X - X.mean(0)) ** 2) > 1e-100:
        fail("X", "of non-negligible centred scale (rows not all equal)", X)
    sig = check_real(sigma, "sigma", lo=0, lo_closed=False, hi=1e3)
    eta = np.float64(check_real(lr, "lr", lo=0, lo_closed=False, hi=1e6))
    n = check_int(n_steps, "n_steps", lo=1, hi=MAX_SIZE)
    P, D = X.shape
    Sigma, r = X.T @ X / P, X.T @ y / P
    q, C, v = sig * sig, sig * sig * np.eye(D), np.zeros(D)
    vs, Ms, ok = [], [], True
    for _ in range(n + 1):
        vs.append(v)
        Ms.append(q * np.eye(D) + C)
        g = Sigma @ v - r
        with np.errstate(over="ignore", invalid="ignore"):
            q, v, C = (q - 2 * eta * v @ g + eta**2 * g @ C @ g, v - eta * (C @ g + q * g) + eta**2 * (v @ g) * g,
                       C - eta * (np.outer(v, g) + np.outer(g, v)) + eta**2 * q * np.outer(g, g))
        if not (np.isfinite(q) and abs(q) < 1e100 and np.all(np.abs(v) < 1e100)):
            ok = False
            break
    V, M = np.array(vs), np.array(Ms)
    loss = 0.5 * np.mean((V @ X.T - y) ** 2, axis=1)
    if not ok:
        warn_not_converged("two_layer_linear_gd", "the Gram map diverged (lr too large)")
    return GramDynamics(t=eta * np.arange(len(V)), v=V, ntk=M, loss=loss,
                        alignment=centered_alignment_unchecked(np.einsum("pd,tde,qe->tpq", X, M, X, optimize=True), y),
                        converged=ok, status="closed_form" if ok else "diverged", iterations=len(V) - 1,
                        residual=float("nan"),
                        message="exact Gram map" if ok else "diverged: the Gram map left float range (lr too large)")


@dataclass(frozen=True, kw_only=True)
class ModeDynamics(SolverResult):
    """Strength of one target mode of a depth-L linear network (balanced mode picture).

    Attributes
    ----------
    t : ndarray (T,)
    strength : ndarray (T,)       s(t)
    escape_time : float           time at which s reaches b / 2
    escape_asymptote : float      ``ln(b/s0)/(2b)`` (L = 2) or ``s0^{-(1-2/L)} / (b (L-2))`` (L >= 3)
    """

    t: np.ndarray
    strength: np.ndarray
    escape_time: float
    escape_asymptote: float


def mode_dynamics(t, *, depth: int, target_strength: float, s0: float, rtol: float = 1e-10) -> ModeDynamics:
    """Mode strength ``s(t)`` of a depth-L linear network from a small balanced start ``s0``.

    Equation (eq:alignment.mode): ``ds/dt = L s^{2 - 2/L} (b - s)``; for L = 2
        ``s(t) = b / (1 + (b/s0 - 1) e^{-2bt})``

    L = 2 is the closed-form logistic (``status="closed_form"``). For L >= 3 the time to reach
    ``s`` is the quadrature ``t(s) = int_{s0}^{s} ds' / (L s'^{2-2/L} (b - s'))``, done with
    adaptive Gauss-Kronrod in ``log s`` up to ``b/2`` and in
    ``-log(b - s)`` beyond, then inverted by interpolation on a fine grid
    (``status="converged"`` when the quadrature meets ``rtol``). From "Neural Networks as
    Kernel Learners: The Silent Alignment Effect".
    """
    from scipy.integrate import quad

    t = check_array(t, "t", ndim=1, nonnegative=True, min_size=1)
    L = check_int(depth, "depth", lo=2, hi=64)
    b = check_real(target_strength, "target_strength", lo=1e-6, hi=1e6)
    s0 = check_real(s0, "s0", lo=1e-200, hi=b, hi_closed=False)
    check_real(rtol, "rtol", lo=1e-14, hi=1e-2)
    asym = np.log(b / s0) / (2 * b) if L == 2 else s0 ** -(1 - 2 / L) / (b * (L - 2))
    if L == 2:
        logistic = b / (1 + (b / s0 - 1) * np.exp(-2 * b * t))
        return ModeDynamics(t=t, strength=logistic, escape_time=float(np.log(b / s0 - 1) / (2 * b)),
                            escape_asymptote=float(asym), converged=True, status="closed_form", iterations=0,
                            residual=float("nan"), message="closed-form logistic")

    def rate_low(z):  # dt/d(log s), s in [s0, b/2]
        s = np.exp(z)
        return 1.0 / (L * s ** (1 - 2 / L) * (b - s))

    def rate_high(w):  # dt/dw with s = b - e^{-w}, s in [b/2, b)
        return 1.0 / (L * (b - np.exp(-w)) ** (2 - 2 / L))

    n = 1500
    z = np.linspace(np.log(s0), np.log(b / 2), n)
    w = np.linspace(-np.log(b / 2), -np.log(b / 2) + 30 * np.log(10), n)
    pieces = [quad(rate_low, z0, z1, epsabs=0, epsrel=rtol) for z0, z1 in zip(z[:-1], z[1:])]
    pieces += [quad(rate_high, w0, w1, epsabs=0, epsrel=rtol) for w0, w1 in zip(w[:-1], w[1:])]
    tt = np.concatenate([[0.0], np.cumsum([p[0] for p in pieces])])
    err = sum(p[1] for p in pieces) / tt[-1]
    lo, hi = tt[:n], tt[n - 1:]  # interpolate log s below b/2 and -log(b - s) above (smooth in t)
    s = np.where(t <= lo[-1], np.exp(np.interp(t, lo, z)), b - np.exp(-np.interp(t, hi, w, right=np.inf)))
    ok = bool(err <= 10 * rtol)
    if not ok:
        warn_not_converged("mode_dynamics", f"quadrature relative error {err:.2e} above rtol")
    return ModeDynamics(t=t, strength=s, escape_time=float(tt[n - 1]), escape_asymptote=float(asym), converged=ok,
                        iterations=len(pieces), residual=float(err),
                        message="quadrature met rtol" if ok else f"quadrature relative error {err:.2e} above rtol")


def final_alignment(depth, dim: int) -> np.ndarray:
    """Centred NTK-target alignment after training, deep linear net on whitened data.

    Equation (eq:alignment.final): ``A_inf = L / sqrt(L^2 + D - 1)``

    (kernel ``u^{2(L-1)} (I + (L-1) e e^T)`` once the target mode dominates; small init).
    From "A Theory of Neural Tangent Kernel Alignment and Its Influence on Training".
    """
    L = check_array(depth, "depth", ndim=(0, 1), positive=True)
    D = check_int(dim, "dim", lo=1, hi=MAX_SIZE)
    return L / np.sqrt(L * L + D - 1)


def final_kernel_gap(sigma, *, width: int, dim: int, n_train: int, target_norm: float) -> np.ndarray:
    """Predicted gap between a trained two-layer linear net and ridgeless regression with its final NTK.

    Equation (eq:alignment.final_gap): ``|v_net - v_krr| / |v*| = (sigma/2) sqrt((D - P) / (N |v*|))``

    For ``P < D`` inputs with ``X X^T = P I`` both functions interpolate, so they agree on the
    data's span; across it the net keeps ``P_perp W0^T a`` and kernel regression
    ``P_perp W0^T (W X^T alpha)``, and small init gives ``W X^T alpha = a / 2``, ``|a|^2 = |v*|``:
    the gap is ``|P_perp W0^T a| / 2`` with ``W0`` entries ``N(0, sigma^2/N)`` (root mean square
    over initialisations; leading order in sigma). From "Neural Networks as Kernel Learners: The
    Silent Alignment Effect".
    """
    sig = check_array(sigma, "sigma", ndim=(0, 1), positive=True)
    N = check_int(width, "width", lo=1, hi=MAX_SIZE)
    D = check_int(dim, "dim", lo=2, hi=MAX_SIZE)
    P = check_int(n_train, "n_train", lo=1, hi=D - 1)
    b = check_real(target_norm, "target_norm", lo=0, lo_closed=False)
    return sig / 2 * np.sqrt((D - P) / (N * b))


@dataclass(frozen=True, kw_only=True)
class ToyKernelEvolution(SolverResult):
    """Function-space gradient flow with a kernel that grows along the residual.

    Attributes
    ----------
    t : ndarray (T,)
    loss : ndarray (T,)           ``|Delta|^2 / (2P)``
    alignment : ndarray (T,)      uncentred alignment ``y^T K y / (|K|_F |y|^2)``
    kernel : ndarray (P, P)       K at the last time
    """

    t: np.ndarray
    loss: np.ndarray
    alignment: np.ndarray
    kernel: np.ndarray


def toy_kernel_evolution(K0, y, *, rate: float, t, rtol: float = 1e-9) -> ToyKernelEvolution:
    """Toy model of kernel evolution that accelerates training.

    Equation (eq:alignment.toy): ``dDelta/dt = -K Delta / P``, ``dK/dt = gamma Delta Delta^T``

    ``Delta = y - f`` starts at ``y``; ``Delta Delta^T`` is the direction in which a change of K
    most speeds up the loss decrease ``-dL/dt = Delta^T K Delta / P^2``, so the kernel's alignment
    with the target rises. For ``K0 = k0 I`` and ``|y|^2 = P`` it is solvable:
    ``K = k0 I + m yy^T/P``, ``kappa = k0 + m``, ``kappa^2 + gamma P^2 r^2`` is conserved
    (``Delta = r y``), so ``kappa(t) = K_inf tanh(K_inf t / P + artanh(k0 / K_inf))`` with
    ``K_inf = sqrt(k0^2 + gamma P^2)``. General ``K0`` is integrated with an adaptive
    Runge-Kutta method (``status="converged"`` on success). From "A Theory of Neural Tangent
    Kernel Alignment and Its Influence on Training".
    """
    from scipy.integrate import solve_ivp

    K0 = check_array(K0, "K0", ndim=2, max_abs=1e30)
    y = check_array(y, "y", ndim=1, min_size=1, max_abs=1e30)
    if not np.any(y):
        fail("y", "not all zero", y)
    P = len(y)
    if K0.shape != (P, P):
        fail("K0", f"of shape ({P}, {P})", K0)
    g = check_real(rate, "rate", lo=0)
    t = check_array(t, "t", ndim=1, nonnegative=True, min_size=1)
    if np.any(np.diff(t) <= 0):
        fail("t", "strictly increasing", t)
    scale = (np.linalg.norm(K0, 2) + np.sqrt(g) * np.linalg.norm(y) * np.sqrt(P)) / P  # inverse relaxation time
    if t[-1] * scale > 1e4:
        fail("t", f"at most 1e4 relaxation times (t_max <= {1e4 / scale:.3g})", t)
    check_real(rtol, "rtol", lo=1e-13, hi=1e-2)

    def rhs(_, z):
        d, K = z[:P], z[P:].reshape(P, P)
        return np.concatenate([-K @ d / P, g * np.outer(d, d).ravel()])

    sol = solve_ivp(rhs, (0.0, float(t[-1])), np.concatenate([y, K0.ravel()]), t_eval=t, rtol=rtol,
                    atol=rtol * 1e-3, method="DOP853")
    ok = bool(sol.success) and sol.y.shape[1] == len(t)
    if not ok:
        warn_not_converged("toy_kernel_evolution", str(sol.message))
        return ToyKernelEvolution(t=t, loss=np.full(len(t), np.nan), alignment=np.full(len(t), np.nan),
                                  kernel=K0, converged=False, status="max_iter", iterations=int(sol.nfev),
                                  residual=float("nan"), message=str(sol.message))
    d, K = sol.y[:P].T, sol.y[P:].T.reshape(len(t), P, P)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        A = np.einsum("i,tij,j->t", y, K, y) / (np.linalg.norm(K, axis=(1, 2)) * (y @ y))
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(d))):
        warn_not_converged("toy_kernel_evolution", "non-finite kernel or residual (inputs out of float range)")
        return ToyKernelEvolution(t=t, loss=np.sum(d * d, 1) / (2 * P), alignment=A, kernel=K[-1], converged=False,
                                  status="diverged", iterations=int(sol.nfev), residual=float("nan"),
                                  message="non-finite kernel or residual")
    return ToyKernelEvolution(t=t, loss=np.sum(d * d, 1) / (2 * P), alignment=A, kernel=K[-1], converged=True,
                              status="converged", iterations=int(sol.nfev), residual=float("nan"),
                              message="adaptive Runge-Kutta (DOP853) met rtol")
