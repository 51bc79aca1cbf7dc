"""Tests of the finite-width mean-field simulator against an independent autograd network."""
import math

import numpy as np
import pytest
import torch

from lmech.sim.mean_field import ACTIVATIONS, train_mean_field


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small batched ops: one intra-op thread is fastest (and robust on a shared 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _data(P=5, D=7, Pt=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    y = rng.standard_normal(P)
    Xt = rng.standard_normal((Pt, D))
    yt = rng.standard_normal(Pt)
    return X, y, Xt, yt


def _autograd_reference(X, y, Xt, *, N, L, gamma0, lr, steps, act, seed):
    """One network, plain autograd, same parameterization and init order as the simulator."""
    phi = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda h: h, "erf": torch.erf}[act]
    X = torch.as_tensor(X)
    Xt = torch.as_tensor(Xt)
    y = torch.as_tensor(y)
    P, D = X.shape
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(N, D, generator=gen, dtype=torch.float64)]
    params += [torch.randn(N, N, generator=gen, dtype=torch.float64) for _ in range(L - 1)]
    params.append(torch.randn(N, generator=gen, dtype=torch.float64))
    for p in params:
        p.requires_grad_(True)

    def f(Z):
        h = Z @ params[0].T / math.sqrt(D)
        for W in params[1:-1]:
            h = phi(h) @ W.T / math.sqrt(N)
        return phi(h) @ params[-1] / (gamma0 * N)

    outs, test_outs = [], []
    for t in range(steps + 1):
        ft = f(X)
        outs.append(ft.detach().clone())
        test_outs.append(f(Xt).detach().clone())
        if t == steps:
            break
        loss = 0.5 * ((y - ft) ** 2).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * gamma0**2 * N * g
    Z = torch.cat([X, Xt])
    J = []
    for i in range(Z.shape[0]):
        gr = torch.autograd.grad(f(Z[i : i + 1]).sum(), params)
        J.append(torch.cat([g.reshape(-1) for g in gr]))
    J = torch.stack(J)
    ntk = gamma0**2 * N * J @ J.T
    return torch.stack(outs).numpy(), torch.stack(test_outs).numpy(), ntk.detach().numpy()


@pytest.mark.parametrize("L,act", [(1, "tanh"), (2, "tanh"), (3, "relu"), (2, "linear"), (2, "erf")])
def test_matches_autograd_network(L, act):
    X, y, Xt, yt = _data()
    kw = dict(N=48, L=L, gamma0=1.3, lr=0.3, steps=12, act=act)
    run = train_mean_field(X, y, width=48, depth=L, gamma0=1.3, lr=0.3, steps=12, activation=act,
                           X_test=Xt, y_test=yt, seeds=(4, 9))
    for i, seed in enumerate((4, 9)):
        f_ref, ft_ref, ntk_ref = _autograd_reference(X, y, Xt, seed=seed, **kw)
        np.testing.assert_allclose(run.f_train[i], f_ref, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(run.f_test[i], ft_ref, rtol=1e-9, atol=1e-11)
        # NTK from the kernel formula equals gamma0^2 N J J^T of the final network
        np.testing.assert_allclose(run.ntk[i, -1], ntk_ref, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(run.train_loss, 0.5 * np.mean((y - run.f_train) ** 2, axis=-1))
    np.testing.assert_allclose(run.test_loss, 0.5 * np.mean((yt - run.f_test) ** 2, axis=-1))


def test_seed_reproducible_and_batch_independent():
    X, y, _, _ = _data()
    a = train_mean_field(X, y, width=32, depth=2, gamma0=1.0, lr=0.2, steps=5, seeds=(3,))
    b = train_mean_field(X, y, width=32, depth=2, gamma0=1.0, lr=0.2, steps=5, seeds=(7, 3))
    again = train_mean_field(X, y, width=32, depth=2, gamma0=1.0, lr=0.2, steps=5, seeds=(3,))
    np.testing.assert_array_equal(a.f_train, again.f_train)
    # batched BLAS may differ in the last bit with the batch composition
    np.testing.assert_allclose(a.f_train[0], b.f_train[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.ntk[0], b.ntk[1], rtol=1e-12, atol=1e-15)
    assert not np.allclose(b.f_train[0], b.f_train[1])


def test_kernels_shapes_and_definitions():
    X, y, Xt, yt = _data()
    run = train_mean_field(X, y, width=40, depth=2, gamma0=1.0, lr=0.2, steps=7, record_every=3,
                           X_test=Xt, y_test=yt, seeds=(0, 1, 2))
    np.testing.assert_array_equal(run.steps, [0, 3, 6, 7])
    np.testing.assert_allclose(run.times, 0.2 * run.steps)
    S, T, L, M = 3, 4, 2, 8
    assert run.feature_kernels.shape == (S, T, L, M, M)
    assert run.gradient_kernels.shape == (S, T, L, M, M)
    assert run.ntk.shape == (S, T, M, M)
    assert run.f_train.shape == (S, T, 5) and run.f_test.shape == (S, T, 3)
    Phi, G, Kx = run.feature_kernels, run.gradient_kernels, run.input_kernel
    np.testing.assert_allclose(run.ntk, Phi[:, :, 1] + G[:, :, 1] * Phi[:, :, 0] + G[:, :, 0] * Kx, rtol=1e-12)
    # kernels are symmetric PSD
    ev = np.linalg.eigvalsh(run.ntk)
    assert ev.min() > -1e-10
    assert run.ensemble_mean("train_loss").shape == (T,)
    assert run.residual.shape == (S, T, 5)


def test_center_removes_initial_output_without_changing_kernels():
    X, y, _, _ = _data()
    kw = dict(width=64, depth=2, gamma0=0.5, lr=0.2, steps=4, seeds=(1,))
    plain = train_mean_field(X, y, **kw)
    cen = train_mean_field(X, y, center=True, **kw)
    np.testing.assert_allclose(cen.f_train[:, 0], 0.0, atol=1e-14)
    np.testing.assert_allclose(cen.ntk[:, 0], plain.ntk[:, 0], rtol=1e-12)
    assert abs(plain.f_train[0, 0]).max() > 1e-3


def test_training_reduces_loss_and_float32_agrees():
    X, y, _, _ = _data(P=8)
    r64 = train_mean_field(X, y, width=256, depth=1, gamma0=1.0, lr=0.5, steps=60, seeds=(0, 1))
    assert np.all(r64.train_loss[:, -1] < 0.5 * r64.train_loss[:, 0])
    r32 = train_mean_field(X, y, width=256, depth=1, gamma0=1.0, lr=0.5, steps=60, seeds=(0, 1),
                           dtype=torch.float32)
    np.testing.assert_allclose(r32.train_loss, r64.train_loss, rtol=1e-3, atol=1e-5)


def test_lazy_regime_keeps_kernel_static():
    """Relative NTK movement is O(gamma0): much smaller at gamma0 = 0.01 than at 1."""
    X, y, _, _ = _data(P=8)

    def moved(g0):
        r = train_mean_field(X, y, width=512, depth=2, gamma0=g0, lr=0.5, steps=30, seeds=(0,),
                             center=True)
        return np.linalg.norm(r.ntk[0, -1] - r.ntk[0, 0]) / np.linalg.norm(r.ntk[0, 0])

    lazy, rich = moved(0.01), moved(1.0)
    assert lazy < 0.05 * rich


def test_activation_table_complete():
    assert set(ACTIVATIONS) >= {"tanh", "relu", "linear", "erf"}


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(width=0), "width"),
        (dict(depth=0), "depth"),
        (dict(gamma0=-1.0), "gamma0"),
        (dict(gamma0=0.0), "gamma0"),
        (dict(lr=0.0), "lr"),
        (dict(steps=-1), "steps"),
        (dict(activation="sigmoidal"), "activation"),
        (dict(record_every=0), "record_every"),
        (dict(seeds=()), "seeds"),
        (dict(seeds=(1, 1)), "seeds"),
    ],
)
def test_bad_arguments(kwargs, name):
    X, y, _, _ = _data()
    base = dict(width=8, depth=1, gamma0=1.0, lr=0.1, steps=2)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        train_mean_field(X, y, **base)


def test_bad_data():
    X, y, Xt, yt = _data()
    kw = dict(width=8, gamma0=1.0, lr=0.1, steps=2)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="`X`"):
        train_mean_field(Xn, y, **kw)
    with pytest.raises(ValueError, match="`y`"):
        train_mean_field(X, y[:-1], **kw)
    with pytest.raises(ValueError, match="`X_test`"):
        train_mean_field(X, y, X_test=Xt[:, :-1], y_test=yt, **kw)
    with pytest.raises(ValueError, match="`y_test`"):
        train_mean_field(X, y, X_test=Xt, **kw)
    with pytest.raises(ValueError, match="`X`"):
        train_mean_field(X[0], y, **kw)


# ----------------------------------------------------------------------------- sphere task
def test_sphere_regression_task_definition():
    """Rebuild the task from its definition: sphere inputs, tanh + product target, train-set
    standardisation applied to the test targets too."""
    from lmech.sim.mean_field import sphere_regression_task

    P, Pt, D = 7, 5, 6
    X, y, Xt, yt = sphere_regression_task(P, Pt, D, seed=3)
    assert X.shape == (P, D) and Xt.shape == (Pt, D) and y.shape == (P,) and yt.shape == (Pt,)
    np.testing.assert_allclose(np.sum(np.vstack([X, Xt]) ** 2, axis=1), D, rtol=1e-12)
    assert abs(y.mean()) < 1e-12 and abs(y.std() - 1) < 1e-12
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((P + Pt, D))
    A = Z / np.sqrt(np.sum(Z**2, axis=1, keepdims=True) / D)
    b = rng.standard_normal(D)
    raw = np.tanh(A @ b / np.sqrt(D)) + 0.5 * A[:, 0] * A[:, 1]
    np.testing.assert_allclose(np.r_[y, yt], (raw - raw[:P].mean()) / raw[:P].std(), rtol=1e-10, atol=1e-12)
    assert not np.allclose(sphere_regression_task(P, Pt, D, seed=4)[0], X)


@pytest.mark.parametrize("kwargs, name", [
    (dict(P=1, P_test=2, D=3), "P"), (dict(P=4, P_test=-1, D=3), "P_test"), (dict(P=4, P_test=2, D=1), "D"),
    (dict(P=4, P_test=2, D=3, seed=-1), "seed"), (dict(P=4.5, P_test=2, D=3), "P"),
])
def test_sphere_regression_task_bad_arguments(kwargs, name):
    from lmech.sim.mean_field import sphere_regression_task

    with pytest.raises((ValueError, TypeError), match=f"`{name}`"):
        sphere_regression_task(**kwargs)


def test_ensemble_loss_against_loops():
    from lmech.sim.mean_field import ensemble_loss

    rng = np.random.default_rng(0)
    f, y = rng.standard_normal((12, 5)), rng.standard_normal(5)
    for E in (1, 3, 4):
        groups = [f[g * E:(g + 1) * E].mean(0) for g in range(12 // E)]
        losses = [0.5 * np.mean((y - fb) ** 2) for fb in groups]
        mean, se = ensemble_loss(f, y, E)
        assert mean == pytest.approx(np.mean(losses), rel=1e-12)
        assert se == pytest.approx(np.std(losses, ddof=1) / np.sqrt(len(losses)), rel=1e-12)
    assert ensemble_loss(f, y, 12)[1] == 0.0
    with pytest.raises(ValueError, match="`ensemble_size`"):
        ensemble_loss(f, y, 5)
    with pytest.raises(ValueError, match="`y`"):
        ensemble_loss(f, y[:4], 2)
    with pytest.raises(ValueError, match="`ensemble_size`"):
        ensemble_loss(f, y, 0)
