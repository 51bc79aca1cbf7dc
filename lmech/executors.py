"""Executors: the one run engine of lmech. Claims and sweeps both run here.

An executor turns a batch of :class:`Task` objects into :class:`TaskOutcome` objects,
yielded *as each finishes* (``map_unordered``), so the driver can store every result the
moment it exists. A task names a function by import path (``"package.module:function"``)
and carries a JSON-able config; the function's exceptions are caught inside the worker and
come back as ``ok=False`` outcomes with the worker's traceback. Only infrastructure
failures (a worker process that died, a lost Ray node) are turned into outcomes by the
executor itself.

* :class:`InProcessExecutor` - runs tasks one after another in the calling process
  (tests, debugging). A task that kills its process kills the driver.
* :class:`LocalExecutor` - a pool of local worker processes (``spawn`` context; the
  default), one task per worker at a time over its own pipe, so a worker that dies
  (signal, out-of-memory kill, segfault) fails only its own task; the outcome names the
  signal. Each worker limits its intra-op threads to ``cpu_count // jobs`` and exits by
  itself within a second when the driver dies, even by SIGKILL.
* :class:`RayExecutor` - Ray tasks on a local instance it starts (loopback only) or on an
  existing cluster (``address``). Ray is imported lazily; install the ``ray`` extra. A
  local instance started here is watched by a small watchdog process: when the driver
  dies, even by SIGKILL, the watchdog kills every process of that instance.

This module imports no other lmech layer than the base modules: claims and sweeps build
tasks for it, never the other way round.
"""
from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import multiprocessing as mp
import multiprocessing.util  # noqa: F401 - before our atexit hook (see _stop_live_workers)
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmech._json import jsonable
from lmech._validation import check_choice, check_int, fail

__all__ = [
    "Task",
    "TaskOutcome",
    "Executor",
    "InProcessExecutor",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "run_task",
    "resolve_callable",
    "path_hints",
    "BACKENDS",
]

BACKENDS = ("local", "ray", "inprocess")


# --------------------------------------------------------------------------- import paths
def check_import_path(path: Any, name: str = "trial") -> str:
    """``path`` if it has the form ``"package.module:function"``; else TypeError/ValueError."""
    if not isinstance(path, str):
        fail(name, "an import path string 'package.module:function'", path, TypeError)
    module_name, sep, attr = path.partition(":")
    ok_parts = all(p.isidentifier() for p in module_name.split(".")) and all(p.isidentifier() for p in attr.split("."))
    if not sep or not module_name or not attr or not ok_parts:
        fail(name, "an import path of the form 'package.module:function'", path)
    return path


def resolve_callable(path: str) -> Callable[..., Any]:
    """Import the function named ``"package.module:function"`` (``attr.sub`` allowed)."""
    check_import_path(path)
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"function {path!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise TypeError(f"function {path!r} is not callable")
    return obj


# --------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """One unit of work: its key, the import path of the function to call and its config.

    The function is called as ``function(config)`` and returns a JSON-able dict (or an
    object with ``to_dict()``). ``path_hints`` are folders prepended to ``sys.path`` in the
    worker before the import (spawned and Ray workers do not inherit the driver's
    ``sys.path``): see :func:`path_hints`. ``function``, when given, is called instead of
    importing ``trial`` (in-process execution only: it is not sent to workers).
    """

    key: str
    trial: str
    config: Mapping[str, Any]
    path_hints: tuple[str, ...] = ()
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TaskOutcome:
    """What came back from one task: the function's result dict, or the error text."""

    key: str
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: dict[str, Any] = field(default_factory=dict)


def _worker_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _as_result(raw: Any, trial: str) -> dict[str, Any]:
    if hasattr(raw, "to_dict") and callable(raw.to_dict):
        raw = raw.to_dict()
    if not isinstance(raw, Mapping):
        raise TypeError(f"function {trial!r} must return a dict (or an object with to_dict()); "
                        f"got {type(raw).__name__}")
    result = jsonable(dict(raw))
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"function {trial!r} returned a dict that is not JSON-serialisable: {exc}") from None
    return result


def run_task(task: Task) -> TaskOutcome:
    """Run one task in the current process, catching the function's exceptions.

    This is the function every executor ships to its workers.
    """
    for hint in reversed(task.path_hints):
        if hint not in sys.path and os.path.isdir(hint):
            sys.path.insert(0, hint)
    t0 = time.perf_counter()
    try:
        fn = task.function if task.function is not None else resolve_callable(task.trial)
        result = _as_result(fn(dict(task.config)), task.trial)
    except Exception:
        return TaskOutcome(task.key, False, None, traceback.format_exc(), time.perf_counter() - t0, _worker_info())
    return TaskOutcome(task.key, True, result, None, time.perf_counter() - t0, _worker_info())


def path_hints(name: str) -> tuple[str, ...]:
    """The ``sys.path`` entry that the top-level package of ``name`` (a module name or an
    import path ``"module:function"``) is imported from, if any: what a worker needs to
    import it when it is not installed (e.g. a module in the tests folder)."""
    top = name.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return ()
    if spec is None:
        return ()
    locations = list(spec.submodule_search_locations or [])
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        locations.append(spec.origin)
    for loc in locations:
        parent = str(Path(loc).resolve().parent)
        for entry in sys.path:
            if entry and os.path.isdir(entry) and str(Path(entry).resolve()) == parent:
                return (parent,)
    return ()


# --------------------------------------------------------------------------- interface
class Executor(ABC):
    """Runs tasks; ``map_unordered`` yields outcomes as they finish.

    Executors are context managers; ``close()`` releases workers (and shuts down a Ray
    instance the executor started itself). ``close(abort=True)`` stops running work too.
    """

    name = "executor"

    @abstractmethod
    def map_unordered(self, tasks: Sequence[Task]) -> Generator[TaskOutcome, None, None]:
        """Yield one outcome per task, in completion order. Closing the generator early
        cancels the tasks that have not started."""

    def close(self, abort: bool = False) -> None:  # noqa: B027 - optional hook
        """Release resources. ``abort=True`` also stops tasks still running."""

    @property
    def workers(self) -> int:
        return 1

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class InProcessExecutor(Executor):
    """Run tasks one after another in this process (deterministic; for tests and debugging)."""

    name = "inprocess"

    def map_unordered(self, tasks: Sequence[Task]) -> Generator[TaskOutcome, None, None]:
        for task in tasks:
            yield run_task(task)


# --------------------------------------------------------------------------- local pool
def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:  # re-parented: the driver is gone
            os._exit(3)


def _local_worker(conn, threads: int, parent_pid: int) -> None:
    """Body of one pool worker: receive a task, send back its outcome, until told to stop.

    Thread limits are set before anything imports torch (``spawn``: a fresh interpreter).
    Ctrl-C in a terminal reaches the whole process group: workers ignore SIGINT and leave
    the decision to the driver, which stops them (and frees their tasks) when interrupted.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="lmech-parent-watch").start()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the driver closed its end (or died)
            return
        if task is None:
            return
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        outcome = run_task(task)
        try:
            conn.send(outcome)
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # the result could not be pickled
            conn.send(TaskOutcome(task.key, False, None, f"could not send the result back:\n{_crash_text(exc)}",
                                  outcome.seconds, outcome.worker))


def _crash_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            import signal

            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


_LIVE_WORKERS: "weakref.WeakSet[_Worker]" = weakref.WeakSet()


def _stop_live_workers() -> None:
    """At interpreter exit: stop workers of executors nobody closed. Registered after
    ``multiprocessing.util`` so it runs before multiprocessing joins its (non-daemonic)
    children, which would otherwise wait forever on idle workers."""
    for w in list(_LIVE_WORKERS):
        w.stop(abort=True)


atexit.register(_stop_live_workers)


class _Worker:
    """One worker process and the driver's end of its pipe.

    Not daemonic, so task functions may start processes of their own (e.g. data loaders).
    """

    def __init__(self, ctx, threads: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_local_worker, args=(child, threads, os.getpid()), daemon=False,
                                name="lmech-sweep-worker")
        self.proc.start()
        child.close()
        self.task: Task | None = None
        _LIVE_WORKERS.add(self)

    def stop(self, abort: bool) -> None:
        _LIVE_WORKERS.discard(self)
        if self.conn.closed:
            return
        if abort or self.task is not None:
            if self.proc.is_alive():
                self.proc.terminate()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(5)
        if self.proc.is_alive():  # pragma: no cover - a worker ignoring SIGTERM
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class LocalExecutor(Executor):
    """A pool of ``jobs`` local worker processes (``spawn`` start method).

    Parameters
    ----------
    jobs : int, optional
        Worker processes (default: the number of CPU cores).
    threads : int, optional
        Intra-op threads per worker (``OMP_NUM_THREADS``; torch reads it at import).
        Default ``max(1, cpu_count // jobs)``.

    Notes
    -----
    Each worker runs one task at a time over its own pipe, so a worker that dies
    (segfault, ``os._exit``, out-of-memory kill) fails only the task it was running: that
    task comes back as an error naming the exit code or signal, a fresh worker replaces
    the dead one, and the other workers carry on. Workers are reused across calls of
    :meth:`map_unordered` and exit by themselves when the driver process dies.
    """

    name = "local"

    def __init__(self, jobs: int | None = None, *, threads: int | None = None) -> None:
        cores = os.cpu_count() or 1
        self.jobs = cores if jobs is None else check_int(jobs, "jobs", lo=1)
        self.threads = max(1, cores // self.jobs) if threads is None else check_int(threads, "threads", lo=1)
        self._ctx = mp.get_context("spawn")
        self._idle: list[_Worker] = []

    @property
    def workers(self) -> int:
        return self.jobs

    def _take_worker(self) -> _Worker:
        while self._idle:
            w = self._idle.pop()
            if w.proc.is_alive():
                return w
            w.stop(abort=True)
        return _Worker(self._ctx, self.threads)

    def map_unordered(self, tasks: Sequence[Task]) -> Generator[TaskOutcome, None, None]:
        from multiprocessing.connection import wait

        if not tasks:
            return
        queue = list(tasks)
        busy: dict[Any, _Worker] = {}  # conn -> worker running a task
        try:
            while queue or busy:
                while queue and len(busy) < self.jobs:
                    task = queue.pop(0)
                    w = self._take_worker()
                    try:
                        w.conn.send(task)
                    except (BrokenPipeError, EOFError, OSError):  # died between tasks: retry on a new one
                        w.stop(abort=True)
                        queue.insert(0, task)
                        continue
                    except Exception as exc:  # e.g. the config could not be pickled
                        self._idle.append(w)
                        yield TaskOutcome(task.key, False, None, f"could not run the task:\n{_crash_text(exc)}")
                        continue
                    w.task = task
                    busy[w.conn] = w
                if not busy:
                    continue
                ready = wait(list(busy) + [w.proc.sentinel for w in busy.values()])
                for conn in [c for c in list(busy) if c in ready or busy[c].proc.sentinel in ready]:
                    w = busy.pop(conn)
                    task, w.task = w.task, None
                    outcome = None
                    if conn.poll():
                        try:
                            outcome = conn.recv()
                        except (EOFError, OSError):
                            outcome = None
                    if outcome is None:  # no result: the worker process died while running the task
                        w.proc.join(5)
                        outcome = TaskOutcome(
                            task.key, False, None,
                            f"the worker process (pid {w.proc.pid}) running this task died "
                            f"({_exit_text(w.proc.exitcode)}): killed, crashed or out of memory",
                            0.0, {"host": socket.gethostname(), "pid": w.proc.pid})
                        w.stop(abort=True)
                    else:
                        self._idle.append(w)
                    yield outcome
        finally:
            # Closed early (interrupt, fail-fast): unstarted tasks are dropped; workers still
            # running a task are stopped, so no stale result can reach a later call.
            for w in busy.values():
                w.stop(abort=True)

    def close(self, abort: bool = False) -> None:
        idle, self._idle = self._idle, []
        for w in idle:
            w.stop(abort)


# --------------------------------------------------------------------------- watchdog
# The watchdog is a separate small interpreter (it imports nothing of lmech, so it starts in
# a fraction of a second) started in its own session, so a Ctrl-C to the driver's process
# group does not reach it. Its stdin is a pipe whose write end only the driver holds: the
# kernel closes it when the driver dies, however it dies. On that EOF the watchdog kills
# (SIGKILL) every process whose environment carries the run token - the processes of a Ray
# instance all inherit the driver's environment as it was at ``ray.init``, when the token is
# set - and sweeps again for a few seconds to catch processes started meanwhile. On
# "stop\n" (a clean close, after ``ray.shutdown``) it sweeps stragglers once and exits.
# Linux only (it reads /proc); elsewhere it does nothing.
TOKEN_ENV = "LMECH_RUN_TOKEN"

_WATCHDOG_SRC = r"""
import os, select, signal, sys, time
driver, var, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
marker = ("%s=%s" % (var, token)).encode()
me = os.getpid()

def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            text = fh.read().decode(errors="replace")
        return int(text[text.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None

def marked():
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) != me]
    except OSError:
        return {}
    found = {}
    for pid in pids:
        try:
            with open("/proc/%d/environ" % pid, "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if marker in env:
            found[pid] = start_time(pid)
    return found

def sweep(seconds):
    # keep sweeping for the whole window: under load a process forked just before its
    # parent was killed can show up late
    deadline = time.time() + seconds
    while time.time() < deadline:
        for pid, start in marked().items():
            if start is not None and start_time(pid) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.1)

signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    ready, _, _ = select.select([0], [], [], 1.0)
    if ready:
        data = os.read(0, 64)
        if data.startswith(b"stop"):
            sweep(2.0)
            sys.exit(0)
        if not data:
            break  # EOF: the driver is gone
    if start_time(driver) is None and os.path.isdir("/proc"):
        break
sweep(4.0)
"""


class _Watchdog:
    """A watchdog process guarding this driver's processes (see the comment above)."""

    def __init__(self, token: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG_SRC, str(os.getpid()), TOKEN_ENV, token],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True, close_fds=True)

    def stop(self) -> None:
        """Sweep leftovers of a cleanly closed instance, then let the watchdog exit."""
        if self.proc.stdin is None or self.proc.stdin.closed:
            return
        try:
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - best effort
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- Ray
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _run_task_on_ray(task: Task) -> TaskOutcome:
    """:func:`run_task` plus the Ray node id in ``worker``."""
    import dataclasses

    import ray

    outcome = run_task(task)
    return dataclasses.replace(outcome, worker={**outcome.worker, "ray_node": ray.get_runtime_context().get_node_id()})


class RayExecutor(Executor):
    """Run tasks as Ray tasks (one CPU each).

    Parameters
    ----------
    address : str, optional
        Address of an existing Ray cluster (``"host:port"``, ``"ray://host:port"`` or
        ``"auto"``). When None a local instance is started with ``num_cpus`` CPUs, bound to
        127.0.0.1 only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before Ray is
        imported, and the node address is given as 127.0.0.1), and shut down by
        :meth:`close`. A watchdog process kills that instance if the driver dies without
        closing it (SIGKILL included); an existing cluster is never touched.
    num_cpus : int, optional
        CPUs of the local instance (default: all cores). Ignored with ``address``.
    jobs : int, optional
        Most tasks in flight at once (default: no limit beyond the cluster's CPUs).
    runtime_env : dict, optional
        Passed to ``ray.init`` (e.g. ``{"working_dir": ...}`` for a remote cluster whose
        nodes lack the task function's code). The folder holding the task function's
        package is always added to the workers' ``sys.path`` when it exists there.

    Notes
    -----
    If Ray is already initialised in this process, that session is used and left running.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, jobs: int | None = None,
                 runtime_env: dict | None = None) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            fail("address", "a non-empty Ray address string such as '127.0.0.1:6379'", address, TypeError)
        self.address = address
        self.num_cpus = None if num_cpus is None else check_int(num_cpus, "num_cpus", lo=1)
        self.jobs = None if jobs is None else check_int(jobs, "jobs", lo=1)
        self.runtime_env = runtime_env
        self._started = False
        self._remote = None
        self._watchdog: _Watchdog | None = None

    @property
    def workers(self) -> int:
        if self.jobs is not None:
            return self.jobs
        try:
            import ray

            if ray.is_initialized():
                return int(ray.cluster_resources().get("CPU", 1))
        except ImportError:
            pass
        return self.num_cpus or os.cpu_count() or 1

    def _ensure(self):
        if self.address is None and "ray" not in sys.modules:
            os.environ[_LOOPBACK_ENV] = "0"
        try:
            import ray
        except ImportError:
            raise ImportError("the Ray backend needs the optional dependency: pip install 'lmech[ray]'") from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "runtime_env": self.runtime_env}
            if self.address is None:
                if os.environ.get(_LOOPBACK_ENV, "1") != "0":
                    warnings.warn(f"Ray was imported before {_LOOPBACK_ENV}=0 was set; the local instance is "
                                  "given 127.0.0.1 as its address but some of its services may bind to other "
                                  "interfaces", RuntimeWarning, stacklevel=3)
                kwargs.update(num_cpus=self.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                              _node_ip_address="127.0.0.1")
                token = uuid.uuid4().hex
                self._watchdog = _Watchdog(token)
                os.environ[TOKEN_ENV] = token  # inherited by every process of the new instance
                try:
                    ray.init(**kwargs)
                except BaseException:
                    self._stop_watchdog()
                    raise
                finally:
                    os.environ.pop(TOKEN_ENV, None)
            else:
                kwargs["address"] = self.address
                ray.init(**kwargs)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(num_cpus=1, max_retries=0)(_run_task_on_ray)
        return ray

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    def map_unordered(self, tasks: Sequence[Task]) -> Generator[TaskOutcome, None, None]:
        if not tasks:
            return
        ray = self._ensure()
        queue = list(tasks)
        limit = self.jobs or len(queue)
        in_flight: dict[Any, Task] = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < limit:
                    task = queue.pop(0)
                    in_flight[self._remote.remote(task)] = task
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    task = in_flight.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:  # worker crash, node loss, unpicklable result
                        outcome = TaskOutcome(task.key, False, None, f"Ray could not run the task:\n{_crash_text(exc)}")
                    yield outcome
        finally:
            for ref in in_flight:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # pragma: no cover - best effort
                    pass

    def close(self, abort: bool = False) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
        self._stop_watchdog()
        self._remote = None


# --------------------------------------------------------------------------- factory
def make_executor(backend: str = "local", *, jobs: int | None = None, address: str | None = None) -> Executor:
    """Build an executor by name: ``"local"`` (default), ``"ray"`` or ``"inprocess"``.

    ``address`` (Ray only) connects to an existing cluster; giving it implies ``"ray"``.
    """
    check_choice(backend, "backend", BACKENDS)
    if address is not None and backend != "ray":
        fail("address", "used only with backend='ray'", address)
    if backend == "inprocess":
        return InProcessExecutor()
    if backend == "local":
        return LocalExecutor(jobs)
    return RayExecutor(address, jobs=jobs, num_cpus=None if address else jobs)

