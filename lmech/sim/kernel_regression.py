"""Simulators of kernel ridge regression and of wide networks trained to convergence.

These produce what :mod:`lmech.theory.kernel_curves` predicts, by running the real system:

* :func:`gaussian_feature_regression` -- ridge regression on Gaussian features
  x_k = sqrt(lam_k) z_k, whose linear kernel has exactly the eigen-system (lam_k, z_k). The
  error of every fit is computed exactly from its learned coefficients (no test sample).
* :func:`population_kernel_regression` -- kernel ridge regression on a finite population
  (a data set as the distribution): training sets are drawn iid (with replacement) from the
  uniform distribution on the N points and the error is measured on all N points, which is
  the exact expectation over that distribution.
* :func:`train_wide_network` -- a finite-width network in NTK parameterisation trained by
  full-batch gradient-type updates on the squared loss from zero initial output.

Ridge convention: kernel-sum, ``f(x) = k(x)^T (K + ridge I)^{-1} y`` with the unnormalised
Gram matrix (for Gaussian features, K = X X^T). ``ridge = 0`` is the minimum-norm interpolant.
Errors of vector targets are summed over outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_int, check_real, check_scale, fail

__all__ = [
    "WideNetworkCurve",
    "rotated_test_overlap",
    "wide_network_curve",
    "KRRSimulation",
    "gaussian_feature_regression",
    "population_kernel_regression",
    "WideNetworkFit",
    "train_wide_network",
]


@dataclass(frozen=True)
class KRRSimulation:
    """Errors of kernel ridge regression over random training sets.

    Attributes
    ----------
    P : ndarray, shape (n_P,)
    ridge : float
    generalization_error : ndarray, shape (n_P, n_trials)
        Error against the clean target of each fit (exact expectation over the test
        distribution).
    training_error : ndarray, shape (n_P, n_trials)
        Mean squared residual on the (noisy) training labels.
    mode_errors : ndarray, shape (n_P, M) or None
        Mean over trials of the squared coefficient error on each eigenmode (where the
        eigenbasis is known).
    mean_coefficients : ndarray, shape (n_P, M) or (n_P, M, C), or None
        Mean over trials of the learned coefficients.
    ood_error : ndarray, shape (n_P, n_trials) or None
        Error under the test distribution given by ``test_overlap`` / ``test_weights``.
    seed : int
    """

    P: np.ndarray
    ridge: float
    generalization_error: np.ndarray
    training_error: np.ndarray
    mode_errors: np.ndarray | None
    mean_coefficients: np.ndarray | None
    ood_error: np.ndarray | None
    seed: int

    @property
    def mean(self) -> np.ndarray:
        """Mean generalisation error over trials, shape (n_P,)."""
        return self.generalization_error.mean(axis=1)

    @property
    def sem(self) -> np.ndarray:
        """Standard error of :attr:`mean`, shape (n_P,)."""
        n = self.generalization_error.shape[1]
        return self.generalization_error.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(self.P))


def _check_sizes(P, name="P"):
    P_arr = check_array(P, name, ndim=(0, 1), positive=True, min_size=1)
    P_arr = np.atleast_1d(P_arr)
    if np.any(P_arr != np.round(P_arr)):
        fail(name, "integers (training-set sizes)", P_arr)
    if np.any(P_arr > MAX_SIZE):
        fail(name, f"at most {MAX_SIZE:.0e} (a size cap far above real use)", P_arr)
    return P_arr.astype(np.int64)


def _solve_ridge(K: torch.Tensor, Y: torch.Tensor, ridge: float) -> torch.Tensor:
    """(K + ridge I)^{-1} Y for a batch of PSD K (T, P, P), Y (T, P, C).

    Batched Cholesky; a matrix that is numerically singular (ridge = 0 with repeated points,
    or at an interpolation threshold) is solved instead with the pseudo-inverse from its
    eigen-decomposition (LAPACK-style cutoff), i.e. the ridge -> 0 limit, the minimum-norm
    solution.
    """
    A = K + ridge * torch.eye(K.shape[-1], dtype=K.dtype) if ridge > 0 else K
    L, info = torch.linalg.cholesky_ex(A)
    out = torch.cholesky_solve(Y, L)
    bad = (info != 0) | ~torch.isfinite(out).flatten(1).all(dim=1)
    if torch.any(bad):
        w, U = torch.linalg.eigh(A[bad])
        cut = w.amax(dim=-1, keepdim=True).clamp(min=0) * A.shape[-1] * torch.finfo(A.dtype).eps
        inv = torch.where(w > cut, 1.0 / torch.where(w > cut, w, torch.ones_like(w)), torch.zeros_like(w))
        out[bad] = U @ (inv.unsqueeze(-1) * (U.transpose(-1, -2) @ Y[bad]))
    return out


def _generator(seed: int, *keys: int) -> torch.Generator:
    ss = np.random.SeedSequence([int(seed), *map(int, keys)])
    return torch.Generator().manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))


def gaussian_feature_regression(
    eigenvalues,
    target_coefficients,
    P,
    ridge: float = 0.0,
    noise: float = 0.0,
    *,
    n_trials: int = 20,
    seed: int = 0,
    test_overlap=None,
    max_batch_elements: int = 8_000_000,
    progress: bool = False,
) -> KRRSimulation:
    """Kernel ridge regression with Gaussian features of a given spectrum, errors exact.

    Features x = sqrt(lam) * z with z ~ N(0, I_M), so the linear kernel x.x' has eigenvalues
    lam_k and eigenfunctions phi_k(x) = z_k under the feature distribution. Labels
    y = z . v + eps, eps ~ N(0, noise). The fit's coefficient on phi_k is
    c_k = sqrt(lam_k) w_k and its generalisation error is exactly sum_k (c_k - v_k)^2.

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        > 0 (a zero-variance feature carries no information; drop it or use the theory's
        unlearnable power).
    target_coefficients : array_like, shape (M,) or (M, C)
    P : int or array_like of int
        Training-set sizes.
    ridge : float
        Kernel-sum convention, >= 0.
    noise : float
        Label-noise variance per output.
    n_trials : int
        Independent training sets per P.
    seed : int
        Same seed, same numbers. Each P has its own stream, so adding sizes does not change
        the others.
    test_overlap : array_like, shape (M, M), optional
        O_kl = E_q[phi_k phi_l] of a shifted test distribution; the OOD error
        (c - v)^T O (c - v) is then returned too.
    max_batch_elements : int
        Caps the trials processed at once (T * P * M features in memory).
    progress : bool
        Show a progress bar over P.
    """
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, positive=True, min_size=1)
    v = check_array(target_coefficients, "target_coefficients", max_abs=MAX_MAGNITUDE, ndim=(1, 2))
    if v.shape[0] != lam.shape[0]:
        fail("target_coefficients", f"of first dimension {lam.shape[0]} like `eigenvalues`", v)
    V = torch.from_numpy(v.reshape(lam.shape[0], -1).copy())
    sizes = _check_sizes(P)
    ridge = check_real(ridge, "ridge", lo=0)
    noise = check_real(noise, "noise", lo=0)
    n_trials = check_int(n_trials, "n_trials", lo=1, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0)
    O = None
    if test_overlap is not None:
        O = torch.from_numpy(check_array(test_overlap, "test_overlap", shape=(lam.shape[0], lam.shape[0])))
    M, C = V.shape
    sq = torch.from_numpy(np.sqrt(lam))
    gen_err = np.empty((len(sizes), n_trials))
    train_err = np.empty((len(sizes), n_trials))
    ood = np.empty((len(sizes), n_trials)) if O is not None else None
    mode_err = np.zeros((len(sizes), M))
    mean_coef = np.zeros((len(sizes), M, C))
    for i, p in enumerate(tqdm(sizes, desc="gaussian features", disable=not progress)):
        p = int(p)
        gen = _generator(seed, p)
        batch = max(1, min(n_trials, max_batch_elements // (p * M)))
        for t0 in range(0, n_trials, batch):
            T = min(batch, n_trials - t0)
            Z = torch.randn(T, p, M, generator=gen, dtype=torch.float64)
            eps = torch.randn(T, p, C, generator=gen, dtype=torch.float64) * np.sqrt(noise)
            Y = Z @ V + eps
            X = Z * sq
            if p <= M:  # dual: alpha = (X X^T + r I)^{-1} y, w = X^T alpha
                K = X @ X.transpose(1, 2)
                alpha = _solve_ridge(K, Y, ridge)
                W = X.transpose(1, 2) @ alpha
                fit = K @ alpha
            else:  # primal: w = (X^T X + r I)^{-1} X^T y (same estimator)
                W = _solve_ridge(X.transpose(1, 2) @ X, X.transpose(1, 2) @ Y, ridge)
                fit = X @ W
            coef = W * sq[:, None]  # (T, M, C)
            D = coef - V
            gen_err[i, t0:t0 + T] = (D**2).sum(dim=(1, 2)).numpy()
            train_err[i, t0:t0 + T] = ((fit - Y) ** 2).sum(dim=2).mean(dim=1).numpy()
            mode_err[i] += (D**2).sum(dim=2).sum(dim=0).numpy()
            mean_coef[i] += coef.sum(dim=0).numpy()
            if O is not None:
                ood[i, t0:t0 + T] = torch.einsum("tkc,kl,tlc->t", D, O, D).numpy()
    mean_coef /= n_trials
    return KRRSimulation(
        P=sizes, ridge=ridge, generalization_error=gen_err, training_error=train_err,
        mode_errors=mode_err / n_trials, mean_coefficients=mean_coef[..., 0] if v.ndim == 1 else mean_coef,
        ood_error=ood, seed=seed,
    )


def population_kernel_regression(
    gram,
    targets,
    P,
    ridge: float = 0.0,
    noise: float = 0.0,
    *,
    n_trials: int = 20,
    seed: int = 0,
    test_weights=None,
    replace: bool = False,
    max_batch_elements: int = 10_000_000,
    progress: bool = False,
) -> KRRSimulation:
    """Kernel ridge regression on a finite population, error over the whole population.

    The population (e.g. a whole data set) is the data distribution: each training set is
    P points drawn from the N points, labels are ``targets`` plus N(0, noise) noise, and the
    error of the fit is the mean over all N points of the squared error against the clean
    targets -- exactly its expectation under the uniform distribution on the points.

    Sampling is without replacement by default. The theory is derived for iid draws but, like
    any Gaussian-equivalent theory, it does not see repeated points, which iid draws from a
    finite set produce; without replacement the simulation is closer to it (ReLU NTK on
    scikit-learn digits, ridge 0: theory below the simulation by 4 % / 8 % at P = 200 / 400
    without replacement, by 9 % / 19 % with). Either way keep P well below N (P <~ N/4).

    Parameters
    ----------
    gram : array_like, shape (N, N)
        Kernel Gram matrix of the population.
    targets : array_like, shape (N,) or (N, C)
        Clean targets (e.g. centred one-hot labels); errors are summed over outputs.
    P : int or array_like of int
    ridge : float
        Kernel-sum convention (added to the P x P training Gram matrix), >= 0.
    noise : float
        Label-noise variance per output.
    n_trials, seed, progress
        As in :func:`gaussian_feature_regression`.
    test_weights : array_like, shape (N,), optional
        Non-negative weights of a shifted test distribution q on the same points; the
        weighted error is returned as ``ood_error``.
    replace : bool
        Draw training points with replacement (iid) or without (default).
    max_batch_elements : int
        Caps the trials processed at once (T * N * P entries of the cross Gram matrix).
    """
    K = check_array(gram, "gram", max_abs=MAX_MAGNITUDE, ndim=2)
    N = K.shape[0]
    if K.shape != (N, N):
        fail("gram", "square", K)
    y = check_array(targets, "targets", max_abs=MAX_MAGNITUDE, ndim=(1, 2))
    if y.shape[0] != N:
        fail("targets", f"of first dimension {N} like `gram`", y)
    Yc = torch.from_numpy(y.reshape(N, -1).copy())
    sizes = _check_sizes(P)
    if not replace and sizes.max() > N:
        fail("P", f"<= {N} when sampling without replacement", sizes)
    ridge = check_real(ridge, "ridge", lo=0)
    noise = check_real(noise, "noise", lo=0)
    n_trials = check_int(n_trials, "n_trials", lo=1, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0)
    q = None
    if test_weights is not None:
        w = check_array(test_weights, "test_weights", shape=(N,), nonnegative=True)
        if w.sum() <= 0:
            fail("test_weights", "not all zero", w)
        q = torch.from_numpy(w / w.sum())
    Kt = torch.from_numpy(np.ascontiguousarray(K))
    C = Yc.shape[1]
    gen_err = np.empty((len(sizes), n_trials))
    train_err = np.empty((len(sizes), n_trials))
    ood = np.empty((len(sizes), n_trials)) if q is not None else None
    for i, p in enumerate(tqdm(sizes, desc="kernel regression", disable=not progress)):
        p = int(p)
        gen = _generator(seed, p)
        batch = max(1, min(n_trials, max_batch_elements // (p * N)))
        for t0 in range(0, n_trials, batch):
            T = min(batch, n_trials - t0)
            if replace:
                idx = torch.randint(0, N, (T, p), generator=gen)
            else:
                idx = torch.argsort(torch.rand(T, N, generator=gen), dim=1)[:, :p]
            eps = torch.randn(T, p, C, generator=gen, dtype=torch.float64) * np.sqrt(noise)
            Ytr = Yc[idx] + eps  # (T, p, C)
            Ktr = Kt[idx[:, :, None], idx[:, None, :]]  # (T, p, p)
            alpha = _solve_ridge(Ktr, Ytr, ridge)
            cross = Kt[:, idx].permute(1, 0, 2)  # (T, N, p)
            pred = cross @ alpha  # (T, N, C)
            sq_err = ((pred - Yc) ** 2).sum(dim=2)  # (T, N)
            gen_err[i, t0:t0 + T] = sq_err.mean(dim=1).numpy()
            fit = torch.gather(pred, 1, idx[:, :, None].expand(T, p, C))
            train_err[i, t0:t0 + T] = ((fit - Ytr) ** 2).sum(dim=2).mean(dim=1).numpy()
            if q is not None:
                ood[i, t0:t0 + T] = (sq_err @ q).numpy()
    return KRRSimulation(P=sizes, ridge=ridge, generalization_error=gen_err, training_error=train_err,
                         mode_errors=None, mean_coefficients=None, ood_error=ood, seed=seed)


# --------------------------------------------------------------------------- wide networks
@dataclass(frozen=True)
class WideNetworkFit:
    """A network trained to (near) zero training loss.

    Attributes
    ----------
    predictions : ndarray, shape (n_test, C)
        f(x) - f_0(x) on the test inputs (the initial function is subtracted, so the network
        starts from zero output).
    train_loss : float
        Final mean squared training residual (summed over outputs).
    relative_train_loss : float
        ``train_loss`` divided by the mean squared training label.
    steps : int
        Optimiser iterations used.
    converged : bool
        True when ``relative_train_loss <= tol``.
    """

    predictions: np.ndarray
    train_loss: float
    relative_train_loss: float
    steps: int
    converged: bool


def train_wide_network(
    X_train,
    y_train,
    X_test,
    *,
    width: int = 4096,
    depth: int = 1,
    activation: str = "relu",
    weight_var: float = 2.0,
    bias_var: float = 0.0,
    seed: int = 0,
    tol: float = 1e-6,
    max_steps: int = 2000,
) -> WideNetworkFit:
    """Train an :class:`lmech.kernels.NTKMLP` on the squared loss to (near) interpolation.

    The network's initial function is subtracted (``f - f_0``), so training starts from zero
    output and an infinitely wide network would converge to kernel regression with the NTK
    at ridge 0 (Jacot, Gabriel & Hongler; Bordelon, Canatar & Pehlevan, "Spectrum Dependent
    Learning Curves ..."). Optimisation is full-batch L-BFGS with strong-Wolfe line search:
    like gradient descent, its updates are combinations of gradients, so in the linearised
    (lazy) regime it reaches the same minimum-norm interpolant, only in far fewer steps.

    Parameters
    ----------
    X_train : array_like, shape (P, d)
    y_train : array_like, shape (P,) or (P, C)
    X_test : array_like, shape (n_test, d)
    width, depth, activation, weight_var, bias_var
        Network (see :class:`lmech.kernels.NTKMLP`).
    seed : int
        Initialisation seed.
    tol : float
        Stop when the training MSE is below ``tol`` times the mean squared label.
    max_steps : int
        Cap on L-BFGS iterations; ``converged`` says whether ``tol`` was met.
    """
    from lmech.kernels import NTKMLP

    Xtr = check_array(X_train, "X_train", ndim=2, min_size=1)
    y = check_array(y_train, "y_train", ndim=(1, 2))
    if y.shape[0] != Xtr.shape[0]:
        fail("y_train", f"of first dimension {Xtr.shape[0]} like X_train", y)
    Xte = check_array(X_test, "X_test", ndim=2, min_size=1)
    if Xte.shape[1] != Xtr.shape[1]:
        fail("X_test", f"of shape (n, {Xtr.shape[1]})", Xte)
    tol = check_real(tol, "tol", lo=0, lo_closed=False)
    max_steps = check_int(max_steps, "max_steps", lo=1)
    Y = torch.from_numpy(y.reshape(len(y), -1).copy())
    net = NTKMLP(Xtr.shape[1], width, depth, n_out=Y.shape[1], activation=activation, weight_var=weight_var,
                 bias_var=bias_var, seed=seed)
    A, B = torch.from_numpy(Xtr), torch.from_numpy(Xte)
    with torch.no_grad():
        f0_train, f0_test = net(A), net(B)
    scale = float((Y**2).sum(dim=1).mean())
    scale = scale if scale > 0 else 1.0
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=max_steps, history_size=50,
                            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    state = {"loss": np.inf, "steps": 0}

    def closure():
        opt.zero_grad()
        loss = ((net(A) - f0_train - Y) ** 2).sum(dim=1).mean()
        value = loss.item()
        state["loss"] = value
        state["steps"] += 1
        if value <= tol * scale:  # stop L-BFGS: no gradient means no further step
            return loss.detach() * 0
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = float(((net(A) - f0_train - Y) ** 2).sum(dim=1).mean())
        pred = (net(B) - f0_test).numpy()
    return WideNetworkFit(predictions=pred, train_loss=final, relative_train_loss=final / scale,
                          steps=state["steps"], converged=final <= tol * scale)


@dataclass(frozen=True)
class WideNetworkCurve:
    """Test error of trained wide networks against P, with kernel regression as control variate.

    ``mean`` is, per P, the mean over networks of (network error - KRR error on the same
    training set) plus the mean KRR error over many training sets: its expectation is the
    network's, with most of the training-set sampling noise removed. ``raw_mean`` is the
    plain network average; ``krr`` the many-set kernel-regression simulation;
    ``max_gap`` the largest ``|net / KRR - 1|`` on a shared training set.
    """

    P: np.ndarray
    mean: np.ndarray
    raw_mean: np.ndarray
    difference: np.ndarray
    krr: KRRSimulation
    max_gap: float
    converged: bool


def wide_network_curve(K, X, Y, P, *, width: int, n_networks: int, n_kernel_trials: int, seed: int = 0,
                       depth: int = 1, tol: float = 1e-8) -> WideNetworkCurve:
    """Networks of ``width`` trained to zero training loss on random subsets of a population.

    ``K`` is the population's infinite-width NTK Gram matrix (its kernel regression is the
    control variate), ``X``/``Y`` the population's inputs and targets; errors are measured on
    every point of the population and summed over outputs.
    """
    K = check_array(K, "K", max_abs=MAX_MAGNITUDE, ndim=2)
    Y = np.asarray(Y, dtype=np.float64)
    sizes = _check_sizes(P)
    n_networks = check_int(n_networks, "n_networks", lo=1)
    ss = np.random.SeedSequence(check_int(seed, "seed", lo=0))
    krr_seed, rng_seq, net_seq = ss.spawn(3)
    krr = population_kernel_regression(K, Y, sizes, 0.0, n_trials=n_kernel_trials,
                                       seed=int(krr_seed.generate_state(1)[0] >> 1))
    rng = np.random.default_rng(rng_seq)
    net_seeds = net_seq.generate_state(n_networks * len(sizes)) >> 1
    N = len(Y)
    mean, raw, diff, gap, converged = [], [], [], [], True
    for i, p in enumerate(sizes):
        diffs, raws = [], []
        for t in range(n_networks):
            idx = rng.choice(N, size=int(p), replace=False)
            fit = train_wide_network(X[idx], Y[idx], X, width=width, depth=depth,
                                     seed=int(net_seeds[i * n_networks + t]), tol=tol)
            converged &= fit.converged
            e_net = float(((fit.predictions - Y) ** 2).sum(axis=1).mean())
            alpha = np.linalg.solve(K[np.ix_(idx, idx)], Y[idx])
            e_krr = float(((K[:, idx] @ alpha - Y) ** 2).sum(axis=1).mean())
            diffs.append(e_net - e_krr)
            raws.append(e_net)
            gap.append(abs(e_net / e_krr - 1))
        diff.append(np.mean(diffs))
        raw.append(np.mean(raws))
        mean.append(np.mean(diffs) + krr.mean[i])
    return WideNetworkCurve(sizes, np.array(mean), np.array(raw), np.array(diff), krr, float(np.max(gap)),
                            bool(converged))


def rotated_test_overlap(eigenvalues, n_rotated: int, *, test_exponent: float = 1.0, seed: int = 0) -> np.ndarray:
    """Overlap ``O_kl = E_q[phi_k phi_l]`` of a shifted test distribution q of Gaussian features.

    Under q the top ``n_rotated`` feature directions are rotated at random and the spectrum
    becomes ``k^-test_exponent`` (normalised to sum 1), so ``O`` is dense in that block;
    ``phi_k = x_k / sqrt(lam_k)`` are the training eigenfunctions.
    """
    lam = check_scale(check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, positive=True), "eigenvalues")
    m = check_int(n_rotated, "n_rotated", lo=1, hi=len(lam))
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    lt = np.arange(1, len(lam) + 1, dtype=float) ** -check_real(test_exponent, "test_exponent")
    lt /= lt.sum()
    Q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    R = np.eye(len(lam))
    R[:m, :m] = Q
    return (R @ np.diag(lt) @ R.T) / np.sqrt(np.outer(lam, lam))
