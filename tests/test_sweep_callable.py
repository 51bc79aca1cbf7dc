"""Trial functions given as callables: module-level functions become import paths; lambdas
and closures run in-process only (a TypeError naming ``trial`` for worker executors)."""
from __future__ import annotations

import pytest

from _toy_trials import quadratic
from lmech.executors import InProcessExecutor, LocalExecutor
from lmech.sweep import SweepSpec, load_sweep, run_sweep, transfer_spec

GRID = {"width": [64, 128], "lr": [2.0**-9, 2.0**-8, 2.0**-7], "seed": [0]}


def test_module_level_function_becomes_its_import_path():
    spec = SweepSpec(quadratic, grid=GRID)
    assert spec.trial == "_toy_trials:quadratic"
    assert spec.function is None and not spec.local
    assert spec.sweep_id == SweepSpec("_toy_trials:quadratic", grid=GRID).sweep_id
    assert transfer_spec(model="toy", scheme="mup", widths=[64, 128], lrs=[0.1], trial=quadratic).trial == \
        "_toy_trials:quadratic"


def test_module_level_function_runs_on_worker_pool(tmp_path):
    spec = SweepSpec(quadratic, grid={"width": [64, 128], "lr": [2.0**-8]})
    run = run_sweep(spec, tmp_path, executor=LocalExecutor(1), progress=False)
    assert run.counts["done"] == 2
    expected = [quadratic(t.config)["final_train_loss"] for t in run.trials]
    assert [t.result["final_train_loss"] for t in run.trials] == pytest.approx(expected, rel=1e-12)


def test_lambda_runs_in_process_and_resumes(tmp_path):
    calls = []

    def trial(config):  # a closure: not importable by name
        calls.append(config["lr"])
        return {"final_train_loss": (config["lr"] - 0.01) ** 2 + 1 / config["width"]}

    spec = SweepSpec(trial, grid=GRID)
    assert spec.local and spec.function is trial and spec.trial.startswith("<callable ")
    assert "trial" in spec.trial  # its qualified name is its identity
    run = run_sweep(spec, tmp_path, executor="inprocess", progress=False)
    assert run.counts["done"] == 6 and len(calls) == 6
    t = run.trials[0]
    assert t.result["final_train_loss"] == (t.config["lr"] - 0.01) ** 2 + 1 / t.config["width"]
    again = run_sweep(SweepSpec(trial, grid=GRID), tmp_path, executor=InProcessExecutor(), progress=False)
    assert again.executed == 0 and len(calls) == 6  # resumed: nothing rerun
    assert load_sweep(tmp_path).spec.trial == spec.trial  # the stored spec loads


@pytest.mark.parametrize("executor", ["local", "ray", LocalExecutor(1)])
def test_lambda_refused_for_worker_executors(executor, tmp_path):
    spec = SweepSpec(lambda config: {"final_train_loss": config["lr"]}, grid={"lr": [0.1, 0.2]})
    with pytest.raises(TypeError, match=r"`trial` must be an importable module-level function.*inprocess"):
        run_sweep(spec, tmp_path / "o", executor=executor, progress=False)
    assert not (tmp_path / "o").exists()  # refused before anything was created
    if isinstance(executor, LocalExecutor):
        executor.close()


def test_loaded_local_spec_cannot_run_without_its_function(tmp_path):
    spec = SweepSpec(lambda config: {"final_train_loss": config["lr"]}, grid={"lr": [0.1]})
    run_sweep(spec, tmp_path, executor="inprocess", progress=False)
    loaded = load_sweep(tmp_path).spec
    assert loaded.local and loaded.function is None
    with pytest.raises(TypeError, match="`trial` must be a function to call"):
        run_sweep(loaded, tmp_path, executor="inprocess", progress=False)


def test_bad_trial_types():
    with pytest.raises(TypeError, match="`trial`"):
        SweepSpec(42, grid={"lr": [0.1]})
    with pytest.raises(ValueError, match="`trial`"):
        SweepSpec("no_colon", grid={"lr": [0.1]})
