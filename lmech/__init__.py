"""lmech: learning mechanics.

Solvable theories of neural-network training (kernel learning curves, SGD and
random-feature dynamics, scaling laws, DMFT of feature learning, parameterizations for
hyperparameter transfer) as tested solvers, simulators of the real systems they describe,
and registered claims comparing the two.

Sub-packages are imported on demand: ``lmech.theory``, ``lmech.kernels``, ``lmech.spectra``,
``lmech.sim``, ``lmech.param``, ``lmech.claims``, ``lmech.sweep``, ``lmech.report``.
"""
from importlib import metadata as _metadata

from lmech.results import ConvergenceWarning, LmechWarning, SolverResult

try:
    __version__ = _metadata.version("lmech")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "SolverResult", "LmechWarning", "ConvergenceWarning"]
