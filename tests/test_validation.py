import numpy as np
import pytest

from lmech._validation import check_array, check_choice, check_int, check_real, check_same_length
from lmech.results import SolverResult


def test_check_array_messages_name_argument():
    with pytest.raises(ValueError, match=r"`lam` must be non-negative"):
        check_array([1.0, -2.0], "lam", nonnegative=True)
    with pytest.raises(ValueError, match=r"`lam` must be finite \(it contains NaN"):
        check_array([1.0, np.nan], "lam")
    with pytest.raises(ValueError, match=r"`lam` must be 1-dimensional"):
        check_array([[1.0]], "lam", ndim=1)
    with pytest.raises(ValueError, match=r"`K` must be of shape \(3, 3\)"):
        check_array(np.ones((3, 2)), "K", shape=(3, 3))
    with pytest.raises(TypeError, match=r"`x` must be an array of numbers"):
        check_array("abc", "x")
    with pytest.raises(ValueError, match="strictly positive"):
        check_array([0.0], "P", positive=True)
    out = check_array([1, 2], "x")
    assert out.dtype == np.float64


def test_check_real_and_int():
    assert check_real(0.5, "g", lo=0, hi=1, hi_closed=False) == 0.5
    with pytest.raises(ValueError, match=r"`discount` must be in \[0, 1\)"):
        check_real(1.0, "discount", lo=0, hi=1, hi_closed=False)
    with pytest.raises(TypeError, match="real number"):
        check_real("1", "lr")
    with pytest.raises(TypeError, match="real number"):
        check_real(True, "lr")
    with pytest.raises(ValueError, match="finite"):
        check_real(float("nan"), "lr")
    assert check_int(3.0, "n", lo=1) == 3
    with pytest.raises(TypeError, match="integer"):
        check_int(2.5, "n")
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer in \[1, inf\]"):
        check_int(0, "batch_size", lo=1)


def test_check_choice_and_lengths():
    assert check_choice("a", "mode", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match="`mode` must be one of 'a', 'b'"):
        check_choice("c", "mode", ["a", "b"])
    with pytest.raises(ValueError, match="same length"):
        check_same_length(a=[1, 2], b=[1])


def test_solver_result_repr_and_frozen():
    from dataclasses import FrozenInstanceError, dataclass

    @dataclass(frozen=True, kw_only=True)
    class R(SolverResult):
        x: np.ndarray

    r = R(x=np.zeros(10), converged=True, iterations=3, residual=1e-12)
    text = repr(r)
    assert "converged" in text and "shape=(10,)" in text
    with pytest.raises(FrozenInstanceError):
        r.converged = False


def test_check_regression_data_and_seeds():
    import numpy as np

    from lmech._validation import check_regression_data, check_seeds

    X, y = np.ones((4, 3)), np.zeros(4)
    Xa, ya, Xt, yt = check_regression_data(X, y)
    assert Xa.shape == (4, 3) and Xt is None and yt is None
    assert check_regression_data(X, y, np.ones((2, 3)))[3] is None  # test inputs without labels are fine
    with pytest.raises(ValueError, match="y_test"):
        check_regression_data(X, y, np.ones((2, 3)), test_labels_required=True)
    with pytest.raises(ValueError, match="y_test"):
        check_regression_data(X, y, None, np.zeros(2))
    with pytest.raises(ValueError, match="X_test"):
        check_regression_data(X, y, np.ones((2, 5)), np.zeros(2))
    with pytest.raises(ValueError, match="`y`"):
        check_regression_data(X, np.zeros(3))
    assert check_seeds(3) == (3,) and check_seeds([0, 2]) == (0, 2)
    with pytest.raises(ValueError, match="distinct"):
        check_seeds([1, 1])
    with pytest.raises(TypeError, match="seeds"):
        check_seeds([])
