"""Sweep machinery: specs, runner/store semantics, executors, resume after SIGKILL, CLI.

Trials are the toy functions of ``tests/_toy_trials.py`` (a quadratic in log2 lr with a
known optimum); the HP-transfer analysis itself is tested in ``test_sweep_analysis.py``.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lmech.store import ResultStore
from lmech.sweep import (
    InProcessExecutor,
    LocalExecutor,
    SweepConfigError,
    SweepSpec,
    analyze,
    load_results,
    load_sweep,
    make_executor,
    run_sweep,
    transfer_spec,
    trial_key,
)
from lmech.sweep.runner import STORE_NAME, TRIAL_KIND, _process_start

TESTS = Path(__file__).resolve().parent
TOY = "_toy_trials:quadratic"


def toy_spec(log=None, **base):
    base = {"noise": 0.01, **base}
    if log is not None:
        base["log"] = str(log)
    return SweepSpec(TOY, base=base, grid={"width": [64, 256], "lr": [2.0**-9, 2.0**-8, 2.0**-7, 2.0**-4.5],
                                           "seed": [0, 1]})


def executions(log):
    path = Path(log)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------- specs
def test_spec_identity_is_order_free_and_content_based():
    a = SweepSpec(TOY, base={"x": 1}, grid={"width": [64, 128], "lr": [0.1, 0.2]})
    b = SweepSpec(TOY, base={"x": 1}, grid={"lr": [0.2, 0.1], "width": [128, 64]}, name="renamed")
    c = SweepSpec(TOY, base={"x": 2}, grid={"width": [64, 128], "lr": [0.1, 0.2]})
    assert len(a) == 4 and a.sweep_id == b.sweep_id != c.sweep_id
    assert sorted(k for k, _ in a.trials()) == sorted(k for k, _ in b.trials())
    assert trial_key(TOY, {"a": 1, "b": 2.0}) == trial_key(TOY, {"b": 2.0, "a": 1})
    assert trial_key(TOY, {"a": 1}) != trial_key("other:fn", {"a": 1})
    assert SweepSpec.from_dict(a.to_dict()) == a
    configs = list(a.configs())
    assert configs[0] == {"x": 1, "width": 64, "lr": 0.1} and configs[1]["lr"] == 0.2  # first axis slowest
    assert "base['x']: 1 -> 2" in a.describe_difference(c)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(trial="no_colon"), ValueError, "trial"),
        (dict(trial=3), TypeError, "trial"),
        (dict(grid={"lr": []}), ValueError, "non-empty"),
        (dict(grid={"lr": [0.1, 0.1]}), ValueError, "repeated"),
        (dict(grid={"lr": [float("nan")]}), ValueError, "finite"),
        (dict(grid={"lr": "0.1"}), TypeError, "sequence"),
        (dict(base={"lr": 1}, grid={"lr": [0.1]}), ValueError, "disjoint"),
        (dict(base={"f": object()}), TypeError, "JSON"),
    ],
)
def test_spec_validation(kwargs, exc, match):
    args = {"trial": TOY, "base": {}, "grid": {"lr": [0.1]}, **kwargs}
    with pytest.raises(exc, match=match):
        SweepSpec(**args)


def test_transfer_spec_grid_and_validation():
    spec = transfer_spec(model="mlp", scheme="mup", widths=[64, 256, 128], lrs=[1e-3, 1e-2], seeds=[0, 1],
                         steps=50, depth=3)
    assert spec.grid["width"] == (256, 128, 64)  # largest (slowest) first
    assert spec.base == {"model": "mlp", "scheme": "mup", "steps": 50, "depth": 3}
    assert len(spec) == 12
    with pytest.raises(ValueError, match="exactly one"):
        transfer_spec(model="mlp", scheme="mup", widths=[64, 128], depths=[2, 4], lrs=[1e-3])
    with pytest.raises(ValueError, match="widths"):
        transfer_spec(model="mlp", scheme="mup", widths=[64], lrs=[1e-3])
    with pytest.raises(ValueError, match="lrs"):
        transfer_spec(model="mlp", scheme="mup", widths=[64, 128], lrs=[0.0])
    with pytest.raises(ValueError, match="seeds"):
        transfer_spec(model="mlp", scheme="mup", widths=[64, 128], lrs=[1e-3], seeds=[-1])
    with pytest.raises(ValueError, match="width"):
        transfer_spec(model="mlp", scheme="mup", widths=[64, 128], lrs=[1e-3], width=32)


# --------------------------------------------------------------------------- runner semantics
def test_run_resume_and_divergence_inprocess(tmp_path):
    log = tmp_path / "exec.log"
    spec = toy_spec(log)
    run = run_sweep(spec, tmp_path / "out", executor="inprocess", progress=False)
    assert run.complete and run.executed == 16 and len(executions(log)) == 16
    # log2 lr = -4.5 is beyond opt + 3 = -5: diverged, recorded as such (not an error, no crash)
    diverged = [t for t in run.trials if t.status == "diverged"]
    assert len(diverged) == 4 and all(t.config["lr"] == 2.0**-4.5 for t in diverged)
    assert all(t.value() == np.inf for t in diverged)
    assert run.counts == {"pending": 0, "running": 0, "done": 12, "diverged": 4, "error": 0}
    done = [t for t in run.trials if t.status == "done"]
    assert all(np.isfinite(t.value()) and t.attempts == 1 for t in done)

    again = run_sweep(spec, tmp_path / "out", executor="inprocess", progress=False)
    assert again.executed == 0 and len(executions(log)) == 16
    assert [t.result for t in again.trials] == [t.result for t in run.trials]
    store = ResultStore(tmp_path / "out" / STORE_NAME)
    assert store.count(TRIAL_KIND) == 16
    assert [t.key for t in load_results(tmp_path / "out")] == [k for k, _ in spec.trials()]


def test_errors_are_retried_and_stored_with_traceback(tmp_path):
    marker = tmp_path / "markers"
    marker.mkdir()
    base = {"marker_dir": str(marker)}
    once = SweepSpec(TOY, base={**base, "fail_times": 1}, grid={"width": [64], "lr": [2.0**-8, 2.0**-7]})
    run = run_sweep(once, tmp_path / "a", executor="inprocess", retries=1, progress=False)
    assert run.complete and all(t.attempts == 2 for t in run.trials)

    always = SweepSpec(TOY, base={**base, "fail_times": 3}, grid={"width": [64], "lr": [2.0**-8]})
    run = run_sweep(always, tmp_path / "b", executor="inprocess", retries=1, progress=False)
    (t,) = run.trials
    assert t.status == "error" and t.attempts == 2 and "planned failure 2 of 3" in t.error
    assert "Traceback" in t.error and not run.complete
    # a rerun runs errored trials again (the third attempt fails, the fourth succeeds)
    run = run_sweep(always, tmp_path / "b", executor="inprocess", retries=1, progress=False)
    assert run.trials[0].status == "done" and run.trials[0].attempts == 4


def test_bad_trial_return_is_an_error_not_a_crash(tmp_path):
    spec = SweepSpec("_toy_trials:returns_list", grid={"lr": [0.1]})
    run = run_sweep(spec, tmp_path, executor="inprocess", retries=0, progress=False)
    assert run.trials[0].status == "error" and "must return a dict" in run.trials[0].error
    spec = SweepSpec("_toy_trials:missing_function", grid={"lr": [0.1]})
    run = run_sweep(spec, tmp_path / "m", executor="inprocess", retries=0, progress=False)
    assert "has no attribute" in run.trials[0].error


def test_fail_fast_stops_and_leaves_the_rest_pending(tmp_path):
    marker = tmp_path / "m"
    marker.mkdir()
    spec = SweepSpec(TOY, base={"fail_times": 9, "marker_dir": str(marker)},
                     grid={"width": [64], "lr": [2.0**-9, 2.0**-8, 2.0**-7]})
    run = run_sweep(spec, tmp_path / "o", executor="inprocess", retries=0, fail_fast=True, progress=False)
    assert run.counts["error"] == 1 and run.counts["pending"] == 2


def test_config_mismatch_is_refused_unless_forced(tmp_path):
    log = tmp_path / "exec.log"
    first = toy_spec(log)
    run_sweep(first, tmp_path / "out", executor="inprocess", progress=False)
    wider = SweepSpec(TOY, base=first.base, grid={**first.grid, "width": [64, 256, 1024]})
    with pytest.raises(SweepConfigError, match=r"different sweep.*grid\['width'\].*force"):
        run_sweep(wider, tmp_path / "out", executor="inprocess", progress=False)
    assert load_sweep(tmp_path / "out").spec == first  # untouched
    n = len(executions(log))
    run = run_sweep(wider, tmp_path / "out", executor="inprocess", force=True, progress=False)
    assert run.complete and run.executed == 8 == len(executions(log)) - n  # only the new width ran
    assert load_sweep(tmp_path / "out").spec == wider
    # same trial set, other order: not a different sweep
    shuffled = SweepSpec(TOY, base=first.base, grid={"seed": [1, 0], "lr": wider.grid["lr"], "width": [1024, 256, 64]})
    assert run_sweep(shuffled, tmp_path / "out", executor="inprocess", progress=False).executed == 0


def _foreign_owner(pid):
    import socket

    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid), "run": "other"}


def test_stale_running_trials_rerun_live_ones_skipped(tmp_path):
    spec = SweepSpec(TOY, grid={"width": [64], "lr": [2.0**-9, 2.0**-8, 2.0**-7]})
    (k_dead, c_dead), (k_live, c_live), (k_old, c_old) = spec.trials()
    store = ResultStore(tmp_path / STORE_NAME)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store.put(TRIAL_KIND, k_dead, "running", {"config": c_dead, "owner": _foreign_owner(dead.pid), "attempts": 1})
        store.put(TRIAL_KIND, k_live, "running", {"config": c_live, "owner": _foreign_owner(live.pid), "attempts": 1})
        # a live pid whose start time differs is a reused pid: stale
        reused = {**_foreign_owner(live.pid), "start": -1}
        store.put(TRIAL_KIND, k_old, "running", {"config": c_old, "owner": reused, "attempts": 1})
        with pytest.warns(UserWarning, match="1 trials are being run by another live process"):
            run = run_sweep(spec, tmp_path, executor="inprocess", progress=False)
        status = {t.key: (t.status, t.attempts) for t in run.trials}
        assert status == {k_dead: ("done", 2), k_live: ("running", 1), k_old: ("done", 2)}
    finally:
        live.kill()
        live.wait()
    run = run_sweep(spec, tmp_path, executor="inprocess", progress=False)  # owner gone now
    assert run.complete and run.executed == 1


def test_interrupt_frees_unfinished_trials(tmp_path):
    spec = SweepSpec(TOY, grid={"width": [64], "lr": [2.0**-9, 2.0**-8, 2.0**-7]})
    seen = []

    def stop(record):
        seen.append(record)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path, executor="inprocess", progress=False, on_trial=stop)
    run = load_sweep(tmp_path)
    assert run.counts["done"] == 1 and run.counts["pending"] == 2 and run.counts["running"] == 0
    assert run_sweep(spec, tmp_path, executor="inprocess", progress=False).executed == 2


def test_run_sweep_argument_validation(tmp_path):
    with pytest.raises(TypeError, match="spec"):
        run_sweep({"trial": TOY}, tmp_path)
    with pytest.raises(ValueError, match="retries"):
        run_sweep(toy_spec(), tmp_path, retries=-1)
    with pytest.raises(ValueError, match="backend"):
        run_sweep(toy_spec(), tmp_path / "x", executor="threads")
    with pytest.raises(ValueError, match="address"):
        make_executor("local", address="127.0.0.1:1")
    with pytest.raises(ValueError, match="jobs"):
        LocalExecutor(0)
    with pytest.raises(FileNotFoundError):
        load_sweep(tmp_path / "nothing")


# --------------------------------------------------------------------------- local process pool
def test_local_pool_matches_inprocess_and_survives_a_dead_worker(tmp_path):
    spec = toy_spec()
    serial = run_sweep(spec, tmp_path / "serial", executor=InProcessExecutor(), progress=False)
    with LocalExecutor(2) as ex:
        pooled = run_sweep(spec, tmp_path / "pool", executor=ex, progress=False)
        assert [t.result for t in pooled.trials] == [t.result for t in serial.trials]
        assert {t.worker["pid"] for t in pooled.trials} - {os.getpid()}  # ran in worker processes
        # a worker that dies mid-trial fails only that trial (and its retry); the trials running
        # beside it in the other worker finish at the first attempt, and the pool carries on
        crash = SweepSpec(TOY, base={"sleep": 0.3},
                          grid={"width": [64], "lr": [2.0**-9, 2.0**-8], "crash": [False, True]})
        run = run_sweep(crash, tmp_path / "crash", executor=ex, retries=1, progress=False)
        for t in run.trials:
            if t.config["crash"]:
                assert t.status == "error" and t.attempts == 2, t
                assert "worker process" in t.error and "exit code 7" in t.error
            else:
                assert t.status == "done" and t.attempts == 1, t
        # closing the stream early (fail-fast) stops the worker still busy; nothing stale leaks
        marker = tmp_path / "markers"
        marker.mkdir()
        ff = SweepSpec(TOY, base={"fail_times": 9, "marker_dir": str(marker), "sleep": 0.3},
                       grid={"width": [64], "lr": [2.0**-9, 2.0**-8, 2.0**-7, 2.0**-6]})
        run = run_sweep(ff, tmp_path / "ff", executor=ex, retries=0, fail_fast=True, progress=False)
        assert run.counts["error"] == 1 and run.counts["pending"] == 3
        again = run_sweep(spec, tmp_path / "pool2", executor=ex, progress=False)  # replacement workers work
        assert [t.result for t in again.trials] == [t.result for t in serial.trials]


# --------------------------------------------------------------------------- SIGKILL + resume
def _driver_cmd(out, log):
    return [sys.executable, "-m", "lmech.cli", "transfer", "--model", "toy", "--scheme", "s",
            "--widths", "64", "128", "--log2-lrs", "-10", "-7", "1", "--seeds", "0", "1",
            "--trial", TOY, "--set", "sleep=0.5", "--set", f'log="{log}"', "--out", str(out),
            "--jobs", "2", "--no-progress", "--no-plot"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_then_resume_runs_only_missing_trials(tmp_path):
    out, log = tmp_path / "out", tmp_path / "exec.log"
    driver = subprocess.Popen(_driver_cmd(out, log), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / STORE_NAME
    deadline = time.time() + 90
    done_before = set()
    try:
        while time.time() < deadline:
            time.sleep(0.2)
            if db.exists():
                done_before = ResultStore(db).keys(TRIAL_KIND, ["done"])
                if len(done_before) >= 4:
                    break
            assert driver.poll() is None, driver.stderr.read().decode()
        else:
            pytest.fail("the driver stored no trials in time")
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    done_before = ResultStore(db).keys(TRIAL_KIND, ["done"])
    statuses = {r.status for r in ResultStore(db).records(TRIAL_KIND)}
    assert 4 <= len(done_before) < 16 and "running" in statuses
    # the pool's workers notice the driver is gone and exit on their own
    worker_pids = {e["pid"] for e in executions(log)}
    deadline = time.time() + 10
    while any(_alive(p) for p in worker_pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in worker_pids)

    n_before = len(executions(log))
    rerun = subprocess.run(_driver_cmd(out, log), env=_env(), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "16 trials: 16 done" in rerun.stdout
    store = ResultStore(db)
    assert store.count(TRIAL_KIND) == 16 and store.keys(TRIAL_KIND, ["done"]) == store.keys(TRIAL_KIND)
    spec = load_sweep(out).spec
    tag_of = {k: json.dumps({kk: c[kk] for kk in sorted(c) if kk != "log"}, sort_keys=True) for k, c in spec.trials()}
    rerun_tags = [e["tag"] for e in executions(log)[n_before:]]
    assert len(rerun_tags) == 16 - len(done_before)  # exactly the missing ones ...
    assert not set(rerun_tags) & {tag_of[k] for k in done_before}  # ... and never a finished one
    assert len(set(rerun_tags)) == len(rerun_tags)


# --------------------------------------------------------------------------- CLI
def _cli(argv):
    from lmech.cli import main

    return main(argv)


def test_cli_runs_analyses_resumes_and_refuses_mismatch(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["transfer", "--model", "toy", "--scheme", "a", "b", "--widths", "64", "128", "256",
            "--log2-lrs", "-11", "-4", "0.5", "--seeds", "0", "1", "--trial", TOY, "--set", "noise=0.01",
            "--out", str(out), "--backend", "inprocess", "--no-progress", "--n-boot", "200"]
    assert _cli(argv) == 0
    text = capsys.readouterr().out
    assert "180 trials: 156 done, 24 diverged" in text and "== toy / a" in text and "optimum stable   PASS" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and set(summary["analyses"]) == {"a", "b"}
    opt = [o["log2_lr"] for o in summary["analyses"]["a"]["optima"]]
    assert np.allclose(opt, -8.0, atol=0.15)  # the toy optimum, drift 0
    assert (out / "transfer.png").stat().st_size > 1000
    assert _cli(argv + ["--check"]) == 0  # resumed: nothing to run, criteria pass

    with pytest.raises(SystemExit) as exc:  # different grid into the same folder
        _cli([a if a != "-4" else "-5" for a in argv])
    assert exc.value.code == 2 and "different sweep" in capsys.readouterr().err
    assert _cli([a if a != "-4" else "-5" for a in argv] + ["--force"]) == 0


def test_cli_check_fails_on_drift_and_errors_exit_1(tmp_path, capsys):
    base = ["transfer", "--model", "toy", "--scheme", "sp", "--widths", "64", "256", "1024", "--log2-lrs", "-12",
            "-6", "1", "--trial", TOY, "--backend", "inprocess", "--no-progress", "--no-plot"]
    assert _cli(base + ["--set", "drift=-1", "--out", str(tmp_path / "d"), "--check"]) == 1
    assert "optimum stable   FAIL" in capsys.readouterr().out
    marker = tmp_path / "m"
    marker.mkdir()
    argv = base + ["--set", "fail_times=5", "--set", f'marker_dir="{marker}"', "--out", str(tmp_path / "e"),
                   "--retries", "0"]
    assert _cli(argv) == 1
    assert "planned failure" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--lrs", "abc"], "number"),
        (["--lrs", "0"], "positive"),
        (["--log2-lrs", "-5", "-8", "1"], "stop must be"),
        (["--lrs", "1e-3", "--address", "127.0.0.1:1", "--backend", "local"], "address"),
        (["--lrs", "1e-3", "--set", "lr=3"], "conflicts"),
        (["--lrs", "1e-3", "--set", "novalue"], "KEY=VALUE"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, capsys, extra, match):
    argv = ["transfer", "--model", "toy", "--scheme", "a", "--widths", "64", "128", "--trial", TOY,
            "--out", str(tmp_path), "--backend", "inprocess", "--no-progress", *extra]
    with pytest.raises(SystemExit) as exc:
        _cli(argv)
    assert exc.value.code == 2 and match in capsys.readouterr().err


def test_cli_module_imports_neither_torch_nor_ray():
    code = "import sys, lmech.cli as c; c.build_parser(); print('torch' in sys.modules, 'ray' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["False", "False"], res.stderr


def test_analyze_reads_an_output_folder(tmp_path):
    spec = toy_spec()
    run_sweep(spec, tmp_path, executor="inprocess", progress=False)
    a = analyze(tmp_path, n_boot=200)
    assert a.size_key == "width" and list(a.sizes) == [64, 256]
    assert a.optima[0].n_diverged == 2 and np.isinf(a.mean_loss[0, -1])


def test_cli_validates_trial_configs_before_running(tmp_path, capsys):
    base = ["transfer", "--model", "mlp", "--widths", "64", "128", "--lrs", "1e-3", "--out", str(tmp_path),
            "--backend", "inprocess", "--no-progress"]
    cases = [(["--scheme", "mup"], "--depth"), (["--scheme", "bogus", "--depth", "3"], "scheme"),
             (["--scheme", "mup", "--depth", "3", "--set", "nonsense=1"], "unknown")]
    for extra, match in cases:
        with pytest.raises(SystemExit) as exc:
            _cli(base + extra)
        assert exc.value.code == 2 and match in capsys.readouterr().err
    assert not (tmp_path / STORE_NAME).exists()


def test_cli_end_to_end_with_the_real_trial_function(tmp_path, capsys):
    """Tiny real sweep (hp_trial MLP, 30 steps: every trial learns, final loss >= 0.3 nats
    below the initial one) through the default local process pool."""
    out = tmp_path / "real"
    argv = ["transfer", "--model", "mlp", "--scheme", "mup", "--widths", "16", "32", "--depth", "2",
            "--base-width", "16", "--lrs", "2^-7", "2^-6", "2^-5", "--steps", "30", "--batch-size", "32",
            "--out", str(out), "--jobs", "2", "--no-progress", "--n-boot", "50"]
    assert _cli(argv) == 0
    text = capsys.readouterr().out
    assert "6 trials: 6 done" in text and "width / log2 lr" in text
    run = load_sweep(out)
    assert all(len(t.result["train_curve"]) == 30 and t.result["n_params"] > 0 for t in run.trials)
    assert all(t.result["final_train_loss"] < t.result["initial_loss"] for t in run.trials)
    assert {t.worker["pid"] for t in run.trials} - {os.getpid()}
    assert json.loads((out / "summary.json").read_text())["analyses"]["mup"]["sizes"] == [16, 32]
