"""lmech.predict and `lmech predict`: the learning curve of a user's data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lmech.cli import main
from lmech.kernels import ntk_mlp
from lmech.predict import LearningCurvePrediction, LearningCurvePredictor, learning_curve, read_dataset


def _task(n=800, d=8, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.tanh(X[:, 0] + 0.5 * X[:, 1]) + 0.3 * X[:, 2] * X[:, 3] + np.sqrt(noise) * rng.standard_normal(n)
    return X, y


def _krr_held_out(X, y, P, trials, seed):
    """Independent check: ridgeless NTK regression on random subsets, error on the rest."""
    Xs = (X - X.mean(0)) / X.std(0)
    yc = y - y.mean()
    K = ntk_mlp(Xs, depth=1)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        perm = rng.permutation(len(y))
        tr, te = perm[:P], perm[P:]
        alpha = np.linalg.lstsq(K[np.ix_(tr, tr)], yc[tr], rcond=1e-12)[0]
        out.append(np.mean((K[np.ix_(te, tr)] @ alpha - yc[te]) ** 2))
    return float(np.mean(out))


@pytest.fixture(scope="module")
def task_result():
    X, y = _task()
    return X, y, learning_curve(X, y, [10, 25, 50, 100, 200], n_bootstrap=10, n_splits=4, seed=0)


def test_curve_matches_kernel_regression(task_result):
    X, y, res = task_result
    assert isinstance(res, LearningCurvePrediction) and res.converged and res.method == "exact"
    # measured (60 trials, seeds 0 and 3, n = 800): theory/actual - 1 in [-0.03, +0.02] at P <= 25 and
    # in [-0.12, -0.06] at P = 50..200 (the theory sits a little below kernel regression at P ~ n/8)
    for P, tol in ((10, 0.06), (25, 0.06), (100, 0.16)):
        actual = _krr_held_out(X, y, P, trials=40, seed=P)
        predicted = float(res.generalization_error[list(res.P).index(P)])
        assert abs(predicted / actual - 1) < tol, (P, predicted, actual)


def test_result_fields(task_result):
    _, _, res = task_result
    E = res.generalization_error
    assert np.all(np.diff(E) < 0)
    assert np.all(res.lower <= E) and np.all(E <= res.upper) and np.any(res.upper > res.lower)
    assert 0 < res.exponent < 3 and np.isfinite(res.exponent_stderr)
    assert res.samples_for[0.5] is not None and res.samples_for[0.5] <= (res.samples_for[0.25] or np.inf)
    v = res.validation
    assert v.P.size == 3 and np.all(np.abs(v.rel_gap) < 0.2) and v.within
    # white noise of variance 0.05 in the labels: estimated 0.041 (n = 800), 0.029-0.037 elsewhere
    assert 0.02 < res.noise_estimate < 0.08 and res.noise == 0.0
    np.testing.assert_allclose(res.clean_error, E - res.noise_estimate)
    d = res.to_dict()
    json.dumps(d)
    for key in ("P", "generalization_error", "lower", "upper", "exponent", "samples_for", "validation"):
        assert key in d


def test_estimator_api(task_result):
    X, y, res = task_result
    est = LearningCurvePredictor(n_bootstrap=0, validate=False)
    assert est.get_params()["kernel"] == "ntk"
    assert est.set_params(depth=1) is est
    with pytest.raises(RuntimeError):
        est.predict_curve([10])
    pred = est.fit(X, y).predict_curve([25, 100])
    want = res.generalization_error[[1, 3]]
    np.testing.assert_allclose(pred, want, rtol=1e-10)
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(nope=1)


def test_nystrom_matches_kernel_regression():
    # measured theory/actual - 1 with 600 landmarks of 1200 points: +0.06, -0.05, -0.03
    X, y = _task(n=1200, seed=1)
    nys = learning_curve(X, y, [10, 30, 100], n_bootstrap=5, validate=False, max_exact=500, landmarks=600)
    assert nys.method == "nystrom" and nys.landmarks == 600 and nys.eigenvalues.size <= 300
    actual = np.array([_krr_held_out(X, y, P, trials=40, seed=P) for P in (10, 30, 100)])
    np.testing.assert_allclose(nys.generalization_error, actual, rtol=0.12)
    assert np.all(nys.lower <= nys.generalization_error) and np.all(nys.upper >= nys.generalization_error)


def test_classification_labels_become_one_hot():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 5))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    res = learning_curve(X, labels, [5, 20], n_bootstrap=0, validate=False)
    assert res.n_outputs == 3 and res.settings["task"] == "classification"
    reg = learning_curve(X, labels, [5, 20], n_bootstrap=0, validate=False, task="regression")
    assert reg.n_outputs == 1


@pytest.mark.parametrize("X, y, match", [
    (np.zeros(10), np.zeros(10), "X"),
    (np.ones((10, 2)), np.ones(9), "y"),
    (np.ones((10, 2)), np.ones(10), "y"),  # constant targets
    (np.full((10, 2), np.nan), np.arange(10.0), "X"),
])
def test_bad_inputs(X, y, match):
    with pytest.raises(ValueError, match=match):
        learning_curve(X, y, n_bootstrap=0, validate=False)


def test_bad_options():
    X, y = _task(n=50)
    with pytest.raises(ValueError, match="kernel"):
        learning_curve(X, y, kernel="rbf")
    with pytest.raises(ValueError, match="P"):
        learning_curve(X, y, [2.5])
    with pytest.raises(ValueError, match="validate"):
        learning_curve(X, y, [5], validate=[100])


def test_readers(tmp_path):
    X, y = _task(n=20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X2, y2 = read_dataset(tmp_path / "d.npz")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    header = ",".join([f"f{i}" for i in range(X.shape[1])] + ["t"])
    np.savetxt(tmp_path / "d.csv", np.c_[y, X], delimiter=",", header="t," + header[:-2], comments="")
    X3, y3 = read_dataset(tmp_path / "d.csv", target_column="t")
    np.testing.assert_allclose(X3, X) and np.testing.assert_allclose(y3, y)
    np.savetxt(tmp_path / "n.csv", np.c_[X, y], delimiter=",")
    X4, y4 = read_dataset(tmp_path / "n.csv")
    np.testing.assert_allclose(y4, y)
    np.savez(tmp_path / "bad.npz", A=X)
    with pytest.raises(ValueError, match="bad.npz.*lacks"):
        read_dataset(tmp_path / "bad.npz")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(ValueError, match="bad.csv.*row 3"):
        read_dataset(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="missing.npy"):
        read_dataset(tmp_path / "missing.npy", tmp_path / "y.npy")
    with pytest.raises(ValueError, match="unknown format"):
        read_dataset(tmp_path / "d.txt")


def test_cli(tmp_path, capsys):
    X, y = _task(n=400)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "out"
    rc = main(["predict", "--X", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy"), "--P", "5,20,50",
               "--bootstrap", "5", "--out", str(out)])
    assert rc in (0, 1)
    data = json.loads((out / "prediction.json").read_text())
    assert data["P"] == [5.0, 20.0, 50.0] and len(data["lower"]) == 3 and "validation" in data
    assert (out / "prediction.png").stat().st_size > 0
    assert "the theory is" in capsys.readouterr().out or rc == 1


def test_cli_usage_errors(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.ones((10, 2)))
    np.save(tmp_path / "y.npy", np.arange(9.0))
    for argv, word in [
        (["--X", str(tmp_path / "nope.npy"), "--y", str(tmp_path / "y.npy")], "nope.npy"),
        (["--X", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy")], "y"),
        (["--X", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy"), "--noise", "-1"], "--noise"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["predict", *argv, "--out", str(tmp_path / "o")])
        assert exc.value.code == 2
        assert word in capsys.readouterr().err


def _two_layer(d):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)).double()


def test_model_kernel_and_memory_blocks():
    """The empirical-NTK path equals the analytic path fed the same Gram; blocks don't change it."""
    import torch

    from lmech.kernels import empirical_ntk
    from lmech.predict._core import _model_kernel_fn

    X, y = _task(n=120, d=5)
    net = _two_layer(5)
    n_params = sum(p.numel() for p in net.parameters())
    k_small = _model_kernel_fn(net, 5, memory_gb=n_params * 8 * 3 * 10 / 2**30)  # room for 10 Jacobian rows
    Xt = torch.as_tensor(X, dtype=torch.float64)
    np.testing.assert_allclose(k_small(X[:50], X[:37]), empirical_ntk(net, Xt[:50], Xt[:37]), rtol=1e-12)
    res = learning_curve(X, y, [5, 20], model=_two_layer, n_bootstrap=0, validate=[10], n_splits=3)
    assert res.settings["kernel"] == "empirical-ntk" and res.validation.P.tolist() == [10.0]
    with pytest.raises(ValueError, match="memory_gb"):
        _model_kernel_fn(net, 5, memory_gb=1e-9)
    with pytest.raises(TypeError, match="model"):
        learning_curve(X, y, model=3)


def test_given_noise_is_taken_out_of_the_target():
    X, y = _task(n=300)
    res = learning_curve(X, y, [5, 20, 60], noise=0.05, n_bootstrap=0, validate=False)
    assert res.noise == 0.05
    np.testing.assert_allclose(res.clean_error, np.clip(res.generalization_error - 0.05, 0, None))
    assert np.all(res.generalization_error > 0.05)


@pytest.mark.parametrize("alpha, beta", [(1.5, 0.5), (2.0, 1.0), (1.2, 0.3)])
def test_spectrum_fit_recovers_power_law_exponents(alpha, beta):
    """The fitted exponents of an exact power-law spectrum (the schedules paper's model), with
    exact per-mode power and with the scatter of one Gaussian coefficient per mode."""
    from lmech.predict._core import _fit_spectrum
    from lmech.theory.schedules import power_law_problem

    lam, p = power_law_problem(2000, alpha, beta)
    f = _fit_spectrum(lam, p, 500)
    assert f["eigenvalue_exponent"] == pytest.approx(alpha, abs=1e-9)
    assert f["target_power_exponent"] == pytest.approx(alpha * beta + 1, abs=1e-9)
    assert f["eigenvalue_fit_modes"] == [2, 500] and f["target_fit_modes"] == [1, 500]
    # one squared Gaussian factor per mode: unbiased slope, scatter ~ the reported stderr (~0.2);
    # the mean over 5 draws is within 4 standard errors of the mean
    fits = [_fit_spectrum(lam, p * np.random.default_rng(s).standard_normal(p.size) ** 2, 500) for s in range(5)]
    errs = [g["target_power_exponent"] - (alpha * beta + 1) for g in fits]
    se = np.mean([g["target_power_exponent_stderr"] for g in fits])
    assert abs(np.mean(errs)) < 4 * se / np.sqrt(5) and max(map(abs, errs)) < 4 * se
    # a white-noise floor taken off again
    h = _fit_spectrum(lam, p + 1e-9, 500, floor=1e-9)
    assert h["target_power_exponent"] == pytest.approx(f["target_power_exponent"], abs=1e-6)
