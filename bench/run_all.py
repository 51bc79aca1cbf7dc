"""Run every benchmark and merge what they measure into one file, bench/results.json.

Each benchmark script runs in its own process (its thread settings and CPU affinity stay its
own; a failing one does not stop the others) with ``--json`` and its output is printed as it
comes. theory_vs_sim.py runs once per family module in bench/tvs/ (found by listing the folder,
so new families are picked up), recorded as ``theory_vs_sim/<family>``; any other bench/*.py not
listed below is run with no arguments (and ``--quick`` under ``--quick`` when it takes one) and
recorded if it writes ``--json``. The file holds ``machine`` (CPU count and model, Python, numpy,
torch and lmech versions, git commit, date, quick or not), ``benches`` (per run: status ok /
error / skipped, seconds, command, the recorded ratios, measures, skipped items and details) and
the flat maps ``ratios`` and ``measures`` keyed ``"<bench>/<key>"`` (bench/_results.py). It is
rewritten after every benchmark, so an interrupted run keeps what finished. Compare two files
with ``python bench/compare.py OLD NEW``.

    python bench/run_all.py [--quick] [--only NAME ...] [--out bench/results.json] [--timeout S] [--list]

``--only`` runs the named benches (``dmft``, ``theory_vs_sim`` for every family, or
``theory_vs_sim/sgd``) and keeps the other entries of an existing ``--out`` file. Exit status 1
when a benchmark failed (its entry says why), else 0.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import load, merge  # noqa: E402

# script -> (arguments of the full run, arguments of the quick run)
SCRIPTS = {
    "kernel_curves": ([], ["--repeats", "2"]),
    "kernels": ([], ["--sizes", "500", "1000", "--repeats", "2"]),
    "param_overhead": ([], ["--repeats", "5", "--steps", "5"]),
    "dmft": ([], ["--quick"]),
    "dmft_linear": ([], ["--quick", "--repeats", "1"]),
    "spiking": ([], ["--quick"]),
}
TVS = "theory_vs_sim"
TVS_ARGS = ([], ["--repeats", "1"])
NOT_BENCHES = {"run_all", "compare", TVS}


def tvs_families(folder: Path = HERE / "tvs") -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def plan(quick: bool, only=None, folder: Path = HERE) -> list[tuple[str, Path, list[str]]]:
    """(bench name, script, arguments) of every run, in order; ``only`` filters by name or prefix."""
    runs = []
    for name, (full, short) in SCRIPTS.items():
        runs.append((name, folder / f"{name}.py", list(short if quick else full)))
    for fam in tvs_families(folder / "tvs"):
        runs.append((f"{TVS}/{fam}", folder / f"{TVS}.py", ["--only", fam, *(TVS_ARGS[1] if quick else TVS_ARGS[0])]))
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_") or path.stem in SCRIPTS or path.stem in NOT_BENCHES:
            continue
        takes_quick = quick and "--quick" in path.read_text()
        runs.append((path.stem, path, ["--quick"] if takes_quick else []))
    if only:
        wanted = set(only)
        runs = [r for r in runs if r[0] in wanted or r[0].split("/")[0] in wanted]
        missing = wanted - {r[0] for r in runs} - {r[0].split("/")[0] for r in runs}
        if missing:
            raise SystemExit(f"run_all.py: no bench named {sorted(missing)} (see --list)")
    return runs


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(quick: bool) -> dict:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(quick),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "lmech": _version("lmech"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                       if k in os.environ},
    }


def _strip_family(data: dict, fam: str) -> dict:
    """theory_vs_sim keys are ``<family>/<case>``: the entry's name already says the family."""
    pre = f"{fam}/"
    return {section: ({k[len(pre):] if k.startswith(pre) else k: v for k, v in value.items()}
                      if isinstance(value, dict) else value)
            for section, value in data.items()}


def run_one(name: str, script: Path, args: list[str], timeout: float | None = None) -> dict:
    """Run one benchmark script with ``--json``; its entry for the results file."""
    entry: dict = {"command": [script.name, *args],
                   "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if "--json" not in script.read_text():
        entry.update(status="skipped", reason=f"{script.name} has no --json option (records nothing)")
        return entry
    with tempfile.TemporaryDirectory(prefix="lmech_bench_") as tmp:
        out = Path(tmp) / "out.json"
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(script), *args, "--json", str(out)], stderr=subprocess.PIPE,
                                  text=True, timeout=timeout, cwd=HERE.parent)
        except subprocess.TimeoutExpired as exc:
            entry.update(status="error", seconds=time.perf_counter() - t0, error=f"timed out after {timeout:g} s",
                         stderr_tail=(exc.stderr or b"")[-2000:].decode(errors="replace")
                         if isinstance(exc.stderr, bytes) else (exc.stderr or "")[-2000:])
            if out.is_file():  # what the script recorded before it was stopped
                entry.update(_entry_data(name, out))
            return entry
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        if proc.stderr:
            sys.stderr.write(proc.stderr)
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            entry.update(status="error", returncode=proc.returncode,
                         error=lines[-1] if lines else f"exit status {proc.returncode}, no --json output",
                         stderr_tail="\n".join(lines[-15:]))
            return entry
        data = _entry_data(name, out)
    entry.update(status="ok", **data)
    return entry


def _entry_data(name: str, path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return {"details": {"unreadable_json": str(exc)}}
    if not isinstance(data, dict) or not {"ratios", "measures", "skipped", "details"} & set(data):
        data = {"details": data}  # a script's own format (not bench/_results.py's): kept, not compared
    if name.startswith(f"{TVS}/"):
        data = _strip_family(data, name.split("/", 1)[1])
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (minutes, not an hour)")
    ap.add_argument("--only", nargs="+", default=None, metavar="NAME", help="benches to run (see --list)")
    ap.add_argument("--out", default=str(HERE / "results.json"), help="results file (default bench/results.json)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per benchmark script")
    ap.add_argument("--list", action="store_true", help="print the benches and their arguments, run nothing")
    args = ap.parse_args(argv)
    runs = plan(args.quick, args.only)
    if args.list:
        for name, script, a in runs:
            print(f"{name:<32} {script.name} {' '.join(a)}")
        return 0
    out = Path(args.out)
    existing = load(out) if args.only and out.is_file() else None
    machine = machine_info(args.quick)
    entries: dict = {}
    for name, script, a in runs:
        print(f"== {name}: {script.name} {' '.join(a)}", flush=True)
        entries[name] = entry = run_one(name, script, a, args.timeout)
        if entry["status"] != "ok":
            print(f"== {name}: {entry['status']}: {entry.get('error') or entry.get('reason')}", flush=True)
        out.write_text(json.dumps(merge(existing, entries, machine), indent=1, allow_nan=False) + "\n")
    failed = [n for n, e in entries.items() if e["status"] == "error"]
    result = merge(existing, entries, machine)
    print(f"== {len(result['ratios'])} ratios, {len(result['measures'])} measures from {len(entries)} runs "
          f"({len(failed)} failed{': ' + ', '.join(failed) if failed else ''}) -> {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
