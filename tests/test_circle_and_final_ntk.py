"""MLPs on the circle (lmech.sim.circle) and the final-NTK learning-curve pipeline."""
import numpy as np
import pytest
import torch
from scipy.integrate import quad

from lmech.sim.circle import (
    circle_ntk,
    circle_ntk_spectrum,
    circle_task,
    lazy_circle_curve,
    train_circle_mlp,
)
from lmech.sim.variance_onset import _entk, _gd_two_layer, final_ntk_curves, relu_ntk, sphere_task
from lmech.spectra import empirical_spectrum
from lmech.theory.kernel_curves import learning_curve


# --------------------------------------------------------------------------- circle NTK
def test_circle_ntk_matches_wide_network_monte_carlo():
    # empirical NTK of (1/sqrt N) sum a relu(w.x + b) at N = 200000 random neurons
    gen = torch.Generator().manual_seed(0)
    N = 200_000
    W = torch.randn(N, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(N, generator=gen, dtype=torch.float64)
    a = torch.randn(N, generator=gen, dtype=torch.float64)
    D = np.array([0.0, 0.3, 1.0, 2.0, np.pi])
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    X = torch.tensor(np.c_[np.cos(D), np.sin(D)])
    h0, h = x0 @ W.T + b, X @ W.T + b
    both = ((h > 0) & (h0 > 0)).double()
    emp = (torch.relu(h) @ torch.relu(h0) + (both @ a**2) * (X @ x0 + 1)) / N
    # Monte-Carlo error at N = 2e5, measured over generator seeds 0-2: max 3.5e-3 .. 8.7e-3 relative
    np.testing.assert_allclose(emp.numpy(), circle_ntk(D), rtol=1.5e-2)


def test_circle_spectrum_matches_quadrature_and_has_capacity_two():
    lam = circle_ntk_spectrum(200)
    for k in (0, 1, 3, 10, 50):
        ref = quad(lambda D: circle_ntk(D) * np.cos(k * D), 0, 2 * np.pi, limit=400, points=[np.pi])[0] / (2 * np.pi)
        assert abs(lam[k] - ref) <= 1e-6 * lam[0] + 1e-6 * abs(ref)
    assert np.all(lam > 0)
    k = np.arange(20, 201)
    slope = np.polyfit(np.log(k), np.log(lam[20:201]), 1)[0]
    assert abs(slope + 2.0) < 0.02
    # Mercer: Theta(0) = lam_0 + 2 sum_k lam_k (the k^-2 tail beyond 200 is ~ 2 * 0.0717 / 200)
    assert abs(circle_ntk(0.0) - (lam[0] + 2 * lam[1:].sum())) < 2 * 0.0717 / 200 * 1.2


def test_circle_task_power_and_source():
    task = circle_task(0.5, n_freq=32, n_grid=128, seed=3)
    np.testing.assert_allclose(np.mean(task.y**2), task.power.sum(), rtol=1e-12)   # Parseval on the grid
    k = np.arange(1, 33)
    np.testing.assert_allclose(task.power, 0.5 * k**-2.0, rtol=1e-12)             # alpha beta + 1 = 2
    same = circle_task(0.5, n_freq=32, n_grid=128, seed=3)
    np.testing.assert_array_equal(task.y, same.y)


# --------------------------------------------------------------------------- training
def test_lazy_wide_mlp_follows_ntk_gradient_flow():
    task = circle_task(0.5, n_freq=16, n_grid=64, seed=0)
    t = np.array([1.0, 5.0, 20.0])
    th = lazy_circle_curve(task, t)
    sim = train_circle_mlp(task, t, width=2048, gamma=0.01, seeds=2, seed=1, max_step=0.1)
    # small steps so that GD tracks gradient flow on the top modes (lam_1 = 0.4)
    # measured max relative error 1.2-1.3 % over seeds 1-2 (finite-width eNTK fluctuations at N = 2048)
    np.testing.assert_allclose(sim.loss, th, rtol=0.05)
    assert np.all(sim.rejected == 0) and np.all(sim.weight_change < 0.05)


def test_function_dynamics_do_not_depend_on_gamma_early_and_rich_moves_features():
    task = circle_task(0.5, n_freq=16, n_grid=64, seed=0)
    t = np.array([0.5, 2.0])
    lazy = train_circle_mlp(task, t, width=256, gamma=1e-3, seed=4)
    lazier = train_circle_mlp(task, t, width=256, gamma=1e-4, seed=4)
    np.testing.assert_allclose(lazy.loss, lazier.loss, rtol=1e-3)
    rich = train_circle_mlp(task, [20.0], width=256, gamma=2.0, seed=4)
    lazy20 = train_circle_mlp(task, [20.0], width=256, gamma=1e-2, seed=4)
    assert rich.weight_change[0] > 50 * lazy20.weight_change[0]


def test_circle_training_gradient_matches_autograd():
    # one accepted step of train_circle_mlp equals one autograd GD step with lr = h gamma^2 N
    task = circle_task(0.5, n_freq=8, n_grid=32, seed=0)
    N, g, h = 64, 0.7, 0.25
    out = train_circle_mlp(task, [h], width=N, gamma=g, seed=9, max_step=h)
    gen = torch.Generator().manual_seed(9)
    W = torch.randn(N, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(N, generator=gen, dtype=torch.float64, requires_grad=True)
    a = torch.randn(N, generator=gen, dtype=torch.float64, requires_grad=True)
    X = torch.tensor(np.c_[np.cos(task.theta), np.sin(task.theta)])
    y = torch.tensor(task.y)

    def f(W, b, a):
        return torch.relu(X @ W.T + b) @ a / (g * N)

    f0 = f(W, b, a).detach()
    loss = 0.5 * ((f(W, b, a) - f0 - y) ** 2).mean()
    grads = torch.autograd.grad(loss, (W, b, a))
    with torch.no_grad():
        W2, b2, a2 = (p - h * g * g * N * q for p, q in zip((W, b, a), grads))
        ref = float(((f(W2, b2, a2) - f0 - y) ** 2).mean())
    assert out.steps[0] == 1
    np.testing.assert_allclose(out.loss[0], ref, rtol=1e-10)


def test_circle_bad_inputs():
    task = circle_task(0.5, n_freq=8, n_grid=32)
    with pytest.raises(ValueError, match="`n_grid`"):
        circle_task(0.5, n_freq=64, n_grid=100)
    with pytest.raises(ValueError, match="`beta`"):
        circle_task(-1.0)
    with pytest.raises(ValueError, match="`gamma`"):
        train_circle_mlp(task, [1.0], width=8, gamma=0.0)
    with pytest.raises(ValueError, match="`t`"):
        train_circle_mlp(task, [2.0, 1.0], width=8, gamma=1.0)
    with pytest.raises(TypeError, match="`task`"):
        train_circle_mlp("circle", [1.0], width=8, gamma=1.0)


# --------------------------------------------------------------------------- final NTK
def test_two_layer_gd_step_matches_autograd():
    task = sphere_task(5, 2, seed=0)
    gen = torch.Generator().manual_seed(1)
    X, y = task.sample(20, gen)
    N, alpha = 32, 0.5
    W, a, W0, a0, _, steps = _gd_two_layer(X, y, N, alpha, torch.Generator().manual_seed(5), 1, 1e-12, 0.5)
    assert steps == 1
    Wr, ar = W0.clone().requires_grad_(True), a0.clone().requires_grad_(True)
    c = alpha / np.sqrt(N)
    f0 = c * torch.relu(X @ W0.T) @ a0
    loss = 0.5 * ((c * torch.relu(X @ Wr.T) @ ar - f0 - y) ** 2).mean()
    gW, ga = torch.autograd.grad(loss, (Wr, ar))
    lam_max = float(torch.linalg.eigvalsh(_entk(W0, a0, X, X) / 20).max())
    lr = 0.5 * 2 / (alpha**2 * lam_max)
    np.testing.assert_allclose(W.numpy(), (W0 - lr * gW).numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.numpy(), (a0 - lr * ga).numpy(), rtol=1e-12, atol=1e-14)


def test_lazy_networks_follow_theory_with_their_ntk():
    # lazy nets (alpha = 8): initial and final eNTKs coincide, and below the variance onset
    # (P = 12 << sqrt(N)) the learning-curve theory with their kernel predicts the ensemble error
    task = sphere_task(5, 2, seed=1)
    res = final_ntk_curves(task, [12], width=1024, alpha=8.0, ensemble=2, datasets=8, n_spectral=300, n_test=600,
                           seed=3, max_steps=3000)
    rel = np.linalg.norm(res.final_gram - res.initial_gram) / np.linalg.norm(res.initial_gram)
    assert rel < 0.02
    y = res.y_spectral
    G = res.final_gram[0]
    spec = empirical_spectrum(G)
    m = len(spec.eigenvalues) // 2
    pred = learning_curve(spec.eigenvalues[:m], spec.target_power(y)[:m], 12, trace=float(np.trace(G)) / len(G),
                          total_power=float(np.mean(y**2))).generalization_error[0]
    assert abs(pred - res.error_ensemble[0]) < 3 * res.error_ensemble_se[0] + 0.05 * res.error_ensemble[0]
    # the mean initial eNTK approximates the infinite-width NTK
    Xs = torch.as_tensor(res.X_spectral)
    K_inf = relu_ntk(Xs, Xs).numpy()
    assert np.linalg.norm(res.initial_gram[0] - K_inf) / np.linalg.norm(K_inf) < 0.05


def test_final_ntk_bad_inputs():
    task = sphere_task(5, 2)
    with pytest.raises(ValueError, match="`alpha`"):
        final_ntk_curves(task, [10], width=8, alpha=0.0)
    with pytest.raises(ValueError, match="`lr_scale`"):
        final_ntk_curves(task, [10], width=8, alpha=1.0, lr_scale=1.5)
    with pytest.raises(TypeError, match="`task`"):
        final_ntk_curves("sphere", [10], width=8, alpha=1.0)


def test_same_seed_same_numbers():
    task = circle_task(0.5, n_freq=8, n_grid=32, seed=0)
    r1 = train_circle_mlp(task, [1.0, 3.0], width=32, gamma=2.0, seed=7)
    r2 = train_circle_mlp(task, [1.0, 3.0], width=32, gamma=2.0, seed=7)
    np.testing.assert_array_equal(r1.loss, r2.loss)
    f1 = final_ntk_curves(sphere_task(5, 2), [10], width=16, alpha=0.5, ensemble=1, n_spectral=20, n_test=20, seed=2)
    f2 = final_ntk_curves(sphere_task(5, 2), [10], width=16, alpha=0.5, ensemble=1, n_spectral=20, n_test=20, seed=2)
    np.testing.assert_array_equal(f1.final_gram, f2.final_gram)
    assert f1.error_ensemble[0] == f2.error_ensemble[0]
