"""Analytic NNGP + NTK of a 2-hidden-layer ReLU network: lmech vs neural-tangents.

Times ``lmech.kernels.mlp_kernels`` (both kernels in one pass, float64) on n = 500 ... 4000
points in d = 64, side by side with neural-tangents' jitted ``kernel_fn`` where neural-tangents
is installed (it needs jax/jaxlib 0.4.30, so it lives in a separate environment, e.g.
/work/ntvenv with lmech installed there with ``pip install -e . --no-deps``). Conventions
are matched (input kernel X1.X2^T/d, W_std^2 = 2, b_std = 0, readout layer included), the
two are checked to agree to 1e-12 off the diagonal, and each one's diagonal is compared with
the exact value (weight_var/2)^L ... recursion.

    python bench/kernels.py [--sizes 500 1000 2000 4000] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _timing import interleaved  # noqa: E402
from lmech.kernels import mlp_kernels  # noqa: E402

DEPTH, D, WV, BV = 2, 64, 2.0, 0.0


def _neural_tangents():
    try:
        import jax
        from neural_tangents import stax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    layers = []
    for _ in range(DEPTH):
        layers += [stax.Dense(512, W_std=np.sqrt(WV), b_std=np.sqrt(BV)), stax.Relu()]
    layers += [stax.Dense(1, W_std=np.sqrt(WV), b_std=np.sqrt(BV))]
    _, _, kernel_fn = stax.serial(*layers)
    fn = jax.jit(kernel_fn, static_argnames="get")

    def run(X):
        nngp, ntk = fn(X, None, get=("nngp", "ntk"))
        ntk.block_until_ready()
        return np.asarray(nngp), np.asarray(ntk)

    return run


def _exact_diagonal(X):
    # relu, no bias: q^l = (wv/2) q^{l-1}; Theta^l = (wv/2) Theta^{l-1} + q^l
    q = WV * np.sum(X * X, axis=1) / X.shape[1]
    t = q.copy()
    for _ in range(DEPTH):
        q = WV / 2 * q
        t = WV / 2 * t + q
    return q, t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[500, 1000, 2000, 4000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nt = _neural_tangents()
    if nt is None:
        print("neural-tangents is not installed in this environment: timing lmech alone "
              "(see the module docstring for the side-by-side run)")
    rng = np.random.default_rng(0)
    head = f"{'n':>6} {'lmech s':>9}"
    if nt is not None:
        head += f" {'nt s':>9} {'lmech/nt':>9} {'max|dK| offdiag':>16} {'diag err lmech':>15} {'diag err nt':>12}"
    print(f"NNGP+NTK, {DEPTH}-hidden-layer ReLU, d = {D}, float64, torch threads = {args.threads}")
    print(head)
    for n in args.sizes:
        X = rng.standard_normal((n, D))

        def ours():
            return mlp_kernels(X, depth=DEPTH, weight_var=WV, bias_var=BV)

        dq, dt = _exact_diagonal(X)
        if nt is None:
            (t_ours,) = interleaved([ours], repeats=args.repeats)
            k = ours()
            diag = max(np.max(np.abs(np.diag(k.nngp) - dq)), np.max(np.abs(np.diag(k.ntk) - dt)))
            print(f"{n:>6} {t_ours:>9.4f}   (diag err {diag:.1e})", flush=True)
            continue
        t_ours, t_nt = interleaved([ours, lambda: nt(X)], repeats=args.repeats)
        k = ours()
        nngp_nt, ntk_nt = nt(X)
        off = ~np.eye(n, dtype=bool)
        scale = max(np.abs(k.ntk).max(), 1.0)
        d_off = max(np.abs(k.nngp - nngp_nt)[off].max(), np.abs(k.ntk - ntk_nt)[off].max()) / scale
        err_ours = max(np.abs(np.diag(k.nngp) - dq).max(), np.abs(np.diag(k.ntk) - dt).max())
        err_nt = max(np.abs(np.diag(nngp_nt) - dq).max(), np.abs(np.diag(ntk_nt) - dt).max())
        print(f"{n:>6} {t_ours:>9.4f} {t_nt:>9.4f} {t_ours / t_nt:>9.3f} {d_off:>16.1e} {err_ours:>15.1e} {err_nt:>12.1e}",
              flush=True)


if __name__ == "__main__":
    main()
