"""Run claims as tasks on the run engine (:mod:`lmech.executors`), storing each result the
moment it finishes.

Each claim becomes one :class:`~lmech.executors.Task` carrying the claim's name, mode and
seed and the module that registers it; the worker imports that module (so claims
registered outside :mod:`lmech.claims`, e.g. in a test folder, run in workers too), looks
the claim up and evaluates it. With the default ``local`` backend every claim runs in a
worker process of a crash-isolating pool: a worker killed by a signal or by the
out-of-memory killer fails only its own claim, stored as an error naming the signal, and
the others finish. A rerun retries errors and skips claims already passed or failed (unless
``force``). Claims start costliest first (:func:`expected_seconds`), so that on a few workers the
longest ones do not start last and leave the others idle. While a run writes into an output folder it holds that folder's run lock
(:func:`lmech.store.run_lock`): a second run into the same folder is refused at once.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmech._json import jsonable as _jsonable
from lmech._validation import check_choice, check_int, fail
from lmech.claims.registry import MODES, Claim, ClaimResult
from lmech.executors import BACKENDS, Executor, Task, TaskOutcome, make_executor, path_hints
from lmech.store import ResultStore, run_lock

__all__ = ["run_claims", "claim_key", "load_results", "run_claim_task", "CLAIM_KIND", "DONE_STATUSES",
           "TASK_FUNCTION", "expected_seconds"]

CLAIM_KIND = "claim"
DONE_STATUSES = ("passed", "failed")  # errored claims are retried on the next run
TASK_FUNCTION = "lmech.claims.runner:run_claim_task"


def claim_key(mode: str, seed: int, name: str) -> str:
    return f"{mode}/{seed}/{name}"


def expected_seconds(names: Sequence[str], mode: str, store: ResultStore | None = None) -> dict[str, float]:
    """Expected seconds of each claim in ``mode``, for ordering a run: its latest time in ``store``
    (any seed, any status), else its time in the last recorded reproduction shipped with lmech
    (``lmech/claims/costs.json``), else unknown (``inf``: such claims are scheduled first)."""
    with open(Path(__file__).with_name("costs.json"), encoding="utf-8") as fh:
        shipped = json.load(fh).get(mode, {})
    out = {n: float(shipped[n]) if n in shipped else float("inf") for n in names}
    if store is not None:
        for rec in store.records(CLAIM_KIND):  # oldest first: the latest wins
            p = rec.payload
            if p.get("mode") == mode and p.get("name") in out and p.get("seconds"):
                out[p["name"]] = float(p["seconds"])
    return out


def _find_claim(name: str, module: str) -> Claim:
    from lmech.claims import registry

    if module:
        importlib.import_module(module)  # registers the claim (no-op when already imported)
    found = getattr(registry, "_REGISTRY", {}).get(name)  # direct look-up: no need to import every claim module
    return found if found is not None else registry.get_claim(name)


def run_claim_task(config: dict[str, Any]) -> dict[str, Any]:
    """Task function of a claim: ``{"name", "mode", "seed", "module"}`` -> the result's dict."""
    claim = _find_claim(config["name"], config.get("module", ""))
    return claim.evaluate(mode=config["mode"], seed=int(config["seed"])).to_dict()


def _task(claim: Claim, mode: str, seed: int) -> Task:
    config = {"name": claim.name, "mode": mode, "seed": seed, "module": claim.module}
    return Task(claim_key(mode, seed, claim.name), TASK_FUNCTION, config, path_hints(claim.module) if claim.module else ())


def _error_result(claim: Claim, mode: str, seed: int, error: str, seconds: float = 0.0) -> ClaimResult:
    """The stored form of a claim whose worker died or whose result could not come back."""
    from lmech.provenance import environment

    exp = claim.expectation_for(mode)
    return ClaimResult(
        name=claim.name, paper=claim.paper, statement=claim.statement, metric=claim.metric,
        mode=mode, seed=seed, status="error", passed=False, value=float("nan"),
        tolerance=claim.tolerance_for(mode), seconds=seconds,
        setting=_jsonable(dataclasses.asdict(claim.setting_for(mode))), error=error, environment=environment(),
        expect=exp.kind, reason=exp.reason, min_passing=exp.min_passing,
    )


def _result(claim: Claim, mode: str, seed: int, outcome: TaskOutcome) -> ClaimResult:
    if outcome.ok and outcome.result is not None:
        try:
            return ClaimResult.from_dict(outcome.result)
        except (TypeError, ValueError) as exc:
            return _error_result(claim, mode, seed, f"the worker's result could not be read: {exc}", outcome.seconds)
    return _error_result(claim, mode, seed, outcome.error or "the task failed without a message", outcome.seconds)


def run_claims(
    claims: Sequence[Claim],
    *,
    mode: str = "quick",
    seed: int = 0,
    out: str | os.PathLike[str] = "runs/quick",
    jobs: int | None = None,
    force: bool = False,
    progress: bool = True,
    on_result: Callable[[ClaimResult], None] | None = None,
    backend: str | Executor = "local",
    address: str | None = None,
) -> list[ClaimResult]:
    """Run ``claims`` and store each result in ``<out>/results.sqlite`` as it finishes.

    Parameters
    ----------
    claims : sequence of Claim
    mode : {"quick", "full"}
    seed : int
        First seed of every claim.
    out : path
        Output folder. Its run lock is held for the whole call.
    jobs : int, optional
        Worker processes of the ``local`` pool / most Ray tasks in flight (default: CPU
        cores, and never more workers than claims to run).
    force : bool
        Rerun claims already passed or failed in the store (errored ones always rerun).
    progress : bool
        A progress bar on stderr.
    on_result : callable, optional
        Called with each fresh :class:`ClaimResult` as it is stored.
    backend : {"local", "ray", "inprocess"} or Executor
        ``local`` (default): a crash-isolating pool of worker processes, one claim per
        worker at a time. ``ray``: Ray tasks on a local loopback-only instance started here,
        or on the cluster at ``address``. ``inprocess``: in this process, one after
        another (debugging; a claim that kills its process kills the run). An Executor
        object passed in is used as is and not closed.
    address : str, optional
        Ray cluster address (``backend="ray"`` only).

    Returns
    -------
    list of ClaimResult
        The results of all of ``claims`` (fresh and previously stored), in order.

    Raises
    ------
    StoreError
        ``out`` is in use by another run, or its results store is unusable.
    """
    check_choice(mode, "mode", MODES)
    seed = check_int(seed, "seed", lo=0)
    jobs = None if jobs is None else check_int(jobs, "jobs", lo=1)
    if isinstance(backend, str):
        check_choice(backend, "backend", BACKENDS)
    elif not isinstance(backend, Executor):
        fail("backend", f"one of {BACKENDS} or an Executor", backend, TypeError)
    with run_lock(out):
        store = ResultStore(Path(out) / "results.sqlite")
        done = set() if force else store.keys(CLAIM_KIND, DONE_STATUSES)
        todo = [c for c in claims if claim_key(mode, seed, c.name) not in done]
        cost = expected_seconds([c.name for c in todo], mode, store)
        todo.sort(key=lambda c: -cost[c.name])  # costliest first (stable: ties keep the given order)
        by_key = {claim_key(mode, seed, c.name): c for c in todo}

        bar = _progress(len(todo), progress)

        def finish(result: ClaimResult) -> None:
            store.put(CLAIM_KIND, claim_key(mode, seed, result.name), result.status, result.to_dict())
            if on_result is not None:
                on_result(result)
            bar.set_postfix_str(f"{result.name}: {result.status}", refresh=False)
            bar.update(1)

        owns = isinstance(backend, str)
        executor: Executor | None = None
        aborted = True
        try:
            if todo:
                if isinstance(backend, str):  # owns
                    workers = min(jobs or (os.cpu_count() or 1), len(todo))
                    executor = make_executor(backend, jobs=workers if backend != "inprocess" else None,
                                             address=address)
                else:
                    executor = backend
                stream = executor.map_unordered([_task(c, mode, seed) for c in todo])
                try:
                    for outcome in stream:
                        c = by_key[outcome.key]
                        finish(_result(c, mode, seed, outcome))
                finally:
                    stream.close()
            aborted = False
        finally:
            bar.close()
            if owns and executor is not None:
                executor.close(abort=aborted)
        return load_results(store, [c.name for c in claims], mode=mode, seed=seed)


def load_results(store: ResultStore, names: Sequence[str] | None = None, *, mode: str | None = None,
                 seed: int | None = None) -> list[ClaimResult]:
    """Stored claim results, optionally restricted to ``names``, a mode and a seed."""
    results = [ClaimResult.from_dict(r.payload) for r in store.records(CLAIM_KIND)]
    if mode is not None:
        results = [r for r in results if r.mode == mode]
    if seed is not None:
        results = [r for r in results if r.seed == seed]
    if names is not None:
        order = {n: i for i, n in enumerate(names)}
        results = sorted((r for r in results if r.name in order), key=lambda r: order[r.name])
    return results


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="claim", disable=not enabled or total == 0, file=sys.stderr, dynamic_ncols=True)
