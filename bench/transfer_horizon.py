"""Drift of the muP-optimal Adam learning rate with width, against the training horizon:
lmech's muP beside microsoft/mup's MuAdamW on the same model.

The model and data are those of the claims ``transfer.width.mlp`` / ``transfer.width.horizon``:
an MLP of ``--depth`` linear layers on MNIST-1D, batch 64, AdamW, constant LR, base width
``widths[0]``. For each width, log2 LR and seed one run of ``max(horizons)`` steps is trained; the
loss at horizon ``h`` is the mean training loss over the last 5% of the steps before ``h`` (+inf when
it is not finite or above the first step's loss). The optimum per (width, horizon) is the parabola
through the argmin of the seed-mean loss and its neighbours (``lmech.sweep.analysis.analyze_losses``)
and the printed drift is ``log2 lr*(widest) - log2 lr*(base)``: the claims call a drift within
+-0.5 a transfer.

Both libraries train through the same loop (same initial weights, same batch order): lmech with the
groups of ``Parameterization("mup")``; mup with ``MuReadout`` (multiplier ``1/width_mult``, as lmech's
readout), ``set_base_shapes`` and ``MuAdamW``, the weights copied from the lmech-initialised model.
The one difference left is Adam's epsilon, which lmech scales with the layer's LR and mup does not.
Before the sweep the loop is checked against ``lmech.sim.hp_trial.run_trial`` (bit-identical loss
curve). mup is never a dependency: without it the mup column is skipped.

    python bench/transfer_horizon.py                  # small: widths 64, 256; ~1 min of one core
    python bench/transfer_horizon.py --preset full    # the horizon claim's full setting (both libraries)
    python bench/transfer_horizon.py --widths 128,512,1024 --lrs -9:-5:0.5 --seeds 3 --horizons 100,200,400,800
    (--json PATH: the drifts as measures "<library>_drift_at_<h>_steps", for bench/run_all.py)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _results import Recorder, add_json_argument  # noqa: E402
from torch import nn  # noqa: E402

PRESETS = {
    "small": dict(widths="64,256", lrs="-10:-4:1", seeds=1, horizons="50,100,200,400"),
    "full": dict(widths="128,1024", lrs="-9:-5:0.5", seeds=3, horizons="100,200,400,800"),
}


def _grid(spec: str) -> list[float]:
    a, b, step = (float(v) for v in spec.split(":"))
    return [a + i * step for i in range(int(round((b - a) / step)) + 1)]


def _lmech_setup(width: int, base: int, depth: int, lr: float, seed: int):
    """The model, optimizer and batch generator exactly as run_trial builds them."""
    from lmech.param import Parameterization
    from lmech.sim.hp_trial import TrialConfig, _optimizer, build_model

    cfg = TrialConfig(model="mlp", scheme="mup", width=width, depth=depth, lr=lr, seed=seed, base_width=base)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg)
    param = Parameterization("mup", base_width=base, base_depth=cfg.base_depth, optimizer="adam")
    param.apply(model, generator=gen)
    return model, _optimizer(cfg, param.param_groups(model, lr=lr, weight_decay=0.0, eps=cfg.eps)), gen


def _mup_setup(width: int, base: int, depth: int, lr: float, seed: int):
    """The lmech-initialised weights in a plain nn.Linear + mup.MuReadout net, trained by MuAdamW."""
    import mup

    ref, _, gen = _lmech_setup(width, base, depth, lr, seed)

    def net(w: int) -> nn.Sequential:
        d_in, d_out = ref.layers[0].in_features, ref.readout.out_features
        mods: list[nn.Module] = [nn.Linear(d_in, w), nn.ReLU()]
        for _ in range(depth - 2):
            mods += [nn.Linear(w, w), nn.ReLU()]
        return nn.Sequential(*mods, mup.MuReadout(w, d_out))

    model = net(width)
    mup.set_base_shapes(model, net(base), delta=net(2 * base), rescale_params=False)
    src = [*ref.layers, ref.readout]
    dst = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    return model, mup.MuAdamW(model.parameters(), lr=lr, weight_decay=0.0), gen


def train_curve(setup, width: int, base: int, depth: int, log2_lr: float, seed: int, steps: int) -> np.ndarray:
    """Per-step training loss of one constant-LR run (stops at the first non-finite loss)."""
    from lmech.sim.hp_trial import _classification

    Xtr, ytr, _, _, _ = _classification("mnist1d")
    with torch.random.fork_rng(devices=[]):
        model, opt, gen = setup(width, base, depth, 2.0**log2_lr, seed)
        curve = []
        for _ in range(steps):
            i = torch.randint(0, len(ytr), (64,), generator=gen)
            loss = F.cross_entropy(model(Xtr[i]), ytr[i])
            curve.append(float(loss.detach()))
            if not np.isfinite(curve[-1]):
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return np.array(curve + [np.inf] * (steps - len(curve)))


def at_horizon(curve: np.ndarray, h: int) -> float:
    w = curve[h - max(1, -(-h // 20)):h]
    return float(w.mean()) if np.isfinite(w).all() and w.mean() <= curve[0] else np.inf


def check_loop(depth: int) -> None:
    """The loop reproduces run_trial's curve (so the lmech column is the claims' harness)."""
    from lmech.sim.hp_trial import run_trial

    ref = run_trial(dict(model="mlp", scheme="mup", width=128, depth=depth, lr=2**-7, seed=3, steps=30,
                         base_width=64))
    ours = train_curve(_lmech_setup, 128, 64, depth, -7.0, 3, 30)
    if not np.array_equal(np.array(ref.train_curve), ours):
        raise SystemExit(f"loop check failed: max |diff| {np.max(np.abs(np.array(ref.train_curve) - ours)):.3g}")
    print("loop check: bit-identical to lmech.sim.hp_trial.run_trial (30 steps, width 128, base 64)")


def drift_table(setup, widths, lrs, seeds, horizons, depth) -> dict[int, list[float]]:
    from lmech.sweep.analysis import analyze_losses

    L = np.full((len(horizons), len(widths), len(lrs), seeds), np.nan)
    for i, w in enumerate(widths):
        for j, x in enumerate(lrs):
            for k in range(seeds):
                c = train_curve(setup, w, widths[0], depth, x, k, max(horizons))
                L[:, i, j, k] = [at_horizon(c, h) for h in horizons]
    return {h: [o.log2_lr for o in analyze_losses(widths, lrs, L[n], size_key="width", rng=0).optima]
            for n, h in enumerate(horizons)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--widths", help="comma list, first = base width")
    ap.add_argument("--lrs", help="log2 LR grid start:stop:step")
    ap.add_argument("--seeds", type=int)
    ap.add_argument("--horizons", help="comma list of steps")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    add_json_argument(ap)
    args = ap.parse_args()
    p = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in PRESETS[args.preset].items()}
    widths = [int(v) for v in p["widths"].split(",")]
    horizons = sorted(int(v) for v in p["horizons"].split(","))
    lrs, seeds = _grid(p["lrs"]), int(p["seeds"])
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); MLP depth {args.depth} on MNIST-1D, "
          f"widths {widths} (base {widths[0]}), log2 lr {lrs[0]:g}..{lrs[-1]:g} step {lrs[1] - lrs[0]:g}, "
          f"{seeds} seed(s), horizons {horizons}")
    check_loop(args.depth)
    libs, rec = {"lmech": _lmech_setup}, Recorder()
    try:
        import mup  # noqa: F401
        libs["mup"] = _mup_setup
    except ImportError:
        print("mup not installed, skipped")
        rec.skip("mup", "mup not installed")
    tables = {}
    for name, setup in libs.items():
        t0 = time.process_time()
        tables[name] = drift_table(setup, widths, lrs, seeds, horizons, args.depth)
        print(f"{name}: {time.process_time() - t0:.0f} s CPU")
    print(f"\n{'steps':>6} " + " ".join(f"{f'{n} lr*@{w}':>14}" for n in tables for w in widths)
          + " " + " ".join(f"{f'{n} drift':>12}" for n in tables))
    for h in horizons:
        opt = [tables[n][h] for n in tables]
        print(f"{h:>6} " + " ".join(f"{v:>14.2f}" for o in opt for v in o)
              + " " + " ".join(f"{o[-1] - o[0]:>+12.2f}" for o in opt))
        for n in tables:
            rec.measure(f"{n}_drift_at_{h}_steps", tables[n][h][-1] - tables[n][h][0])
    rec.detail("log2_lr_optima", {n: {str(h): v for h, v in t.items()} for n, t in tables.items()})
    rec.detail("setting", {"widths": widths, "log2_lrs": lrs, "seeds": seeds, "horizons": horizons})
    rec.write(args.json)


if __name__ == "__main__":
    main()
