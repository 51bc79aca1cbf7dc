"""Run claims in a process pool, storing each result the moment it finishes."""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from lmech._json import jsonable as _jsonable
from lmech._validation import check_choice, check_int
from lmech.claims.registry import MODES, Claim, ClaimResult
from lmech.store import ResultStore

__all__ = ["run_claims", "claim_key", "load_results", "CLAIM_KIND", "DONE_STATUSES"]

CLAIM_KIND = "claim"
DONE_STATUSES = ("passed", "failed")  # errored claims are retried on the next run


def claim_key(mode: str, seed: int, name: str) -> str:
    return f"{mode}/{seed}/{name}"


def _init_worker(threads: int) -> None:
    # Split the cores between workers: torch intra-op threads and the BLAS pools numpy uses.
    import torch

    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # threadpoolctl ships with scikit-learn; without it BLAS keeps its default
        pass


def _evaluate(claim: Claim, mode: str, seed: int) -> dict:
    # The Claim travels by pickle (its function by qualified name), so claims defined
    # outside lmech.claims run in workers too.
    return claim.evaluate(mode=mode, seed=seed).to_dict()


def _crashed(claim: Claim, mode: str, seed: int, exc: BaseException) -> ClaimResult:
    from lmech.provenance import environment

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ClaimResult(
        name=claim.name, paper=claim.paper, statement=claim.statement, metric=claim.metric,
        mode=mode, seed=seed, status="error", passed=False, value=float("nan"),
        tolerance=claim.tolerance_for(mode), seconds=0.0, setting=_jsonable(dataclasses.asdict(claim.setting_for(mode))),
        error=f"worker process failed: {tb}", environment=environment(),
    )


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
) -> list[ClaimResult]:
    """Run ``claims`` and store each result in ``<out>/results.sqlite`` as it finishes.

    Claims already finished (passed or failed) for the same mode and seed are skipped
    unless ``force``; errored ones run again. ``jobs`` worker processes are used (default:
    the number of CPU cores); ``jobs=1`` runs in this process. A claim that raises, or
    whose worker dies, is stored as an error with its traceback and the run continues.

    Returns the results of all selected claims (fresh and previously stored), in order.
    """
    check_choice(mode, "mode", MODES)
    seed = check_int(seed, "seed", lo=0)
    jobs = (os.cpu_count() or 1) if jobs is None else check_int(jobs, "jobs", lo=1)
    store = ResultStore(Path(out) / "results.sqlite")
    done = set() if force else store.keys(CLAIM_KIND, DONE_STATUSES)
    todo = [c for c in claims if claim_key(mode, seed, c.name) not in done]

    bar = _progress(len(todo), progress)

    def finish(result: ClaimResult) -> None:
        store.put(CLAIM_KIND, claim_key(mode, seed, result.name), result.status, result.to_dict())
        if on_result is not None:
            on_result(result)
        bar.set_postfix_str(f"{result.name}: {result.status}", refresh=False)
        bar.update(1)

    try:
        if jobs == 1 or len(todo) <= 1:
            for c in todo:
                bar.set_description(c.name)
                finish(c.evaluate(mode=mode, seed=seed))
        else:
            workers = min(jobs, len(todo))
            threads = max(1, (os.cpu_count() or 1) // workers)
            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
                futures = {pool.submit(_evaluate, c, mode, seed): c for c in todo}
                for fut in cf.as_completed(futures):
                    c = futures[fut]
                    try:
                        result = ClaimResult.from_dict(fut.result())
                    except Exception as exc:  # worker died (OOM, segfault) or result not picklable
                        result = _crashed(c, mode, seed, exc)
                    finish(result)
    finally:
        bar.close()
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
