"""Spectral outliers: Marchenko-Pastur edges and secular-equation outliers against sampled random
matrices, and the MLP simulator's gradients and NTK against autograd."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmech.sim.spectral_outliers import teacher_task, train_spectral_mlp
from lmech.theory.spectral_outliers import (bulk_edges, free_outlier_closed_form, mp_resolvent, outlier_positions,
                                            secular_outliers)


def _gauss(n, m, seed, variance=1.0):
    return np.random.default_rng(seed).standard_normal((n, m)) * np.sqrt(variance / m)


def _unit(x):
    return x / np.linalg.norm(x)


@pytest.mark.parametrize("n,m,var", [(600, 600, 1.0), (300, 1200, 2.0), (1200, 300, 0.5)])
def test_mp_edges_match_sampled_spectrum(n, m, var):
    lo, hi = bulk_edges(n, m, var)
    s = np.linalg.svd(_gauss(n, m, 0, var), compute_uv=False)
    # edge fluctuations are O(N^-2/3) (Tracy-Widom): about 0.01 here; measured deviations < 0.01
    assert abs(s[0] - hi) < 0.03 * np.sqrt(var)
    if n != m:
        assert abs(s[-1] - lo) < 0.03 * np.sqrt(var)
    assert bulk_edges(10, 10) == (0.0, 2.0)


def test_mp_resolvent_matches_sampled_traces():
    X = _gauss(400, 800, 1)
    w = 4.0
    g, gt = mp_resolvent(w, 0.5)
    assert abs(np.trace(np.linalg.inv(w * np.eye(400) - X @ X.T)) / 400 - g) < 3e-3
    assert abs(np.trace(np.linalg.inv(w * np.eye(800) - X.T @ X)) / 800 - gt) < 3e-3


@pytest.mark.parametrize("n,m,var", [(50, 50, 1.0), (40, 160, 2.0), (160, 40, 0.7)])
def test_free_secular_equation_equals_closed_form(n, m, var):
    theta = np.array([0.2, 0.9, 1.3, 2.0, 5.0]) * np.sqrt(var * max(n, m) / m)
    r = outlier_positions(theta, n, m, var)
    assert r.converged
    np.testing.assert_allclose(r.outliers, free_outlier_closed_form(theta, n, m, var), rtol=1e-9)
    c = min(n, m) / max(n, m)
    np.testing.assert_allclose(r.thresholds, c**0.25 * np.sqrt(var * max(n, m) / m), rtol=1e-6)


@pytest.mark.parametrize("n,m", [(1500, 1500), (800, 1600)])
def test_free_outlier_matches_sampling(n, m):
    rng = np.random.default_rng(2)
    X = _gauss(n, m, 3)
    u, v = _unit(rng.standard_normal(n)), _unit(rng.standard_normal(m))
    for theta in (1.5, 3.0):
        z = np.linalg.svd(X + theta * np.outer(u, v), compute_uv=False)[0]
        # outlier fluctuations are O(N^-1/2); measured errors < 0.01 at these sizes
        assert abs(z - outlier_positions([theta], n, m).outliers[0]) < 0.03


def test_subthreshold_spike_leaves_no_outlier():
    rng = np.random.default_rng(4)
    n = 1200
    r = outlier_positions([0.6], n, n)
    assert not r.separated[0] and r.outliers[0] == pytest.approx(2.0)
    X = _gauss(n, n, 5)
    s = np.linalg.svd(X + 0.6 * np.outer(_unit(rng.standard_normal(n)), _unit(rng.standard_normal(n))), compute_uv=False)
    assert abs(s[0] - 2.0) < 0.03


@pytest.mark.parametrize("kappa", [0.3, 0.7, -0.4])
def test_dependent_spike_matches_sampling(kappa):
    """u = (kappa/c) X v + a part orthogonal to X v (so u^T X v = kappa): the overlap-corrected
    equation agrees with sampling, the free one does not."""
    rng = np.random.default_rng(6)
    n = m = 1500
    X = _gauss(n, m, 7)
    v = _unit(rng.standard_normal(m))
    h = X @ v
    r = rng.standard_normal(n)
    r = _unit(r - (r @ h) / (h @ h) * h)
    u = kappa * h / (h @ h) + np.sqrt(1 - kappa**2 / (h @ h)) * r
    theta = 1.3
    z = np.linalg.svd(X + theta * np.outer(u, v), compute_uv=False)[0]
    pred = outlier_positions([theta], n, m, overlap=[u @ X @ v]).outliers[0]
    assert abs(z - pred) < 0.03   # measured < 0.02
    if abs(kappa) > 0.5:
        assert abs(z - free_outlier_closed_form([theta], n, m)[0]) > 0.1


def test_exact_secular_equation_reproduces_svd():
    rng = np.random.default_rng(8)
    X = _gauss(60, 90, 9)
    U, V = np.linalg.qr(rng.standard_normal((60, 3)))[0], np.linalg.qr(rng.standard_normal((90, 3)))[0]
    S = np.array([2.5, 1.6, 1.1])
    res = secular_outliers(X, U, S, V)
    s = np.linalg.svd(X + U @ np.diag(S) @ V.T, compute_uv=False)
    assert res.converged and res.top_bulk == pytest.approx(np.linalg.svd(X, compute_uv=False)[0])
    expected = s[s > res.top_bulk]
    np.testing.assert_allclose(res.outliers, expected, rtol=1e-9)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="n_rows"):
        bulk_edges(0, 5)
    with pytest.raises(ValueError, match="variance"):
        bulk_edges(5, 5, -1.0)
    with pytest.raises(ValueError, match="overlap"):
        outlier_positions([1.0], 10, 10, overlap=1.5)
    with pytest.raises(ValueError, match="spike"):
        outlier_positions([-1.0], 10, 10)
    with pytest.raises(ValueError, match="`w`"):
        mp_resolvent(3.0, 1.0)
    with pytest.raises(ValueError, match="U, V"):
        secular_outliers(np.eye(3), np.ones((4, 1)), [1.0], np.ones((3, 1)))
    X, Y = teacher_task(4, 3)
    with pytest.raises(ValueError, match="param"):
        train_spectral_mlp(X, Y, width=8, param="sp")
    with pytest.raises(ValueError, match="width"):
        train_spectral_mlp(X, Y, width=1)
    with pytest.raises(ValueError, match="X, Y"):
        train_spectral_mlp(X, Y[:3], width=8)
    with pytest.raises(ValueError, match="record_steps"):
        train_spectral_mlp(X, Y, width=8, n_steps=5, record_steps=[9])


def _autograd_net(X, Y, N, gamma, seed):
    gen = torch.Generator().manual_seed(seed)
    P, D = X.shape
    W0 = torch.randn(1, N, D, generator=gen, dtype=torch.float64)[0].requires_grad_()
    W1 = torch.randn(1, N, N, generator=gen, dtype=torch.float64)[0].requires_grad_()
    W2 = torch.randn(1, Y.shape[1], N, generator=gen, dtype=torch.float64)[0].requires_grad_()

    def f(W0, W1, W2, x):
        return torch.tanh(torch.tanh(x @ W0.T / math.sqrt(D)) @ W1.T / math.sqrt(N)) @ W2.T / (gamma * N)

    return (W0, W1, W2), f


@pytest.mark.parametrize("param", ["mup", "ntp"])
def test_simulator_gradient_and_ntk_match_autograd(param):
    X, Y = teacher_task(6, 3, n_outputs=2, seed=1)
    N, lr = 16, 0.7
    run = train_spectral_mlp(X, Y, width=N, param=param, lr=lr, n_steps=1, record_steps=[0, 1], seed=5,
                             base_width=8, keep_matrices=True)
    (W0, W1, W2), f = _autograd_net(X, Y, N, run.gamma, 5)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    loss = 0.5 * ((f(W0, W1, W2, x) - y) ** 2).sum() / len(X)
    (g1,) = torch.autograd.grad(loss, W1)
    eta = lr * run.gamma**2 * N
    np.testing.assert_allclose(run.update, (-eta * g1 / math.sqrt(N)).numpy(), rtol=1e-10, atol=1e-14)
    assert run.loss[0, 0] == pytest.approx(loss.item(), rel=1e-12)
    # lr-weighted NTK / P: every parameter trains at lr gamma^2 N
    J = torch.autograd.functional.jacobian(lambda a, b, c: f(a, b, c, x).reshape(-1), (W0, W1, W2))
    Jm = torch.cat([j.reshape(j.shape[0], -1) for j in J], 1)
    K = run.gamma**2 * N * Jm @ Jm.T / len(X)
    assert run.ntk_top[0, 0] == pytest.approx(float(torch.linalg.eigvalsh(K)[-1]), rel=1e-10)


def test_simulator_is_deterministic_and_batches_seeds():
    X, Y = teacher_task(8, 4, seed=2)
    a = train_spectral_mlp(X, Y, width=12, n_steps=3, seeds=3, seed=4)
    b = train_spectral_mlp(X, Y, width=12, n_steps=3, seeds=3, seed=4)
    np.testing.assert_array_equal(a.singular_values, b.singular_values)
    assert len({round(float(v), 12) for v in a.singular_values[:, -1, 0]}) == 3
    assert not a.diverged.any()
    c = train_spectral_mlp(X, Y, width=12, n_steps=60, lr=500.0, seed=4, record_spectrum=False)
    assert c.diverged.all()


def test_mup_spike_is_width_stable_and_ntp_spike_shrinks():
    """The update's operator norm: O(1) in muP, ~N^-1/2 in NTP (measured ratios 1.0 and 0.5 over 4x)."""
    X, Y = teacher_task(16, 8, seed=3)
    th = {(p, N): train_spectral_mlp(X, Y, width=N, param=p, lr=0.5, n_steps=40, seeds=2, base_width=32, seed=1,
                                     record_steps=[40], record_ntk=False).update_singular_values[:, -1, 0].mean()
          for p in ("mup", "ntp") for N in (32, 128)}
    assert 0.8 < th["mup", 128] / th["mup", 32] < 1.25
    assert 0.35 < th["ntp", 128] / th["ntp", 32] < 0.65
