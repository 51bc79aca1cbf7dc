"""The damped-iteration solver state of the two-layer sampling DMFT (``method="iterate"`` of
:func:`lmech.theory.dmft.sampling.two_layer`): fresh neurons each sweep, equal-time kernels."""
from __future__ import annotations

import torch

from lmech.theory.dmft._common import _edge_index, _gd_remainder, _Problem, _psd_sqrt, _residual_recursion

__all__: list[str] = []


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


