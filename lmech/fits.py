"""Fits shared by claims, benchmarks and practitioner tools (base layer).

* :func:`fit_power_law` - ``y ~ c x^{-exponent}`` by least squares in log-log, with the
  exponent's standard error; :attr:`PowerLawFit.slope` is ``-exponent`` (the log-log slope).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import check_array, check_real, fail

__all__ = ["PowerLawFit", "fit_power_law"]


@dataclass(frozen=True)
class PowerLawFit:
    """Least-squares fit log y = log c - exponent * log x.

    ``exponent`` is the decay exponent (positive for a decreasing power law) and
    ``stderr`` its standard error; ``n_points`` the points used.
    """

    exponent: float
    prefactor: float
    stderr: float
    n_points: int

    @property
    def slope(self) -> float:
        """The log-log slope, ``-exponent`` (positive for a growing power law)."""
        return -self.exponent

    def __call__(self, x):
        """The fitted law evaluated at ``x``."""
        return self.prefactor * np.asarray(x, dtype=float) ** -self.exponent


def fit_power_law(x, y, *, xmin: float | None = None, xmax: float | None = None) -> PowerLawFit:
    """Fit y ~ c x^{-exponent} by least squares in log-log over xmin <= x <= xmax.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Positive values.
    xmin, xmax : float, optional
        Fit window (inclusive).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.logspace(1, 3, 9)
    >>> fit = fit_power_law(x, 5.0 * x**-0.5)
    >>> round(fit.exponent, 6), round(fit.prefactor, 6), fit.n_points
    (0.5, 5.0, 9)
    """
    x = check_array(x, "x", ndim=1, positive=True)
    y = check_array(y, "y", ndim=1, positive=True)
    if x.shape != y.shape:
        fail("y", f"of the same shape as x {x.shape}", y)
    sel = np.ones(x.shape, dtype=bool)
    if xmin is not None:
        sel &= x >= check_real(xmin, "xmin")
    if xmax is not None:
        sel &= x <= check_real(xmax, "xmax")
    if sel.sum() < 2:
        fail("x", "to have at least 2 points inside [xmin, xmax]", x)
    lx, ly = np.log(x[sel]), np.log(y[sel])
    A = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    n = int(sel.sum())
    if n > 2:
        resid = ly - A @ coef
        s2 = resid @ resid / (n - 2)
        stderr = float(np.sqrt(s2 / np.sum((lx - lx.mean()) ** 2)))
    else:
        stderr = float("nan")
    return PowerLawFit(exponent=float(-coef[0]), prefactor=float(np.exp(coef[1])), stderr=stderr, n_points=n)
