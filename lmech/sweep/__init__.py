"""Hyperparameter sweeps: grids, executors (in-process, local processes, Ray), a resumable
SQLite store, and the HP-transfer analysis of ``parameterizations.md`` section 2.2.

Typical use::

    from lmech.sweep import transfer_spec, run_sweep, analyze, plot_transfer

    spec = transfer_spec(model="mlp", scheme="mup", widths=[64, 128, 256, 1024],
                         lrs=[2.0**k for k in range(-12, -4)], seeds=[0, 1], steps=200)
    run = run_sweep(spec, "runs/mlp_mup", executor="local", jobs=2)   # rerun = resume
    result = analyze(run)              # log2 lr* per width, bootstrap interval, criteria
    print(result.table())
    plot_transfer(result, "runs/mlp_mup/transfer.png")

Any importable function ``f(config: dict) -> dict`` can be swept with :class:`SweepSpec`.
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
