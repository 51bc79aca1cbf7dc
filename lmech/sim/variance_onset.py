"""Simulators for "The Onset of Variance-Limited Behavior for Networks in the Lazy and Rich Regimes".

* :func:`simulate_noisy_features` -- the paper's toy model as a real regression problem:
  Gaussian signal features s ~ N(0, diag(lam)) plus independent feature noise
  n ~ N(0, diag(eta)), labels y = w* . s, ridgeless (min-norm) least squares on psi = s + n,
  test error computed exactly from the covariances.
* :func:`sphere_task` -- polynomial regression on the sphere S^{d-1}: a degree-k
  Gegenbauer target P_k(beta . x) normalised to unit variance.
* :func:`ntk_learning_curves` -- lazy two-layer ReLU networks of several widths: kernel
  regression with the empirical NTK at initialisation (the t -> inf limit of training the
  linearised network from zero output), single networks and ensembles, paired with
  infinite-width NTK regression on the same datasets (the analytic kernel is
  :func:`lmech.kernels.ntk_mlp`).
* :func:`train_relu_network` -- actual full-batch gradient descent of the two-layer ReLU
  network f(x) = (alpha / sqrt(N)) sum_i a_i relu(w_i . x) with its initial output
  subtracted, in PyTorch; alpha large is lazy, small alpha is rich (feature learning).
* :func:`final_ntk_curves` -- ensembles of such networks trained on P samples, their
  ensemble-averaged test error, and the spectra (on a fixed sample) of their mean initial and
  final empirical NTKs, for the kernel learning-curve theory with the final NTK.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import comb, eval_gegenbauer

from lmech._validation import MAX_SIZE, check_array, check_int, check_real, fail
from lmech.kernels import ntk_mlp

__all__ = [
    "NoisyFeatureSimulation",
    "simulate_noisy_features",
    "SphereTask",
    "sphere_task",
    "NTKCurves",
    "ntk_learning_curves",
    "NetworkRun",
    "train_relu_network",
    "FinalNTKCurves",
    "final_ntk_curves",
]


# --------------------------------------------------------------------------- toy model
@dataclass(frozen=True)
class NoisyFeatureSimulation:
    """Measured test errors of ridgeless regression on noisy Gaussian features."""

    P: np.ndarray
    error: np.ndarray
    error_se: np.ndarray
    errors: np.ndarray


def simulate_noisy_features(eigenvalues, target_power, P, *, noise_eigenvalues, draws: int = 20,
                            seed: int = 0) -> NoisyFeatureSimulation:
    """Ridgeless regression on psi = s + n with s ~ N(0, diag(lam)), n ~ N(0, diag(eta)).

    Labels y = w* . s (w*_k = sqrt(p_k / lam_k)); the min-norm least-squares weights w give
    the exact test error E (w . psi - w* . s)^2 = (w - w*)^T Lambda (w - w*) + w^T H w.

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (M,)
        Signal eigenvalues lam_k > 0 and target powers p_k = lam_k w*_k^2.
    P : array_like of int, shape (n,)
        Training-set sizes.
    noise_eigenvalues : array_like, shape (M,)
        Feature-noise variances eta_k >= 0.
    draws, seed : int
    """
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, positive=True, min_size=1)
    p = check_array(target_power, "target_power", shape=lam.shape, nonnegative=True)
    eta = check_array(noise_eigenvalues, "noise_eigenvalues", shape=lam.shape, nonnegative=True)
    Ps = np.atleast_1d(check_array(P, "P", ndim=(0, 1), positive=True, dtype=np.int64))
    draws = check_int(draws, "draws", lo=1, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0)
    dt = torch.float64
    gen = torch.Generator().manual_seed(seed)
    lam_t, eta_t = torch.as_tensor(lam, dtype=dt), torch.as_tensor(eta, dtype=dt)
    wstar = torch.sqrt(torch.as_tensor(p, dtype=dt) / lam_t)
    out = np.empty((draws, len(Ps)))
    for d in range(draws):
        for j, n in enumerate(Ps):
            S = torch.randn(int(n), len(lam), generator=gen, dtype=dt) * torch.sqrt(lam_t)
            Nz = torch.randn(int(n), len(lam), generator=gen, dtype=dt) * torch.sqrt(eta_t)
            y = S @ wstar
            w = torch.linalg.lstsq(S + Nz, y[:, None], driver="gelsd").solution[:, 0]
            e = w - wstar
            out[d, j] = float(e @ (lam_t * e) + w @ (eta_t * w))
    se = out.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(len(Ps), np.nan)
    return NoisyFeatureSimulation(P=Ps, error=out.mean(0), error_se=se, errors=out)


# --------------------------------------------------------------------------- sphere task
@dataclass(frozen=True)
class SphereTask:
    """Degree-k pure-mode target on the unit sphere S^{d-1}."""

    d: int
    degree: int
    direction: np.ndarray

    def target(self, X: torch.Tensor) -> torch.Tensor:
        """y = sqrt(N(d,k)) * C_k^{(d-2)/2}(beta . x) / C_k^{(d-2)/2}(1): unit variance."""
        a = (self.d - 2) / 2
        z = (X @ torch.as_tensor(self.direction, dtype=X.dtype)).numpy()
        val = eval_gegenbauer(self.degree, a, z) / eval_gegenbauer(self.degree, a, 1.0)
        return torch.as_tensor(np.sqrt(_degeneracy(self.d, self.degree)) * val, dtype=X.dtype)

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        X = torch.randn(n, self.d, generator=gen, dtype=torch.float64)
        X = X / X.norm(dim=1, keepdim=True)
        return X, self.target(X)


def _degeneracy(d: int, k: int) -> float:
    if k == 0:
        return 1.0
    return float((2 * k + d - 2) / k * comb(k + d - 3, k - 1))


def sphere_task(d: int = 10, degree: int = 2, *, seed: int = 0) -> SphereTask:
    """A random unit direction beta (seeded) and the degree-``degree`` Gegenbauer target."""
    d = check_int(d, "d", lo=3, hi=MAX_SIZE)
    degree = check_int(degree, "degree", lo=0)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    b = rng.standard_normal(d)
    return SphereTask(d=d, degree=degree, direction=b / np.linalg.norm(b))


# --------------------------------------------------------------------------- kernels
def _ntk_inf(X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
    """Infinite-width NTK of f = (1/sqrt(N)) sum_i a_i relu(w_i . x), w ~ N(0, I), a ~ N(0, 1).

    On the unit sphere this is Theta(u) = [k1(u) + u k0(u)] / 2 with the arc-cosine kernels
    k0(u) = (pi - arccos u)/pi, k1(u) = (u (pi - arccos u) + sqrt(1 - u^2))/pi, u = x . x'.
    It is :func:`lmech.kernels.ntk_mlp` (depth 1, unit weight variance, no bias) times the
    input dimension d, since here w . x has variance |x|^2 rather than |x|^2 / d.
    ``X2 = None`` gives the exactly symmetric Gram matrix of ``X1``.
    """
    X1 = torch.as_tensor(X1, dtype=torch.float64)
    other = None if X2 is None else torch.as_tensor(X2, dtype=torch.float64).numpy()
    return torch.as_tensor(X1.shape[1] * ntk_mlp(X1.numpy(), other, depth=1, weight_var=1.0))


def _entk(W: torch.Tensor, a: torch.Tensor, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
    """Empirical NTK of f = (1/sqrt(N)) sum_i a_i relu(w_i . x) at parameters (W, a)."""
    N = W.shape[0]
    H1, H2 = X1 @ W.T, X2 @ W.T
    R1, R2 = torch.relu(H1), torch.relu(H2)
    D1, D2 = (H1 > 0).to(X1.dtype) * a, (H2 > 0).to(X1.dtype) * a
    return (R1 @ R2.T + (D1 @ D2.T) * (X1 @ X2.T)) / N


def _kernel_predict(K_train, K_test_train, y, jitter):
    """Ridgeless kernel regression (tiny relative jitter for conditioning)."""
    n = K_train.shape[0]
    reg = jitter * torch.trace(K_train) / n
    L = torch.linalg.cholesky(K_train + reg * torch.eye(n, dtype=K_train.dtype))
    coef = torch.cholesky_solve(y[:, None], L)[:, 0]
    return K_test_train @ coef


@dataclass(frozen=True)
class NTKCurves:
    """Learning curves of lazy finite-width networks (empirical NTK regression) and NTK_inf.

    Attributes
    ----------
    P : ndarray, shape (n,)
    widths : ndarray, shape (W,)
    error_inf : ndarray, shape (n,)
        Infinite-width NTK regression error, mean over datasets.
    error_single : ndarray, shape (W, n)
        Mean error of single networks (over datasets and initialisations).
    error_ensemble : ndarray, shape (W, n)
        Error of the predictor averaged over ``ensemble`` initialisations (mean over datasets).
    error_single_se : ndarray, shape (W, n)
    """

    P: np.ndarray
    widths: np.ndarray
    error_inf: np.ndarray
    error_single: np.ndarray
    error_ensemble: np.ndarray
    error_single_se: np.ndarray
    settings: dict = field(default_factory=dict)


def ntk_learning_curves(task: SphereTask, widths, P, *, datasets: int = 4, ensemble: int = 4, n_test: int = 2000,
                        seed: int = 0, jitter: float = 1e-10) -> NTKCurves:
    """Lazy two-layer ReLU networks of several widths vs the infinite-width NTK, same data.

    For each dataset (P points) and each initialisation (W ~ N(0, I), a ~ N(0, 1)), the
    network trained to convergence in the lazy regime from zero output is kernel regression
    with its empirical NTK at initialisation. Errors are measured on ``n_test`` fresh points.

    Parameters
    ----------
    task : SphereTask
    widths : array_like of int, shape (W,)
    P : array_like of int, shape (n,)
    datasets, ensemble, n_test, seed : int
        Datasets per P, initialisations per dataset (also the ensemble size), test points.
    jitter : float
        Relative ridge added for numerical stability (trace-normalised).
    """
    if not isinstance(task, SphereTask):
        fail("task", "a SphereTask (see sphere_task)", task, TypeError)
    Ns = check_array(widths, "widths", ndim=1, positive=True, dtype=np.int64)
    Ps = check_array(P, "P", ndim=1, positive=True, dtype=np.int64)
    datasets = check_int(datasets, "datasets", lo=1)
    ensemble = check_int(ensemble, "ensemble", lo=1)
    n_test = check_int(n_test, "n_test", lo=10)
    seed = check_int(seed, "seed", lo=0)
    jitter = check_real(jitter, "jitter", lo=0)
    gen = torch.Generator().manual_seed(seed)
    Xt, yt = task.sample(n_test, gen)
    e_inf = np.zeros(len(Ps))
    e_one = np.zeros((len(Ns), len(Ps), datasets * ensemble))
    e_ens = np.zeros((len(Ns), len(Ps)))
    for j, n in enumerate(Ps):
        for ds in range(datasets):
            X, y = task.sample(int(n), gen)
            pred = _kernel_predict(_ntk_inf(X), _ntk_inf(Xt, X), y, jitter)
            e_inf[j] += float(((pred - yt) ** 2).mean()) / datasets
            for i, N in enumerate(Ns):
                preds = []
                for e in range(ensemble):
                    W = torch.randn(int(N), task.d, generator=gen, dtype=torch.float64)
                    a = torch.randn(int(N), generator=gen, dtype=torch.float64)
                    pr = _kernel_predict(_entk(W, a, X, X), _entk(W, a, Xt, X), y, jitter)
                    e_one[i, j, ds * ensemble + e] = float(((pr - yt) ** 2).mean())
                    preds.append(pr)
                e_ens[i, j] += float(((torch.stack(preds).mean(0) - yt) ** 2).mean()) / datasets
    cnt = datasets * ensemble
    se = e_one.std(-1, ddof=1) / np.sqrt(cnt) if cnt > 1 else np.full(e_one.shape[:2], np.nan)
    return NTKCurves(P=Ps, widths=Ns, error_inf=e_inf, error_single=e_one.mean(-1), error_ensemble=e_ens,
                     error_single_se=se, settings=dict(d=task.d, degree=task.degree, datasets=datasets,
                                                       ensemble=ensemble, n_test=n_test, seed=seed))


# --------------------------------------------------------------------------- trained networks
@dataclass(frozen=True)
class NetworkRun:
    """A two-layer ReLU network trained to interpolation by full-batch gradient descent.

    Attributes
    ----------
    test_error : float
        E_g of the trained network (initial output subtracted) on the test set.
    final_ntk_error : float
        E_g of ridgeless kernel regression with the network's final empirical NTK.
    initial_ntk_error : float
        E_g of ridgeless kernel regression with the empirical NTK at initialisation.
    train_loss : float
        Final training MSE.
    steps : int
    prediction : ndarray, shape (n_test,)
        Network outputs on the test points.
    """

    test_error: float
    final_ntk_error: float
    initial_ntk_error: float
    train_loss: float
    steps: int
    prediction: np.ndarray


def train_relu_network(task: SphereTask, X: torch.Tensor, y: torch.Tensor, X_test: torch.Tensor, y_test: torch.Tensor,
                       *, width: int, alpha: float = 1.0, seed: int = 0, max_steps: int = 20000,
                       train_tol: float = 1e-6, lr_scale: float = 0.9, jitter: float = 1e-10) -> NetworkRun:
    """Train f(x) = alpha/sqrt(N) sum_i a_i relu(w_i . x) - f_0(x) by full-batch GD on the MSE.

    NTK parameterisation with output scale ``alpha`` (large alpha: lazy; small alpha: rich,
    features move by O(1/alpha)); both layers are trained with learning rate
    ``lr_scale * 2 / (alpha^2 lambda_max)``, lambda_max the top eigenvalue of the initial
    empirical NTK Gram matrix / P (so the function-space dynamics are alpha-independent in
    the lazy limit), until the training MSE is below ``train_tol`` or ``max_steps``. When a
    step more than doubles the loss (the kernel sharpened during feature learning) it is
    undone and the learning rate halved.

    Parameters
    ----------
    task : SphereTask
        Only used to validate the input dimension.
    X, y : tensors, shapes (P, d), (P,)
        Training set.
    X_test, y_test : tensors, shapes (n, d), (n,)
        Test set.
    width : int
    alpha : float
    seed : int
    max_steps : int
    train_tol : float
    lr_scale : float
        Fraction of the stability limit 2 / (alpha^2 lambda_max) (< 1).
    jitter : float
        Relative ridge of the kernel regressions.
    """
    if not isinstance(task, SphereTask):
        fail("task", "a SphereTask", task, TypeError)
    width = check_int(width, "width", lo=1)
    alpha = check_real(alpha, "alpha", lo=0, lo_closed=False)
    max_steps = check_int(max_steps, "max_steps", lo=1)
    train_tol = check_real(train_tol, "train_tol", lo=0, lo_closed=False)
    lr_scale = check_real(lr_scale, "lr_scale", lo=0, hi=1, lo_closed=False, hi_closed=False)
    if X.shape[1] != task.d:
        fail("X", f"of shape (P, {task.d})", X)
    gen = torch.Generator().manual_seed(check_int(seed, "seed", lo=0))
    dt = torch.float64
    W = torch.randn(width, task.d, generator=gen, dtype=dt)
    a = torch.randn(width, generator=gen, dtype=dt)
    W0, a0 = W.clone(), a.clone()
    K0 = _entk(W0, a0, X, X)
    lam_max = float(torch.linalg.eigvalsh(K0 / len(y)).max())
    lr = lr_scale * 2.0 / (alpha**2 * lam_max)
    W.requires_grad_(True)
    a.requires_grad_(True)

    def net(params, Z):
        Wp, ap = params
        return alpha * (torch.relu(Z @ Wp.T) @ ap) / np.sqrt(width)

    with torch.no_grad():
        f0_train, f0_test = net((W0, a0), X), net((W0, a0), X_test)
    steps, loss, prev = 0, float("inf"), float("inf")
    for steps in range(1, max_steps + 1):
        out = net((W, a), X) - f0_train
        mse = ((out - y) ** 2).mean()
        loss = float(mse.detach())
        if loss < train_tol:
            break
        if not np.isfinite(loss) or loss > 2.0 * prev:
            # feature learning sharpened the kernel beyond the step size: undo the step, halve lr
            with torch.no_grad():
                W += lr * gW
                a += lr * ga
            lr *= 0.5
            continue
        prev = loss
        gW, ga = torch.autograd.grad(0.5 * mse, (W, a))
        with torch.no_grad():
            W -= lr * gW
            a -= lr * ga
    with torch.no_grad():
        pred = net((W, a), X_test) - f0_test
        err = float(((pred - y_test) ** 2).mean())
        Wf, af = W.detach(), a.detach()
        kf = _kernel_predict(_entk(Wf, af, X, X), _entk(Wf, af, X_test, X), y, jitter)
        k0 = _kernel_predict(K0, _entk(W0, a0, X_test, X), y, jitter)
    return NetworkRun(test_error=err, final_ntk_error=float(((kf - y_test) ** 2).mean()),
                      initial_ntk_error=float(((k0 - y_test) ** 2).mean()), train_loss=loss, steps=steps,
                      prediction=pred.numpy())


# --------------------------------------------------------------------------- final NTK
@dataclass(frozen=True)
class FinalNTKCurves:
    """Trained-network learning curve with the empirical NTKs that go with it.

    Attributes
    ----------
    P : ndarray, shape (n,)
    error_ensemble : ndarray, shape (n,)
        Test error of the predictor averaged over the ensemble, mean over datasets.
    error_ensemble_se : ndarray, shape (n,)
        Standard error over datasets (nan for one dataset).
    error_single : ndarray, shape (n,)
        Mean test error of single networks.
    final_gram, initial_gram : ndarray, shape (n, M, M)
        Empirical NTK Gram matrices on the fixed spectral sample ``X_spectral`` (mean over
        the ensemble members and datasets at each P; the initial one approximates the
        infinite-width NTK).
    X_spectral : ndarray, shape (M, d)
    y_spectral : ndarray, shape (M,)
        Target on the spectral sample.
    train_loss : ndarray, shape (n,)
        Largest final training MSE at each P.
    steps : ndarray, shape (n,)
        Mean number of GD steps.
    """

    P: np.ndarray
    error_ensemble: np.ndarray
    error_ensemble_se: np.ndarray
    error_single: np.ndarray
    final_gram: np.ndarray
    initial_gram: np.ndarray
    X_spectral: np.ndarray
    y_spectral: np.ndarray
    train_loss: np.ndarray
    steps: np.ndarray
    settings: dict = field(default_factory=dict)


def _gd_two_layer(X, y, width, alpha, gen, max_steps, train_tol, lr_scale):
    """Full-batch GD of alpha/sqrt(N) sum a relu(w.x) - f_0 (hand-written gradients).

    Same model and step rule as :func:`train_relu_network` (lr = lr_scale 2/(alpha^2 lam_max),
    lam_max the top eigenvalue of the initial eNTK Gram / P; a step that more than doubles the
    loss is undone and the rate halved). Returns (W, a, W0, a0, train_mse, steps).
    """
    dt = torch.float64
    P = X.shape[0]
    W = torch.randn(width, X.shape[1], generator=gen, dtype=dt)
    a = torch.randn(width, generator=gen, dtype=dt)
    W0, a0 = W.clone(), a.clone()
    lam_max = float(torch.linalg.eigvalsh(_entk(W0, a0, X, X) / P).max())
    lr = lr_scale * 2.0 / (alpha**2 * lam_max)
    c = alpha / np.sqrt(width)
    f0 = c * (torch.relu(X @ W0.T) @ a0)
    tol = train_tol * float((y * y).mean())
    prev, mse, steps = float("inf"), float("inf"), 0
    while steps < max_steps:
        H = X @ W.T
        R = torch.relu(H)
        e = c * (R @ a) - f0 - y
        mse = float((e * e).mean())
        if mse < tol:
            break
        if not np.isfinite(mse) or mse > 2.0 * prev:
            W, a = W_old, a_old
            lr *= 0.5
            prev = float("inf")
            continue
        prev = mse
        steps += 1
        g = (c / P) * e                                          # d(mse/2)/d(output)
        gW = ((g[:, None] * (H > 0)) * a[None, :]).T @ X
        ga = R.T @ g
        W_old, a_old = W, a
        W, a = W - lr * gW, a - lr * ga
    return W, a, W0, a0, mse, steps


def final_ntk_curves(task: SphereTask, P, *, width: int, alpha: float, ensemble: int = 4, datasets: int = 1,
                     n_spectral: int = 600, n_test: int = 1000, seed: int = 0, max_steps: int = 5000,
                     train_tol: float = 1e-3, lr_scale: float = 0.5) -> FinalNTKCurves:
    """Ensembles of trained two-layer ReLU nets and their initial/final empirical NTKs.

    For every P and dataset, ``ensemble`` networks f = alpha/sqrt(N) sum a relu(w . x) - f_0
    (W, a ~ N(0, 1); small alpha = rich) are trained by full-batch GD until the training MSE
    is below ``train_tol`` times the label power (or ``max_steps``). Recorded: the test error
    of the ensemble-mean predictor and of single networks on ``n_test`` fresh points, and
    the eNTK Gram matrices Theta(X_s, X_s) = [R R^T + (D D^T)(X_s X_s^T)] / N of the final and
    initial parameters on a fixed sample X_s of ``n_spectral`` points (R = relu(X_s W^T),
    D = 1[X_s W^T > 0] a; the alpha^2 prefactor is dropped: ridgeless regression is scale
    free), averaged over the ensemble and datasets. Feed the Grams to
    :func:`lmech.spectra.empirical_spectrum` and :func:`lmech.theory.kernel_curves.learning_curve`.

    Cost per network O(steps P N d) plus O(M^2 N) for the Grams.
    """
    if not isinstance(task, SphereTask):
        fail("task", "a SphereTask (see sphere_task)", task, TypeError)
    Ps = check_array(P, "P", ndim=1, positive=True, dtype=np.int64)
    width = check_int(width, "width", lo=1)
    alpha = check_real(alpha, "alpha", lo=0, lo_closed=False)
    ensemble = check_int(ensemble, "ensemble", lo=1)
    datasets = check_int(datasets, "datasets", lo=1)
    n_spectral = check_int(n_spectral, "n_spectral", lo=10)
    n_test = check_int(n_test, "n_test", lo=10)
    seed = check_int(seed, "seed", lo=0)
    max_steps = check_int(max_steps, "max_steps", lo=1)
    train_tol = check_real(train_tol, "train_tol", lo=0, lo_closed=False)
    lr_scale = check_real(lr_scale, "lr_scale", lo=0, hi=1, lo_closed=False, hi_closed=False)
    gen = torch.Generator().manual_seed(seed)
    Xs, ys = task.sample(n_spectral, gen)
    Xt, yt = task.sample(n_test, gen)
    n = len(Ps)
    e_ens = np.zeros((n, datasets))
    e_one = np.zeros(n)
    Kf = np.zeros((n, n_spectral, n_spectral))
    K0 = np.zeros((n, n_spectral, n_spectral))
    tr, st = np.zeros(n), np.zeros(n)
    c_scale = alpha / np.sqrt(width)
    for j, p in enumerate(Ps):
        for ds in range(datasets):
            X, y = task.sample(int(p), gen)
            preds = []
            for _ in range(ensemble):
                W, a, W0, a0, mse, steps = _gd_two_layer(X, y, width, alpha, gen, max_steps, train_tol, lr_scale)
                pr = c_scale * (torch.relu(Xt @ W.T) @ a - torch.relu(Xt @ W0.T) @ a0)
                preds.append(pr)
                e_one[j] += float(((pr - yt) ** 2).mean()) / (datasets * ensemble)
                Kf[j] += _entk(W, a, Xs, Xs).numpy() / (datasets * ensemble)
                K0[j] += _entk(W0, a0, Xs, Xs).numpy() / (datasets * ensemble)
                tr[j] = max(tr[j], mse)
                st[j] += steps / (datasets * ensemble)
            e_ens[j, ds] = float(((torch.stack(preds).mean(0) - yt) ** 2).mean())
    se = e_ens.std(1, ddof=1) / np.sqrt(datasets) if datasets > 1 else np.full(n, np.nan)
    return FinalNTKCurves(P=Ps, error_ensemble=e_ens.mean(1), error_ensemble_se=se, error_single=e_one,
                          final_gram=Kf, initial_gram=K0, X_spectral=Xs.numpy(), y_spectral=ys.numpy(),
                          train_loss=tr, steps=st,
                          settings=dict(d=task.d, degree=task.degree, width=width, alpha=alpha, ensemble=ensemble,
                                        datasets=datasets, n_spectral=n_spectral, n_test=n_test, seed=seed,
                                        max_steps=max_steps, train_tol=train_tol, lr_scale=lr_scale))
