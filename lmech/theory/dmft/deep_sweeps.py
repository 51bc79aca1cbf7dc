"""The damped-iteration solver state of the deep sampling DMFT (:func:`lmech.theory.dmft.sampling.deep`):
two-time kernels, pathwise responses and the single-site process of each layer."""
from __future__ import annotations

from typing import Any

import torch

from lmech.theory.dmft._common import _edge_index, _gd_remainder, _Problem, _psd_sqrt, _residual_recursion
from lmech.theory.dmft.responses import pathwise_responses

__all__: list[str] = []


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
                    R = pathwise_responses(pb, H[: self.Sr], Z[: self.Sr], Ch, Dz, delta, T1, which, self.jac_floats)
                else:
                    R = st[f"{which}{l}"]
                for i in range(2):
                    ests[i][f"{which}{l}"] = R
        if pb.dynamics == "gd":
            for e in ests:
                e["rho"] = _gd_remainder(e.pop("_psi"), self.ntk(e), delta, pb.lr, P)
        return ests


