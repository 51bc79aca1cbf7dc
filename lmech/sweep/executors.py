"""Re-export of :mod:`lmech.executors`, where the executors now live (one run engine for
claims and sweeps). Kept so that ``from lmech.sweep.executors import ...`` still works."""
from lmech.executors import (  # noqa: F401
    BACKENDS,
    Executor,
    InProcessExecutor,
    LocalExecutor,
    RayExecutor,
    Task,
    TaskOutcome,
    make_executor,
    path_hints,
    run_task,
)

__all__ = ["Task", "TaskOutcome", "Executor", "InProcessExecutor", "LocalExecutor", "RayExecutor",
           "make_executor", "run_task", "path_hints", "BACKENDS"]
