"""The damped-iteration solver state of the deep sampling DMFT (:func:`lmech.theory.dmft.sampling.deep`):
two-time kernels, pathwise responses and the single-site process of each layer."""
from __future__ import annotations

from typing import Any

import torch

from lmech.theory.dmft._common import _edge_index, _gd_remainder, _Problem, _psd_sqrt, _residual_recursion
from lmech.theory.dmft.particles import gaussian_points
from lmech.theory.dmft.responses import pathwise_responses
from lmech.theory.dmft.state import DMFTState, LayerState

__all__: list[str] = []

JITTER = 1e-10  # relative diagonal jitter of the Cholesky factor (the (t, s) kernels can be singular)


def _chol(C: torch.Tensor) -> torch.Tensor:
    """Lower-triangular R with R R^T = C + eps I, eps = JITTER * mean diag(C) (raised tenfold
    until the factorization succeeds). Unlike the eigen square root it is continuous in C, and
    with time-major rows a source at time t uses only the first (t + 1) M innovations."""
    C = 0.5 * (C + C.T)
    scale = max(float(C.diagonal().mean()), 1e-300)
    eye = torch.eye(C.shape[0], dtype=C.dtype)
    eps = JITTER
    while True:
        R, info = torch.linalg.cholesky_ex(C + eps * scale * eye)
        if int(info) == 0 or eps > 1e-2:
            return R if int(info) == 0 else _psd_sqrt(C)
        eps *= 10.0


class _Deep:
    """General L: per layer (:class:`LayerState`) two-time kernels ``Phi``, ``G`` as (T1 M, T1 M)
    matrices, pathwise responses ``A`` (l < L) and ``B`` (l > 1) as (T1, M, T1, P) (responses to
    sources at test points vanish), and for discrete GD the remainder ``rho`` (T1, M)."""

    def __init__(self, pb: _Problem, samples: int, response_samples: int, responses: bool,
                 jacobian_memory: float, gen: torch.Generator, sampler: str | None = None, seed: int = 0):
        self.pb, self.S, self.Sr, self.gen = pb, samples, min(response_samples, samples), gen
        self.responses = responses
        self.jac_floats = max(int(jacobian_memory / 8), 1)
        self.sqKx = _psd_sqrt(pb.Kx)
        # common random numbers: None draws fresh sources every sweep; "sobol"/"random" draws
        # the standard-normal innovations of every source once (one joint point set) and maps
        # them through the time-major Cholesky factor of the current kernel, so each sweep
        # is a deterministic, continuous map of the order parameters
        self.fixed = sampler is not None
        self.innov: list[tuple[torch.Tensor, torch.Tensor]] = []
        if sampler is not None:
            L, M, T1 = pb.depth, pb.M, pb.steps + 1
            dims = [(M if l == 1 else T1 * M, 1 if l == L else T1 * M) for l in range(1, L + 1)]
            Z = gaussian_points(samples, sum(a + b for a, b in dims), replicas=1, sampler=sampler, seed=seed)[0]
            k = 0
            for a, b in dims:
                self.innov.append((Z[:, k : k + a], Z[:, k + a : k + a + b]))
                k += a + b

    # -- bookkeeping
    def monitored(self, st: DMFTState) -> list[torch.Tensor]:
        assert st.delta is not None
        return [ly.Phi for ly in st.layers] + [ly.G for ly in st.layers] + [st.delta]

    def ntk(self, st: DMFTState) -> torch.Tensor:
        pb, M = self.pb, self.pb.M
        T1 = st.layers[0].Phi.shape[0] // M
        idx = torch.arange(T1)

        def eq(C):
            return C.reshape(T1, M, T1, M)[idx, :, idx, :]

        K = eq(st.layers[-1].Phi).clone()
        prev = pb.Kx.expand(T1, M, M)
        for ly in st.layers:
            K = K + eq(ly.G) * prev
            prev = eq(ly.Phi)
        return K

    def closure(self, st: DMFTState) -> DMFTState:
        ntk = self.ntk(st)
        delta, ftest = _residual_recursion(ntk, st.rho, self.pb.y, self.pb.lr, self.pb.P)
        return DMFTState(layers=st.layers, rho=st.rho, ntk=ntk, delta=delta, ftest=ftest)

    @staticmethod
    def _static(C: torch.Tensor, T1: int) -> torch.Tensor:
        M = C.shape[0]
        return C.reshape(1, M, 1, M).expand(T1, M, T1, M).reshape(T1 * M, T1 * M).clone()

    def initial_state(self, T1: int) -> DMFTState:
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

        def zero():
            return torch.zeros(T1, M, T1, pb.P, dtype=torch.float64)

        layers = [LayerState(Phi=self._static(Phis[i], T1), G=self._static(Gs[i], T1),
                             A=zero() if i < L - 1 else None, B=zero() if i > 0 else None) for i in range(L)]
        rho = torch.zeros(T1, M, dtype=torch.float64) if pb.dynamics == "gd" else None
        return self.closure(DMFTState(layers=layers, rho=rho))

    def extend(self, st: DMFTState, T1: int) -> DMFTState:
        """Grow the window: kernels edge-replicated, responses and rho zero-padded."""
        M, P = self.pb.M, self.pb.P
        n = st.layers[0].Phi.shape[0] // M
        idx = _edge_index(n, T1)

        def kern(C):
            return C.reshape(n, M, n, M)[idx][:, :, idx].reshape(T1 * M, T1 * M).clone()

        def resp(R):
            if R is None:
                return None
            out = torch.zeros(T1, M, T1, P, dtype=torch.float64)
            out[:n, :, :n] = R
            return out

        rho = None
        if st.rho is not None:
            rho = torch.zeros(T1, M, dtype=torch.float64)
            rho[: n - 1] = st.rho[: n - 1]
        layers = [LayerState(Phi=kern(ly.Phi), G=kern(ly.G), A=resp(ly.A), B=resp(ly.B)) for ly in st.layers]
        return self.closure(DMFTState(layers=layers, rho=rho))

    def result_kernels(self, st: DMFTState):
        M = self.pb.M
        T1 = st.layers[0].Phi.shape[0] // M
        idx = torch.arange(T1)
        Phi = torch.stack([ly.Phi.reshape(T1, M, T1, M)[idx, :, idx, :] for ly in st.layers], 1)
        G = torch.stack([ly.G.reshape(T1, M, T1, M)[idx, :, idx, :] for ly in st.layers], 1)
        return st.ntk, Phi, G

    # -- single-site process of one layer
    def _memory_kernels(self, st: DMFTState, l: int, T1: int):
        """Ch = A^{l-1} + c 1[s<t] Phi^{l-1} Delta and Dz = B^{l+1} + c 1[s<t] G^{l+1} Delta as
        (T1, M, T1, P); None for the first layer's Ch (c Kx Delta, time-independent kernel)
        and for the readout layer's Dz (c Delta, the same at every point)."""
        pb, L, M, P = self.pb, self.pb.depth, self.pb.M, self.pb.P
        c = pb.lr * pb.gamma0 / P
        mask = torch.tril(torch.ones(T1, T1, dtype=torch.float64), -1).reshape(T1, 1, T1, 1)
        assert st.delta is not None
        dl = st.delta.reshape(1, 1, T1, P)
        Ch = Dz = None
        if l > 1:
            below = st.layers[l - 2]
            Ch = c * mask * below.Phi.reshape(T1, M, T1, M)[..., :P] * dl
            if self.responses and below.A is not None:
                Ch = Ch + below.A
        if l < L:
            above = st.layers[l]
            Dz = c * mask * above.G.reshape(T1, M, T1, M)[..., :P] * dl
            if self.responses and above.B is not None:
                Dz = Dz + above.B
        return Ch, Dz

    def _sources(self, st: DMFTState, l: int, T1: int, S: int):
        """u^l ~ GP(0, Phi^{l-1}) (u^1 constant in time: (S, M)); r^l ~ GP(0, G^{l+1})
        (r^L = w(0), one scalar per sample: (S,))."""
        L, M = self.pb.depth, self.pb.M
        if self.fixed:
            zu, zr = self.innov[l - 1]
            u = zu @ self.sqKx.T if l == 1 else (zu[:, : T1 * M] @ _chol(st.layers[l - 2].Phi).T).reshape(S, T1, M)
            r = zr[:, 0] if l == L else (zr[:, : T1 * M] @ _chol(st.layers[l].G).T).reshape(S, T1, M)
            return u, r
        if l == 1:
            u = torch.randn(S, M, generator=self.gen, dtype=torch.float64) @ self.sqKx.T
        else:
            R = _psd_sqrt(st.layers[l - 2].Phi)
            u = (torch.randn(S, T1 * M, generator=self.gen, dtype=torch.float64) @ R.T).reshape(S, T1, M)
        if l == L:
            r = torch.randn(S, generator=self.gen, dtype=torch.float64)
        else:
            R = _psd_sqrt(st.layers[l].G)
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
                assert Chf is not None
                h = u[:, t] + g_hist[:, : t * P] @ Chf[t, :, : t * P].T
            ph = pb.phi(h)
            ph_hist[:, t * P : (t + 1) * P] = ph[:, :P]
            if Dz is None:
                assert zeta_hist is not None
                zeta_hist[:, t] = zeta
                z = (r + c * zeta)[:, None]
            else:
                assert Dzf is not None
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

    def sweep(self, st: DMFTState) -> list[DMFTState]:
        pb, L, M, P, S = self.pb, self.pb.depth, self.pb.M, self.pb.P, self.S
        delta = st.delta
        assert delta is not None
        T1 = delta.shape[0]
        half = S // 2
        halves = (slice(0, half), slice(half, S))
        layers: list[list[LayerState]] = [[], []]
        psis: list[torch.Tensor] = []
        for l in range(1, L + 1):
            Ch, Dz = self._memory_kernels(st, l, T1)
            u, r = self._sources(st, l, T1, S)
            H, Z, zeta = self._forward(u, r, Ch, Dz, delta, T1)
            ph = pb.phi(H)
            g = (pb.dphi(H) * Z).reshape(S, T1 * M)
            phf = ph.reshape(S, T1 * M)
            for i, sl in enumerate(halves):
                n = sl.stop - sl.start
                layers[i].append(LayerState(Phi=phf[sl].T @ phf[sl] / n, G=g[sl].T @ g[sl] / n))
            if l == L and pb.dynamics == "gd":
                # f(t) = <z^L(t) phi(h^L(t))> / gamma0 with z^L = w0 + c zeta; the control
                # variate w0 phi(u(t)) has mean zero exactly (w0 is independent of u) and
                # removes the O(1) per-sample noise of w0 phi(h(t)) / gamma0
                phu = pb.phi(u if u.dim() == 3 else u[:, None, :])
                psi = r[:, None, None] * (ph - phu) / pb.gamma0 + (pb.lr / P) * zeta[..., None] * ph
                psis = [psi[sl].mean(0) for sl in halves]
            for which, need in (("A", l < L), ("B", l > 1)):
                if not need:
                    continue
                if self.responses:
                    R = pathwise_responses(pb, H[: self.Sr], Z[: self.Sr], Ch, Dz, delta, T1, which, self.jac_floats)
                else:
                    R = getattr(st.layers[l - 1], which)
                for i in range(2):
                    setattr(layers[i][l - 1], which, R)
        ests = [DMFTState(layers=ly) for ly in layers]
        if pb.dynamics == "gd":
            for e, ps in zip(ests, psis):
                e.rho = _gd_remainder(ps, self.ntk(e), delta, pb.lr, P)
        return ests


