"""Run a sweep into a resumable SQLite store.

Layout of ``<out>/sweep.sqlite`` (a :class:`lmech.store.ResultStore`):

* ``kind="sweep", key="spec"``: the sweep's spec and id. Resuming into a folder whose spec
  has a different set of trials is refused unless ``force=True``.
* ``kind="trial", key=<trial hash>``: one record per trial, status ``running``,
  ``done``, ``diverged``, ``error`` or ``pending``; payload ``config``, ``result``,
  ``error`` (traceback), ``attempts``, ``seconds``, ``worker``, ``owner``.

Semantics (after Optuna's heartbeat/retry and Ray Tune's restore):

* A trial is written the moment it finishes, by the driver, in its own transaction; the
  primary key (trial hash) makes duplicates impossible.
* Rerunning skips ``done`` and ``diverged`` trials. ``error`` and ``pending`` trials run
  again, and so does a ``running`` trial whose owner (the driver process that started it:
  host, pid and process start time) no longer exists - e.g. after SIGKILL. A ``running``
  trial owned by another live driver is left alone.
* A trial that raises is retried within the run up to ``retries`` times; its last
  traceback is stored. Divergence is not an error: a trial whose result says
  ``"diverged": true`` is recorded as ``diverged`` and never rerun.
"""
from __future__ import annotations

import math
import os
import socket
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmech._validation import check_int, fail
from lmech.results import LmechWarning
from lmech.store import ResultStore, run_lock
from lmech.executors import Executor, InProcessExecutor, Task, TaskOutcome, make_executor, path_hints
from lmech.sweep.spec import SweepSpec

__all__ = [
    "run_sweep",
    "load_results",
    "load_sweep",
    "SweepRun",
    "TrialRecord",
    "SweepConfigError",
    "STORE_NAME",
    "STATUSES",
]

STORE_NAME = "sweep.sqlite"
SWEEP_KIND, SPEC_KEY, TRIAL_KIND = "sweep", "spec", "trial"
PENDING, RUNNING, DONE, DIVERGED, ERROR = "pending", "running", "done", "diverged", "error"
STATUSES = (PENDING, RUNNING, DONE, DIVERGED, ERROR)
FINISHED = (DONE, DIVERGED)

_ACTIVE_RUNS: set[str] = set()  # run ids of run_sweep calls in progress in this process


class SweepConfigError(ValueError):
    """The output folder holds a different sweep (resume refused without ``force``)."""


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class TrialRecord:
    """One trial of a sweep as stored (``status='pending'`` when it never started).

    Attributes
    ----------
    key : str
        Trial hash (see :func:`lmech.sweep.trial_key`).
    config : dict
        The config passed to the trial function.
    status : str
        ``"done"``, ``"diverged"``, ``"error"``, ``"running"`` or ``"pending"``.
    result : dict or None
        What the trial function returned (non-finite floats stored as None).
    error : str or None
        Traceback of the last failed attempt.
    attempts : int
        Times the trial was started (across runs).
    seconds : float
        Wall time of the last attempt.
    """

    key: str
    config: dict[str, Any]
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    worker: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def value(self, metric: str = "final_train_loss") -> float:
        """The result's ``metric`` as a float: ``inf`` for a diverged trial or a non-finite
        (stored as null) value, ``nan`` when the trial has not finished or lacks the key."""
        if self.status == DIVERGED:
            return math.inf
        if self.status != DONE or self.result is None or metric not in self.result:
            return math.nan
        v = self.result[metric]
        if v is None:
            return math.inf
        try:
            v = float(v)
        except (TypeError, ValueError):
            return math.nan
        return v if math.isfinite(v) else math.inf

    @classmethod
    def from_payload(cls, key: str, status: str, payload: Mapping[str, Any]) -> "TrialRecord":
        return cls(key=key, config=dict(payload.get("config", {})), status=status, result=payload.get("result"),
                   error=payload.get("error"), attempts=int(payload.get("attempts", 0)),
                   seconds=float(payload.get("seconds") or 0.0), worker=dict(payload.get("worker") or {}))


@dataclass(frozen=True)
class SweepRun:
    """A sweep's trials as stored after :func:`run_sweep` (or :func:`load_sweep`).

    Attributes
    ----------
    spec : SweepSpec
    out : Path
        Output folder (holds ``sweep.sqlite``).
    trials : tuple of TrialRecord
        In the spec's grid order.
    executed : int
        Trial attempts started by this call (0 for :func:`load_sweep`).
    """

    spec: SweepSpec
    out: Path
    trials: tuple[TrialRecord, ...]
    executed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(t.status for t in self.trials)
        return {s: c.get(s, 0) for s in STATUSES}

    @property
    def complete(self) -> bool:
        """Every trial finished (done or diverged)."""
        return all(t.finished for t in self.trials)

    @property
    def errors(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == ERROR]

    def summary(self) -> str:
        c = self.counts
        parts = ", ".join(f"{n} {s}" for s, n in c.items() if n)
        return f"{len(self.trials)} trials: {parts}"


# --------------------------------------------------------------------------- owners
def _process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell reused pids apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
        return int(text[text.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _owner(run_id: str) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid()), "run": run_id}


def _owner_alive(owner: Mapping[str, Any] | None) -> bool:
    """Whether the driver that marked a trial ``running`` still exists.

    Owners on another host cannot be checked and are treated as gone (one driver per output
    folder at a time is the supported use).
    """
    if not owner or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return owner.get("run") in _ACTIVE_RUNS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = owner.get("start")
    return start is None or _process_start(pid) in (None, start)


# --------------------------------------------------------------------------- spec record
def _register_spec(store: ResultStore, spec: SweepSpec, force: bool) -> None:
    rec = store.get(SWEEP_KIND, SPEC_KEY)
    sweep_id = spec.sweep_id
    payload = {"spec": spec.to_dict(), "sweep_id": sweep_id, "n_trials": len(spec)}
    if rec is None:
        store.put_if_absent(SWEEP_KIND, SPEC_KEY, "active", payload)
        rec = store.get(SWEEP_KIND, SPEC_KEY)
        assert rec is not None  # just written (or written concurrently by another process)
    if rec.payload.get("sweep_id") == sweep_id:
        if rec.payload.get("spec") != payload["spec"]:  # same trials, e.g. reordered axes or renamed
            store.put(SWEEP_KIND, SPEC_KEY, "active", {**payload, "replaced": rec.payload.get("replaced", [])})
        return
    old = SweepSpec.from_dict(rec.payload["spec"])
    if not force:
        raise SweepConfigError(
            f"the output folder {store.path.parent} holds a different sweep ({old.describe_difference(spec)}); "
            "use a new output folder, or force=True / --force to replace the sweep (trials with identical "
            "configs are kept and reused)"
        )
    replaced = list(rec.payload.get("replaced", [])) + [rec.payload.get("sweep_id")]
    store.put(SWEEP_KIND, SPEC_KEY, "active", {**payload, "replaced": replaced})


def _open_store(out: str | os.PathLike[str]) -> ResultStore:
    if isinstance(out, (str, os.PathLike)):
        return ResultStore(Path(out) / STORE_NAME)
    fail("out", "a folder path", out, TypeError)


# --------------------------------------------------------------------------- running
def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike[str],
    *,
    executor: Executor | str = "local",
    jobs: int | None = None,
    force: bool = False,
    retries: int = 1,
    fail_fast: bool = False,
    progress: bool = True,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> SweepRun:
    """Run every unfinished trial of ``spec``, storing each in ``<out>/sweep.sqlite`` as it ends.

    Parameters
    ----------
    spec : SweepSpec
        The grid to run. Its trial may be a lambda or closure (see :class:`SweepSpec`) only
        with ``executor="inprocess"``; otherwise a TypeError naming ``trial`` is raised
        before anything runs.
    out : path
        Output folder (created). Rerunning with the same spec resumes: finished trials are
        kept and not rerun.
    executor : Executor or {"local", "ray", "inprocess"}
        Where trials run (default: a local process pool of ``jobs`` workers). An executor
        object passed in is not closed here; one built from a name is.
    jobs : int, optional
        Workers for an executor built from a name.
    force : bool
        Replace a different sweep already stored in ``out`` instead of refusing. Trials of the
        new spec whose config matches a stored trial are reused.
    retries : int
        Extra attempts within this call for a trial that raised (default 1).
    fail_fast : bool
        Stop at the first trial that still fails after its retries (unstarted trials stay
        pending; a rerun picks them up).
    progress : bool
        Show a tqdm progress bar (stderr) with trial counts.
    on_trial : callable, optional
        Called with each :class:`TrialRecord` as it is stored.

    Returns
    -------
    SweepRun
        All of the spec's trials as stored after the run.

    Raises
    ------
    SweepConfigError
        ``out`` holds a sweep with a different set of trials and ``force`` is false.
    StoreError
        ``out`` is in use by another run (its run lock, :func:`lmech.store.run_lock`, is
        held for the whole call), or its ``sweep.sqlite`` is not a usable store.
    """
    if not isinstance(spec, SweepSpec):
        fail("spec", "a SweepSpec", spec, TypeError)
    retries = check_int(retries, "retries", lo=0)
    if not isinstance(out, (str, os.PathLike)):
        fail("out", "a folder path", out, TypeError)
    if spec.local:
        in_process = executor == "inprocess" or isinstance(executor, InProcessExecutor)
        if spec.function is None:
            fail("trial", "a function to call (the spec names a local callable but does not hold it, e.g. it "
                 "was loaded from a store); pass a SweepSpec built with the function itself", spec.trial, TypeError)
        if not in_process:
            name = executor if isinstance(executor, str) else type(executor).__name__
            fail("trial", f"an importable module-level function to run on the {name!r} executor (its workers "
                 "cannot receive a lambda, closure or __main__ function); define it at module level in an "
                 "importable module, pass its 'package.module:function' path, or use executor='inprocess'",
                 spec.trial, TypeError)
    with run_lock(out):
        return _run_sweep(spec, out, executor=executor, jobs=jobs, force=force, retries=retries,
                          fail_fast=fail_fast, progress=progress, on_trial=on_trial)


def _run_sweep(spec: SweepSpec, out: str | os.PathLike[str], *, executor: Executor | str, jobs: int | None,
               force: bool, retries: int, fail_fast: bool, progress: bool,
               on_trial: Callable[[TrialRecord], None] | None) -> SweepRun:
    store = _open_store(out)
    _register_spec(store, spec, force)

    trials = spec.trials()
    configs = dict(trials)
    stored = {r.key: r for r in store.records(TRIAL_KIND)}
    todo: list[str] = []
    busy: list[str] = []
    for key, _ in trials:
        rec = stored.get(key)
        if rec is None or rec.status in (PENDING, ERROR):
            todo.append(key)
        elif rec.status == RUNNING:
            (busy if _owner_alive(rec.payload.get("owner")) else todo).append(key)
    if busy:
        warnings.warn(f"{len(busy)} trials are being run by another live process; skipped", LmechWarning, stacklevel=2)
    attempts = {k: int(stored[k].payload.get("attempts", 0)) if k in stored else 0 for k in todo}

    owns_executor = isinstance(executor, str)
    ex = make_executor(executor, jobs=jobs) if isinstance(executor, str) else executor
    if not isinstance(ex, Executor):
        fail("executor", "an Executor or one of 'local', 'ray', 'inprocess'", executor, TypeError)

    run_id = uuid.uuid4().hex
    owner = _owner(run_id)
    hints = () if spec.local else path_hints(spec.trial_name)
    bar = _progress(len(todo), progress, spec.name or "sweep")
    tally: Counter[str] = Counter()
    tried: Counter[str] = Counter()
    executed = 0
    outstanding: set[str] = set()
    aborted = True
    _ACTIVE_RUNS.add(run_id)
    try:
        batch = list(todo)
        stop = False
        while batch and not stop:
            now = time.time()
            for key in batch:
                attempts[key] += 1
                tried[key] += 1
                store.put(TRIAL_KIND, key, RUNNING, {"trial": spec.trial, "config": configs[key], "owner": owner,
                                                     "attempts": attempts[key], "started": now})
            outstanding.update(batch)
            executed += len(batch)
            failed: list[str] = []
            stream = ex.map_unordered([Task(k, spec.trial_name, configs[k], hints, spec.function) for k in batch])
            try:
                for outcome in stream:
                    record = _store_outcome(store, spec.trial_name, configs[outcome.key], outcome, owner,
                                            attempts[outcome.key])
                    outstanding.discard(outcome.key)
                    if record.status == ERROR:
                        if tried[outcome.key] <= retries:
                            failed.append(outcome.key)
                            continue  # retried below; not yet counted
                        if fail_fast:
                            stop = True
                    tally[record.status] += 1
                    bar.set_postfix_str(", ".join(f"{s} {n}" for s, n in sorted(tally.items())), refresh=False)
                    bar.update(1)
                    if on_trial is not None:
                        on_trial(record)
                    if stop:
                        break
            finally:
                stream.close()
            batch = failed
        aborted = stop
    finally:
        _ACTIVE_RUNS.discard(run_id)
        bar.close()
        for key in outstanding:  # interrupted before they finished: free them for the next run
            store.put(TRIAL_KIND, key, PENDING, {"trial": spec.trial, "config": configs[key],
                                                 "attempts": attempts[key]})
        if owns_executor:
            ex.close(abort=aborted)
    return _collect(store, spec, Path(out), executed)


def _store_outcome(store: ResultStore, trial: str, config: dict, outcome: TaskOutcome, owner: dict,
                   attempts: int) -> TrialRecord:
    if outcome.ok:
        status = DIVERGED if outcome.result and outcome.result.get("diverged") else DONE
    else:
        status = ERROR
    payload = {"trial": trial, "config": config, "result": outcome.result, "error": outcome.error,
               "attempts": attempts, "seconds": outcome.seconds, "worker": outcome.worker, "owner": owner,
               "finished": time.time()}
    store.put(TRIAL_KIND, outcome.key, status, payload)
    return TrialRecord.from_payload(outcome.key, status, payload)


def _collect(store: ResultStore, spec: SweepSpec, out: Path, executed: int) -> SweepRun:
    stored = {r.key: r for r in store.records(TRIAL_KIND)}
    records = []
    for key, config in spec.trials():
        rec = stored.get(key)
        records.append(TrialRecord(key, config, PENDING) if rec is None
                       else TrialRecord.from_payload(key, rec.status, rec.payload))
    return SweepRun(spec=spec, out=out, trials=tuple(records), executed=executed)


def load_sweep(out: str | os.PathLike[str]) -> SweepRun:
    """The sweep stored in ``out`` with the current state of all its trials."""
    path = Path(out) / STORE_NAME
    if not path.exists():
        raise FileNotFoundError(f"no sweep store at {path}")
    store = ResultStore(path)
    rec = store.get(SWEEP_KIND, SPEC_KEY)
    if rec is None:
        raise FileNotFoundError(f"{path} holds no sweep spec")
    return _collect(store, SweepSpec.from_dict(rec.payload["spec"]), Path(out), 0)


def load_results(out: str | os.PathLike[str]) -> list[TrialRecord]:
    """All trials of the sweep stored in ``out`` (grid order; unstarted ones as ``pending``)."""
    return list(load_sweep(out).trials)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="trial", desc=desc, disable=not enabled or total == 0, file=sys.stderr,
                dynamic_ncols=True)
