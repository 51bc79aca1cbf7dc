"""The lazy (static-kernel) limit of gradient descent in function space.

As the richness ``gamma0 -> 0`` the DMFT's kernels stay at their initial values and the
training residual of full-batch GD with learning rate ``lr`` on the loss
``(1/2P) sum_mu (y_mu - f_mu)^2`` follows ``Delta(t+1) = (I - (lr/P) K) Delta(t)``,
``Delta(0) = y`` (a network started at zero output), where ``K`` is the NTK on the training
points ("Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural
Networks", Bordelon & Pehlevan).
"""
from __future__ import annotations

import numpy as np

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, fail

__all__ = ["static_kernel_gd"]


def static_kernel_gd(K, y, *, lr: float, steps: int) -> np.ndarray:
    """Training loss of full-batch GD under a fixed kernel, steps ``0..steps``.

    Parameters
    ----------
    K : array, shape (P, P)
        The (static) kernel on the training points.
    y : array, shape (P,)
        Training targets (the residual at step 0).
    lr : float
        Function-space learning rate (> 0); one step is ``Delta <- Delta - (lr/P) K Delta``.
    steps : int
        Number of GD steps (>= 0).

    Returns
    -------
    ndarray, shape (steps + 1,)
        ``(1/2P) |Delta(t)|^2``.
    """
    ya = check_array(y, "y", max_abs=MAX_MAGNITUDE, ndim=1, min_size=1)
    Ka = check_array(K, "K", max_abs=MAX_MAGNITUDE, ndim=2)
    P = ya.shape[0]
    if Ka.shape != (P, P):
        fail("K", f"of shape ({P}, {P}) to match y", Ka)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    n = check_int(steps, "steps", lo=0, hi=MAX_SIZE)
    delta = [ya]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(n):
            delta.append(delta[-1] - eta / P * Ka @ delta[-1])
        loss = 0.5 * np.mean(np.asarray(delta) ** 2, axis=1)
    if not np.all(np.isfinite(loss)):
        top = float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (Ka + Ka.T)))))
        fail("lr", f"small enough that gradient descent stays within float64 (it diverged; it is "
             f"stable for lr < 2 P / max|eig K| = {2 * P / top:.3g})", lr)
    return loss
