"""Deep linear self-attention trained on in-context linear regression (PyTorch).

The real system of Bordelon, Letey & Pehlevan, "Theory of Scaling Laws for In-Context
Regression: Depth, Width, Context and Time". Tokens are ``z_i = (x_i, y_i)`` for the P context
examples and ``z_* = (x_*, 0)`` for the query. Each layer is a linear self-attention in the
gradient-descent form used by the paper's reduced model: queries and keys read the x-part of
the tokens through a merged key-query matrix ``Gamma_l`` (D x D), values are the y-slot, and
the output is written back to the y-slot, with only context tokens acting as keys:

    s_i <- s_i - (1/P) sum_{j in context} (x_i^T Gamma_l x_j) s_j     for every token i,

where ``s`` is the y-slot (``s_i = y_i`` initially, ``s_* = 0``). The prediction is ``-s_*``
after L layers. (Layer l performs one step of preconditioned GD with preconditioner Gamma_l
on the in-context least-squares problem.) ``tied=True`` shares one Gamma across layers (the
recurrent model); ``tied=False`` gives each layer its own.

Covariate settings: "iso" (x ~ N(0, I_D)) and "rrs" (``x = O_c Lambda^{1/2} g`` with a fresh
Haar rotation ``O_c`` per context). ``context="inf"`` replaces the empirical covariance by the
exact per-context covariance (the P -> infinity limit) for RRS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lmech._validation import check_array, check_choice, check_int, check_real, fail

__all__ = [
    "DeepLinearAttention",
    "sample_contexts",
    "sample_context_stats",
    "ICLTrainResult",
    "train_icl",
    "train_icl_depths",
    "evaluate_icl",
    "polynomial_predictor_risk",
    "polynomial_predictor_risks",
]


class DeepLinearAttention(nn.Module):
    """L layers of GD-form linear self-attention (see the module docstring).

    Parameters
    ----------
    dim : int
        Covariate dimension D.
    depth : int
        Number of layers L.
    tied : bool
        Share the key-query matrix across layers.
    init_scale : float
        Layers start at ``Gamma_l = (init_scale / L) I + noise`` with small i.i.d. noise of std
        ``init_noise / D`` (the noise breaks the symmetry between untied layers).
    init_noise : float
    """

    def __init__(self, dim: int, depth: int, *, tied: bool = False, init_scale: float = 0.1,
                 init_noise: float = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        self.dim = check_int(dim, "dim", lo=1)
        self.depth = check_int(depth, "depth", lo=1)
        self.tied = bool(tied)
        n_mats = 1 if self.tied else self.depth
        eye = torch.eye(self.dim, dtype=torch.float64)
        noise = torch.randn(n_mats, self.dim, self.dim, generator=generator, dtype=torch.float64)
        init = (init_scale / self.depth) * eye + (init_noise / self.dim) * noise
        self.gamma = nn.Parameter(init)

    def layer_matrices(self) -> torch.Tensor:
        """Gamma_l for every layer, shape (L, D, D)."""
        return self.gamma.expand(self.depth, -1, -1) if self.tied else self.gamma

    def forward(self, X: torch.Tensor, y: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
        """Predict the query labels.

        Parameters
        ----------
        X : (B, P, D) context covariates
        y : (B, P) context labels
        xq : (B, D) query covariates

        Returns
        -------
        (B,) predictions
        """
        P = X.shape[1]
        s = y
        s_q = torch.zeros_like(y[:, 0])
        for G in self.layer_matrices():
            v = torch.einsum("bpd,bp->bd", X, s) / P  # sum_j x_j s_j / P   (keys . values)
            u = v @ G.T                               # Gamma x_j s_j summed: attention output direction
            s = s - torch.einsum("bpd,bd->bp", X, u)
            s_q = s_q - (xq * u).sum(-1)
        return -s_q

    def forward_stats(self, Shat: torch.Tensor, b: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
        """The same network evaluated from the context's sufficient statistics.

        Linear attention touches the context only through ``Shat = X^T X / P`` (D x D) and
        ``b = X^T y / P`` (D): with ``v_l = X^T s_l / P`` the layer update gives
        ``v_{l+1} = v_l - Shat Gamma_l v_l``. Identical to :meth:`forward` (tested), and
        cheaper when P > D.
        """
        v = b
        s_q = torch.zeros_like(b[:, 0])
        for G in self.layer_matrices():
            u = v @ G.T
            v = v - torch.einsum("bij,bj->bi", Shat, u)
            s_q = s_q - (xq * u).sum(-1)
        return -s_q

    def forward_population(self, cov: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Infinite-context limit: weights after L layers when ``Sigma_hat = cov`` exactly.

        ``w_{l+1} = w_l + Gamma_l cov (beta - w_l)``; returns w_L, shape (B, D).
        """
        w = torch.zeros_like(beta)
        for G in self.layer_matrices():
            g = torch.einsum("bij,bj->bi", cov, beta - w)
            w = w + g @ G.T
        return w


def _haar(batch: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((batch, dim, dim)))
    return Q * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[:, None, :]


def sample_contexts(batch: int, dim: int, n_context: int, *, noise: float = 0.0, setting: str = "iso",
                    spectrum=None, rng: np.random.Generator):
    """Draw ``batch`` ICL contexts (float64 torch tensors, sampled with NumPy's ``rng``).

    Returns ``(X, y, xq, target, cov, beta)``: X (B, P, D), y (B, P) noisy labels, xq (B, D),
    the noiseless query target ``beta . x_q`` (B,), the per-context covariance (B, D, D)
    (identity for "iso"), and beta (B, D). ``y = X beta + sqrt(noise) eps`` with
    ``beta ~ N(0, I_D / D)`` (i.e. ``y = beta' . x / sqrt(D)`` with ``beta' ~ N(0, I_D)``).
    """
    B, D, P = batch, dim, n_context
    beta = rng.standard_normal((B, D)) / math.sqrt(D)
    if setting == "iso":
        X = rng.standard_normal((B, P, D))
        xq = rng.standard_normal((B, D))
        cov = np.broadcast_to(np.eye(D), (B, D, D))
    else:
        lam = np.asarray(spectrum, dtype=float)
        root = _haar(B, D, rng) * np.sqrt(lam)[None, None, :]  # O diag(sqrt lam)
        X = np.einsum("bij,bpj->bpi", root, rng.standard_normal((B, P, D)))
        xq = np.einsum("bij,bj->bi", root, rng.standard_normal((B, D)))
        cov = root @ np.swapaxes(root, -1, -2)
    y = np.einsum("bpd,bd->bp", X, beta)
    if noise > 0:
        y = y + math.sqrt(noise) * rng.standard_normal((B, P))
    t = torch.from_numpy
    return (t(np.ascontiguousarray(X)), t(y), t(xq), t(np.einsum("bd,bd->b", xq, beta)),
            t(np.ascontiguousarray(cov)), t(beta))


def sample_context_stats(batch: int, dim: int, n_context: int, *, noise: float = 0.0, rng: np.random.Generator):
    """ISO contexts drawn directly as sufficient statistics ``(Shat, b, xq, target)``.

    For P >= D uses the Bartlett decomposition ``X^T X = A A^T`` (A lower triangular,
    ``A_ii ~ chi_{P-i}``, ``A_ij ~ N(0,1)`` below the diagonal) and ``X = U A^T`` with U
    Haar-orthonormal and independent of A, so ``X^T eps = A z`` with ``z ~ N(0, I_D)``; the
    joint law of ``(Shat, b)`` is exactly that of ``(X^T X/P, X^T y/P)`` at O(D^2) instead of
    O(P D) cost. For P < D the covariates are sampled directly.
    """
    B, D, P = batch, dim, n_context
    if P < D:
        X, y, xq, target, _, _ = sample_contexts(B, D, P, noise=noise, rng=rng)
        return X.transpose(1, 2) @ X / P, torch.einsum("bpd,bp->bd", X, y) / P, xq, target
    beta = rng.standard_normal((B, D)) / math.sqrt(D)
    A = np.tril(rng.standard_normal((B, D, D)), k=-1)
    idx = np.arange(D)
    A[:, idx, idx] = np.sqrt(rng.chisquare(P - idx, size=(B, D)))
    Shat = A @ np.swapaxes(A, -1, -2) / P
    b = np.einsum("bij,bj->bi", Shat, beta)
    if noise > 0:
        b = b + math.sqrt(noise) * np.einsum("bij,bj->bi", A, rng.standard_normal((B, D))) / P
    xq = rng.standard_normal((B, D))
    t = torch.from_numpy
    return t(Shat), t(b), t(xq), t(np.einsum("bd,bd->b", xq, beta))


@dataclass(frozen=True)
class ICLTrainResult:
    """Outcome of :func:`train_icl`.

    Attributes
    ----------
    model : DeepLinearAttention
    risk : float                 test ICL risk E[(y_hat - beta.x_q/sqrt D)^2] on fresh contexts
    risk_stderr : float
    train_loss : ndarray         smoothed training loss every ``log_every`` steps
    step_sizes : ndarray (L,)    tr(Gamma_l)/D per layer (the learned GD step sizes)
    """

    model: DeepLinearAttention
    risk: float
    risk_stderr: float
    train_loss: np.ndarray
    step_sizes: np.ndarray


def _validate(dim, depth, n_context, noise, setting, spectrum):
    D = check_int(dim, "dim", lo=1)
    L = check_int(depth, "depth", lo=1)
    check_choice(setting, "setting", ("iso", "rrs"))
    if isinstance(n_context, str):
        check_choice(n_context, "n_context", ("inf",))
        if setting != "rrs":
            fail("n_context", "finite for setting='iso'", n_context)
        P = None
    else:
        P = check_int(n_context, "n_context", lo=1)
    s2 = check_real(noise, "noise", lo=0.0)
    spec = None
    if setting == "rrs":
        if spectrum is None:
            fail("spectrum", "given for setting='rrs'", spectrum)
        spec = check_array(spectrum, "spectrum", shape=(D,), positive=True)
    return D, L, P, s2, spec


def _risk_batch(model, D, P, s2, setting, spec, batch, rng):
    if setting == "iso":
        Shat, b, xq, target = sample_context_stats(batch, D, P, noise=s2, rng=rng)
        return (model.forward_stats(Shat, b, xq) - target) ** 2
    X, y, xq, target, cov, beta = sample_contexts(batch, D, P or 1, noise=s2, setting=setting, spectrum=spec, rng=rng)
    if P is None:  # infinite context: risk = (w - beta)^T cov (w - beta)
        w = model.forward_population(cov, beta)
        d = w - beta
        return torch.einsum("bi,bij,bj->b", d, cov, d)
    return (model(X, y, xq) - target) ** 2


def evaluate_icl(model: DeepLinearAttention, *, n_context, noise: float = 0.0, setting: str = "iso",
                 spectrum=None, n_contexts: int = 20000, seed: int = 0, batch: int = 2000) -> tuple[float, float]:
    """Test ICL risk (mean, standard error) of ``model`` on fresh contexts."""
    D, _, P, s2, spec = _validate(model.dim, model.depth, n_context, noise, setting, spectrum)
    n = check_int(n_contexts, "n_contexts", lo=2)
    rng = np.random.default_rng(seed)
    vals = []
    with torch.no_grad():
        for start in range(0, n, batch):
            vals.append(_risk_batch(model, D, P, s2, setting, spec, min(batch, n - start), rng))
    v = torch.cat(vals).numpy()
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))


def train_icl(
    dim: int,
    depth: int,
    n_context,
    *,
    noise: float = 0.0,
    setting: str = "iso",
    spectrum=None,
    tied: bool = False,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 0.01,
    seed: int = 0,
    n_test: int = 20000,
    log_every: int = 50,
    init_scale: float = 0.1,
) -> ICLTrainResult:
    """Train deep linear attention with Adam on fresh contexts; return its test risk.

    Parameters
    ----------
    dim : int
        Covariate dimension D.
    depth : int
        Layers L.
    n_context : int or "inf"
        Context length P ("inf": the infinite-context limit, RRS only).
    noise : float
        Label-noise variance of the context labels (the query target is noiseless).
    setting : {"iso", "rrs"}
    spectrum : array_like, shape (D,), for "rrs"
    tied : bool
    steps, batch_size, lr : int, int, float
        Adam steps (learning rate decayed by a cosine schedule to 1% of ``lr``), contexts
        per step, and learning rate.
    seed : int
    n_test : int
        Fresh test contexts for the reported risk.
    """
    D, L, P, s2, spec = _validate(dim, depth, n_context, noise, setting, spectrum)
    n_steps = check_int(steps, "steps", lo=1)
    B = check_int(batch_size, "batch_size", lo=1)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    every = check_int(log_every, "log_every", lo=1)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(seed))
    model = DeepLinearAttention(D, L, tied=tied, init_scale=init_scale, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=eta)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(k, n_steps) / n_steps)))
    log, acc = [], 0.0
    for k in range(n_steps):
        loss = _risk_batch(model, D, P, s2, setting, spec, B, rng).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc += float(loss.detach())
        if (k + 1) % every == 0:
            log.append(acc / every)
            acc = 0.0
    risk, se = evaluate_icl(model, n_context=n_context, noise=s2, setting=setting, spectrum=spec,
                            n_contexts=n_test, seed=int(seed) + 10_000)
    with torch.no_grad():
        steps_l = torch.diagonal(model.layer_matrices(), dim1=-2, dim2=-1).mean(-1).numpy().copy()
    return ICLTrainResult(model=model, risk=risk, risk_stderr=se, train_loss=np.array(log), step_sizes=steps_l)


def _population_risks(models, cov: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Infinite-context risks ``(w_L - beta)^T cov (w_L - beta)`` of several models, shape (M, B).

    The models advance layer by layer together, so each layer reads the per-context ``cov``
    (the memory-bound operand) once for all models; same arithmetic as
    :meth:`DeepLinearAttention.forward_population` per model.
    """
    mats = [m.layer_matrices() for m in models]
    w = [torch.zeros_like(beta) for _ in models]
    for layer in range(max(m.depth for m in models)):
        act = [i for i, m in enumerate(models) if m.depth > layer]
        g = torch.einsum("bij,mbj->mbi", cov, torch.stack([beta - w[i] for i in act]))
        G = torch.stack([mats[i][layer] for i in act])
        step = torch.bmm(g, G.transpose(1, 2))
        for k, i in enumerate(act):
            w[i] = w[i] + step[k]
    d = torch.stack(w) - beta
    return (d * torch.einsum("bij,mbj->mbi", cov, d)).sum(-1)


def train_icl_depths(dim: int, depths, *, spectrum, tied: bool = True, steps: int = 2000, batch_size: int = 256,
                     lr: float = 0.01, seeds=None, n_test: int = 20000, log_every: int = 50,
                     init_scale: float = 0.1) -> list[ICLTrainResult]:
    """:func:`train_icl` at infinite context on RRS data for several depths at once, on shared contexts.

    Each depth is its own model with its own Adam state (one Adam over all parameters is
    elementwise, hence independent per model) and the same cosine schedule; the loss summed
    over models has, per model, exactly that model's gradient. Only the contexts are shared
    (common random numbers across depths), so every step's rotation sampling (the O(B D^3)
    cost) is paid once instead of once per depth. ``seeds`` (one per depth, default 0, 1, ...)
    seed each model's initialisation; contexts use ``seeds[0]`` and test contexts ``seeds[0] + 10000``.
    """
    Ls = [check_int(L, "depths", lo=1) for L in depths]
    if not Ls:
        fail("depths", "a non-empty sequence", depths)
    seeds = list(range(len(Ls))) if seeds is None else [check_int(x, "seeds", lo=0) for x in seeds]
    if len(seeds) != len(Ls):
        fail("seeds", f"of length {len(Ls)} like depths", seeds)
    D, _, _, _, spec = _validate(dim, Ls[0], "inf", 0.0, "rrs", spectrum)
    n_steps = check_int(steps, "steps", lo=1)
    B = check_int(batch_size, "batch_size", lo=1)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    every = check_int(log_every, "log_every", lo=1)
    n_test = check_int(n_test, "n_test", lo=2)
    models = [DeepLinearAttention(D, L, tied=tied, init_scale=init_scale,
                                  generator=torch.Generator().manual_seed(int(sd))) for L, sd in zip(Ls, seeds)]
    opt = torch.optim.Adam([m.gamma for m in models], lr=eta)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(k, n_steps) / n_steps)))
    rng = np.random.default_rng(seeds[0])
    logs, acc = [], torch.zeros(len(models), dtype=torch.float64)
    for k in range(n_steps):
        *_, cov, beta = sample_contexts(B, D, 1, setting="rrs", spectrum=spec, rng=rng)
        loss = _population_risks(models, cov, beta).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        sched.step()
        acc += loss.detach()
        if (k + 1) % every == 0:
            logs.append((acc / every).numpy().copy())
            acc.zero_()
    rng = np.random.default_rng(seeds[0] + 10_000)
    vals = []
    with torch.no_grad():
        for start in range(0, n_test, 2000):
            *_, cov, beta = sample_contexts(min(2000, n_test - start), D, 1, setting="rrs", spectrum=spec, rng=rng)
            vals.append(_population_risks(models, cov, beta))
        v = torch.cat(vals, dim=1).numpy()
    out = []
    for i, m in enumerate(models):
        with torch.no_grad():
            steps_l = torch.diagonal(m.layer_matrices(), dim1=-2, dim2=-1).mean(-1).numpy().copy()
        se = float(v[i].std(ddof=1) / np.sqrt(v.shape[1]))
        out.append(ICLTrainResult(model=m, risk=float(v[i].mean()), risk_stderr=se,
                                  train_loss=np.array([x[i] for x in logs]), step_sizes=steps_l))
    return out


def polynomial_predictor_risk(dim: int, n_context: int, step_sizes, *, noise: float = 0.0,
                              n_contexts: int = 2000, seed: int = 0, batch: int = 500) -> tuple[float, float]:
    """Direct finite-D evaluation (no training) of the in-context GD predictor on ISO data.

    Applies ``w = sum_l Gamma_l prod_{k<l}(I - Gamma_k Sigma_hat) X^T y / P`` with scalar steps
    ``Gamma_l = step_sizes[l]`` (i.e. ``p(s) = prod_l (1 - Gamma_l s)``) to sampled contexts
    and returns the mean and standard error of ``||w - beta||^2`` (``beta ~ N(0, I/D)``).
    """
    return polynomial_predictor_risks(dim, n_context, [step_sizes], noise=noise, n_contexts=n_contexts, seed=seed,
                                      batch=batch)[0]


def polynomial_predictor_risks(dim: int, n_context: int, step_size_lists, *, noise: float = 0.0,
                               n_contexts: int = 2000, seed: int = 0, batch: int = 500) -> list[tuple[float, float]]:
    """:func:`polynomial_predictor_risk` for several step-size sequences on the same sampled contexts.

    Sampling the contexts (``n_contexts * P * D`` Gaussians) costs as much as evaluating a
    predictor, so sharing them (common random numbers) divides that cost by the number of
    predictors. With one sequence, identical to :func:`polynomial_predictor_risk`.
    """
    D = check_int(dim, "dim", lo=1)
    P = check_int(n_context, "n_context", lo=1)
    gs = [check_array(g, "step_sizes", ndim=1, min_size=1) for g in step_size_lists]
    if not gs:
        fail("step_size_lists", "a non-empty sequence", step_size_lists)
    s2 = check_real(noise, "noise", lo=0.0)
    n = check_int(n_contexts, "n_contexts", lo=2)
    rng = np.random.default_rng(seed)
    errs: list[list[np.ndarray]] = [[] for _ in gs]
    for start in range(0, n, batch):
        b = min(batch, n - start)
        X = rng.standard_normal((b, P, D))
        beta = rng.standard_normal((b, D)) / np.sqrt(D)
        y = np.einsum("bpd,bd->bp", X, beta) + np.sqrt(s2) * rng.standard_normal((b, P))
        for g, out in zip(gs, errs):
            w = np.zeros((b, D))
            for gl in g:  # w <- w + Gamma X^T (y - X w) / P
                r = y - np.einsum("bpd,bd->bp", X, w)
                w = w + gl * np.einsum("bpd,bp->bd", X, r) / P
            out.append(np.sum((w - beta) ** 2, axis=1))
    res = []
    for parts in errs:
        e = np.concatenate(parts)
        res.append((float(e.mean()), float(e.std(ddof=1) / np.sqrt(len(e)))))
    return res
