"""Pathwise response functions of the deep sampling DMFT: the sample mean of the exact derivative
of each single-site trajectory with respect to its own Gaussian source (forward-mode tangents),
for "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks"
(Bordelon & Pehlevan)."""
from __future__ import annotations

import torch

from lmech.theory.dmft._common import _Problem

__all__: list[str] = ["pathwise_responses"]


def pathwise_responses(pb: _Problem, H, Z, Ch, Dz, delta, T1: int, which: str, jac_floats: int) -> torch.Tensor:
    """Pathwise responses: the sample mean of the exact derivative of each trajectory,
    d phi(h(t)) / d r(s) (which="A") or d g(t) / d u(s) (which="B"), for sources at
    training points: (T1, M, T1, P). Tangents of the linearised recursion

        dh(t) = du(t) + sum_{s<t} Ch(t,s) dg(s),   dz(t) = dr(t) + sum_{s<=t} Dz(t,s) phi'(h(s)) dh(s),
        dg(t) = phi''(h(t)) z(t) dh(t) + phi'(h(t)) dz(t),

    are propagated for chunks of source directions (s0, nu0) at a time, each chunk
    starting at its earliest source time (causality), so memory stays bounded."""
    M, P = pb.M, pb.P
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
    chunk = max(1, min(len(dirs), jac_floats // max(per_dir, 1)))
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
