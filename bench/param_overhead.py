"""Per-step cost of lmech parameter groups against a single-group stock optimizer.

4-layer MLP (512 -> 512 -> 512 -> 512 -> 10), width 512, batch 256, cross-entropy on a
fixed batch, ``torch.set_num_threads(2)``. Each variant runs ``--steps`` full training steps
(zero_grad, forward, backward, optimizer step); variants are timed in interleaved rounds
and the ratios of the medians are printed, on wall-clock and on CPU time (the fairer figure on a
loaded machine; use ``--threads 1`` there, two threads on two busy cores time the scheduler).
``--part step`` times ``optimizer.step()`` alone (fixed gradients), where the groups cost
arises. Goal: lmech/plain <= 1.01 for full training steps.

Variants:
  plain        nn.Sequential of nn.Linear + torch.optim.AdamW(model.parameters())  (1 group)
  lmech        the same nn.Sequential, Parameterization("mup").apply + AdamW(p.param_groups(...))
               (readout multiplier folded into init/LR: no extra forward op)
  lmech_model  lmech.models.MLP (ScaledLinear readout multiplier in the forward) + groups
  plain_split  ``plain`` with its parameters split into lmech's groups, same hyperparameters:
               the cost of the number of groups alone
  mup          microsoft/mup: MuReadout + set_base_shapes + MuAdamW (only when ``import mup``
               works; e.g. run this script with /work/mupvenv/bin/python, a side venv holding
               mup next to lmech's torch)
  mup_torch    the same mup model with the stock single-group AdamW (SGD): mup/mup_torch is
               the cost of mup's optimizer wrapper alone ("the MuAdam ratio"; a plain
               nn.Linear readout is refused by set_base_shapes, mup issue #62)

    python bench/param_overhead.py [--repeats 15] [--steps 10] [--optimizer adamw|sgd] [--threads 1]
                                   [--part train|step] [--json PATH]

``--json PATH`` also writes the per-round ratios to ``plain`` (``<variant>/wall``, ``<variant>/cpu``)
and the times as data (bench/_results.py); mup's ratios are recorded as skipped when it is absent.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from _results import Recorder, add_json_argument  # noqa: E402


D_IN, WIDTH, D_OUT, BATCH, BASE = 512, 512, 10, 256, 64


def plain_mlp(width: int = WIDTH, readout: type = nn.Linear) -> nn.Sequential:
    return nn.Sequential(nn.Linear(D_IN, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), readout(width, D_OUT))


def make_variants(opt_name: str) -> dict[str, tuple[nn.Module, torch.optim.Optimizer]]:
    from lmech.models import MLP
    from lmech.param import Parameterization

    lr, wd = (1e-3, 0.1) if opt_name == "adamw" else (1e-2, 1e-4)
    kind = "adam" if opt_name == "adamw" else "sgd"
    cls = torch.optim.AdamW if opt_name == "adamw" else torch.optim.SGD
    extra = {} if opt_name == "adamw" else {"momentum": 0.9}
    out = {}
    torch.manual_seed(0)
    m = plain_mlp()
    out["plain"] = (m, cls(m.parameters(), lr=lr, weight_decay=wd, **extra))
    p = Parameterization("mup", base_width=BASE, optimizer=kind)
    m = plain_mlp()
    p.apply(m)
    out["lmech"] = (m, cls(p.param_groups(m, lr=lr, weight_decay=wd), lr=lr, **extra))
    m = MLP(D_IN, D_OUT, width=WIDTH, depth=4)
    p.apply(m)
    out["lmech_model"] = (m, cls(p.param_groups(m, lr=lr, weight_decay=wd), lr=lr, **extra))
    # the plain model and hyperparameters split into lmech's group structure: the cost of the
    # number of groups alone (same tensors, same update as `plain`)
    torch.manual_seed(0)
    m = plain_mlp()
    named = dict(m.named_parameters())
    split = [{"params": [named[n] for n in g["names"]]} for g in out["lmech"][1].param_groups]
    out["plain_split"] = (m, cls(split, lr=lr, weight_decay=wd, **extra))
    try:
        import mup
    except ImportError:
        return out
    m = plain_mlp(readout=mup.MuReadout)
    mup.set_base_shapes(m, plain_mlp(BASE, mup.MuReadout), delta=plain_mlp(2 * BASE, mup.MuReadout))
    mu_cls = mup.MuAdamW if opt_name == "adamw" else mup.MuSGD
    out["mup"] = (m, mu_cls(m.parameters(), lr=lr, weight_decay=wd, **extra))
    # the same MuReadout model with the stock single-group optimizer: mup/mup_torch = MuAdam ratio
    m = plain_mlp(readout=mup.MuReadout)
    mup.set_base_shapes(m, plain_mlp(BASE, mup.MuReadout), delta=plain_mlp(2 * BASE, mup.MuReadout))
    out["mup_torch"] = (m, cls(m.parameters(), lr=lr, weight_decay=wd, **extra))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10, help="training steps per timed call")
    ap.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--part", choices=("train", "step"), default="train",
                    help="time full training steps or optimizer.step() alone on fixed gradients")
    add_json_argument(ap)
    args = ap.parse_args(argv)
    rec = Recorder()
    torch.set_num_threads(args.threads)
    variants = make_variants(args.optimizer)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(BATCH, D_IN, generator=g), torch.randint(0, D_OUT, (BATCH,), generator=g)

    def trainer(model: nn.Module, opt: torch.optim.Optimizer):
        if args.part == "step":
            F.cross_entropy(model(x), y).backward()

            def run_step() -> None:
                for _ in range(args.steps):
                    opt.step()
            return run_step

        def run() -> None:
            for _ in range(args.steps):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()
        return run

    names = list(variants)
    fns = [trainer(*variants[n]) for n in names]
    for fn in fns:  # warm-up
        fn()
    samples: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for n, fn in zip(names, fns):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            samples[n].append((time.perf_counter() - w0) / args.steps)
            cpu[n].append((time.process_time() - c0) / args.steps)
    med = {n: statistics.median(s) for n, s in samples.items()}
    per_round = {n: statistics.median(a / b for a, b in zip(samples[n], samples["plain"])) for n in names}
    cpu_round = {n: statistics.median(a / b for a, b in zip(cpu[n], cpu["plain"])) for n in names}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.optimizer}, "
          f"MLP {D_IN}->{WIDTH}x3->{D_OUT}, batch {BATCH}, {args.repeats} interleaved rounds of {args.steps} "
          f"{'optimizer steps' if args.part == 'step' else 'training steps'}")
    print(f"{'variant':<12} {'groups':>6} {'ms/step':>9} {'ratio of medians':>17} {'median per-round ratio':>23} "
          f"{'CPU-time per-round ratio':>25}")
    for n in names:
        print(f"{n:<12} {len(variants[n][1].param_groups):>6} {1e3 * med[n]:>9.2f} {med[n] / med['plain']:>17.3f} "
              f"{per_round[n]:>23.3f} {cpu_round[n]:>25.3f}")
    print(f"lmech/plain (median per-round ratio): wall {per_round['lmech']:.4f}, CPU {cpu_round['lmech']:.4f}; "
          f"plain_split/plain: wall {per_round['plain_split']:.4f}, CPU {cpu_round['plain_split']:.4f}")
    for n in names:
        if n != "plain":
            rec.ratio(f"{n}_over_plain/wall", per_round[n])
            rec.ratio(f"{n}_over_plain/cpu", cpu_round[n])
        rec.detail(n, {"groups": len(variants[n][1].param_groups), "ms_per_step": 1e3 * med[n]})
    if "mup" not in variants:
        print("mup: not importable here (optional; run with /work/mupvenv/bin/python to include it)")
        rec.skip("mup", "mup is not importable by this interpreter (run with /work/mupvenv/bin/python)")
    else:
        mu_ratio = statistics.median(a / b for a, b in zip(samples["mup"], samples["mup_torch"]))
        print(f"lmech/mup: {med['lmech'] / med['mup']:.3f}   mup optimizer wrapper (MuAdamW or MuSGD vs stock, "
              f"mup/mup_torch, median per-round ratio): {mu_ratio:.3f}")
        rec.ratio("lmech_over_mup", med["lmech"] / med["mup"])
        rec.ratio("mup_wrapper", mu_ratio)
    rec.detail("settings", {"torch": torch.__version__, "threads": torch.get_num_threads(),
                            "optimizer": args.optimizer, "part": args.part, "repeats": args.repeats,
                            "steps": args.steps})
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    main()
