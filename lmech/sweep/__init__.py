"""Hyperparameter sweeps: grids, executors (in-process, local processes, Ray), a resumable
SQLite store, and the HP-transfer analysis (optimal learning rate per size, its drift).

Typical use (a small width sweep of a 3-layer muP MLP; a few seconds)::

    from lmech.sweep import transfer_spec, run_sweep, analyze, plot_transfer

    spec = transfer_spec(model="mlp", scheme="mup", widths=[32, 64], depth=3, base_width=32,
                         lrs=[2.0**k for k in range(-8, -1)], seeds=[0], steps=20)
    run = run_sweep(spec, "runs/mlp_mup", executor="local", jobs=2)   # rerun = resume
    print(run.summary())               # trial counts: done, diverged, error
    result = analyze(run)              # log2 lr* per width, bootstrap interval, criteria
    print(result.table())
    plot_transfer(result, "runs/mlp_mup/transfer.png")

In a script, put the calls under ``if __name__ == "__main__":`` (the local pool starts its
workers with ``spawn``, which imports the script again). Sizes at least the base size (``base_width``, default 64) and the fixed ``depth`` of a width
sweep are required by the default trial function; :func:`analyze` refuses a sweep in which
no trial finished (every error is stored with its traceback in ``run.errors``).

Any function ``f(config: dict) -> dict`` can be swept with :class:`SweepSpec`: give its
import path ``"package.module:function"`` or the function itself (a lambda or closure runs
only with ``executor="inprocess"``).

Neither torch nor ray is imported by this package; the trial function and the Ray
executor import them when they run.
"""
from lmech.sweep.analysis import (
    SizeOptimum,
    TransferAnalysis,
    analyze,
    analyze_losses,
    loss_array,
    optimum_on_grid,
    parabola_vertex,
)
from lmech.executors import (
    BACKENDS,
    Executor,
    InProcessExecutor,
    LocalExecutor,
    RayExecutor,
    Task,
    TaskOutcome,
    make_executor,
)
from lmech.sweep.runner import (
    STORE_NAME,
    SweepConfigError,
    SweepRun,
    TrialRecord,
    load_results,
    load_sweep,
    run_sweep,
)
from lmech.sweep.spec import DEFAULT_TRIAL, SweepSpec, transfer_spec, trial_key

__all__ = [
    "SweepSpec",
    "transfer_spec",
    "trial_key",
    "DEFAULT_TRIAL",
    "run_sweep",
    "load_sweep",
    "load_results",
    "SweepRun",
    "TrialRecord",
    "SweepConfigError",
    "STORE_NAME",
    "Executor",
    "InProcessExecutor",
    "LocalExecutor",
    "RayExecutor",
    "Task",
    "TaskOutcome",
    "make_executor",
    "BACKENDS",
    "analyze",
    "analyze_losses",
    "loss_array",
    "optimum_on_grid",
    "parabola_vertex",
    "TransferAnalysis",
    "SizeOptimum",
    "plot_transfer",
    "transfer_panels",
]


def __getattr__(name: str):
    # plotting helpers live in their own module (they import the claim panel types)
    if name in ("plot_transfer", "transfer_panels"):
        from lmech.sweep import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'lmech.sweep' has no attribute {name!r}")
