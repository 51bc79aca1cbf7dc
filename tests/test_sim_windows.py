"""Log-spaced step windows (lmech.sim.windows) against a direct assignment of steps to windows."""
import numpy as np
import pytest

from lmech.sim.windows import log_windows


@pytest.mark.parametrize("t_min,t_max,n", [(1, 100, 5), (5, 800, 10), (2, 600, 8), (1, 7, 20)])
def test_windows_match_direct_assignment(t_min, t_max, n):
    w = log_windows(t_min, t_max, n)
    # step t lies in window j iff e_j <= t < e_{j+1}, e = geomspace(t_min, t_max + 1, n + 1):
    # j = floor(n log(t / t_min) / log((t_max + 1) / t_min))
    t = np.arange(t_min, t_max + 1)
    j = np.floor(n * np.log(t / t_min) / np.log((t_max + 1) / t_min) + 1e-12).astype(int)
    expected = [t[j == k] for k in np.unique(j)]
    assert len(w.windows) == len(expected) <= n
    for got, want in zip(w.windows, expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(w.steps, t)


def test_window_mean_max_and_centres():
    w = log_windows(1, 50, 4)
    curve = np.arange(51.0) ** 2  # value at step t is t^2
    np.testing.assert_allclose(w.mean(curve), [np.mean(s**2.0) for s in w.windows])
    np.testing.assert_allclose(w.max(curve), [s[-1] ** 2.0 for s in w.windows])
    np.testing.assert_allclose(w.centres, [np.exp(np.log(s).mean()) for s in w.windows])
    two = np.stack([curve, 2 * curve])  # leading axes are kept
    np.testing.assert_allclose(w.mean(two)[1], 2 * w.mean(curve))


def test_per_window_thinning_and_recorded_values():
    full = log_windows(2, 600, 8)
    thin = log_windows(2, 600, 8, per_window=4)
    assert len(thin.windows) == len(full.windows)
    for a, b in zip(full.windows, thin.windows):
        assert b.size == min(4, a.size) and b[0] == a[0] and b[-1] == a[-1] and np.all(np.isin(b, a))
    values = np.sqrt(thin.steps)  # recorded at thin.steps only
    np.testing.assert_allclose(thin.mean(values, recorded=True), [np.sqrt(s).mean() for s in thin.windows])


def test_bad_inputs():
    with pytest.raises(ValueError, match="t_max"):
        log_windows(10, 5, 3)
    with pytest.raises(ValueError, match="t_min"):
        log_windows(0, 5, 3)
    with pytest.raises(ValueError, match="n_windows"):
        log_windows(1, 5, 0)
    with pytest.raises(ValueError, match="per_window"):
        log_windows(1, 5, 2, per_window=0)
    w = log_windows(1, 20, 3)
    with pytest.raises(ValueError, match="values"):
        w.mean(np.ones(10))  # too short to be indexed by step up to 20
    with pytest.raises(ValueError, match="values"):
        w.mean(np.ones(5), recorded=True)
