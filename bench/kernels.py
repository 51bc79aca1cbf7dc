"""Analytic NNGP + NTK of a 2-hidden-layer ReLU network: lmech vs neural-tangents.

Times ``lmech.kernels.mlp_kernels`` (both kernels in one pass, float64) on n = 500 ... 4000
points in d = 64, side by side with neural-tangents' jitted ``kernel_fn(X, None,
get=("nngp", "ntk"))`` in float64. Conventions are matched (input kernel X1.X2^T/d,
W_std^2 = 2, b_std = 0, readout layer included); the table gives the largest off-diagonal
difference between the two (relative to max |NTK|) and each one's largest diagonal error
against the exact variance recursion (q^l = q^0, Theta^L = (L + 1) q^0 for weight_var 2).

neural-tangents needs jax/jaxlib 0.4.30 and is kept out of lmech's environment: give its
interpreter with ``--nt-python`` (default: /work/ntvenv/bin/python when it exists; set it
up with ``python -m venv /work/ntvenv && /work/ntvenv/bin/pip install jax==0.4.30
jaxlib==0.4.30 neural-tangents==0.6.5``). That interpreter runs this file with ``--worker``:
a small server that loads the inputs, compiles, and times its own calls, so lmech and
neural-tangents are timed in interleaved rounds (A B A B ...) on the same inputs, each on
``--threads`` cores (torch threads for lmech; CPU affinity plus XLA's single-thread flag for
neural-tangents at 1 thread). Each time is the median over ``--repeats`` rounds.

    python bench/kernels.py [--sizes 500 1000 2000 4000] [--repeats 5] [--threads 1] [--json PATH]

``--json PATH`` also writes the ratios (``n=<n>/lmech_over_nt/wall`` and ``.../cpu``), the
accuracies and the times as data (bench/_results.py); without neural-tangents the comparison
is recorded as skipped, with the reason, and lmech's own times are still recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEPTH, D, WV, BV = 2, 64, 2.0, 0.0
DEFAULT_NT_PYTHON = "/work/ntvenv/bin/python"


# --------------------------------------------------------------------------- neural-tangents side
def _neural_tangents():
    """A function X -> (nngp, ntk) as numpy arrays, or None when neural-tangents is missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import jax
        from neural_tangents import stax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    layers = []
    for _ in range(DEPTH):
        layers += [stax.Dense(512, W_std=np.sqrt(WV), b_std=np.sqrt(BV) if BV else None), stax.Relu()]
    layers += [stax.Dense(1, W_std=np.sqrt(WV), b_std=np.sqrt(BV) if BV else None)]
    _, _, kernel_fn = stax.serial(*layers)
    fn = jax.jit(kernel_fn, static_argnames="get")

    def run(X):
        nngp, ntk = fn(X, None, get=("nngp", "ntk"))
        ntk.block_until_ready()
        return np.asarray(nngp), np.asarray(ntk)

    return run


def _worker() -> None:
    """Serve timing requests for neural-tangents on stdin/stdout (one JSON object a line)."""
    run = _neural_tangents()
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    if run is None:
        out.write(json.dumps({"error": "neural-tangents is not importable"}) + "\n")
        out.flush()
        return
    X = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "load":
            X = np.load(msg["path"])
            run(X)  # compile for this shape
            reply = {"ok": True}
        elif cmd == "time":
            t0, c0 = time.perf_counter(), time.process_time()
            run(X)
            reply = {"t": time.perf_counter() - t0, "cpu": time.process_time() - c0}
        elif cmd == "save":
            nngp, ntk = run(X)
            np.savez(msg["path"], nngp=nngp, ntk=ntk)
            reply = {"ok": True}
        else:
            break
        out.write(json.dumps(reply) + "\n")
        out.flush()


class _RemoteNT:
    """neural-tangents in another interpreter, driven through :func:`_worker`."""

    def __init__(self, python: str, threads: int):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("PYTHONPATH", None)
        if threads == 1:
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        cpus = sorted(os.sched_getaffinity(0))[:threads]

        def pin():
            os.sched_setaffinity(0, cpus)

        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     preexec_fn=pin)
        self.tmp = tempfile.TemporaryDirectory(prefix="bench_nt_")

    def _ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the neural-tangents worker died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def load(self, X):
        path = os.path.join(self.tmp.name, "X.npy")
        np.save(path, X)
        self._ask(cmd="load", path=path)

    def time(self) -> tuple[float, float]:
        reply = self._ask(cmd="time")
        return float(reply["t"]), float(reply["cpu"])

    def result(self):
        path = os.path.join(self.tmp.name, "K.npz")
        self._ask(cmd="save", path=path)
        with np.load(path) as z:
            return z["nngp"], z["ntk"]

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        finally:
            self.tmp.cleanup()


class _LocalNT:
    """neural-tangents in this interpreter."""

    def __init__(self, run):
        self.run, self.X = run, None

    def load(self, X):
        self.X = X
        self.run(X)

    def time(self) -> tuple[float, float]:
        return _timed(lambda: self.run(self.X))

    def result(self):
        return self.run(self.X)

    def close(self):
        pass


# --------------------------------------------------------------------------- driver
def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _exact_diagonal(X):
    # relu, no bias: q^l = (wv/2) q^{l-1}; Theta^l = (wv/2) Theta^{l-1} + q^l
    q = WV * (np.einsum("ij,ij->i", X, X) / X.shape[1]) + BV
    t = q.copy()
    for _ in range(DEPTH):
        q = WV / 2 * q
        t = WV / 2 * t + q
    return q, t


def _diag_err(nngp, ntk, dq, dt):
    return max(np.max(np.abs(np.diag(nngp) - dq) / dq), np.max(np.abs(np.diag(ntk) - dt) / dt))


def main(argv=None) -> dict:
    from _results import Recorder, add_json_argument

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[500, 1000, 2000, 4000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nt-python", default=os.environ.get("LMECH_NT_PYTHON", DEFAULT_NT_PYTHON),
                    help="interpreter with neural-tangents installed ('' to skip it)")
    add_json_argument(ap)
    args = ap.parse_args(argv)
    rec = Recorder()

    import torch

    from lmech.kernels import mlp_kernels

    torch.set_num_threads(args.threads)
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    local = _neural_tangents()
    if local is not None:
        nt = _LocalNT(local)
    elif args.nt_python and Path(args.nt_python).exists():
        nt = _RemoteNT(args.nt_python, args.threads)
    else:
        nt = None
        print("neural-tangents not available (see the module docstring): timing lmech alone")
        where = (f"no interpreter at --nt-python {args.nt_python!r}" if args.nt_python
                 else "--nt-python '' (skipped on request)")
        rec.skip("lmech_over_nt", f"neural-tangents is not importable here and {where}; see bench/kernels.py's "
                 "docstring to set it up")
    rng = np.random.default_rng(0)
    print(f"NNGP+NTK, {DEPTH}-hidden-layer ReLU, d = {D}, float64, {args.threads} thread(s), "
          f"median of {args.repeats} interleaved rounds")
    head = f"{'n':>6} {'lmech s':>9} {'lmech cpu':>9}"
    if nt is not None:
        head += f" {'nt s':>9} {'nt cpu':>9} {'wall x':>7} {'cpu x':>7} {'offdiag':>10}"
    print(head + f" {'diag':>10}" + (f" {'diag nt':>10}" if nt is not None else ""))
    print("(s, cpu: median wall and CPU seconds; x: lmech / neural-tangents; offdiag: max |K_lmech - K_nt| "
          "off the diagonal / max |NTK|; diag: max relative error of the diagonal vs the exact recursion)")
    try:
        for n in args.sizes:
            X = rng.standard_normal((n, D))

            def ours():
                return mlp_kernels(X, depth=DEPTH, weight_var=WV, bias_var=BV)

            k = ours()  # warm-up
            dq, dt = _exact_diagonal(X)
            t_ours, t_nt = [], []
            if nt is not None:
                nt.load(X)
            for _ in range(args.repeats):
                t_ours.append(_timed(ours))
                if nt is not None:
                    t_nt.append(nt.time())
            w_ours, c_ours = np.median(t_ours, axis=0)
            row = f"{n:>6} {w_ours:>9.4f} {c_ours:>9.4f}"
            info = {"lmech_wall_s": w_ours, "lmech_cpu_s": c_ours}
            if nt is not None:
                w_nt, c_nt = np.median(t_nt, axis=0)
                nngp_nt, ntk_nt = nt.result()
                off = ~np.eye(n, dtype=bool)
                scale = np.abs(k.ntk).max()
                d_off = max(np.abs(k.nngp - nngp_nt)[off].max(), np.abs(k.ntk - ntk_nt)[off].max()) / scale
                row += f" {w_nt:>9.4f} {c_nt:>9.4f} {w_ours / w_nt:>7.3f} {c_ours / c_nt:>7.3f} {d_off:>10.1e}"
                rec.ratio(f"n={n}/lmech_over_nt/wall", w_ours / w_nt)
                rec.ratio(f"n={n}/lmech_over_nt/cpu", c_ours / c_nt)
                rec.measure(f"n={n}/offdiag_diff", d_off)
                info.update(nt_wall_s=w_nt, nt_cpu_s=c_nt)
            row += f" {_diag_err(k.nngp, k.ntk, dq, dt):>10.1e}"
            rec.measure(f"n={n}/diag_err_lmech", _diag_err(k.nngp, k.ntk, dq, dt))
            if nt is not None:
                row += f" {_diag_err(nngp_nt, ntk_nt, dq, dt):>10.1e}"
                rec.measure(f"n={n}/diag_err_nt", _diag_err(nngp_nt, ntk_nt, dq, dt))
            print(row, flush=True)
            rec.detail(f"n={n}", info)
    finally:
        if nt is not None:
            nt.close()
    rec.detail("settings", {"depth": DEPTH, "d": D, "repeats": args.repeats, "threads": args.threads})
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    if "--worker" in sys.argv[1:]:
        _worker()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        main()
