"""Monte Carlo (sampling) DMFT of nonlinear mean-field networks: two-layer and deep.

Implements the infinite-width, feature-learning dynamical mean field theory of
"Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks"
(Bordelon & Pehlevan) for the network of :mod:`lmech.sim.mean_field`::

    h^1 = W^0 x / sqrt(D),  h^{l+1} = W^l phi(h^l) / sqrt(N),  f = w . phi(h^L) / (gamma0 N),

trained on the loss ``(1/2P) sum_mu (y_mu - f_mu)^2`` by full-batch gradient descent with
the raw step ``lr * gamma0^2 * N`` on every parameter, in the limit N -> infinity at fixed
``gamma0``, ``lr`` and number of steps.

Order parameters (layer ``l = 1..L``; times ``t, s = 0..T``; points ``mu, nu`` = training
points followed by test points, which carry no loss weight):

* ``Phi^l(t,s) = <phi(h^l(t)) phi(h^l(s))>``, ``G^l(t,s) = <g^l(t) g^l(s)>`` with
  ``Phi^0 = X X^T / D`` and ``G^{L+1} = 1``;
* responses ``A^l(t,s) = <d phi(h^l(t)) / d r^l(s)>`` (strictly causal) and
  ``B^l(t,s) = <d g^l(t) / d u^l(s)>`` (causal, equal time included), ``A^0 = B^{L+1} = 0``;
* the training residual ``Delta(t) = y - f(t)``.

Single-site process of layer ``l`` given the order parameters, solved forward in time::

    h(t) = u(t) + sum_{s<t} [A^{l-1}(t,s) + c Phi^{l-1}(t,s) Delta(s)] g(s)
    z(t) = r(t) + sum_{s<=t} B^{l+1}(t,s) phi(h(s)) + sum_{s<t} c G^{l+1}(t,s) Delta(s) phi(h(s))
    g(t) = phi'(h(t)) z(t),        c = lr * gamma0 / P,

with Gaussian sources ``u ~ GP(0, Phi^{l-1})`` (``u^1`` constant in time) and
``r ~ GP(0, G^{l+1})`` (``r^L = w(0) ~ N(0, 1)`` constant in time), the kernel-Delta products
taken over training points only. The closure of the residual is one of

* ``dynamics="gd"`` (default): exact discrete-time gradient descent at learning rate ``lr``.
  The network output is the neuron average ``f(t) = <z^L(t) phi(h^L(t))> / gamma0``, so the
  exact function increment is ``<psi(t+1) - psi(t)>`` with ``psi = z^L phi(h^L) / gamma0``
  (minus the control variate ``w(0) phi(u^L(t)) / gamma0``, of mean exactly zero). Used
  open-loop this estimate accumulates Monte Carlo noise without damping, so the solver
  closes the loop as ``Delta(t+1) = Delta(t) - (lr/P) K(t) Delta(t) - rho(t)`` with the NTK
  ``K(t) = Phi^L(t,t) + sum_l G^l(t,t) Phi^{l-1}(t,t)`` and the remainder
  ``rho(t) = <psi(t+1) - psi(t)> - (lr/P) K(t) Delta(t)`` (O(lr^2 gamma0), estimated from the
  same samples, damped like the other order parameters). At the fixed point this is exact
  GD. In deep networks ``rho`` also absorbs the Monte Carlo noise of the responses at first
  order, so keep ``response_samples`` comparable to ``samples`` when gamma0 << 1, or use
  ``"flow"`` there (its Euler error vanishes with gamma0).
* ``dynamics="flow"``: gradient flow (time ``lr * t``) discretised by forward Euler with step
  ``lr``: the same recursion with ``rho = 0``; first order in ``lr``.

Both give the same limit as ``lr -> 0``; they differ at O(lr^2 gamma0) per step. For
``gamma0 < 1e-6`` the kernel closure is used (exact for a static kernel).

Algorithm (damped alternating fixed point): start from the static (lazy) kernels of the
t = 0 recursion; each sweep draws fresh sources, solves every layer's process for the
current order parameters, re-estimates them by sample averages and mixes
``X <- (1 - damping) X + damping X_new``. Response functions are computed *pathwise*: the
exact derivative of each sampled trajectory with respect to its own source (forward-mode
tangents of the linearised recursion, propagated in chunks of source directions over
``response_samples`` trajectories), then averaged -- not by Gaussian integration by parts,
whose pseudo-inverse of the near-singular (t, s) covariances is measurably worse than
omitting the responses altogether. Where the plain iteration would diverge (depth >= 2 or
large gamma0) the window of times is grown by ``continuation`` steps at a time, each new
window starting from the converged shorter one (kernels edge-replicated, responses
zero-padded). With fresh samples each sweep the sweep-to-sweep change cannot fall below the
Monte Carlo floor; the floor is estimated every sweep from two independent halves of the
samples, the iteration is declared converged once the change is below ``tol`` or within
``noise_factor`` times that floor, and the reported order parameters are the average of
``average`` further sweeps' estimates.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmech._validation import (
    MAX_SIZE,
    check_choice, check_int, check_real, check_regression_data, fail,
)
from lmech.nonlinearities import NONLINEARITIES
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.dmft.particles import two_layer_particles

__all__ = ["SamplingDMFTResult", "two_layer", "deep", "DMFT_ACTIVATIONS"]

# gamma0 below which the fields are frozen to ~1e-6 relative and the "gd" closure (which
# divides a field difference by gamma0) is replaced by the kernel closure, exact for a
# static kernel.
_LAZY_GAMMA0 = 1e-6
_WINDOW_AVG = 3  # sweeps averaged in the convergence test (the floor estimate is noisy)


#: name -> (phi, phi', phi'', smooth), from :data:`lmech.nonlinearities.NONLINEARITIES`. Pathwise
#: responses need phi'' (deep nets only); ReLU's phi'' is a Dirac delta that a pathwise derivative
#: cannot see.
DMFT_ACTIVATIONS = {name: (nl.phi, nl.dphi, nl.ddphi, nl.smooth) for name, nl in NONLINEARITIES.items()}


@dataclass(frozen=True, kw_only=True)
class SamplingDMFTResult(SolverResult):
    """Infinite-width training dynamics of a mean-field network (sampling DMFT).

    Shapes: ``T1 = steps + 1`` time points, ``P`` training and ``P'`` test points,
    ``M = P + P'`` (training points first), ``L = depth``.

    Attributes
    ----------
    steps : ndarray (T1,)
        GD step index ``0..steps``.
    times : ndarray (T1,)
        ``lr * steps``.
    train_loss, test_loss : ndarray (T1,)
        ``(1/2P) sum (y - f)^2`` and its test-set analogue (None without a test set).
    f_train, f_test : ndarray (T1, P), (T1, P')
        Mean predictions (``f(0) = 0`` at infinite width).
    residuals : ndarray (T1, P)
        ``Delta(t) = y - f(t)``.
    ntk : ndarray (T1, M, M)
        Equal-time NTK ``Phi^L + sum_l G^l Phi^{l-1}``.
    feature_kernels, gradient_kernels : ndarray (T1, L, M, M)
        Equal-time ``Phi^l(t,t)`` and ``G^l(t,t)``, l = 1..L at index l-1 (the layout of
        :class:`lmech.sim.mean_field.MeanFieldRun` without its seed axis).
    two_time : dict or None
        Deep solver only: ``"Phi"``, ``"G"`` (two-time kernels) and the pathwise responses
        ``"A"``, ``"B"``, each of shape (L, T1, M, T1, M) (the layout of
        :func:`lmech.theory.dmft.deep_linear.deep_linear`); responses to sources at test
        points vanish, and ``A[L-1]``, ``B[0]`` are unused and zero.
    mc_error : float
        Estimated relative Monte Carlo standard error of the averaged training residual
        trajectory (from the spread of the final ``average`` sweeps).
    train_loss_stderr, test_loss_stderr, f_train_stderr, f_test_stderr, ntk_stderr,
    feature_kernels_stderr, gradient_kernels_stderr : ndarray or None
        Monte Carlo standard errors of the fields of the same name (same shapes), from batch
        means: the final averaging draws ``2 * average`` independent half-sample estimates at the
        fixed point; each is closed into its own residual, losses and kernels, and their spread
        divided by ``sqrt(2 * average)`` is the error of the averaged result. This counts the
        sampling noise of the final estimates, not the noise left in the fixed point they are
        evaluated at: for :func:`two_layer` the seed spread measured 0.68-1.02 times this
        (slightly conservative). None after a divergence, and for :func:`deep`, where the
        fixed-point noise (carried through the response functions) dominates and this estimate
        measured 1.4-4x below the seed spread.
    diverged : bool
        True when the predicted dynamics blew up (loss grew past 1e8 times its initial
        value or became non-finite); arrays then hold the last finite iterate.
    """

    steps: np.ndarray
    times: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    f_train: np.ndarray
    f_test: np.ndarray | None
    residuals: np.ndarray
    ntk: np.ndarray
    feature_kernels: np.ndarray
    gradient_kernels: np.ndarray
    two_time: dict | None = None
    gamma0: float
    lr: float
    depth: int
    activation: str
    dynamics: str
    samples: int
    mc_error: float
    diverged: bool = False
    train_loss_stderr: np.ndarray | None = None
    test_loss_stderr: np.ndarray | None = None
    f_train_stderr: np.ndarray | None = None
    f_test_stderr: np.ndarray | None = None
    ntk_stderr: np.ndarray | None = None
    feature_kernels_stderr: np.ndarray | None = None
    gradient_kernels_stderr: np.ndarray | None = None


# ----------------------------------------------------------------------------- helpers
def _psd_sqrt(C: torch.Tensor) -> torch.Tensor:
    """Factor R with R R^T = C for a symmetric PSD C (negative eigenvalues clipped; no
    Cholesky: the (t, s) covariances are singular)."""
    C = 0.5 * (C + C.T)
    evals, evecs = torch.linalg.eigh(C)
    return evecs * evals.clamp(min=0.0).sqrt()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    nb = float(torch.linalg.vector_norm(b))
    return float(torch.linalg.vector_norm(a - b)) / max(nb, 1e-300)


def _residual_recursion(K: torch.Tensor, rho: torch.Tensor | None, y: torch.Tensor, lr: float, P: int):
    """Delta(t+1) = Delta(t) - (lr/P) K_tr,tr(t) Delta(t) - rho_tr(t), and the test predictions
    f_te(t+1) = f_te(t) + (lr/P) K_te,tr(t) Delta(t) + rho_te(t).

    K: (T1, M, M) equal-time NTK; rho: (T1, M) higher-order (in lr) part of the function
    increment of discrete GD, or None (Euler discretisation of gradient flow).
    """
    T1 = K.shape[0]
    delta = torch.empty(T1, P, dtype=K.dtype)
    ftest = torch.zeros(T1, K.shape[1] - P, dtype=K.dtype)
    delta[0] = y
    for t in range(T1 - 1):
        step = (lr / P) * (K[t, :, :P] @ delta[t])
        if rho is not None:
            step = step + rho[t]
        delta[t + 1] = delta[t] - step[:P]
        ftest[t + 1] = ftest[t] + step[P:]
    return delta, ftest


def _gd_remainder(psi: torch.Tensor, K: torch.Tensor, delta: torch.Tensor, lr: float, P: int) -> torch.Tensor:
    """rho(t) = <psi(t+1) - psi(t)> - (lr/P) K(t) Delta(t): the part of the exact GD function
    increment beyond the kernel (first-order) term. psi: (T1, M) sample mean of
    z^L phi(h^L) / gamma0 (control-variated); returns (T1, M) with a zero last row."""
    rho = torch.zeros_like(psi)
    rho[:-1] = (psi[1:] - psi[:-1]) - (lr / P) * torch.einsum("tmp,tp->tm", K[:-1, :, :P], delta[:-1])
    return rho


@dataclass
class _Problem:
    """Validated inputs shared by the solvers (torch float64 tensors)."""

    Kx: torch.Tensor  # (M, M)
    y: torch.Tensor  # (P,)
    y_test: torch.Tensor | None
    P: int
    M: int
    depth: int
    gamma0: float
    lr: float
    steps: int
    activation: str
    dynamics: str
    phi: Callable[[torch.Tensor], torch.Tensor]
    dphi: Callable[[torch.Tensor], torch.Tensor]
    ddphi: Callable[[torch.Tensor], torch.Tensor]


def _validate(X, y, X_test, y_test, *, depth, gamma0, lr, steps, activation, dynamics, samples,
              damping, tol, max_sweeps, average, noise_factor, seed) -> _Problem:
    Xa, ya, Xt, yt = check_regression_data(X, y, X_test, y_test, test_labels_required=True)
    P, D = Xa.shape
    Xall = Xa if Xt is None else np.concatenate([Xa, Xt])
    L = check_int(depth, "depth", lo=1, hi=1000)
    g0 = check_real(gamma0, "gamma0", lo=0.0)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    T = check_int(steps, "steps", lo=1, hi=10**5)
    check_choice(activation, "activation", DMFT_ACTIVATIONS)
    check_choice(dynamics, "dynamics", ("gd", "flow"))
    check_int(samples, "samples", lo=16, hi=MAX_SIZE)
    check_real(damping, "damping", lo=0.0, hi=1.0, lo_closed=False)
    check_real(tol, "tol", lo=0.0)
    check_int(max_sweeps, "max_sweeps", lo=1)
    check_int(average, "average", lo=1)
    check_real(noise_factor, "noise_factor", lo=0.0)
    check_int(seed, "seed", lo=0, hi=2**63 - 1)
    phi, dphi, ddphi, _ = DMFT_ACTIVATIONS[activation]
    Kx = torch.as_tensor(Xall @ Xall.T / D, dtype=torch.float64)
    return _Problem(
        Kx=Kx, y=torch.as_tensor(ya), y_test=None if yt is None else torch.as_tensor(yt), P=P,
        M=Xall.shape[0], depth=L, gamma0=g0, lr=eta, steps=T, activation=activation,
        dynamics=dynamics if g0 >= _LAZY_GAMMA0 else "flow", phi=phi, dphi=dphi, ddphi=ddphi,
    )


def _edge_index(n: int, T1: int) -> torch.Tensor:
    return torch.clamp(torch.arange(T1), max=n - 1)


# ----------------------------------------------------------------------------- two-layer
class _TwoLayer:
    """L = 1: given Delta, each sampled neuron follows a deterministic recursion and only the
    equal-time kernels enter the NTK. Order parameters: the equal-time NTK ``ntk`` (T1, M, M)
    and, for discrete GD, the remainder ``rho`` (T1, M); ``Phi``/``G`` are diagnostics.
    Cost per sweep O(S T1 M (M + P))."""

    def __init__(self, pb: _Problem, samples: int, gen: torch.Generator):
        self.pb, self.S, self.gen = pb, samples, gen
        self.sqKx = _psd_sqrt(pb.Kx)

    def keys(self):
        return ("ntk", "Phi", "G") + (("rho",) if self.pb.dynamics == "gd" else ())

    def monitor(self):
        return ("ntk", "delta")

    def closure(self, st: dict) -> dict:
        st = dict(st)
        st["delta"], st["ftest"] = _residual_recursion(st["ntk"], st.get("rho"), self.pb.y, self.pb.lr, self.pb.P)
        return st

    def initial_state(self, T1: int) -> dict:
        pb = self.pb
        h = torch.randn(self.S, pb.M, generator=self.gen, dtype=torch.float64) @ self.sqKx.T
        ph, dp = pb.phi(h), pb.dphi(h)
        Phi = (ph.T @ ph / self.S).expand(T1, pb.M, pb.M).clone()
        G = (dp.T @ dp / self.S).expand(T1, pb.M, pb.M).clone()
        st = {"ntk": Phi + G * pb.Kx, "Phi": Phi, "G": G}
        if pb.dynamics == "gd":
            st["rho"] = torch.zeros(T1, pb.M, dtype=torch.float64)
        return self.closure(st)

    def extend(self, st: dict, T1: int) -> dict:
        n = st["ntk"].shape[0]
        idx = _edge_index(n, T1)
        new = {k: st[k][idx].clone() for k in ("ntk", "Phi", "G")}
        if "rho" in st:
            new["rho"] = torch.zeros(T1, self.pb.M, dtype=torch.float64)
            new["rho"][: n - 1] = st["rho"][: n - 1]
        return self.closure(new)

    def sweep(self, st: dict):
        """S fresh neurons driven by the residual in ``st``; new estimates from each half of
        the samples (their difference gives the Monte Carlo floor)."""
        pb, S = self.pb, self.S
        delta = st["delta"]
        T1 = delta.shape[0]
        P, M, g0 = pb.P, pb.M, pb.gamma0
        c = pb.lr * g0 / P
        gd = pb.dynamics == "gd"
        h0 = torch.randn(S, M, generator=self.gen, dtype=torch.float64) @ self.sqKx.T
        w0 = torch.randn(S, generator=self.gen, dtype=torch.float64)
        Kc = c * pb.Kx[:, :P]  # (M, P)
        half = S // 2
        halves = (slice(0, half), slice(half, S))
        ph0 = pb.phi(h0)
        h, zeta = h0, torch.zeros(S, dtype=torch.float64)  # readout z = w0 + c * zeta
        Phi = [torch.empty(T1, M, M, dtype=torch.float64) for _ in halves]
        G = [torch.empty(T1, M, M, dtype=torch.float64) for _ in halves]
        psi = [torch.empty(T1, M, dtype=torch.float64) for _ in halves]
        for t in range(T1):
            ph, dp = pb.phi(h), pb.dphi(h)
            z = w0 + c * zeta
            g = dp * z[:, None]
            if gd:  # z phi(h) / gamma0 minus its t = 0 value (mean zero: control variate)
                ps = w0[:, None] * (ph - ph0) / g0 + (pb.lr / P) * zeta[:, None] * ph
            for i, sl in enumerate(halves):
                n = sl.stop - sl.start
                Phi[i][t] = ph[sl].T @ ph[sl] / n
                G[i][t] = g[sl].T @ g[sl] / n
                if gd:
                    psi[i][t] = ps[sl].mean(0)
            if t < T1 - 1:
                zeta = zeta + ph[:, :P] @ delta[t]
                h = h + (g[:, :P] * delta[t]) @ Kc.T
        ests = []
        for i in range(2):
            K = Phi[i] + G[i] * pb.Kx
            est = {"Phi": Phi[i], "G": G[i], "ntk": K}
            if gd:
                est["rho"] = _gd_remainder(psi[i], K, delta, pb.lr, P)
            ests.append(est)
        return ests

    def result_kernels(self, st: dict):
        return st["ntk"], st["Phi"][:, None], st["G"][:, None]


# ----------------------------------------------------------------------------- deep
class _Deep:
    """General L: two-time kernels ``Phi{l}``, ``G{l}`` as (T1 M, T1 M) matrices, pathwise
    responses ``A{l}`` (l < L) and ``B{l}`` (l > 1) as (T1, M, T1, P) (responses to sources at
    test points vanish), and for discrete GD the remainder ``rho`` (T1, M)."""

    def __init__(self, pb: _Problem, samples: int, response_samples: int, responses: bool,
                 jacobian_memory: float, gen: torch.Generator):
        self.pb, self.S, self.Sr, self.gen = pb, samples, min(response_samples, samples), gen
        self.responses = responses
        self.jac_floats = max(int(jacobian_memory / 8), 1)
        self.sqKx = _psd_sqrt(pb.Kx)

    # -- bookkeeping
    def keys(self):
        L = self.pb.depth
        ks = [f"Phi{l}" for l in range(1, L + 1)] + [f"G{l}" for l in range(1, L + 1)]
        ks += [f"A{l}" for l in range(1, L)] + [f"B{l}" for l in range(2, L + 1)]
        return tuple(ks + (["rho"] if self.pb.dynamics == "gd" else []))

    def monitor(self):
        L = self.pb.depth
        return tuple([f"Phi{l}" for l in range(1, L + 1)] + [f"G{l}" for l in range(1, L + 1)] + ["delta"])

    def ntk(self, st: dict) -> torch.Tensor:
        pb, L, M = self.pb, self.pb.depth, self.pb.M
        T1 = st["Phi1"].shape[0] // M
        idx = torch.arange(T1)

        def eq(C):
            return C.reshape(T1, M, T1, M)[idx, :, idx, :]

        K = eq(st[f"Phi{L}"]).clone()
        prev = pb.Kx.expand(T1, M, M)
        for l in range(1, L + 1):
            K = K + eq(st[f"G{l}"]) * prev
            prev = eq(st[f"Phi{l}"])
        return K

    def closure(self, st: dict) -> dict:
        st = dict(st)
        st["ntk"] = self.ntk(st)
        st["delta"], st["ftest"] = _residual_recursion(st["ntk"], st.get("rho"), self.pb.y, self.pb.lr, self.pb.P)
        return st

    @staticmethod
    def _static(C: torch.Tensor, T1: int) -> torch.Tensor:
        M = C.shape[0]
        return C.reshape(1, M, 1, M).expand(T1, M, T1, M).reshape(T1 * M, T1 * M).clone()

    def initial_state(self, T1: int) -> dict:
        """Static (lazy) ansatz: the t = 0 NNGP / gradient recursion by Monte Carlo."""
        pb, L, M = self.pb, self.pb.depth, self.pb.M
        S0 = max(self.S, 20000)
        cov = pb.Kx
        Phis, dps = [], []
        for _ in range(L):
            h = torch.randn(S0, M, generator=self.gen, dtype=torch.float64) @ _psd_sqrt(cov).T
            ph = pb.phi(h)
            cov = ph.T @ ph / S0
            Phis.append(cov)
            dps.append(pb.dphi(h))
        Gn = torch.ones(M, M, dtype=torch.float64)
        Gs: list[Any] = [None] * L
        for l in range(L - 1, -1, -1):
            Gn = Gn * (dps[l].T @ dps[l] / S0)
            Gs[l] = Gn
        st = {}
        for l in range(1, L + 1):
            st[f"Phi{l}"] = self._static(Phis[l - 1], T1)
            st[f"G{l}"] = self._static(Gs[l - 1], T1)
        for l in range(1, L):
            st[f"A{l}"] = torch.zeros(T1, M, T1, pb.P, dtype=torch.float64)
        for l in range(2, L + 1):
            st[f"B{l}"] = torch.zeros(T1, M, T1, pb.P, dtype=torch.float64)
        if pb.dynamics == "gd":
            st["rho"] = torch.zeros(T1, M, dtype=torch.float64)
        return self.closure(st)

    def extend(self, st: dict, T1: int) -> dict:
        """Grow the window: kernels edge-replicated, responses and rho zero-padded."""
        M, P = self.pb.M, self.pb.P
        n = st["Phi1"].shape[0] // M
        idx = _edge_index(n, T1)
        new = {}
        for k in self.keys():
            v = st[k]
            if k.startswith(("Phi", "G")):
                new[k] = v.reshape(n, M, n, M)[idx][:, :, idx].reshape(T1 * M, T1 * M).clone()
            elif k.startswith(("A", "B")):
                R = torch.zeros(T1, M, T1, P, dtype=torch.float64)
                R[:n, :, :n] = v
                new[k] = R
            else:  # rho
                R = torch.zeros(T1, M, dtype=torch.float64)
                R[: n - 1] = v[: n - 1]
                new[k] = R
        return self.closure(new)

    def result_kernels(self, st: dict):
        L, M = self.pb.depth, self.pb.M
        T1 = st["Phi1"].shape[0] // M
        idx = torch.arange(T1)
        Phi = torch.stack([st[f"Phi{l}"].reshape(T1, M, T1, M)[idx, :, idx, :] for l in range(1, L + 1)], 1)
        G = torch.stack([st[f"G{l}"].reshape(T1, M, T1, M)[idx, :, idx, :] for l in range(1, L + 1)], 1)
        return st["ntk"], Phi, G

    # -- single-site process of one layer
    def _memory_kernels(self, st: dict, l: int, T1: int):
        """Ch = A^{l-1} + c 1[s<t] Phi^{l-1} Delta and Dz = B^{l+1} + c 1[s<t] G^{l+1} Delta as
        (T1, M, T1, P); None for the first layer's Ch (c Kx Delta, time-independent kernel)
        and for the readout layer's Dz (c Delta, the same at every point)."""
        pb, L, M, P = self.pb, self.pb.depth, self.pb.M, self.pb.P
        c = pb.lr * pb.gamma0 / P
        mask = torch.tril(torch.ones(T1, T1, dtype=torch.float64), -1).reshape(T1, 1, T1, 1)
        dl = st["delta"].reshape(1, 1, T1, P)
        Ch = Dz = None
        if l > 1:
            Ch = c * mask * st[f"Phi{l - 1}"].reshape(T1, M, T1, M)[..., :P] * dl
            if self.responses:
                Ch = Ch + st[f"A{l - 1}"]
        if l < L:
            Dz = c * mask * st[f"G{l + 1}"].reshape(T1, M, T1, M)[..., :P] * dl
            if self.responses:
                Dz = Dz + st[f"B{l + 1}"]
        return Ch, Dz

    def _sources(self, st: dict, l: int, T1: int, S: int):
        """u^l ~ GP(0, Phi^{l-1}) (u^1 constant in time: (S, M)); r^l ~ GP(0, G^{l+1})
        (r^L = w(0), one scalar per sample: (S,))."""
        L, M = self.pb.depth, self.pb.M
        if l == 1:
            u = torch.randn(S, M, generator=self.gen, dtype=torch.float64) @ self.sqKx.T
        else:
            R = _psd_sqrt(st[f"Phi{l - 1}"])
            u = (torch.randn(S, T1 * M, generator=self.gen, dtype=torch.float64) @ R.T).reshape(S, T1, M)
        if l == L:
            r = torch.randn(S, generator=self.gen, dtype=torch.float64)
        else:
            R = _psd_sqrt(st[f"G{l + 1}"])
            r = (torch.randn(S, T1 * M, generator=self.gen, dtype=torch.float64) @ R.T).reshape(S, T1, M)
        return u, r

    def _forward(self, u, r, Ch, Dz, delta, T1):
        """Explicit forward-in-time solve: h(t) needs g(s < t); then phi(h(t)); then z(t)
        needs phi(s <= t); then g(t). Returns h (S, T1, M), z (S, T1, M) ((S, T1, 1) for the
        readout layer) and, for the readout layer, zeta (S, T1) with z = w0 + c zeta.

        Histories are kept as (S, T1 * P) matrices (time-major columns) so that the memory
        sums are matrix products over a column range, without copies."""
        pb, M, P = self.pb, self.pb.M, self.pb.P
        S = u.shape[0]
        c = pb.lr * pb.gamma0 / P
        H = torch.empty(S, T1, M, dtype=torch.float64)
        Z = torch.empty(S, T1, M if Dz is not None else 1, dtype=torch.float64)
        g_hist = torch.empty(S, T1 * P, dtype=torch.float64)
        ph_hist = torch.empty(S, T1 * P, dtype=torch.float64)
        Chf = None if Ch is None else Ch.reshape(T1, M, T1 * P)
        Dzf = None if Dz is None else Dz.reshape(T1, M, T1 * P)
        acc = torch.zeros(S, P, dtype=torch.float64)  # first layer: sum_{s<t} Delta(s) g(s)
        zeta = torch.zeros(S, dtype=torch.float64)  # readout: sum_{s<t} Delta(s) . phi(s)
        zeta_hist = torch.zeros(S, T1, dtype=torch.float64) if Dz is None else None
        Kc = c * pb.Kx[:, :P]
        for t in range(T1):
            if Ch is None:
                h = u + acc @ Kc.T
            elif t == 0:
                h = u[:, 0]
            else:
                h = u[:, t] + g_hist[:, : t * P] @ Chf[t, :, : t * P].T
            ph = pb.phi(h)
            ph_hist[:, t * P : (t + 1) * P] = ph[:, :P]
            if Dz is None:
                zeta_hist[:, t] = zeta
                z = (r + c * zeta)[:, None]
            else:
                z = r[:, t] + ph_hist[:, : (t + 1) * P] @ Dzf[t, :, : (t + 1) * P].T
            g = pb.dphi(h) * z
            H[:, t], Z[:, t] = h, z
            g_hist[:, t * P : (t + 1) * P] = g[:, :P]
            if t < T1 - 1:
                if Ch is None:
                    acc = acc + g[:, :P] * delta[t]
                if Dz is None:
                    zeta = zeta + ph[:, :P] @ delta[t]
        return H, Z, zeta_hist

    def _tangents(self, H, Z, Ch, Dz, delta, T1, which: str):
        """Pathwise responses: the sample mean of the exact derivative of each trajectory,
        d phi(h(t)) / d r(s) (which="A") or d g(t) / d u(s) (which="B"), for sources at
        training points: (T1, M, T1, P). Tangents of the linearised recursion

            dh(t) = du(t) + sum_{s<t} Ch(t,s) dg(s),   dz(t) = dr(t) + sum_{s<=t} Dz(t,s) phi'(h(s)) dh(s),
            dg(t) = phi''(h(t)) z(t) dh(t) + phi'(h(t)) dz(t),

        are propagated for chunks of source directions (s0, nu0) at a time, each chunk
        starting at its earliest source time (causality), so memory stays bounded."""
        pb, M, P = self.pb, self.pb.M, self.pb.P
        c = pb.lr * pb.gamma0 / P
        Sr = H.shape[0]
        d1 = pb.dphi(H)  # (Sr, T1, M)
        d2z = pb.ddphi(H) * Z  # (Sr, T1, M)
        Kc = c * pb.Kx[:, :P]
        Chf = None if Ch is None else Ch.reshape(T1, M, T1 * P)
        Dzf = None if Dz is None else Dz.reshape(T1, M, T1 * P)
        s_max = T1 - 1 if which == "A" else T1  # A is strictly causal: s0 = T1-1 never acts
        dirs = [(s, nu) for s in range(s_max) for nu in range(P)]
        out = torch.zeros(T1, M, T1, P, dtype=torch.float64)
        per_dir = Sr * (2 * T1 * P + 6 * M)
        chunk = max(1, min(len(dirs), self.jac_floats // max(per_dir, 1)))
        # histories (Sr * K, T1 * P); only columns from the chunk's first source time on are
        # ever written or read, so no zero fill is needed
        dg_buf = torch.empty(Sr * chunk * T1 * P, dtype=torch.float64)
        dph_buf = torch.empty(Sr * chunk * T1 * P, dtype=torch.float64)
        for start in range(0, len(dirs), chunk):
            block = dirs[start : start + chunk]
            K = len(block)
            s_idx = torch.tensor([d[0] for d in block])
            nu_idx = torch.tensor([d[1] for d in block])
            kk = torch.arange(K)
            t0 = int(s_idx.min())
            dg_hist = dg_buf[: Sr * K * T1 * P].view(Sr * K, T1 * P)
            dph_hist = dph_buf[: Sr * K * T1 * P].view(Sr * K, T1 * P)
            dacc = torch.zeros(Sr, K, P, dtype=torch.float64)
            dzeta = torch.zeros(Sr, K, dtype=torch.float64)
            for t in range(t0, T1):
                hit = s_idx == t
                if Chf is None:
                    dh = dacc @ Kc.T  # (Sr, K, M)
                elif t == t0:
                    dh = torch.zeros(Sr, K, M, dtype=torch.float64)
                else:
                    dh = (dg_hist[:, t0 * P : t * P] @ Chf[t, :, t0 * P : t * P].T).view(Sr, K, M)
                if which == "B" and bool(hit.any()):
                    dh[:, kk[hit], nu_idx[hit]] += 1.0
                dph = d1[:, t, None, :] * dh
                dph_hist[:, t * P : (t + 1) * P] = dph[..., :P].reshape(Sr * K, P)
                if Dzf is None:
                    dz = (c * dzeta)[..., None].expand(Sr, K, M)
                else:
                    dz = (dph_hist[:, t0 * P : (t + 1) * P] @ Dzf[t, :, t0 * P : (t + 1) * P].T).view(Sr, K, M)
                if which == "A" and bool(hit.any()):
                    dz = dz.clone()
                    dz[:, kk[hit], nu_idx[hit]] += 1.0
                dg = d2z[:, t, None, :] * dh + d1[:, t, None, :] * dz
                dg_hist[:, t * P : (t + 1) * P] = dg[..., :P].reshape(Sr * K, P)
                res = dph if which == "A" else dg
                out[t][:, s_idx, nu_idx] = res.mean(0).T  # (M, K)
                if t < T1 - 1:
                    if Ch is None:
                        dacc = dacc + dg[..., :P] * delta[t]
                    if Dz is None:
                        dzeta = dzeta + dph[..., :P] @ delta[t]
        causal = torch.tril(torch.ones(T1, T1, dtype=torch.float64), -1 if which == "A" else 0)
        return out * causal.reshape(T1, 1, T1, 1)

    def sweep(self, st: dict):
        pb, L, M, P, S = self.pb, self.pb.depth, self.pb.M, self.pb.P, self.S
        delta = st["delta"]
        T1 = delta.shape[0]
        half = S // 2
        halves = (slice(0, half), slice(half, S))
        ests: list[dict[str, Any]] = [{}, {}]
        for l in range(1, L + 1):
            Ch, Dz = self._memory_kernels(st, l, T1)
            u, r = self._sources(st, l, T1, S)
            H, Z, zeta = self._forward(u, r, Ch, Dz, delta, T1)
            ph = pb.phi(H)
            g = (pb.dphi(H) * Z).reshape(S, T1 * M)
            phf = ph.reshape(S, T1 * M)
            for i, sl in enumerate(halves):
                n = sl.stop - sl.start
                ests[i][f"Phi{l}"] = phf[sl].T @ phf[sl] / n
                ests[i][f"G{l}"] = g[sl].T @ g[sl] / n
            if l == L and pb.dynamics == "gd":
                # f(t) = <z^L(t) phi(h^L(t))> / gamma0 with z^L = w0 + c zeta; the control
                # variate w0 phi(u(t)) has mean zero exactly (w0 is independent of u) and
                # removes the O(1) per-sample noise of w0 phi(h(t)) / gamma0
                phu = pb.phi(u if u.dim() == 3 else u[:, None, :])
                psi = r[:, None, None] * (ph - phu) / pb.gamma0 + (pb.lr / P) * zeta[..., None] * ph
                for i, sl in enumerate(halves):
                    ests[i]["_psi"] = psi[sl].mean(0)
            for which, need in (("A", l < L), ("B", l > 1)):
                if not need:
                    continue
                if self.responses:
                    R = self._tangents(H[: self.Sr], Z[: self.Sr], Ch, Dz, delta, T1, which)
                else:
                    R = st[f"{which}{l}"]
                for i in range(2):
                    ests[i][f"{which}{l}"] = R
        if pb.dynamics == "gd":
            for e in ests:
                e["rho"] = _gd_remainder(e.pop("_psi"), self.ntk(e), delta, pb.lr, P)
        return ests


# ----------------------------------------------------------------------------- driver
def _mix(st: dict, new: dict, keys, beta: float) -> dict:
    return {k: (1.0 - beta) * st[k] + beta * new[k] for k in keys}


def _finite(st: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in st.values())


def _run(solver, pb: _Problem, *, damping, tol, max_sweeps, average, noise_factor, chunk,
         sweeps_per_window, progress, where):
    """Damped alternating fixed point, optional time continuation, final averaging.

    Returns (state, sweeps, residual, floor, converged, diverged, mc_error, history, blocks), with
    ``blocks`` the closed half-sample states of the final averaging (for standard errors)."""
    T1_full = pb.steps + 1
    beta = damping
    keys = solver.keys()
    # stationary sweep-to-sweep change of a damped iteration driven by noise of size sigma
    floor_scale = beta * math.sqrt(2.0 / (2.0 - beta))
    if chunk is None:
        windows = [T1_full]
    else:
        windows = list(range(min(chunk, pb.steps) + 1, T1_full, chunk)) + [T1_full]
    st = solver.initial_state(windows[0])
    total, history = 0, []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, desc=where, leave=False)
    y0 = float(torch.sum(pb.y**2))
    diverged = converged = False
    residual, floor = float("inf"), 0.0

    def blew_up(s):
        return not _finite(s) or float(torch.sum(s["delta"] ** 2)) > 1e8 * max(y0, 1e-300)

    monitor = solver.monitor()
    for wi, T1 in enumerate(windows):
        if wi > 0:
            st = solver.extend(st, T1)
        final = T1 == T1_full
        recent: list[Any] = []  # (changes, floors) per monitored key over the last sweeps of this window
        for _ in range(max_sweeps if final else sweeps_per_window):
            ests = solver.sweep(st)
            halves = [solver.closure({k: e[k] for k in keys}) for e in ests]
            new = solver.closure({k: 0.5 * (ests[0][k] + ests[1][k]) for k in keys})
            changes = np.array([beta * _rel(new[k], st[k]) for k in monitor])
            # Monte Carlo floor of the change: the half-sample difference / 2 is the noise of
            # the full-sample estimate; floor_scale turns it into the stationary change
            floors = np.array([floor_scale * 0.5 * _rel(halves[0][k], halves[1][k]) for k in monitor])
            st_next = solver.closure(_mix(st, new, keys, beta))
            total += 1
            if blew_up(st_next):
                diverged = True
                break
            st = st_next
            recent = (recent + [(changes, floors)])[-_WINDOW_AVG:]
            c_avg = np.mean([c for c, _ in recent], axis=0)
            f_avg = np.mean([f for _, f in recent], axis=0)
            residual, floor = float(c_avg.max()), float(f_avg.max())
            history.append(float(changes.max()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(window=T1, change=f"{residual:.2e}", floor=f"{floor:.1e}")
            # converged: every monitored change, averaged over the last sweeps, is below tol
            # or within noise_factor of its own Monte Carlo floor
            if len(recent) == _WINDOW_AVG and bool(np.all((c_avg <= tol) | (c_avg <= noise_factor * f_avg))):
                converged = final
                break
        if diverged:
            break
    mc = float("nan")
    blocks: list[dict] = []
    if not diverged:
        # average fresh estimates at the fixed point (reduces the Monte Carlo error)
        acc, deltas = None, []
        for _ in range(average):
            ests = solver.sweep(st)
            new = {k: 0.5 * (ests[0][k] + ests[1][k]) for k in keys}
            deltas.append(solver.closure(new)["delta"])
            blocks.extend(solver.closure({k: e[k] for k in keys}) for e in ests)
            acc = new if acc is None else {k: acc[k] + new[k] for k in keys}
            total += 1
            if bar is not None:
                bar.update(1)
        assert acc is not None  # average >= 1 (validated)
        st_avg = solver.closure({k: v / average for k, v in acc.items()})
        if blew_up(st_avg):
            diverged, converged = True, False
        else:
            st = st_avg
            if average > 1:
                D = torch.stack(deltas)
                mc = float(torch.linalg.vector_norm(D.std(0)) / math.sqrt(average)
                           / max(float(torch.linalg.vector_norm(st["delta"])), 1e-300))
    if bar is not None:
        bar.close()
    if diverged:
        blocks = []
    return st, total, residual, floor, converged, diverged, mc, history, blocks


def _block_stderr(pb: _Problem, solver, blocks: list[dict]) -> dict:
    """Batch-means standard errors of the reported fields from independent block states."""
    if len(blocks) < 2:
        return {}
    y = pb.y.numpy()
    cols: dict[str, list] = {k: [] for k in ("train_loss", "test_loss", "f_train", "f_test", "ntk",
                                             "feature_kernels", "gradient_kernels")}
    for b in blocks:
        delta = b["delta"].numpy()
        ntk, Phi, G = solver.result_kernels(b)
        cols["f_train"].append(y - delta)
        cols["train_loss"].append(0.5 * np.mean(delta**2, axis=-1))
        cols["ntk"].append(ntk.numpy())
        cols["feature_kernels"].append(Phi.numpy())
        cols["gradient_kernels"].append(G.numpy())
        if pb.y_test is not None:
            f_test = b["ftest"].numpy()
            cols["f_test"].append(f_test)
            cols["test_loss"].append(0.5 * np.mean((pb.y_test.numpy() - f_test) ** 2, axis=-1))
    n = len(blocks)
    return {f"{k}_stderr": np.std(v, axis=0, ddof=1) / math.sqrt(n) for k, v in cols.items() if v}


def _status(where, converged, diverged, residual, floor, tol, total):
    if diverged:
        msg = (f"the iteration diverged after {total} sweeps (non-finite or exploding residual); "
               "try a smaller continuation chunk, more damping or a smaller lr")
    elif converged:
        msg = (f"converged after {total} sweeps: change {residual:.2e} "
               f"(tol {tol:.1e}, Monte Carlo floor {floor:.1e})")
    else:
        msg = (f"not converged after {total} sweeps: change {residual:.2e} above tol {tol:.1e} "
               f"and the Monte Carlo floor {floor:.1e}; raise max_sweeps or lower damping")
    if not converged:
        warn_not_converged(where, msg)
    return msg


def _fields(pb: _Problem, delta: torch.Tensor, ftest: torch.Tensor | None, ntk, Phi, G) -> dict:
    """The reported arrays of one solution (numpy; ``Phi``/``G`` with the layer axis)."""
    d = delta.numpy()
    out = {"residuals": d, "train_loss": 0.5 * np.mean(d**2, axis=-1), "f_train": pb.y.numpy() - d,
           "ntk": ntk.numpy(), "feature_kernels": Phi.numpy(), "gradient_kernels": G.numpy()}
    if pb.y_test is not None and ftest is not None:
        f = ftest.numpy()
        out["f_test"] = f
        out["test_loss"] = 0.5 * np.mean((pb.y_test.numpy() - f) ** 2, axis=-1)
    return out


def _combine(pb: _Problem, reps: list[dict]) -> tuple[dict, dict, float]:
    """Mean of independent replica solutions and its standard errors (replica std / sqrt(R)).

    The losses are recomputed from the mean residual and test predictions; their standard
    errors are those of the replica losses. Returns (fields, stderr fields, relative error of
    the residual trajectory)."""
    R = len(reps)
    mean = {k: np.mean([r[k] for r in reps], axis=0) for k in reps[0] if k not in ("train_loss", "test_loss")}
    mean["train_loss"] = 0.5 * np.mean(mean["residuals"] ** 2, axis=-1)
    if "f_test" in mean and pb.y_test is not None:
        mean["test_loss"] = 0.5 * np.mean((pb.y_test.numpy() - mean["f_test"]) ** 2, axis=-1)
    se: dict = {}
    mc = float("nan")
    if R >= 2:
        se = {f"{k}_stderr": np.std([r[k] for r in reps], axis=0, ddof=1) / math.sqrt(R)
              for k in ("train_loss", "test_loss", "f_train", "f_test", "ntk", "feature_kernels", "gradient_kernels")
              if k in reps[0]}
        mc = float(np.linalg.norm(se["f_train_stderr"]) / max(float(np.linalg.norm(mean["residuals"])), 1e-300))
    return mean, se, mc


def _result(pb: _Problem, *, fields: dict, stderr: dict, mc: float, converged: bool, diverged: bool, status,
            iterations: int, residual: float, message: str, samples: int, extras: dict,
            two_time=None) -> "SamplingDMFTResult":
    T1 = fields["residuals"].shape[0]
    steps = np.arange(T1, dtype=np.int64)
    return SamplingDMFTResult(
        converged=converged, status=status, iterations=iterations, residual=residual, message=message,
        extras=extras, steps=steps, times=pb.lr * steps.astype(np.float64), train_loss=fields["train_loss"],
        test_loss=fields.get("test_loss"), f_train=fields["f_train"], f_test=fields.get("f_test"),
        residuals=fields["residuals"], ntk=fields["ntk"], feature_kernels=fields["feature_kernels"],
        gradient_kernels=fields["gradient_kernels"], two_time=two_time, gamma0=pb.gamma0, lr=pb.lr,
        depth=pb.depth, activation=pb.activation, dynamics=pb.dynamics, samples=samples, mc_error=mc,
        diverged=diverged, **({} if diverged else stderr),
    )


def _iterate_result(pb: _Problem, solver, outs: list, samples: int, tol: float, where: str, extras=None,
                    two_time=None) -> "SamplingDMFTResult":
    """Result of ``R = len(outs)`` independent damped iterations (replicas): their mean, with
    standard errors from their spread when R >= 2, else from the final sweeps' half-sample
    batch means (two-layer only)."""
    diverged = any(o[5] for o in outs)
    converged = all(o[4] for o in outs) and not diverged
    total = sum(o[1] for o in outs)
    residual = max(o[2] for o in outs)
    floor = max(o[3] for o in outs)
    msg = _status(where, converged, diverged, residual, floor, tol, total)
    reps = []
    for o in outs:
        ntk, Phi, G = solver.result_kernels(o[0])
        reps.append(_fields(pb, o[0]["delta"], o[0].get("ftest"), ntk, Phi, G))
    fields, se, mc = _combine(pb, reps)
    if len(outs) > 1:  # the NTK of the mean kernels (the identity K = Phi^L + sum G^l Phi^(l-1) holds)
        Phi, G = fields["feature_kernels"], fields["gradient_kernels"]
        prev = np.broadcast_to(pb.Kx.numpy(), Phi[:, 0].shape)
        K = Phi[:, -1].copy()
        for l in range(pb.depth):
            K = K + G[:, l] * prev
            prev = Phi[:, l]
        fields["ntk"] = K
    if len(outs) == 1:
        mc = outs[0][6]
        se = _block_stderr(pb, solver, outs[0][8]) if isinstance(solver, _TwoLayer) else {}
    return _result(pb, fields=fields, stderr=se, mc=mc, converged=converged,
                   diverged=diverged, status="diverged" if diverged else None, iterations=total,
                   residual=residual, message=msg, samples=samples, two_time=two_time,
                   extras={"history": [o[7] for o in outs] if len(outs) > 1 else outs[0][7], "mc_floor": floor,
                           "replicas": len(outs), **(extras or {})})


def two_layer(
    X,
    y,
    *,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "tanh",
    X_test=None,
    y_test=None,
    dynamics: str = "gd",
    samples: int = 16384,
    method: str = "forward",
    sampler: str = "sobol",
    replicas: int = 8,
    precision: str = "float64",
    damping: float = 0.7,
    tol: float = 1e-4,
    max_sweeps: int = 60,
    average: int = 6,
    noise_factor: float = 2.0,
    continuation: int | None = None,
    sweeps_per_window: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> SamplingDMFTResult:
    """Infinite-width feature-learning dynamics of a two-layer mean-field network.

    Equation (eq:dmft.single_site): ``h(t) = u(t) + sum_{s<t} [A^{l-1}(t,s) + c Phi^{l-1}(t,s) Delta(s)] g(s),
        z(t) = r(t) + sum_{s<=t} B^{l+1}(t,s) phi(h(s)) + sum_{s<t} c G^{l+1}(t,s) Delta(s) phi(h(s)),
        g(t) = phi'(h(t)) z(t),  c = lr gamma0 / P``

    Equation (eq:dmft.residual): ``Delta(t+1) = Delta(t) - (lr/P) K(t) Delta(t) - rho(t),
        K(t) = Phi^L(t,t) + sum_l G^l(t,t) Phi^{l-1}(t,t)``

    Solves the DMFT of "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide
    Neural Networks" (Bordelon & Pehlevan) for ``L = 1``: every sampled neuron follows

        h(t+1) = h(t) + (lr gamma0 / P) sum_nu Kx[:, nu] Delta_nu(t) phi'(h_nu(t)) z(t),
        z(t+1) = z(t) + (lr gamma0 / P) sum_nu Delta_nu(t) phi(h_nu(t)),

    from ``(h(0), z(0)) ~ N(0, Kx) x N(0, 1)`` with ``Kx = X X^T / D`` on training and test
    points, and the residual closes the loop (module docstring: ``dynamics`` = "gd" exact
    discrete GD, "flow" Euler gradient flow). No response functions appear at ``L = 1``.

    Two methods. ``"forward"`` (default): one causal pass over a fixed set of initial conditions
    (:mod:`lmech.theory.dmft.particles`) -- randomized quasi-Monte Carlo over ``replicas``
    independently scrambled Sobol sets, answer their mean, standard errors their spread /
    sqrt(replicas). ``"iterate"``: the damped fixed point with fresh i.i.d. samples every sweep
    (module docstring), standard errors from batch means of the final sweeps (``replicas = 1``) or
    from ``replicas`` independent iterations of ``samples // replicas`` each.

    Parameters
    ----------
    X : array (P, D); y : array (P,)
        Training set (the input kernel is ``X X^T / D``).
    gamma0 : float
        Richness, >= 0 (0 is the static-NTK limit).
    lr : float
        Learning rate of :func:`lmech.sim.mean_field.train_mean_field` (the Euler step for
        ``dynamics="flow"``).
    steps : int
        Number of GD steps; the result has ``steps + 1`` time points.
    activation : {"tanh", "erf", "relu", "linear"}
    X_test, y_test : arrays (P', D), (P',), optional
        Points whose predictions and kernels are tracked (no loss weight).
    dynamics : {"gd", "flow"}
    samples : int
        Particles in all (``"forward"``: ``samples // replicas`` per replica; powers of two
        suit Sobol sets) or neurons per sweep (``"iterate"``, split among the replicas).
    method : {"forward", "iterate"}
    sampler : {"sobol", "random"}
        ``"forward"`` only: scrambled Sobol points or i.i.d. normals.
    replicas : int
        Independent replicas whose spread gives the standard errors (>= 2 for ``"forward"``).
    precision : {"float64", "float32"}
        ``"forward"`` only: arithmetic of the pass (results are float64). float32 is ~2x faster
        and measured to change the residual by < 1e-7 relative at 4096-16384 particles, far
        below the quadrature error; float64 is the default.
    damping : float in (0, 1]
        ``"iterate"`` only (as are the next five parameters): mixing ``beta`` of the damped
        fixed point.
    tol, max_sweeps, average, noise_factor :
        Stop when the relative change per sweep is <= ``tol`` or <= ``noise_factor`` x the
        estimated Monte Carlo floor; at most ``max_sweeps``; then average ``average`` sweeps.
    continuation : int or None
        Grow the time window by this many steps at a time (None: whole window at once; a
        divergent plain iteration is retried with ``max(5, steps // 8)``).
    sweeps_per_window : int
        Sweeps per intermediate window of the continuation.
    seed : int
        Seed of the Monte Carlo draws.
    progress : bool
        tqdm progress bar over sweeps.

    Returns
    -------
    SamplingDMFTResult
        With equal-time kernels only (``two_time`` is None).

    Notes
    -----
    Cost (M = P + P'): O(samples * (steps + 1) * M * (M + P)) time per pass ("forward") or per
    sweep ("iterate"), O(samples * M + replicas * steps * M^2) memory. Fitted on one core
    (bench/dmft.py, forward): time ~ samples^1.0 steps^1.0 P^0.8 (P = 4..32, M = P).
    Accuracy (relative error of the residual trajectory, P = 8, steps = 100, gamma0 = 1.5):
    Sobol ~ samples^-0.66 (0.29% at 4096, 0.097% at 16384), i.i.d. ~ samples^-0.5
    (1.0% at 4096, 0.42% at 16384); "iterate" at 2e4 samples x ~15 sweeps: 0.36%.
    """
    pb = _validate(X, y, X_test, y_test, depth=1, gamma0=gamma0, lr=lr, steps=steps, activation=activation,
                   dynamics=dynamics, samples=samples, damping=damping, tol=tol, max_sweeps=max_sweeps,
                   average=average, noise_factor=noise_factor, seed=seed)
    check_choice(method, "method", ("forward", "iterate"))
    check_choice(sampler, "sampler", ("sobol", "random"))
    check_choice(precision, "precision", ("float64", "float32"))
    seed = int(seed)  # validated above: integral floats such as 0.0 are accepted, like every size
    samples = int(samples)
    R = check_int(replicas, "replicas", lo=2 if method == "forward" else 1, hi=max(samples // 8, 2))
    if method == "forward":
        return _forward_two_layer(pb, samples, R, sampler, precision, seed)
    chunk = None if continuation is None else check_int(continuation, "continuation", lo=1)
    spw = check_int(sweeps_per_window, "sweeps_per_window", lo=1)
    kw = dict(damping=damping, tol=tol, max_sweeps=max_sweeps, average=average, noise_factor=noise_factor,
              sweeps_per_window=spw, progress=progress, where="dmft.two_layer")
    seeds = [seed] if R == 1 else [int(x) for x in np.random.SeedSequence(seed).generate_state(R, np.uint64) >> np.uint64(1)]
    outs = []
    for sd in seeds:
        solver = _TwoLayer(pb, samples // R, torch.Generator().manual_seed(sd))
        out = _run(solver, pb, chunk=chunk, **kw)
        if out[5] and chunk is None:  # diverged: retry with time continuation
            solver = _TwoLayer(pb, samples // R, torch.Generator().manual_seed(sd))
            out = _run(solver, pb, chunk=max(5, pb.steps // 8), **kw)
        outs.append(out)
    return _iterate_result(pb, solver, outs, samples, tol, "dmft.two_layer")


def _forward_two_layer(pb: _Problem, samples: int, R: int, sampler: str, precision: str, seed: int):
    dt = torch.float64 if precision == "float64" else torch.float32
    path = two_layer_particles(pb.Kx.to(dt), pb.y.to(dt), P=pb.P, gamma0=pb.gamma0, lr=pb.lr, steps=pb.steps,
                               nonlinearity=NONLINEARITIES[pb.activation], dynamics=pb.dynamics, samples=samples, replicas=R,
                               sampler=sampler, seed=seed)
    reps = [_fields(pb, path.delta[r].double(), path.ftest[r].double(), path.ntk[r].double(),
                    path.Phi[r, :, None].double(), path.G[r, :, None].double()) for r in range(R)]
    fields, se, mc = _combine(pb, reps)
    diverged = path.blown is not None
    n = samples // R
    if diverged:
        msg = (f"the dynamics blew up at step {path.blown} (non-finite or exploding residual); "
               "arrays hold the last finite iterate from there on; try a smaller lr")
        warn_not_converged("dmft.two_layer", msg)
    else:
        msg = (f"forward pass over {R} x {n} {sampler} particles (exact recursion; "
               f"Monte Carlo error {mc:.1e} relative)")
    return _result(pb, fields=fields, stderr=se, mc=mc, converged=not diverged, diverged=diverged,
                   status="diverged" if diverged else "closed_form", iterations=pb.steps,
                   residual=mc, message=msg, samples=samples,
                   extras={"method": "forward", "sampler": sampler, "replicas": R, "precision": precision})


def deep(
    X,
    y,
    *,
    depth: int,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "tanh",
    X_test=None,
    y_test=None,
    dynamics: str = "gd",
    samples: int = 4000,
    response_samples: int = 1000,
    responses: bool = True,
    replicas: int = 4,
    damping: float = 0.6,
    tol: float = 1e-4,
    max_sweeps: int = 40,
    average: int = 6,
    noise_factor: float = 2.0,
    continuation: int | str | None = "auto",
    sweeps_per_window: int = 5,
    jacobian_memory: float = 3.2e7,
    seed: int = 0,
    progress: bool = False,
) -> SamplingDMFTResult:
    """Infinite-width feature-learning dynamics of a deep mean-field network (sampling DMFT).

    Solves the DMFT of "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide
    Neural Networks" (Bordelon & Pehlevan) for ``L = depth`` hidden layers with two-time
    kernels ``Phi^l(t,s)``, ``G^l(t,s)`` and pathwise response functions ``A^l``, ``B^l``
    (equations and closures in the module docstring). ``depth = 1`` runs the same general
    code (useful as a cross-check of :func:`two_layer`, which is much cheaper there).

    Parameters
    ----------
    X, y, gamma0, lr, steps, activation, X_test, y_test, dynamics, damping, tol,
    max_sweeps, average, noise_factor, sweeps_per_window, seed, progress :
        As in :func:`two_layer`.
    depth : int
        Number of hidden layers ``L >= 1``.
    samples : int
        Single-site trajectories per layer and sweep (kernels: MC error ~ 1/sqrt(samples)).
    response_samples : int
        Trajectories (a subset of ``samples``) whose exact per-sample derivatives are
        averaged into ``A`` and ``B``. The responses enter the fields at O(lr gamma0), so
        fewer samples suffice than for the kernels.
    responses : bool
        False drops ``A`` and ``B`` (the "gradient independence" ansatz; wrong at finite
        gamma0, kept for comparisons).
    replicas : int
        Independent damped iterations (own seeds; ``samples // replicas`` and
        ``response_samples // replicas`` each); the answer is their mean and the standard errors
        their spread / sqrt(replicas) (measured against the spread over seeds in
        tests/test_dmft_sampling.py). ``replicas = 1``: no standard errors (None), because the
        noise left in a single fixed point is not visible in its final sweeps.
    continuation : int, "auto" or None
        Time-window growth in steps; "auto" uses ``max(5, steps // 8)`` for depth >= 2 and
        the whole window for depth 1; None never continues.
    jacobian_memory : float
        Bytes allowed for one chunk of response tangents (the Jacobian is computed in chunks
        of source directions so memory stays bounded).

    Returns
    -------
    SamplingDMFTResult
        With ``two_time`` holding the two-time kernels and the responses.

    Notes
    -----
    With ``T1 = steps + 1``, ``M = P + P'`` and ``S = samples``, ``Sr = response_samples``,
    per sweep and layer: kernels and sources O(S (T1 M)^2 + (T1 M)^3) time (eigh of the
    (T1 M) x (T1 M) covariance), forward solve O(S T1^2 M P); pathwise responses
    O(Sr T1^3 M P^2) time. Memory: O(L (T1 M)^2) for the order parameters, O(S T1 M) for
    the trajectories and ``jacobian_memory`` for the tangents. Example (one core): L = 2,
    P = 4, P' = 4, steps = 40, S = 4000, Sr = 1000: ~1-2 s per sweep.
    """
    pb = _validate(X, y, X_test, y_test, depth=depth, gamma0=gamma0, lr=lr, steps=steps,
                   activation=activation, dynamics=dynamics, samples=samples, damping=damping, tol=tol,
                   max_sweeps=max_sweeps, average=average, noise_factor=noise_factor, seed=seed)
    Sr = check_int(response_samples, "response_samples", lo=2, hi=MAX_SIZE)
    seed, samples = int(seed), int(samples)  # validated: integral floats accepted
    spw = check_int(sweeps_per_window, "sweeps_per_window", lo=1)
    mem = check_real(jacobian_memory, "jacobian_memory", lo=0.0, lo_closed=False)
    if not isinstance(responses, bool):
        fail("responses", "a bool", responses, TypeError)
    if not responses:
        # the exact-GD remainder compares field and kernel increments, which agree only
        # with the responses; without them only the kernel (flow) closure is meaningful
        pb.dynamics = "flow"
    if continuation == "auto":
        chunk = None if pb.depth == 1 else max(5, pb.steps // 8)
    elif continuation is None:
        chunk = None
    else:
        chunk = check_int(continuation, "continuation", lo=1)
    if pb.depth > 1 and responses and not DMFT_ACTIVATIONS[activation][3]:
        import warnings

        from lmech.results import LmechWarning

        warnings.warn(
            f"activation {activation!r} has a non-smooth derivative: pathwise responses B miss its "
            "Dirac-delta second derivative, so depth >= 2 results are approximate", LmechWarning,
            stacklevel=2)

    R = check_int(replicas, "replicas", lo=1, hi=max(samples // 16, 1))
    seeds = [seed] if R == 1 else [int(x) for x in np.random.SeedSequence(seed).generate_state(R, np.uint64) >> np.uint64(1)]
    kw = dict(damping=damping, tol=tol, max_sweeps=max_sweeps, average=average, noise_factor=noise_factor,
              sweeps_per_window=spw, progress=progress, where="dmft.deep")
    outs, two_time = [], []
    L, M, P = pb.depth, pb.M, pb.P
    for sd in seeds:
        def make(sd=sd):
            return _Deep(pb, samples // R, max(Sr // R, 2), responses, mem, torch.Generator().manual_seed(sd))

        solver = make()
        out = _run(solver, pb, chunk=chunk, **kw)
        if out[5] and continuation == "auto":
            solver = make()
            out = _run(solver, pb, chunk=max(2, (chunk or max(5, pb.steps // 8)) // 2), **kw)
        outs.append(out)
        if out[5]:
            continue
        st = out[0]
        T1 = st["delta"].shape[0]

        def full(key, l, st=st, T1=T1):
            A = torch.zeros(T1, M, T1, M, dtype=torch.float64)
            if f"{key}{l}" in st:
                A[..., :P] = st[f"{key}{l}"]
            return A

        two_time.append({
            "Phi": torch.stack([st[f"Phi{l}"].reshape(T1, M, T1, M) for l in range(1, L + 1)]).numpy(),
            "G": torch.stack([st[f"G{l}"].reshape(T1, M, T1, M) for l in range(1, L + 1)]).numpy(),
            "A": torch.stack([full("A", l) for l in range(1, L + 1)]).numpy(),
            "B": torch.stack([full("B", l) for l in range(1, L + 1)]).numpy(),
        })
    tt = None if len(two_time) < R else {k: np.mean([d[k] for d in two_time], axis=0) for k in two_time[0]}
    res = _iterate_result(pb, solver, outs, samples, tol, "dmft.deep", extras={"continuation": chunk},
                          two_time=tt)
    return res
