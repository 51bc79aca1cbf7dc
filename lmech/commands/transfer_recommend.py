"""``lmech transfer recommend``: hyperparameters for a target shape from a finished transfer sweep.

Reads ``SWEEP_DIR/summary.json`` (written by ``lmech transfer``), takes the optimal learning
rate at the swept size nearest the target, moves it along the fitted drift of ``log2 lr*``
with size, and prints the base learning rate with its bootstrap band and, for sweeps of the
built-in models, every parameter group's learning rate, Adam epsilon, weight decay and init
std at the target shape (see :func:`lmech.sweep.recommend.recommend`). Writes
``SWEEP_DIR/recommend_<size>.json`` (or ``--json PATH``).

Exit status: 0 on success, 2 on a usage error (no summary, unknown scheme, bad shape).
Importing this module does not import torch.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmech import _argtypes as argtypes

__all__ = ["add_parser"]

EXAMPLE = """examples:
  lmech transfer recommend --from runs/mlp_width --width 2048
  lmech transfer recommend --from runs/mlp_width --width 1024 --scheme mup --json rec.json
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "transfer-recommend", prog="lmech transfer recommend",
        help="learning rate (with band), init, eps and weight decay for a target shape from a transfer sweep "
             "(also spelled `lmech transfer recommend`)",
        description="Recommend the base learning rate (with the sweep's bootstrap band) and per-parameter-group "
                    "learning rate, Adam epsilon, weight decay and init std at a target width or depth.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="sweep", required=True, metavar="SWEEP_DIR",
                   help="output folder of a finished `lmech transfer` run")
    p.add_argument("--width", type=argtypes.positive_int, help="target width (the target of a width sweep)")
    p.add_argument("--depth", type=argtypes.positive_int, help="target depth (the target of a depth sweep)")
    p.add_argument("--experts", type=argtypes.positive_int, help="expert count (MoE sweeps only)")
    p.add_argument("--scheme", help="which analysed scheme (default: the muP-family one)")
    p.add_argument("--weight-decay", type=float, help="base weight decay (default: the sweep's)")
    p.add_argument("--eps", type=argtypes.positive_float, help="base Adam epsilon (default: the sweep's)")
    p.add_argument("--json", metavar="PATH", help="where to write the recommendation (default SWEEP_DIR/recommend_<size>.json)")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from lmech._errors import UsageError
    from lmech.sweep.recommend import load_summary, recommend

    try:
        summary = load_summary(args.sweep)
        size_key = next(iter(summary["analyses"].values()))["size_key"]
        target = args.width if size_key == "width" else args.depth
        if target is None:
            raise ValueError(f"the sweep in {args.sweep} varies {size_key}: give the target as --{size_key}")
        rec = recommend(summary, target, scheme=args.scheme, depth=args.depth if size_key == "width" else None,
                        width=args.width if size_key == "depth" else None, weight_decay=args.weight_decay,
                        eps=args.eps, experts=args.experts)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    print(rec.text())
    path = Path(args.json) if args.json else Path(args.sweep) / f"recommend_{size_key}{target}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec.to_dict(), indent=1))
    print(f"recommendation: {path}")
    return 0
