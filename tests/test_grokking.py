"""Grokking (lazy -> rich) and margin growth: theory against independent computations."""
import numpy as np
import pytest

from lmech.sim import grokking as sim
from lmech.theory import grokking as th


def _quadratic(rng, D):
    l = rng.standard_normal(D) / np.sqrt(D)
    A = rng.standard_normal((D, D)) / D
    return l, A + A.T


@pytest.mark.parametrize("linear", [0.0, 0.7])
def test_test_loss_formula_matches_monte_carlo(linear):
    """Closed form against a Monte Carlo average over 4e5 fresh Gaussian inputs (within 4 s.e.)."""
    rng = np.random.default_rng(0)
    D = 6
    b = np.zeros(D)
    b[1] = 1.0
    l, A = _quadratic(rng, D)
    x = rng.standard_normal((400_000, D))
    err = (x @ l + 0.5 * np.einsum("pi,ij,pj->p", x, A, x) - linear * x[:, 1] - 0.5 * x[:, 1] ** 2) ** 2
    se = err.std(ddof=1) / np.sqrt(len(err))
    assert abs(th.quadratic_test_loss(l, A, b, linear) - err.mean()) < 4 * se
    # the five sufficient statistics give the same number
    tr, bAb, fro = np.trace(A), b @ A @ b, np.sum(A * A)
    five = l @ l - 2 * linear * (l @ b) + linear ** 2 + 0.25 * ((tr - 1) ** 2 + 2 * (fro - 2 * bAb + 1))
    assert th.quadratic_test_loss(l, A, b, linear) == pytest.approx(five, rel=1e-12)


def test_test_loss_zero_at_teacher_and_batched():
    b = np.eye(4)[0]
    assert th.quadratic_test_loss(np.zeros(4), np.outer(b, b), b) == pytest.approx(0.0, abs=1e-15)
    assert th.quadratic_test_loss(np.zeros(4), np.zeros((4, 4)), b) == pytest.approx(0.75)  # E y^2 = 3/4
    L, A = np.zeros((2, 3, 4)), np.zeros((2, 3, 4, 4))
    assert th.quadratic_test_loss(L, A, b).shape == (2, 3)


def test_moment_recursion_equals_network_gd_exactly():
    """Started from the network's own initial weights the recursion is the finite network's GD."""
    X, b, y, Xt, yt = sim.polynomial_task(25, 6, n_test=3000, seed=1)
    net = sim.train_two_layer(X, y, Xt, yt, [1.0, 5.0], eps=0.3, lr=2.0, steps=120, width=40, n_seeds=1,
                              record_every=20, align_every=1, seed=2)
    exact = th.grokking_dynamics(X, b, [1.0, 5.0], eps=0.3, lr=2.0, steps=120, record_every=20,
                                 init_weights=net.init_weights[0])
    np.testing.assert_allclose(exact.train_loss, net.train_loss[:, 0], rtol=1e-9)
    np.testing.assert_allclose(exact.alignment, net.alignment[:, 0], rtol=1e-9)
    np.testing.assert_allclose(exact.test_loss, th.quadratic_test_loss(net.l[:, 0], net.A[:, 0], b), rtol=1e-9)
    np.testing.assert_allclose(exact.l, net.l[:, 0, -1], atol=1e-10)
    # and the closed form is the network's held-out MSE up to Monte Carlo error
    z = (net.test_loss[:, 0, -1] - exact.test_loss[:, -1]) / net.test_loss_sem[:, 0, -1]
    assert np.all(np.abs(z) < 4)


def test_infinite_width_limit_and_laziness():
    """Wide networks approach the N -> inf recursion; large alpha follows kernel GD with the initial NTK."""
    X, b, y, Xt, yt = sim.polynomial_task(30, 8, n_test=10, seed=3)
    inf = th.grokking_dynamics(X, b, [1.0, 2000.0], eps=0.1, lr=4.0, steps=300, record_every=50)
    rng = np.random.default_rng(4)
    errs = []
    for N in (100, 6400):
        fin = th.grokking_dynamics(X, b, [1.0, 2000.0], eps=0.1, lr=4.0, steps=300, record_every=50,
                                   init_weights=rng.standard_normal((N // 2, 8)))
        errs.append(np.max(np.abs(fin.test_loss / inf.test_loss - 1)))
    assert errs[1] < errs[0] / 2 and errs[1] < 0.03
    kern = th.ntk_krr_test_loss(X, b, eps=0.1, lr=4.0, steps=inf.times)
    np.testing.assert_allclose(inf.test_loss[1], kern.test_loss, rtol=2e-3)
    assert inf.status == "closed_form" and kern.status == "closed_form"
    # the rich network moves its kernel towards the target, the lazy one does not
    assert inf.alignment[0, -1] > 1.1 * inf.alignment[0, 0]
    assert abs(inf.alignment[1, -1] / inf.alignment[1, 0] - 1) < 1e-3


def test_kernel_regression_is_the_min_norm_interpolant():
    """Ridgeless KRR: interpolates below the threshold; recovers the target above D + D(D+1)/2; long GD -> KRR."""
    D = 5
    X, b, *_ = sim.polynomial_task(14, D, n_test=1, seed=5)
    k = th.ntk_krr_test_loss(X, b, eps=0.5)
    assert k.train_loss < 1e-20 and k.test_loss > 0.05
    long = th.ntk_krr_test_loss(X, b, eps=0.5, lr=1.0, steps=[1e7])
    assert long.test_loss[0] == pytest.approx(k.test_loss, rel=1e-6)
    X, b, *_ = sim.polynomial_task(D + D * (D + 1) // 2 + 5, D, n_test=1, seed=6)
    assert th.ntk_krr_test_loss(X, b, eps=0.5).test_loss < 1e-16
    # ridge: kernel predictor by a direct solve on test points
    X, b, *_ = sim.polynomial_task(12, D, n_test=1, seed=7)
    y = 0.5 * (X @ b) ** 2
    kr = th.ntk_krr_test_loss(X, b, eps=0.5, ridge=0.1)
    xt = np.random.default_rng(8).standard_normal((5, D))
    K = lambda U, V: (U @ V.T / D) + 0.25 * (U @ V.T / D) ** 2  # noqa: E731
    f = K(xt, X) @ np.linalg.solve(K(X, X) + 0.1 * 12 * np.eye(12), y)
    np.testing.assert_allclose(xt @ kr.l + 0.5 * np.einsum("pi,ij,pj->p", xt, kr.A, xt), f, rtol=1e-9)


def test_grokking_delay_grows_with_alpha():
    X, b, *_ = sim.polynomial_task(40, 10, n_test=1, seed=4)
    r = th.grokking_dynamics(X, b, [1.0, 2.0, 3.0], eps=0.1, lr=6.0, steps=1200, record_every=10)
    assert np.all(np.diff(r.delay) > 0) and r.delay[-1] > 3


def test_max_margin_against_brute_force_and_kkt():
    rng = np.random.default_rng(0)
    X, y, *_ = sim.separable_task(12, 3, n_test=1, seed=1)
    svm = th.max_margin(X, y)
    assert svm.converged and svm.residual < 1e-9
    # no random unit direction beats the SVM margin; the SVM direction attains it
    U = rng.standard_normal((200_000, 3))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    best = np.max(np.min((X * y[:, None]) @ U.T, axis=0))
    assert best <= svm.margin + 1e-12 and best > svm.margin - 0.01
    assert np.min((X * y[:, None]) @ svm.w_hat) == pytest.approx(1.0, abs=1e-9)


def test_margin_asymptotics_against_long_gd():
    X, y, Xt, yt = sim.separable_task(30, 10, n_test=100, seed=2)
    run = sim.overtrain_logistic(X, y, Xt, yt, lr=0.5, record_steps=[3000, 30000])
    a = th.margin_asymptotics(X, y, run.steps, lr=0.5)
    assert np.all(np.abs(run.margin / a.margin - 1) < [0.05, 0.02])
    assert run.margin[1] > run.margin[0] and run.margin[1] < a.max_margin
    assert np.all(run.train_accuracy == 1.0) and run.saturation_step > 0
    # overtraining slows the relearning of reversed labels
    assert sim.steps_to_reverse(X, y, run.weights[1], lr=0.5) > sim.steps_to_reverse(X, y, run.weights[0], lr=0.5)
    assert th.reversal_steps(X, y, a.weights[1], lr=0.5) > th.reversal_steps(X, y, a.weights[0], lr=0.5)


def test_not_separable_is_flagged():
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.warns(Warning):
        r = th.max_margin(X, np.array([1.0, 1.0]))
    assert not r.converged and r.status == "max_iter"


@pytest.mark.parametrize("call, match", [
    (lambda: th.quadratic_test_loss(np.zeros(3), np.zeros((3, 3)), np.ones(3)), "teacher"),
    (lambda: th.quadratic_test_loss(np.zeros(3), np.zeros((2, 2)), np.eye(3)[0]), "`A`"),
    (lambda: th.grokking_dynamics(np.ones((4, 2)), np.eye(2)[0], [-1.0], eps=0.1, lr=1.0, steps=3), "alphas"),
    (lambda: th.grokking_dynamics(np.ones((4, 2)), np.eye(2)[0], [1.0], eps=0.1, lr=0.0, steps=3), "lr"),
    (lambda: th.grokking_dynamics(np.ones((4, 2)), np.eye(2)[0], [1.0], eps=0.1, lr=1.0, steps=3,
                                  init_weights=np.ones((3, 5))), "init_weights"),
    (lambda: th.ntk_krr_test_loss(np.ones((4, 2)), np.eye(2)[0], eps=-1.0), "eps"),
    (lambda: th.max_margin(np.ones((3, 2)), np.array([1.0, 0.0, 1.0])), "`y`"),
    (lambda: th.reversal_steps(np.ones((3, 2)), np.ones(3), np.ones(2), lr=0.1, fraction=0.0), "fraction"),
    (lambda: sim.train_two_layer(np.ones((4, 2)), np.ones(4), np.ones((5, 2)), np.ones(5), [1.0], eps=0.1,
                                 lr=1.0, steps=2, width=3), "width"),
    (lambda: sim.polynomial_task(0, 3), "`P`"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_seeded_and_reproducible():
    a = sim.polynomial_task(10, 3, n_test=5, seed=9)
    b = sim.polynomial_task(10, 3, n_test=5, seed=9)
    np.testing.assert_array_equal(a[0], b[0])
    r1 = sim.train_two_layer(a[0], a[2], a[3], a[4], [1.0], eps=0.1, lr=1.0, steps=5, width=4, seed=3)
    r2 = sim.train_two_layer(a[0], a[2], a[3], a[4], [1.0], eps=0.1, lr=1.0, steps=5, width=4, seed=3)
    np.testing.assert_array_equal(r1.train_loss, r2.train_loss)
