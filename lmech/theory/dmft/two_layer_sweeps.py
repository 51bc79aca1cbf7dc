"""The damped-iteration solver state of the two-layer sampling DMFT (``method="iterate"`` of
:func:`lmech.theory.dmft.sampling.two_layer`): fresh neurons each sweep, equal-time kernels."""
from __future__ import annotations

import torch

from lmech.theory.dmft._common import _edge_index, _gd_remainder, _Problem, _psd_sqrt, _residual_recursion
from lmech.theory.dmft.state import DMFTState, LayerState

__all__: list[str] = []


class _TwoLayer:
    """L = 1: given Delta, each sampled neuron follows a deterministic recursion and only the
    equal-time kernels enter the NTK. Order parameters: one :class:`LayerState` of equal-time
    kernels ``Phi``, ``G`` (T1, M, M) (NTK ``Phi + G Kx``) and, for discrete GD, the remainder
    ``rho`` (T1, M).
    Cost per sweep O(S T1 M (M + P))."""

    def __init__(self, pb: _Problem, samples: int, gen: torch.Generator):
        self.pb, self.S, self.gen = pb, samples, gen
        self.sqKx = _psd_sqrt(pb.Kx)

    def monitored(self, st: DMFTState) -> list[torch.Tensor]:
        assert st.ntk is not None and st.delta is not None
        return [st.ntk, st.delta]

    def closure(self, st: DMFTState) -> DMFTState:
        ly = st.layers[0]
        ntk = ly.Phi + ly.G * self.pb.Kx
        delta, ftest = _residual_recursion(ntk, st.rho, self.pb.y, self.pb.lr, self.pb.P)
        return DMFTState(layers=st.layers, rho=st.rho, ntk=ntk, delta=delta, ftest=ftest)

    def initial_state(self, T1: int) -> DMFTState:
        pb = self.pb
        h = torch.randn(self.S, pb.M, generator=self.gen, dtype=torch.float64) @ self.sqKx.T
        ph, dp = pb.phi(h), pb.dphi(h)
        Phi = (ph.T @ ph / self.S).expand(T1, pb.M, pb.M).clone()
        G = (dp.T @ dp / self.S).expand(T1, pb.M, pb.M).clone()
        rho = torch.zeros(T1, pb.M, dtype=torch.float64) if pb.dynamics == "gd" else None
        return self.closure(DMFTState(layers=[LayerState(Phi=Phi, G=G)], rho=rho))

    def extend(self, st: DMFTState, T1: int) -> DMFTState:
        ly = st.layers[0]
        n = ly.Phi.shape[0]
        idx = _edge_index(n, T1)
        rho = None
        if st.rho is not None:
            rho = torch.zeros(T1, self.pb.M, dtype=torch.float64)
            rho[: n - 1] = st.rho[: n - 1]
        return self.closure(DMFTState(layers=[LayerState(Phi=ly.Phi[idx].clone(), G=ly.G[idx].clone())], rho=rho))

    def sweep(self, st: DMFTState) -> list[DMFTState]:
        """S fresh neurons driven by the residual in ``st``; new estimates from each half of
        the samples (their difference gives the Monte Carlo floor)."""
        pb, S = self.pb, self.S
        delta = st.delta
        assert delta is not None
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
            rho = _gd_remainder(psi[i], K, delta, pb.lr, P) if gd else None
            ests.append(DMFTState(layers=[LayerState(Phi=Phi[i], G=G[i])], rho=rho))
        return ests

    def result_kernels(self, st: DMFTState):
        ly = st.layers[0]
        return st.ntk, ly.Phi[:, None], ly.G[:, None]


