"""Infinite-width dynamics of networks trained with GD, FA, DFA, Hebbian rules and GLNs.

"The Influence of Learning Rule on Representation Dynamics in Wide Neural Networks"
(Bordelon & Pehlevan). Network, parameterization and learning rules are those of
:mod:`lmech.sim.learning_rules` (mean-field / muP, richness ``gamma0``, raw step ``lr
gamma0^2 N`` times the rule's pseudo-gradient ``gt``). For every rule the predictions move
with an *effective* NTK,

    f(t+1) - f(t) = (lr/P) K_eff(t) Delta(t) + O(lr^2),
    K_eff = Phi^L + sum_l Gx^l * Phi^{l-1},     Gx^l = <g^l gt^l>   (true x pseudo gradient),

which is not symmetric for FA, DFA and Hebb. The solvers below compute the *exact*
discrete-time infinite-width dynamics (the predictions are read out from the fields,
``f = <w phi(h^L)> / gamma0``), plus ``K_eff(t)``, ``Phi^l(t,t)`` and ``Gx^l(t,t)``.

What is solved, per rule and architecture
-----------------------------------------
Linear networks, any depth (closed forms, no sampling; derivations by the DMFT cavity
argument of the GD case, checked against simulations in the tests):

* ``"gd"``: the deep-linear DMFT (:func:`lmech.theory.dmft.deep_linear`).
* ``"fa"`` / ``"dfa"``: in a linear net the pseudo-gradient is a frozen Gaussian per neuron,
  so every field is a rank-one shift of a Gaussian source, ``h^l(t) = u^l(t) + gt^l c^l(t)``::

      c^l(t) = rho c^{l-1}(t) + a sum_{s<t} Phi^{l-1}(t,s) Delta(s),     c^0 = 0,  a = lr gamma0 / P,
      Phi^l(t,s) = Phi^{l-1}(t,s) + c^l(t) c^l(s)^T,                     f(t) = c^{L+1}(t) / gamma0,
      Gx^l(t) = rho Gx^{l+1}(t) + a Gamma^{l+1}(t) sum_{s<t} Delta(s).c^l(s),
      Gamma^l = Gx^l + Gamma^{l+1},  Gx^{L+1} = Gamma^{L+1} = 1.

  (``rho`` is the FA feedback/forward correlation; DFA is the ``rho = 0`` case.) Cost O(T^2 L^2 M).
* ``"hebb"``: ``gt^l = h^l``, no response functions; ``h^l = (I - C^l)^{-1} u^l`` with
  ``C^l(t,s) = a Phi^{l-1}(t,s) diag(Delta(s)) 1[s<t]``, so ``Phi^l = M^l Phi^{l-1} M^l^T`` and
  ``f(t) = (lr/P) sum_{s<t} Phi^L(t,s) Delta(s)``. The cross kernel follows from an identity
  of linear networks (exact at any width): ``g^l . h^l = g^{l+1} . h^{l+1} = w . h^L``, and
  ``g^l`` is point independent, so ``Gx^l_{mu nu}(t) = gamma0 f_nu(t)`` in every layer. Solved
  causally block row by block row, O(L T^3 M^3).

Two-layer networks (``depth = 1``), any activation: the DMFT has no response functions and
each hidden neuron is an independent particle driven by the shared residual; it is solved
by propagating ``samples`` particles ``(h in R^M, w, feedback)`` forward in time, exactly in
``Delta`` (no fixed-point iteration is needed because the single-site process is causal)
with antithetic pairs ``(h, +-w, +-feedback)`` that cancel the O(1/sqrt(samples)) initial
output. Monte-Carlo error O(1/sqrt(samples)), reported in ``residual``. Rules:
GD ``gt = phi'(h) w``; FA ``gt = phi'(h) (rho w(0) + sqrt(1-rho^2) xi)``; DFA ``gt = phi'(h) bt``;
Hebb ``gt = phi(h)``.

Gated linear networks (``"gln"``, ``depth = 1``): given a neuron's gate pattern ``s in
{0,1}^M`` (``s_mu = 1[v . x_mu > 0]``, ``v ~ N(0, I_D)``) its dynamics is linear, so the second
moments of ``(h, w)`` are propagated exactly per pattern and averaged over the pattern
distribution (estimated from ``samples`` draws of ``v``; O(K T M^3) for K distinct patterns).

Lazy limit (``gamma0 -> 0``): :func:`lazy_effective_kernel` (static ``K_eff``): GD NTK;
FA ``Phi^L + sum_l rho^{L-l+1} G^l * Phi^{l-1}``; DFA and Hebb ``Phi^L`` (only the readout
learns); GLN ``(L+1) q^L * X X^T/D`` with the gate overlap ``q = (pi - theta)/(2 pi)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_choice, check_int, check_real, fail
from lmech.kernels._alignment import centered_alignment_unchecked
from lmech.nonlinearities import NONLINEARITIES, gaussian_kernels
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.dmft.deep_linear import _check_data, _loss, deep_linear

__all__ = [
    "RULES",
    "LearningRuleResult",
    "learning_rule_dynamics",
    "lazy_effective_kernel",
    "kernel_alignment",
]

RULES = ("gd", "fa", "dfa", "hebb", "gln")
_ACTS = ("linear", "tanh", "relu", "erf")


def _phi(name: str):
    nl = NONLINEARITIES[name]
    return nl.phi, nl.dphi


@dataclass(frozen=True, kw_only=True)
class LearningRuleResult(SolverResult):
    """Infinite-width trajectory of a network trained with one learning rule.

    Shapes: ``n = steps + 1`` times, ``P`` train / ``P'`` test points, ``M = P + P'``,
    ``L = depth``.

    Attributes
    ----------
    steps, times : ndarray, shape (n,)
        Step indices and ``lr * steps``.
    f_train, f_test : ndarray, shapes (n, P), (n, P')
    train_loss, test_loss : ndarray, shape (n,)
    effective_ntk : ndarray, shape (n, M, M)
        ``K_eff(t)`` (row: output point, column: the point whose error drives the update);
        not symmetric for FA, DFA, Hebb.
    feature_kernels, cross_kernels : ndarray, shape (n, L, M, M)
        Equal-time ``Phi^l(t,t)`` and ``Gx^l(t,t) = <g^l gt^l>``.
    method : str
        ``"closed-form"``, ``"particles"`` or ``"gate-mixture"``.
    diverged : bool
        True when the infinite-width dynamics blew up (e.g. Hebbian runaway at large
        ``gamma0``); the arrays then stop at the last finite step (loss < 1e8 x initial).
    """

    steps: np.ndarray
    times: np.ndarray
    f_train: np.ndarray
    f_test: np.ndarray | None
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    effective_ntk: np.ndarray
    feature_kernels: np.ndarray
    cross_kernels: np.ndarray
    rule: str
    rho: float
    depth: int
    gamma0: float
    lr: float
    activation: str
    method: str
    diverged: bool = False


# --------------------------------------------------------------------------- linear FA / DFA
def _fa_linear(Kx, ytr, P, L, g0, eta, n, rho):
    """Closed form of linear FA (DFA: rho = 0). Returns f (n,Q), Phi_eq (n,L,Q,Q), Gx (n,L)."""
    Q = Kx.shape[0]
    k = eta / P
    g2 = g0 * g0
    c = np.zeros((n, L + 2, Q))  # c_hat^l(t) = c^l(t)/gamma0, l = 0..L+1
    sig = np.zeros((n + 1, L + 1))  # sigma_hat^l(t) = sum_{s<t} c_hat^l(s).Delta(s)
    S = np.zeros((n + 1, Q))  # sum_{s<t} Delta(s)
    f = np.zeros((n, Q))
    Phi = np.zeros((n, L, Q, Q))
    Gx = np.zeros((n, L))
    for t in range(n):
        for l in range(1, L + 2):
            drive = Kx @ S[t] + g2 * sum(c[t, j] * sig[t, j] for j in range(1, l))
            c[t, l] = (rho * c[t, l - 1] if l > 1 else 0.0) + k * drive
        f[t] = c[t, L + 1]
        delta = np.zeros(Q)
        delta[:P] = ytr - f[t, :P]
        acc = Kx.copy()
        for l in range(1, L + 1):
            acc = acc + g2 * np.outer(c[t, l], c[t, l])
            Phi[t, l - 1] = acc
        gx_next, gam_next = 1.0, 1.0
        for l in range(L, 0, -1):
            gx = rho * gx_next + g2 * k * gam_next * sig[t, l]
            Gx[t, l - 1] = gx
            gam_next = gx + gam_next
            gx_next = gx
        S[t + 1] = S[t] + delta
        sig[t + 1, 1:] = sig[t, 1:] + c[t, 1:L + 1] @ delta
    return f, Phi, Gx


# --------------------------------------------------------------------------- linear Hebb
def _hebb_linear(Kx, ytr, P, L, g0, eta, n):
    """Causal solution of linear error-modulated Hebb. Returns f, Phi_eq (n,L,Q,Q), Gx_eq (n,L,Q,Q)."""
    Q = Kx.shape[0]
    TQ = n * Q
    a = eta * g0 / P
    k = eta / P
    z = lambda: torch.zeros(TQ, TQ, dtype=torch.float64)  # noqa: E731
    Kt = torch.as_tensor(Kx, dtype=torch.float64)
    Phi = [Kt.repeat(n, n)] + [z() for _ in range(L)]
    Mm: list[Any] = [None] + [z() for _ in range(L)]
    C: list[Any] = [None] + [z() for _ in range(L)]
    f = torch.zeros(n, Q, dtype=torch.float64)
    delta = torch.zeros(n, Q, dtype=torch.float64)
    Phi_eq = torch.zeros(n, L, Q, Q, dtype=torch.float64)
    Gx_eq = torch.zeros(n, L, Q, Q, dtype=torch.float64)
    ytr_t = torch.as_tensor(ytr, dtype=torch.float64)
    eye = torch.eye(Q, dtype=torch.float64)
    for t in range(n):
        r, p, cc = slice(t * Q, (t + 1) * Q), slice(0, t * Q), slice(0, (t + 1) * Q)
        dvec = delta[:t].reshape(-1)
        for l in range(1, L + 1):
            C[l][r, p] = a * Phi[l - 1][r, p] * dvec[None, :]
            Mm[l][r, p] = C[l][r, p] @ Mm[l][p, p]
            Mm[l][r, r] = eye
            row = (Mm[l][r, cc] @ Phi[l - 1][cc, cc]) @ Mm[l][cc, cc].T
            Phi[l][r, cc] = row
            Phi[l][cc, r] = row.T
            Phi_eq[t, l - 1] = row[:, t * Q:]
        f[t] = k * (Phi[L][r, p] @ dvec) if t > 0 else 0.0
        delta[t, :P] = ytr_t - f[t, :P]
        # in a linear net g^l . h^l / N = g^{l+1} . h^{l+1} / N = ... = w . h^L / N = gamma0 f,
        # and g^l is the same for every point: Gx^l_{mu nu}(t) = gamma0 f_nu(t) for every layer
        Gx_eq[t] = g0 * f[t][None, None, :].expand(L, Q, Q)
        if not bool(torch.isfinite(f[t]).all()) or float(f[t].abs().max()) > 1e12:
            f[t + 1:] = float("nan")
            break
    return f.numpy(), Phi_eq.numpy(), Gx_eq.numpy()


# --------------------------------------------------------------------------- two-layer particles
def _particles(Kx, ytr, P, rule, act, g0, eta, n, rho, samples, seed):
    """Two-layer network: propagate antithetic particle pairs forward in time, exact in Delta."""
    Q = Kx.shape[0]
    phi, dphi = _phi(act)
    gen = torch.Generator().manual_seed(int(seed))
    half = samples // 2
    Kt = torch.as_tensor(Kx, dtype=torch.float64)
    evals, evecs = torch.linalg.eigh(0.5 * (Kt + Kt.T))
    sqrtK = evecs * evals.clamp(min=0).sqrt()
    h_half = torch.randn(half, Q, generator=gen, dtype=torch.float64) @ sqrtK.T
    w_half = torch.randn(half, generator=gen, dtype=torch.float64)
    xi_half = torch.randn(half, generator=gen, dtype=torch.float64)
    h = torch.cat([h_half, h_half])
    w = torch.cat([w_half, -w_half])
    xi = torch.cat([xi_half, -xi_half])
    if rule == "fa":
        fb = rho * w + math.sqrt(max(0.0, 1 - rho * rho)) * xi
    else:
        fb = xi  # dfa (independent feedback); unused for gd / hebb
    S = h.shape[0]
    a = eta * g0 / P
    ytr_t = torch.as_tensor(ytr, dtype=torch.float64)
    f = torch.zeros(n, Q, dtype=torch.float64)
    Phi = torch.zeros(n, 1, Q, Q, dtype=torch.float64)
    Gx = torch.zeros(n, 1, Q, Q, dtype=torch.float64)
    stderr = 0.0
    for t in range(n):
        ph, dp = phi(h), dphi(h)
        contrib = w[:, None] * ph / g0  # per-particle contribution to f
        f[t] = contrib.mean(0)
        pair = 0.5 * (contrib[:half] + contrib[half:])
        stderr = max(stderr, float((pair.std(0) / math.sqrt(half)).max()))
        g = dp * w[:, None]
        if rule == "gd":
            gt = g
        elif rule == "hebb":
            gt = ph
        else:
            gt = dp * fb[:, None]
        Phi[t, 0] = ph.T @ ph / S
        Gx[t, 0] = g.T @ gt / S
        if t == n - 1:
            break
        delta = ytr_t - f[t, :P]
        h = h + a * (gt[:, :P] * delta[None, :]) @ Kt[:P, :]
        w = w + a * (ph[:, :P] @ delta)
    return f.numpy(), Phi.numpy(), Gx.numpy(), stderr


# --------------------------------------------------------------------------- two-layer GLN
def _gate_patterns(X_all, samples, seed):
    gen = torch.Generator().manual_seed(int(seed))
    D = X_all.shape[1]
    V = torch.randn(samples, D, generator=gen, dtype=torch.float64)
    pats = (V @ torch.as_tensor(X_all, dtype=torch.float64).T > 0).to(torch.float64)
    uniq, counts = torch.unique(pats, dim=0, return_counts=True)
    return uniq, counts.to(torch.float64) / samples


def _gln_two_layer(Kx, X_all, ytr, P, g0, eta, n, samples, seed):
    Q = Kx.shape[0]
    s, p = _gate_patterns(X_all, samples, seed)  # (K, Q), (K,)
    K = s.shape[0]
    a = eta * g0 / P
    Kt = torch.as_tensor(Kx, dtype=torch.float64)
    Sig = torch.zeros(K, Q + 1, Q + 1, dtype=torch.float64)
    Sig[:, :Q, :Q] = Kt
    Sig[:, Q, Q] = 1.0
    ytr_t = torch.as_tensor(ytr, dtype=torch.float64)
    f = torch.zeros(n, Q, dtype=torch.float64)
    Phi = torch.zeros(n, 1, Q, Q, dtype=torch.float64)
    Gx = torch.zeros(n, 1, Q, Q, dtype=torch.float64)
    ss = s[:, :, None] * s[:, None, :]
    eyeQ = torch.eye(Q + 1, dtype=torch.float64)
    for t in range(n):
        hw = Sig[:, :Q, Q]
        f[t] = (p[:, None] * s * hw).sum(0) / g0
        Phi[t, 0] = (p[:, None, None] * ss * Sig[:, :Q, :Q]).sum(0)
        Gx[t, 0] = (p[:, None, None] * ss * Sig[:, Q, Q][:, None, None]).sum(0)
        if t == n - 1:
            break
        delta = ytr_t - f[t, :P]
        ds = s[:, :P] * delta[None, :]  # (K, P)
        Mt = eyeQ.expand(K, Q + 1, Q + 1).clone()
        Mt[:, :Q, Q] = a * ds @ Kt[:P, :]  # h += a w Kx[:, train] (Delta * s)
        Mt[:, Q, :P] = a * ds  # w += a (Delta * s) . h_train
        Sig = Mt @ Sig @ Mt.transpose(1, 2)
    return f.numpy(), Phi.numpy(), Gx.numpy(), K


# --------------------------------------------------------------------------- public API
def learning_rule_dynamics(
    X,
    y,
    *,
    rule: str,
    depth: int = 1,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "linear",
    rho: float = 0.0,
    X_test=None,
    y_test=None,
    samples: int = 100_000,
    seed: int = 0,
) -> LearningRuleResult:
    """Infinite-width prediction and effective-kernel dynamics for one learning rule.

    Solves the equations listed in the module docstring ("The Influence of Learning Rule on
    Representation Dynamics in Wide Neural Networks", Bordelon & Pehlevan) for the network of
    :func:`lmech.sim.learning_rules.train_learning_rule`, in exact discrete time.

    Parameters
    ----------
    X, y : arrays, shapes (P, D), (P,)
    rule : {"gd", "fa", "dfa", "hebb", "gln"}
    depth : int
        Hidden layers. ``depth > 1`` needs ``activation="linear"`` (and is not available for
        ``"gln"``); nonlinear activations are solved for two-layer networks.
    gamma0 : float
        Richness (> 0); the lazy limit is :func:`lazy_effective_kernel`.
    lr : float
        Learning rate (> 0), as in the simulator.
    steps : int
        Number of GD steps (results at ``t = 0..steps``).
    activation : {"linear", "tanh", "relu", "erf"}
        Ignored for ``"gln"``.
    rho : float in [-1, 1]
        FA feedback correlation (ignored by the other rules).
    X_test, y_test : optional held-out points.
    samples : int
        Particles (two-layer nonlinear) or gate draws (GLN); unused by the closed forms.
    seed : int
        Seed of those Monte-Carlo draws.

    Returns
    -------
    LearningRuleResult
        ``status`` is ``"closed_form"`` (exact time stepping of the limiting equations, no
        tolerance) or ``"diverged"``; ``iterations`` counts time points. ``residual``:
        Monte-Carlo standard error of ``f`` (max over points and times) for the particle
        method, 0 for the closed forms (exact, no sampling), NaN for the gate mixture (its
        sampling error is not estimated).

    Notes
    -----
    Memory/time: closed-form FA/DFA O(T^2 L^2 M); Hebb O(L (TM)^2) memory, O(L T^3 M^3) time;
    particles O(samples M) memory, O(T samples M P) time; GLN O(K T M^3).
    """
    Xa, ya, Xt, yt, Kx = _check_data(X, y, X_test, y_test)
    check_choice(rule, "rule", RULES)
    L = check_int(depth, "depth", lo=1, hi=1000)
    g0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    T = check_int(steps, "steps", lo=1, hi=10**5)
    if rule != "gln":
        check_choice(activation, "activation", _ACTS)
    rho_v = check_real(rho, "rho", lo=-1.0, hi=1.0)
    n_samp = check_int(samples, "samples", lo=2, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0, hi=2**63 - 1)
    P = Xa.shape[0]
    n = T + 1
    X_all = Xa if Xt is None else np.concatenate([Xa, Xt], axis=0)
    linear = rule != "gln" and activation == "linear"
    if L > 1 and not linear:
        fail("depth", "1 for nonlinear activations and for 'gln' (deep solvers are linear only)", depth)

    residual = 0.0
    extras: dict = {}
    if rule == "gd" and linear:
        res = deep_linear(Xa, ya, depth=L, gamma0=g0, lr=eta, steps=T, X_test=Xt, check=False)
        f = np.concatenate([res.f_train, res.f_test], 1) if Xt is not None else res.f_train
        Phi, Gx, method = res.feature_kernels, res.gradient_kernels, "closed-form"
        if res.diverged:
            fail("lr", "small enough for the infinite-width dynamics to stay finite", lr)
    elif rule in ("fa", "dfa") and linear:
        f, Phi, gx = _fa_linear(Kx, ya, P, L, g0, eta, n, rho_v if rule == "fa" else 0.0)
        Gx = np.broadcast_to(gx[:, :, None, None], Phi.shape).copy()
        method = "closed-form"
    elif rule == "hebb" and linear:
        f, Phi, Gx = _hebb_linear(Kx, ya, P, L, g0, eta, n)
        method = "closed-form"
    elif rule == "gln":
        f, Phi, Gx, n_pat = _gln_two_layer(Kx, X_all, ya, P, g0, eta, n, n_samp, seed)
        method = "gate-mixture"
        residual = float("nan")  # Monte-Carlo over gate draws; its error is not estimated
        extras["gate_patterns"] = int(n_pat)
    else:
        f, Phi, Gx, residual = _particles(Kx, ya, P, rule, activation, g0, eta, n, rho_v, n_samp, seed)
        method = "particles"
    f = np.asarray(f, dtype=float)
    with np.errstate(all="ignore"):
        loss = _loss(f[:, :P], ya)
        bad = ~np.isfinite(f).all(axis=1) | ~np.isfinite(loss) | (loss > 1e8 * max(loss[0], 1e-300))
        bad |= ~np.isfinite(np.asarray(Phi)).reshape(n, -1).all(axis=1)
    diverged = bool(bad.any())
    if diverged:
        n = int(np.argmax(bad))
        if n == 0:
            fail("lr", "small enough for the infinite-width dynamics to stay finite", lr)
        f, Phi, Gx = f[:n], np.asarray(Phi)[:n], np.asarray(Gx)[:n]
        warn_not_converged(
            "learning_rule_dynamics", f"infinite-width {rule} dynamics diverged after step {n - 1}"
        )
    prev = np.broadcast_to(Kx, (n,) + Kx.shape)
    Keff = np.zeros((n,) + Kx.shape)
    for l in range(L):
        Keff += Gx[:, l] * prev
        prev = Phi[:, l]
    Keff += prev
    f_train = f[:, :P]
    f_test = f[:, P:] if Xt is not None else None
    steps_arr = np.arange(n)
    return LearningRuleResult(
        converged=not diverged,
        status="diverged" if diverged else "closed_form",  # exact time stepping, no tolerance
        iterations=n,
        residual=float(residual),
        message=(f"diverged after step {n - 1}" if diverged else f"{method} solution")
        + (" (Monte-Carlo error in residual)" if method == "particles" else ""),
        extras=extras,
        steps=steps_arr,
        times=eta * steps_arr.astype(np.float64),
        f_train=f_train,
        f_test=f_test,
        train_loss=_loss(f_train, ya),
        test_loss=None if yt is None or f_test is None else _loss(f_test, yt),
        effective_ntk=Keff,
        feature_kernels=np.asarray(Phi),
        cross_kernels=np.asarray(Gx),
        rule=rule,
        rho=rho_v,
        depth=L,
        gamma0=g0,
        lr=eta,
        activation="gated-linear" if rule == "gln" else activation,
        method=method,
        diverged=diverged,
    )


# --------------------------------------------------------------------------- lazy limit
def lazy_effective_kernel(
    input_kernel,
    *,
    rule: str,
    depth: int = 1,
    activation: str = "linear",
    rho: float = 0.0,
    n_quad: int = 64,
) -> np.ndarray:
    """Static effective NTK of a learning rule in the lazy limit ``gamma0 -> 0``.

    With the NNGP recursion ``Phi^l = E[phi(u) phi(v)]``, ``Gdot^l = E[phi'(u) phi'(v)]``
    (``(u, v)`` Gaussian with covariance ``Phi^{l-1}``, ``Phi^0 = input_kernel``) and the GD
    gradient kernels ``G^L = Gdot^L``, ``G^l = Gdot^l * G^{l+1}``:

    * GD:  ``K = Phi^L + sum_l G^l * Phi^{l-1}`` (the NTK in mean-field units);
    * FA:  ``K = Phi^L + sum_l rho^{L-l+1} G^l * Phi^{l-1}``;
    * DFA, Hebb: ``K = Phi^L`` (only the readout contributes at initialization);
    * GLN: ``K = (L+1) q^L * input_kernel``, ``q = (pi - theta)/(2 pi)``, ``theta`` the angle
      between inputs (gate overlap of ``1[v.x > 0]``), ``activation`` ignored.

    Parameters
    ----------
    input_kernel : array, shape (M, M)
        ``X X^T / D`` (symmetric PSD).
    rule, depth, activation, rho :
        As in :func:`learning_rule_dynamics`; any depth and activation here.
    n_quad : int
        Gauss-Hermite nodes per dimension for ``tanh``.

    Returns
    -------
    ndarray, shape (M, M)
    """
    Kx = check_array(input_kernel, "input_kernel", ndim=2, min_size=1)
    if Kx.shape[0] != Kx.shape[1]:
        fail("input_kernel", "a square matrix", Kx)
    if not np.allclose(Kx, Kx.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(Kx).max()))):
        fail("input_kernel", "symmetric", Kx)
    check_choice(rule, "rule", RULES)
    L = check_int(depth, "depth", lo=1, hi=1000)
    if rule != "gln":
        check_choice(activation, "activation", _ACTS)
    rho_v = check_real(rho, "rho", lo=-1.0, hi=1.0)
    n_quad = check_int(n_quad, "n_quad", lo=4, hi=MAX_SIZE)
    if rule == "gln":
        d = np.sqrt(np.clip(np.diag(Kx), 0, None))
        denom = np.outer(d, d)
        r = np.clip(np.where(denom > 0, Kx / np.where(denom > 0, denom, 1.0), 0.0), -1.0, 1.0)
        q = (np.pi - np.arccos(r)) / (2 * np.pi)
        return (L + 1) * q**L * Kx
    Phis, dots = [Kx], []
    for _ in range(L):
        prev = Phis[-1]
        nxt, dd = gaussian_kernels(activation, prev, nodes=n_quad)
        Phis.append(0.5 * (nxt + nxt.T))
        dots.append(0.5 * (dd + dd.T))
    K = Phis[L].copy()
    if rule in ("dfa", "hebb"):
        return K
    G = np.ones_like(Kx)
    for l in range(L, 0, -1):
        G = dots[l - 1] * G
        weight = 1.0 if rule == "gd" else rho_v ** (L - l + 1)
        K = K + weight * G * Phis[l - 1]
    return K


def kernel_alignment(kernel, y) -> float:
    """Centered kernel-target alignment ``y^T Kc y / (||Kc||_F ||y||^2)``, ``Kc = H K H``.

    Parameters
    ----------
    kernel : array, shape (P, P)
        A kernel on the training points (symmetrised first).
    y : array, shape (P,)
    """
    K = check_array(kernel, "kernel", max_abs=MAX_MAGNITUDE, ndim=2, min_size=1)
    if K.shape[0] != K.shape[1]:
        fail("kernel", "a square matrix", K)
    yv = check_array(y, "y", max_abs=MAX_MAGNITUDE, ndim=1)
    if yv.shape[0] != K.shape[0]:
        fail("y", f"of length {K.shape[0]} (kernel size)", yv)
    return float(centered_alignment_unchecked(0.5 * (K + K.T), yv, 0.0))
