"""Argument validation shared by every public entry point.

One message shape everywhere: "`<name>` must be <constraint>; got <value>".
Validate once at the public boundary, never inside inner loops.

Sizes (steps, modes, grid points, quadrature nodes, trials, ...) are capped: ``MAX_SIZE``
(10**7) unless a function documents a smaller cap for costlier work. The caps are far above
any real use; they make an absurd request fail at once with ValueError instead of allocating
until memory runs out or looping in C where no signal can stop it.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import numpy as np

#: Default cap on a size argument (see the module docstring).
MAX_SIZE = 10**7

#: Cap on the magnitude of array entries that a computation squares or multiplies together
#: (float64 ends near 1.8e308): such inputs beyond it are refused rather than overflowing.
MAX_MAGNITUDE = 1e100

#: Smallest accepted scale of a spectrum, a time or a rate: below it, reciprocals and
#: Laplace-inversion nodes (~ 1/t) leave float64. Real inputs are many decades above it.
MIN_SCALE = 1e-100

__all__ = [
    "MAX_SIZE",
    "MAX_MAGNITUDE",
    "MIN_SCALE",
    "check_scale",
    "fail",
    "check_array",
    "check_real",
    "check_int",
    "check_choice",
    "check_same_length",
    "check_regression_data",
    "check_seeds",
    "as_complex_array",
]


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(name: str, constraint: str, value: Any, exc: type[Exception] = ValueError) -> NoReturn:
    """Raise ``exc`` with the project's message template."""
    raise exc(f"`{name}` must be {constraint}; got {_short(value)}")


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape: tuple[int | None, ...] | None = None,
    finite: bool = True,
    nonnegative: bool = False,
    positive: bool = False,
    min_size: int = 0,
    dtype: Any = np.float64,
    max_abs: float | None = None,
) -> np.ndarray:
    """Convert ``x`` to an ndarray of ``dtype`` and check it.

    ``shape`` may contain ``None`` for free dimensions. NaN is always rejected when
    ``finite`` is true (the default); infinities too. ``max_abs`` (e.g. ``MAX_MAGNITUDE``)
    bounds the entries' magnitude where the computation would overflow beyond it.
    """
    if isinstance(x, (str, bytes)) or x is None:
        fail(name, "an array of numbers", x, TypeError)
    try:
        arr = np.asarray(x, dtype=dtype)
    except OverflowError:
        fail(name, "an array of numbers within float range", x)
    except (TypeError, ValueError):
        fail(name, "an array of numbers", x, TypeError)
    if any(st < 0 for st in arr.strides):  # reversed views: torch.from_numpy refuses them
        arr = arr.copy()
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-dimensional" for d in allowed)
            fail(name, want, arr)
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            fail(name, f"of shape {want}", arr)
    if arr.size < min_size:
        fail(name, f"of size at least {min_size}", arr)
    if np.issubdtype(arr.dtype, np.number):
        if finite and not np.all(np.isfinite(arr)):
            bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
            fail(name, f"finite (it contains {bad} values)", arr)
        if positive and np.any(arr <= 0):
            fail(name, f"strictly positive (min is {np.min(arr):.6g})", arr)
        if nonnegative and np.any(arr < 0):
            fail(name, f"non-negative (min is {np.min(arr):.6g})", arr)
        if max_abs is not None and arr.size and np.nanmax(np.abs(arr)) > max_abs:
            fail(name, f"at most {max_abs:.0e} in magnitude (larger entries overflow float64 in "
                 f"the computation; rescale them) (max is {np.nanmax(np.abs(arr)):.3g})", arr)
    return arr


def as_complex_array(x: Any, name: str) -> np.ndarray:
    """Convert ``x`` to a complex ndarray, refusing None, strings and out-of-range numbers."""
    if isinstance(x, (str, bytes)) or x is None:
        fail(name, "an array of (complex) numbers", x, TypeError)
    try:
        return np.asarray(x, dtype=complex)
    except OverflowError:
        fail(name, "an array of numbers within float range", x)
    except (TypeError, ValueError):
        fail(name, "an array of (complex) numbers", x, TypeError)


def check_scale(arr: np.ndarray, name: str, *, each: bool = False) -> np.ndarray:
    """Refuse an array whose largest magnitude (``each``: any nonzero entry) is below MIN_SCALE."""
    a = np.abs(np.asarray(arr, dtype=float))
    if a.size and np.any(a > 0):
        small = np.min(a[a > 0]) if each else np.max(a)
        if small < MIN_SCALE:
            what = "nonzero entries" if each else "largest entry"
            fail(name, f"of a scale where the computation stays in float64: {what} at least "
                 f"{MIN_SCALE:g} in magnitude (rescale the units)", arr)
    return arr


def check_real(
    x: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_closed: bool = True,
    hi_closed: bool = True,
) -> float:
    """Check a real scalar in an interval and return it as ``float``."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
        if isinstance(x, np.ndarray) and x.ndim == 0:
            x = x.item()
        else:
            fail(name, "a real number", x, TypeError)
    try:
        v = float(x)
    except OverflowError:
        fail(name, "a finite real number within float range", x)
    if not np.isfinite(v):
        fail(name, "finite", x)
    lo_ok = lo is None or (v >= lo if lo_closed else v > lo)
    hi_ok = hi is None or (v <= hi if hi_closed else v < hi)
    if not (lo_ok and hi_ok):
        left = "-inf" if lo is None else f"{lo:g}"
        right = "inf" if hi is None else f"{hi:g}"
        interval = f"{'[' if lo_closed and lo is not None else '('}{left}, {right}{']' if hi_closed and hi is not None else ')'}"
        fail(name, f"in {interval}", x)
    return v


def check_int(x: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """Check an integer scalar in a closed interval and return it as ``int``."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Integral, np.integer)):
        if isinstance(x, (float, np.floating)) and np.isfinite(x) and float(x).is_integer():
            x = int(x)
        else:
            fail(name, "an integer", x, TypeError)
    v = int(x)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        left = "-inf" if lo is None else str(lo)
        right = "inf" if hi is None else str(hi)
        why = ""
        if hi is not None and v > hi:
            why = " (the upper limit is a cap on the work this size sets, far above real use)"
        fail(name, f"an integer in [{left}, {right}]{why}", x)
    return v


def check_choice(x: Any, name: str, options: Iterable[Any]) -> Any:
    """Check that ``x`` is one of ``options``."""
    opts = list(options)
    try:
        known = x in opts
    except (TypeError, ValueError):  # arrays and other values that do not compare to a bool
        known = False
    if not known:
        fail(name, "one of " + ", ".join(repr(o) for o in opts), x)
    return x


def check_same_length(**arrays: Any) -> int:
    """Check that all given 1-d arrays share their first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        names = ", ".join(f"`{k}`" for k in lengths)
        raise ValueError(f"{names} must have the same length; {desc}")
    return next(iter(lengths.values()))


def check_regression_data(X, y, X_test=None, y_test=None, *, test_labels_required: bool = False):
    """Validate a regression data set: ``X`` (P, D), ``y`` (P,), optional ``X_test`` (M, D), ``y_test`` (M,).

    Returns float64 arrays ``(X, y, X_test, y_test)`` (the test entries None when absent).
    ``y_test`` without ``X_test`` is always an error; with ``test_labels_required`` so is
    ``X_test`` without ``y_test``.
    """
    Xa = check_array(X, "X", ndim=2, min_size=1)
    P, D = Xa.shape
    ya = check_array(y, "y", ndim=1)
    if ya.shape[0] != P:
        fail("y", f"of length P = {P} (rows of X)", ya)
    if test_labels_required and (X_test is None) != (y_test is None):
        fail("y_test", "given together with X_test (both or neither)", y_test)
    Xt = yt = None
    if X_test is not None:
        Xt = check_array(X_test, "X_test", ndim=2, min_size=1)
        if Xt.shape[1] != D:
            fail("X_test", f"of shape (any, {D}) to match X", Xt)
    if y_test is not None:
        if Xt is None:
            fail("y_test", "given only together with X_test", y_test)
        yt = check_array(y_test, "y_test", ndim=1)
        if yt.shape[0] != Xt.shape[0]:
            fail("y_test", f"of length {Xt.shape[0]} (rows of X_test)", yt)
    return Xa, ya, Xt, yt


def check_seeds(seeds) -> tuple[int, ...]:
    """A seed or a non-empty sequence of distinct non-negative integer seeds, as a tuple."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = (int(seeds),)
    if not isinstance(seeds, Sequence) or isinstance(seeds, (str, bytes)) or len(seeds) == 0:
        fail("seeds", "a non-empty sequence of integers", seeds, TypeError)
    out = tuple(check_int(s, "seeds", lo=0) for s in seeds)
    if len(set(out)) != len(out):
        fail("seeds", "distinct integers", seeds)
    return out
