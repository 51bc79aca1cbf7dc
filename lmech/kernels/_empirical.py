"""Empirical (finite-width) neural tangent kernel of a torch module via ``torch.func``."""
from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from lmech._validation import check_int, fail

__all__ = ["empirical_ntk"]


def _as_tensor(X, name, dtype):
    if isinstance(X, torch.Tensor):
        t = X.detach().to(dtype)
    else:
        try:
            t = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=dtype)
        except (TypeError, ValueError):
            fail(name, "an array of numbers", X, TypeError)
    if t.ndim < 1 or t.shape[0] == 0:
        fail(name, "a non-empty batch of inputs (first axis = samples)", X)
    if not torch.isfinite(t).all():
        fail(name, "finite", X)
    return t


def empirical_ntk(model: torch.nn.Module, X1, X2=None, *, chunk_size: int = 64) -> np.ndarray:
    """Empirical NTK ``Theta(x, x') = sum_params df(x)/dp . df(x')/dp`` of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch (n, ...) to outputs (n,) or (n, k). Every parameter with
        ``requires_grad`` counts.
    X1 : array_like or Tensor, shape (n1, ...)
    X2 : array_like or Tensor, shape (n2, ...), optional
        ``None`` means ``X1``.
    chunk_size : int
        Number of samples whose Jacobians are held in memory at once.

    Returns
    -------
    ndarray
        (n1, n2) for scalar outputs, (n1, n2, k, k) for k > 1 outputs; in the model's dtype
        promoted to float64.
    """
    if not isinstance(model, torch.nn.Module):
        fail("model", "a torch.nn.Module", model, TypeError)
    chunk_size = check_int(chunk_size, "chunk_size", lo=1)
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        fail("model", "a module with trainable parameters", model)
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    dtype = next(iter(params.values())).dtype
    A = _as_tensor(X1, "X1", dtype)
    B = A if X2 is None else _as_tensor(X2, "X2", dtype)
    if B.shape[1:] != A.shape[1:]:
        fail("X2", f"of per-sample shape {tuple(A.shape[1:])} like X1", X2)

    def f(p, x):
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return out.reshape(-1)  # (k,)

    jac_fn = vmap(jacrev(f), in_dims=(None, 0))

    def jacobian(X):  # (n, k, n_params) flattened over parameters
        J = jac_fn(params, X)
        return torch.cat([j.reshape(X.shape[0], j.shape[1], -1) for j in J.values()], dim=2)

    with torch.no_grad():
        JB_parts = [jacobian(B[s:s + chunk_size]) for s in range(0, B.shape[0], chunk_size)]
        JB = torch.cat(JB_parts, dim=0)  # (n2, k, p)
        rows = []
        for s in range(0, A.shape[0], chunk_size):
            JA = JB[s:s + chunk_size] if X2 is None else jacobian(A[s:s + chunk_size])
            rows.append(torch.einsum("akp,blp->abkl", JA, JB))
        K = torch.cat(rows, dim=0).to(torch.float64).numpy()
    return K[:, :, 0, 0] if K.shape[2] == 1 else K
