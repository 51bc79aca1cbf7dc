"""Analytic infinite-width NNGP and NTK kernels of fully connected networks.

Conventions (those of neural-tangents' ``stax.Dense(W_std, b_std, parameterization="ntk")``,
so that the two agree to round-off): a network with ``depth`` hidden layers is

    h^0(x) = sqrt(weight_var / d) W^0 x + sqrt(bias_var) b^0,
    h^l(x) = sqrt(weight_var / n) W^l phi(h^{l-1}(x)) + sqrt(bias_var) b^l,   l = 1..depth,

with standard-normal W, b, hidden width n -> infinity, and a scalar readout h^depth (the
readout layer is included). Its kernels obey the recursion [Jacot, Gabriel & Hongler,
"Neural Tangent Kernel: Convergence and Generalization in Neural Networks"; Lee et al.,
"Deep Neural Networks as Gaussian Processes"]

    Sigma^0 = weight_var x.x'/d + bias_var,                    Theta^0 = Sigma^0,
    Sigma^l = weight_var E[phi(u) phi(v)] + bias_var,
    Theta^l = weight_var E[phi'(u) phi'(v)] Theta^{l-1} + Sigma^l,

with (u, v) centred Gaussian of covariance [[Sigma^{l-1}(x,x), Sigma^{l-1}(x,x')], [., Sigma^{l-1}(x',x')]].
The Gaussian expectations are closed forms: the arc-cosine kernels for ReLU [Cho & Saul,
"Kernel Methods for Deep Learning"], with theta = arccos(rho),

    E[relu relu] = sqrt(q q') (sin theta + (pi - theta) cos theta) / (2 pi),
    E[step step] = (pi - theta) / (2 pi),

and Williams' arcsine kernel for erf ("Computing with Infinite Networks"),

    E[erf erf] = (2/pi) arcsin(2 s / sqrt((1 + 2q)(1 + 2q'))),
    E[erf' erf'] = (4/pi) / sqrt((1 + 2q)(1 + 2q') - 4 s^2).

``weight_var = 2`` with ReLU preserves the diagonal from layer to layer (He scaling).

Numerics: float64 throughout (torch on the CPU), computed in tiles small enough to stay in
cache; with ``X2 = None`` only the tiles of the upper block triangle are computed, each one
written to both halves while in cache (the result is exactly symmetric). The diagonal is
computed exactly from the scalar recursion of the variances (the arc-cosine at rho = 1 is not
evaluated on a rounded correlation), and so is every entry whose two inputs are bitwise equal
rows; correlations are clamped to [-1, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import check_array, check_choice, check_int, check_real, fail

__all__ = ["MLPKernels", "mlp_kernels", "mlp_kernels_of_cosine", "nngp_mlp", "ntk_mlp", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "erf", "linear")
_BLOCK_ELEMENTS = 1 << 14  # entries per tile: below torch's grain size, working arrays stay in L2


@dataclass(frozen=True)
class MLPKernels:
    """NNGP and NTK Gram matrices of one network, each of shape (n1, n2), float64."""

    nngp: np.ndarray
    ntk: np.ndarray


# --------------------------------------------------------------------------- validation
#: Largest accepted ``depth``: far beyond any network studied here; the recursions loop over
#: layers in Python, and past this the kernel is a fixed point anyway.
MAX_DEPTH = 10_000


def _check_finite_kernel(K, X1, X2, depth, wv, bv):
    """Refuse a kernel that overflowed float64 instead of returning inf/NaN silently."""
    if np.all(np.isfinite(K)):
        return K
    scale = max(float(np.max(np.abs(X1))), 0.0 if X2 is None else float(np.max(np.abs(X2))))
    fail("X1", f"inputs whose kernel fits in float64 (it overflowed: max |x| = {scale:.3g}, "
         f"weight_var = {wv:g}, bias_var = {bv:g}, depth = {depth}); rescale the inputs", X1)


def _compute_checked(X1, X2, depth, activation, wv, bv, want_ntk):
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            nngp, ntk = _compute(X1, X2, depth, activation, wv, bv, want_ntk=want_ntk)
    except OverflowError:
        nngp = ntk = np.array([np.inf])
    _check_finite_kernel(nngp, X1, X2, depth, wv, bv)
    if want_ntk:
        _check_finite_kernel(ntk, X1, X2, depth, wv, bv)
    return nngp, ntk


def _check_inputs(X1, X2, depth, activation, weight_var, bias_var):
    X1 = check_array(X1, "X1", ndim=2, min_size=1)
    if X2 is not None:
        X2 = check_array(X2, "X2", ndim=2, min_size=1)
        if X2.shape[1] != X1.shape[1]:
            fail("X2", f"of shape (n2, {X1.shape[1]}) to match X1's {X1.shape[1]} features", X2)
    depth = check_int(depth, "depth", lo=0, hi=MAX_DEPTH)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    weight_var = check_real(weight_var, "weight_var", lo=0, lo_closed=False)
    bias_var = check_real(bias_var, "bias_var", lo=0)
    return X1, X2, depth, activation, weight_var, bias_var


# --------------------------------------------------------------------------- scalar recursions
def _diagonal(q0: np.ndarray, depth: int, activation: str, wv: float, bv: float):
    """Exact k(x, x) of NNGP and NTK from the variance recursion. q0 = Sigma^0(x, x)."""
    q = q0.astype(np.float64, copy=True)
    t = q.copy()
    e_dphi2: float | np.ndarray
    for _ in range(depth):
        if activation == "relu":
            e_phi2, e_dphi2 = 0.5 * q, 0.5
        elif activation == "erf":
            e_phi2 = (2.0 / math.pi) * np.arcsin(2.0 * q / (1.0 + 2.0 * q))
            e_dphi2 = (4.0 / math.pi) / np.sqrt(1.0 + 4.0 * q)
        else:
            e_phi2, e_dphi2 = q, 1.0
        q_new = wv * e_phi2 + bv
        t = wv * e_dphi2 * t + q_new
        q = q_new
    return q, t


def _variances(q0: np.ndarray, depth: int, activation: str, wv: float, bv: float) -> list[np.ndarray]:
    """Sigma^l(x, x) for l = 0..depth-1 (the variances entering each activation)."""
    out = [q0]
    q = q0
    for _ in range(depth - 1):
        q, _t = _diagonal(q, 1, activation, wv, bv)
        out.append(q)
    return out


# --------------------------------------------------------------------------- block kernels
_ONE = torch.ones((), dtype=torch.float64)


def _block_relu_homogeneous(u, t, depth, s1, s2):
    """ReLU without bias: the recursion acts on the correlation alone.

    ``u`` holds cosines and becomes the NNGP; ``t`` (same shape, or None) becomes the NTK;
    both in place. ``s1`` (rows, 1) and ``s2`` (1, cols) give the outer scale
    sqrt(q q') (weight_var/2)^depth. Per layer, with theta = arccos(u),

        u <- (sin theta + (pi - theta) u) / pi = u + (sin theta - theta u) / pi,
        t <- t (pi - theta) / pi + u,

    in eight elementwise passes (one arccos, one sqrt, no division).
    """
    u.clamp_(-1.0, 1.0)
    if t is not None:
        t.copy_(u)
    theta = torch.empty_like(u)
    sin = torch.empty_like(u)
    inv_pi = 1.0 / math.pi
    for layer in range(depth):
        torch.acos(u, out=theta)
        torch.addcmul(_ONE, u, u, value=-1.0, out=sin).sqrt_()  # |u| <= 1, so 1 - u^2 >= 0 exactly
        if t is not None:
            t.addcmul_(t, theta, value=-inv_pi)  # t (pi - theta) / pi
        theta.mul_(u)
        sin.sub_(theta)
        u.add_(sin, alpha=inv_pi)
        if layer + 1 < depth:
            u.clamp_(-1.0, 1.0)  # round-off must not leave arccos's domain
        if t is not None:
            t.add_(u)
    torch.mul(s1, s2, out=sin)
    u.mul_(sin)
    if t is not None:
        t.mul_(sin)


def _block_general(S, t, q1s, q2s, depth, activation, wv, bv):
    """General recursion on a block of covariances ``S`` (-> NNGP) and ``t`` (-> NTK), in place.

    ``q1s[l]`` (rows, 1) and ``q2s[l]`` (1, cols) are the variances Sigma^l(x, x) entering
    activation l.
    """
    if t is not None:
        t.copy_(S)
    a = torch.empty_like(S)
    b = torch.empty_like(S)
    c = None
    for layer in range(depth):
        q1, q2 = q1s[layer], q2s[layer]
        if activation == "relu":
            # E[relu relu] = r (sin theta + (pi - theta) rho) / (2 pi), r = sqrt(q q'), rho = cos theta;
            # every operation is symmetric in the two inputs, so diagonal tiles stay symmetric
            if c is None:
                c = torch.empty_like(S)
            torch.mul(q1, q2, out=a).sqrt_()  # r
            S.div_(a).clamp_(-1.0, 1.0)  # rho
            torch.acos(S, out=c)
            c.neg_().add_(math.pi)  # pi - theta
            torch.addcmul(_ONE, S, S, value=-1.0, out=b).sqrt_().mul_(a)  # r sin theta
            S.mul_(a).mul_(c).add_(b).mul_(wv / (2.0 * math.pi)).add_(bv)
            if t is not None:
                t.mul_(c).mul_(wv / (2.0 * math.pi))
        elif activation == "erf":
            prod = (1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)
            if t is not None:
                torch.mul(S, S, out=b)
                b.mul_(-4.0).add_(prod).rsqrt_()
                t.mul_(b).mul_(wv * 4.0 / math.pi)
            S.mul_(2.0).div_(torch.sqrt(prod)).clamp_(-1.0, 1.0).asin_().mul_(wv * 2.0 / math.pi).add_(bv)
        else:
            if t is not None:
                t.mul_(wv)
            S.mul_(wv).add_(bv)
        if t is not None:
            t.add_(S)


# --------------------------------------------------------------------------- driver
def _tiles(n1, n2, tile_elements):
    """Row x column tiles covering an (n1, n2) matrix."""
    cols = max(1, min(n2, 4096))
    rows = max(1, tile_elements // cols)
    return [(i0, min(n1, i0 + rows), j0, min(n2, j0 + cols))
            for i0 in range(0, n1, rows) for j0 in range(0, n2, cols)]


def _square_tiles(n, tile_elements):
    """Square tiles (i0, i1, j0, j1) of the upper block triangle of an (n, n) matrix."""
    b = max(1, math.isqrt(tile_elements))
    starts = range(0, n, b)
    return [(i0, min(n, i0 + b), j0, min(n, j0 + b)) for i0 in starts for j0 in starts if j0 >= i0]


_PARALLEL_MIN_ENTRIES = 1 << 17  # smaller Gram matrices are not worth a thread pool


def _run(tasks, fn, entries):
    """Run ``fn`` on every task, on torch.get_num_threads() Python threads.

    Torch's own intra-op threads are set to 1 meanwhile (and restored): each tile's many small
    ops then run inside their worker with no OpenMP barrier; barriers and spinning pool
    threads make small parallel ops very slow on a loaded machine.
    """
    threads = torch.get_num_threads()
    workers = min(threads, len(tasks)) if entries >= _PARALLEL_MIN_ENTRIES else 1
    torch.set_num_threads(1)
    try:
        if workers <= 1:
            for task in tasks:
                fn(task)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(fn, tasks):
                pass
    finally:
        torch.set_num_threads(threads)


def _compute(X1, X2, depth, activation, wv, bv, want_ntk, tile_elements=_BLOCK_ELEMENTS):
    symmetric = X2 is None
    Xb = X1 if symmetric else X2
    n1, d = X1.shape
    n2 = Xb.shape[0]
    sq1 = np.einsum("ij,ij->i", X1, X1) / d
    sq2 = sq1 if symmetric else np.einsum("ij,ij->i", Xb, Xb) / d
    q01, q02 = wv * sq1 + bv, wv * sq2 + bv
    homogeneous = activation == "relu" and bv == 0.0
    if homogeneous:
        # cosines from normalised inputs; zero rows have kernel 0 in every layer
        nrm1 = np.sqrt(sq1 * d)
        nrm2 = nrm1 if symmetric else np.sqrt(sq2 * d)
        A = X1 * np.where(nrm1 > 0, 1.0 / np.where(nrm1 > 0, nrm1, 1.0), 0.0)[:, None]
        B = A if symmetric else Xb * np.where(nrm2 > 0, 1.0 / np.where(nrm2 > 0, nrm2, 1.0), 0.0)[:, None]
        # outer scale (wv/2)^depth sqrt(q q'), split evenly so that s1_i s2_j = s1_j s2_i exactly
        c = (wv / 2.0) ** depth
        s1 = torch.from_numpy(np.sqrt(c * q01))[:, None]
        s2 = torch.from_numpy(np.sqrt(c * q02))[None, :]
    else:
        v1 = [torch.from_numpy(v)[:, None] for v in _variances(q01, depth, activation, wv, bv)]
        v2 = [torch.from_numpy(v)[None, :] for v in _variances(q02, depth, activation, wv, bv)]
        A = X1 * math.sqrt(wv / d)
        B = A if symmetric else Xb * math.sqrt(wv / d)

    nngp = np.empty((n1, n2))
    ntk = np.empty((n1, n2)) if want_ntk else None
    K_out = torch.from_numpy(nngp)
    T_out = torch.from_numpy(ntk) if want_ntk else None
    At = torch.from_numpy(np.ascontiguousarray(A))
    Bt = At if symmetric else torch.from_numpy(np.ascontiguousarray(B))

    def kernels(S, T, i0, i1, j0, j1):
        """Turn the block S of cosines (or Sigma^0 - bias_var) into NNGP and NTK, in place."""
        if homogeneous:
            _block_relu_homogeneous(S, T, depth, s1[i0:i1], s2[:, j0:j1])
        else:
            if bv != 0.0:
                S.add_(bv)
            _block_general(S, T, [v[i0:i1] for v in v1], [v[:, j0:j1] for v in v2], depth, activation, wv, bv)

    if symmetric:
        # square tiles of the upper block triangle, each written to (I, J) and, transposed, to
        # (J, I) while in cache; the cosines of a diagonal tile are symmetrised first, so the
        # result is exactly symmetric
        def tile(box):
            i0, i1, j0, j1 = box
            S = At[i0:i1] @ At[j0:j1].T
            if i0 == j0:
                S = (S + S.T).mul_(0.5)
            T = T_out[i0:i1, j0:j1] if want_ntk else None
            kernels(S, T, i0, i1, j0, j1)
            K_out[i0:i1, j0:j1].copy_(S)
            if i0 != j0:
                K_out[j0:j1, i0:i1].copy_(S.T)
                if want_ntk:
                    T_out[j0:j1, i0:i1].copy_(T.T)

        tiles = _square_tiles(n1, tile_elements)
    else:
        def tile(box):
            i0, i1, j0, j1 = box
            S = K_out[i0:i1, j0:j1]
            S.copy_(At[i0:i1] @ Bt[j0:j1].T)
            kernels(S, T_out[i0:i1, j0:j1] if want_ntk else None, i0, i1, j0, j1)

        tiles = _tiles(n1, n2, tile_elements)
    _run(tiles, tile, n1 * n2)

    # exact values where the two inputs coincide
    if symmetric:
        dq, dt = _diagonal(q01, depth, activation, wv, bv)
        idx = np.arange(n1)
        nngp[idx, idx] = dq
        if want_ntk:
            ntk[idx, idx] = dt
    else:
        columns: dict[bytes, list[int]] = {}
        for j in range(n2):
            columns.setdefault(X2[j].tobytes(), []).append(j)
        hits = [(i, columns[key]) for i in range(n1) if (key := X1[i].tobytes()) in columns]
        if hits:
            dq, dt = _diagonal(q01[[i for i, _ in hits]], depth, activation, wv, bv)
            for k, (i, cols) in enumerate(hits):
                nngp[i, cols] = dq[k]
                if want_ntk:
                    ntk[i, cols] = dt[k]
    return nngp, ntk


def mlp_kernels(
    X1,
    X2=None,
    depth: int = 1,
    activation: str = "relu",
    weight_var: float = 2.0,
    bias_var: float = 0.0,
) -> MLPKernels:
    """NNGP and NTK of a fully connected network of infinite width, in one pass.

    Parameters
    ----------
    X1 : array_like, shape (n1, d)
        Inputs (float64).
    X2 : array_like, shape (n2, d), optional
        Second set of inputs; ``None`` means ``X1`` (symmetric Gram matrix, computed on the
        upper triangle only, with an exact diagonal).
    depth : int
        Number of hidden layers (``depth = 1`` is the two-layer network x -> phi(W x) ->
        readout). ``depth = 0`` gives the linear kernel ``weight_var x.x'/d + bias_var``.
        At most ``MAX_DEPTH`` (10,000).
    activation : {"relu", "erf", "linear"}
    weight_var, bias_var : float
        sigma_w^2 > 0 and sigma_b^2 >= 0 of every layer, readout included (NTK
        parameterisation: weights scaled by sqrt(weight_var / fan_in)).

    Returns
    -------
    MLPKernels
        ``nngp`` and ``ntk``, each (n1, n2) float64 arrays. A kernel that would overflow
        float64 (inputs near 1e150 or beyond, or ``weight_var ** depth`` out of range) raises
        ValueError naming ``X1`` rather than returning inf/NaN.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((5, 3))
    >>> k = mlp_kernels(X, depth=2)
    >>> k.ntk.shape, bool(np.allclose(k.ntk, k.ntk.T))
    ((5, 5), True)
    """
    X1, X2, depth, activation, wv, bv = _check_inputs(X1, X2, depth, activation, weight_var, bias_var)
    nngp, ntk = _compute_checked(X1, X2, depth, activation, wv, bv, want_ntk=True)
    return MLPKernels(nngp=nngp, ntk=ntk)


def nngp_mlp(X1, X2=None, depth: int = 1, activation: str = "relu", weight_var: float = 2.0,
             bias_var: float = 0.0) -> np.ndarray:
    """NNGP kernel (output covariance at initialisation) of an infinitely wide MLP.

    Same parameters and conventions as :func:`mlp_kernels`; returns an (n1, n2) array.
    Cheaper than :func:`mlp_kernels` when only the NNGP is needed.
    """
    X1, X2, depth, activation, wv, bv = _check_inputs(X1, X2, depth, activation, weight_var, bias_var)
    return _compute_checked(X1, X2, depth, activation, wv, bv, want_ntk=False)[0]


def ntk_mlp(X1, X2=None, depth: int = 1, activation: str = "relu", weight_var: float = 2.0,
            bias_var: float = 0.0) -> np.ndarray:
    """Neural tangent kernel of an infinitely wide MLP in NTK parameterisation.

    Same parameters and conventions as :func:`mlp_kernels`; returns an (n1, n2) array.
    """
    X1, X2, depth, activation, wv, bv = _check_inputs(X1, X2, depth, activation, weight_var, bias_var)
    return _compute_checked(X1, X2, depth, activation, wv, bv, want_ntk=True)[1]


def mlp_kernels_of_cosine(cosine, depth: int = 1, activation: str = "relu", weight_var: float = 2.0,
                          bias_var: float = 0.0) -> MLPKernels:
    """NNGP and NTK as functions of the cosine t between two inputs of squared norm d.

    For inputs with ``|x|^2 / d = |x'|^2 / d = 1`` (the sphere of radius sqrt(d)) and
    ``x.x'/d = t``, the kernels of :func:`mlp_kernels` depend on t only; this evaluates them
    on any array of t in [-1, 1] (e.g. quadrature nodes for
    :func:`lmech.spectra.dot_product_kernel_spectrum`). Returns arrays of t's shape.
    """
    t = check_array(cosine, "cosine")
    if np.any(np.abs(t) > 1.0):
        fail("cosine", "in [-1, 1]", t)
    _, _, depth, activation, wv, bv = _check_inputs(np.zeros((1, 1)), None, depth, activation, weight_var, bias_var)
    S = torch.from_numpy(np.array(t, dtype=np.float64).reshape(1, -1))
    T = torch.empty_like(S)
    q = np.array([wv + bv])
    if activation == "relu" and bv == 0.0:
        one = torch.ones((1, 1), dtype=torch.float64)
        try:
            scale = (wv / 2.0) ** depth * wv
        except OverflowError:
            scale = math.inf
        if not math.isfinite(scale):
            fail("weight_var", f"such that (weight_var/2)**depth fits in float64 (depth = {depth})", wv)
        _block_relu_homogeneous(S, T, depth, one * scale, one.expand(1, S.shape[1]))
    else:
        qs = [torch.from_numpy(v).reshape(1, 1) for v in _variances(q, depth, activation, wv, bv)]
        S.mul_(wv).add_(bv)
        _block_general(S, T, qs, qs, depth, activation, wv, bv)
    nngp, ntk = S.numpy().reshape(t.shape), T.numpy().reshape(t.shape)
    exact = t == 1.0
    if np.any(exact):  # the arc-cosine at rho = 1 from the variance recursion, not a rounded rho
        dq, dt = _diagonal(q, depth, activation, wv, bv)
        nngp, ntk = np.where(exact, dq[0], nngp), np.where(exact, dt[0], ntk)
    if not (np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))):
        fail("weight_var", f"such that the kernel fits in float64 (depth = {depth}, bias_var = {bv:g})", wv)
    return MLPKernels(nngp=nngp, ntk=ntk)
