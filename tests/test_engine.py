"""The run engine: crash isolation, driver death, one run per output folder, unusable stores,
and the exit status of ``lmech reproduce``.

Processes started by a test carry an environment marker (``LMECH_TEST_MARK=<uuid>``),
inherited by every descendant (pool workers, a Ray instance's processes); a test finds
survivors by reading ``/proc/*/environ`` and kills whatever it started before it ends.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lmech._errors import StoreError
from lmech.cli import main
from lmech.store import APPLICATION_ID, ResultStore, run_lock

TESTS = str(Path(__file__).resolve().parent)
HAVE_RAY = importlib.util.find_spec("ray") is not None  # not imported here: the executor imports it loopback-only
MARK = "LMECH_TEST_MARK"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# A driver process: registers the toy claims and trials, then runs the lmech command line.
DRIVER = f"""
import sys
sys.path.insert(0, {TESTS!r})
import _toy_claims, _toy_trials
from lmech.cli import main
sys.exit(main(sys.argv[1:]))
"""


# --------------------------------------------------------------------------- helpers
def marked(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            found.append(int(d))
    return found


def kill_marked(mark: str) -> None:
    for pid in marked(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def driver(tmp_path):
    """Start ``lmech <argv>`` in a marked subprocess: ``driver(argv) -> (proc, started_file)``."""
    mark = uuid.uuid4().hex
    procs = []

    def start(argv):
        started = tmp_path / f"started-{len(procs)}"
        env = {**os.environ, MARK: mark, "TOY_CLAIM_STARTED": str(started),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc, started

    start.mark = mark
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    kill_marked(mark)


def assert_all_exit_after_kill(proc, mark: str, seconds: float = 5.0) -> float:
    """SIGKILL the driver; every marked process must be gone within ``seconds``."""
    assert len(marked(mark)) >= 2, "the driver should have started at least one worker"
    proc.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    proc.wait()
    deadline = t0 + seconds
    while marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = marked(mark)
    cmds = {}
    for pid in left:
        try:
            cmds[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
        except OSError:
            pass
    assert not left, f"processes still alive {seconds} s after the driver was killed: {cmds}"
    return time.monotonic() - t0


@pytest.fixture
def toy(isolated_registry):
    import _toy_claims

    _toy_claims.register()
    return isolated_registry


# --------------------------------------------------------------------------- crash isolation
def test_a_killed_worker_fails_only_its_claim_and_a_rerun_retries_errors(toy, tmp_path):
    from lmech.claims import run_claims

    claims = [toy.get_claim(n) for n in ("toy.ok", "toy.sigkill", "toy.known", "toy.crash")]
    seen = []
    results = run_claims(claims, out=tmp_path, jobs=2, progress=False, on_result=seen.append)
    by_name = {r.name: r for r in results}
    assert {n: r.category for n, r in by_name.items()} == {
        "toy.ok": "passed", "toy.sigkill": "error", "toy.known": "known_failure", "toy.crash": "error"}
    assert "SIGKILL" in by_name["toy.sigkill"].error and "died" in by_name["toy.sigkill"].error
    assert "deliberate failure" in by_name["toy.crash"].error
    assert len(seen) == 4
    seen.clear()
    run_claims(claims, out=tmp_path, jobs=2, progress=False, on_result=seen.append)
    assert sorted(r.name for r in seen) == ["toy.crash", "toy.sigkill"]  # only errors run again
    seen.clear()
    run_claims(claims, out=tmp_path, jobs=2, progress=False, force=True, on_result=seen.append)
    assert len(seen) == 4
    assert ResultStore(tmp_path / "results.sqlite").count("claim") == 4


def test_inprocess_backend_runs_in_this_process(toy, tmp_path):
    from lmech.claims import run_claims

    results = run_claims([toy.get_claim("toy.ok"), toy.get_claim("toy.fragile")], out=tmp_path, backend="inprocess",
                         progress=False)
    assert [r.category for r in results] == ["passed", "fragile"]
    assert results[1].seeds_passed == 2 and results[1].seeds_run == 3  # seeds 0 and 2 pass, 1 fails
    with pytest.raises(ValueError, match="backend"):
        run_claims([toy.get_claim("toy.ok")], out=tmp_path, backend="threads", progress=False)


def test_claims_start_costliest_first_by_the_store_then_the_shipped_table(toy, tmp_path):
    from lmech.claims import run_claims
    from lmech.claims.runner import claim_key, expected_seconds

    names = ["toy.ok", "toy.fragile"]
    shipped = expected_seconds(["kernel.wide_net", "toy.ok"], "full")
    assert 0 < shipped["kernel.wide_net"] < float("inf") and shipped["toy.ok"] == float("inf")  # unknown: first
    claims = [toy.get_claim(n) for n in names]
    run_claims(claims, out=tmp_path, mode="quick", seed=0, backend="inprocess", progress=False)
    store = ResultStore(tmp_path / "results.sqlite")
    rec = {r.key: r for r in store.records("claim")}
    ok = rec[claim_key("quick", 0, "toy.ok")].payload
    store.put("claim", claim_key("quick", 0, "toy.ok"), "passed", {**ok, "seconds": 1e6})  # now the costliest
    cost = expected_seconds(names, "quick", store)
    assert cost["toy.ok"] == 1e6 and cost["toy.fragile"] < 1e6
    seen: list = []
    run_claims(claims[::-1], out=tmp_path, mode="quick", seed=1, backend="inprocess", progress=False,
               on_result=seen.append)  # another seed: nothing stored yet, the store's times still order it
    assert [r.name for r in seen] == ["toy.ok", "toy.fragile"]


# --------------------------------------------------------------------------- exit status
def _reproduce(out, *names, extra=()):
    return main(["reproduce", "--only", *names, "--out", str(out), "--no-progress", "--backend", "inprocess",
                 *extra])


def test_exit_status_follows_expectations(toy, tmp_path, capsys):
    assert _reproduce(tmp_path / "a", "toy.ok", "toy.known", "toy.fragile") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == (f"1 passed, 1 known failure, 1 fragile (passed at some seeds) — see "
                         f"{tmp_path / 'a' / 'report.html'}")
    assert _reproduce(tmp_path / "b", "toy.known_fixed") == 1  # a known failure that now passes
    out = capsys.readouterr().out
    assert "update its expectation" in out and out.strip().splitlines()[-1].startswith("1 known failure now passing")
    assert _reproduce(tmp_path / "c", "toy.ok", extra=["--full"]) == 1  # fails unexpectedly
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("1 failed unexpectedly")
    assert _reproduce(tmp_path / "d", "toy.crash") == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("1 error —")


def test_reproduce_local_backend_isolates_a_dead_worker(toy, tmp_path, capsys):
    code = main(["reproduce", "--only", "toy.ok", "toy.sigkill", "--out", str(tmp_path), "--no-progress",
                 "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == 1 and out.strip().splitlines()[-1].startswith("1 passed, 1 error — see")
    assert "SIGKILL" in out


def test_claims_list_shows_expectations_per_mode(toy, capsys):
    assert main(["claims", "list", "--only", "toy.known*", "toy.fragile", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["toy.known"]["expect"]["full"] == {"kind": "known_failure",
                                                   "reason": "the toy simulation is biased by 30% (measured value 0.3)"}
    assert rows["toy.known_fixed"]["expect"]["quick"]["kind"] == "known_failure"
    assert rows["toy.known_fixed"]["expect"]["full"] == {"kind": "pass", "reason": ""}
    assert rows["toy.fragile"]["expect"]["quick"] == {"kind": "fragile", "reason": "passes at even seeds only",
                                                      "n_seeds": 3, "min_passing": 1}
    assert main(["claims", "list", "--only", "toy.known*", "toy.fragile"]) == 0
    text = capsys.readouterr().out
    assert "expect known_failure (quick, full): the toy simulation is biased" in text
    assert "expect known_failure (quick): was biased; fixed since" in text and "expect pass (full)" in text
    assert "expect fragile (at least 1 of 3 seeds pass) (quick, full): passes at even seeds only" in text


# --------------------------------------------------------------------------- run lock
def test_run_lock_refuses_a_second_holder_and_is_freed_by_death(tmp_path):
    code = (f"import sys, time; sys.path.insert(0, {TESTS!r}); from lmech.store import run_lock\n"
            f"with run_lock({str(tmp_path)!r}, command='holder --x'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(StoreError, match=f"pid {holder.pid} .*holder --x"):
            with run_lock(tmp_path):
                pass
        assert time.monotonic() - t0 < 2.0  # refused at once, not after a wait
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path, command="me") as path:  # the dead holder's lock does not block
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with run_lock(tmp_path):  # re-entrant within a process
            pass


def test_transfer_refuses_an_out_folder_in_use(tmp_path, capsys):
    code = (f"from lmech.store import run_lock; import time\n"
            f"with run_lock({str(tmp_path)!r}, command='lmech reproduce --out x'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = ["transfer", "--model", "toy", "--scheme", "a", "--widths", "64", "128", "--lrs", "0.01",
                "--trial", "_toy_trials:quadratic", "--out", str(tmp_path), "--no-progress", "--no-plot",
                "--backend", "inprocess"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "lmech reproduce --out x" in err and "Traceback" not in err
        assert not (tmp_path / "sweep.sqlite").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(argv) == 0


# --------------------------------------------------------------------------- driver death
def test_reproduce_refuses_a_busy_out_and_its_workers_die_with_the_driver(driver, tmp_path, toy, capsys):
    out = tmp_path / "out"
    proc, started = driver(["reproduce", "--only", "toy.slow", "--out", str(out), "--no-progress", "--jobs", "1"])
    wait_for(started.exists, 60, "the slow claim to start in a worker")
    t0 = time.monotonic()
    assert main(["reproduce", "--only", "toy.ok", "--out", str(out), "--no-progress"]) == 2
    assert time.monotonic() - t0 < 5.0  # at once (a run would wait for the slow claim: 60 s)
    err = capsys.readouterr().err
    assert f"pid {proc.pid}" in err and "reproduce --only toy.slow" in err and "started" in err
    assert_all_exit_after_kill(proc, driver.mark)
    # the dead driver's lock does not block; its unfinished claim left nothing in the store
    assert main(["reproduce", "--only", "toy.ok", "--out", str(out), "--no-progress", "--backend", "inprocess"]) == 0


def test_transfer_workers_die_with_the_driver(driver, tmp_path):
    log = tmp_path / "log.jsonl"
    proc, _ = driver(["transfer", "--model", "toy", "--scheme", "a", "--widths", "64", "128", "--lrs", "0.01",
                      "--trial", "_toy_trials:quadratic", "--set", "sleep=60", "--set", f"log={json.dumps(str(log))}",
                      "--out", str(tmp_path / "out"), "--no-progress", "--no-plot", "--jobs", "2"])
    wait_for(log.exists, 60, "a trial to start in a worker")
    assert_all_exit_after_kill(proc, driver.mark)


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="needs the ray extra")
def test_ray_instance_dies_with_the_driver(driver, tmp_path):
    proc, started = driver(["reproduce", "--only", "toy.slow", "--out", str(tmp_path), "--no-progress",
                            "--backend", "ray", "--jobs", "1"])
    wait_for(started.exists, 120, "the slow claim to start on Ray")
    assert len(marked(driver.mark)) >= 4  # driver, watchdog, Ray's own processes and its worker
    assert_all_exit_after_kill(proc, driver.mark)


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="needs the ray extra")
def test_ray_backend_isolates_a_dead_worker(toy, tmp_path):
    from lmech.claims import run_claims

    results = run_claims([toy.get_claim("toy.ok"), toy.get_claim("toy.sigkill")], out=tmp_path, backend="ray",
                         jobs=2, progress=False)
    import ray

    assert [r.category for r in results] == ["passed", "error"]
    assert "died" in results[1].error
    assert not ray.is_initialized()


# --------------------------------------------------------------------------- unusable stores
def _truncated(path: Path) -> None:
    store = ResultStore(path)
    for i in range(200):
        store.put("claim", f"k{i}", "passed", {"blob": "x" * 2000, "i": i})
    del store
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


def _foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()


def _garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))


@pytest.mark.parametrize("make, why", [
    (lambda p: p.write_bytes(b""), "empty"),
    (_truncated, "corrupt or truncated|SQLite cannot read"),
    (_foreign, "some other program"),
    (_garbage, "SQLite cannot read|corrupt"),
    (lambda p: p.write_text("name,value\n1,2\n"), "not an SQLite database"),
])
def test_unusable_store_is_an_error_never_a_fresh_start(toy, tmp_path, capsys, make, why):
    path = tmp_path / "results.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=why) as exc:
        ResultStore(path)
    assert str(path) in str(exc.value) and "move the file away" in str(exc.value)
    assert main(["reproduce", "--only", "toy.ok", "--out", str(tmp_path), "--no-progress", "--backend",
                 "inprocess"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    assert path.read_bytes() == before  # left as it was


def test_stores_are_marked_and_old_unmarked_stores_stay_readable(tmp_path):
    path = tmp_path / "new.sqlite"
    ResultStore(path).put("t", "k", "done", {"x": 1})
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.close()
    old = tmp_path / "old.sqlite"  # a store as written before the mark existed
    con = sqlite3.connect(old)
    con.executescript("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, "
                      "payload TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL, PRIMARY KEY (kind, key));")
    con.execute("INSERT INTO records VALUES ('t', 'k', 'done', '{\"x\": 2}', 1.0, 1.0)")
    con.commit()
    con.close()
    assert ResultStore(old).get("t", "k").payload == {"x": 2}
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.close()
