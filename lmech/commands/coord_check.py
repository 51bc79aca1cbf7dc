"""``lmech coord-check``: the coordinate check from the command line.

Exit status: 0 when the check passes, 1 when it fails or is inconclusive (a negative
control did not separate), 2 on a usage error. Writes ``coord_check.json`` (table, fitted
slopes, verdict) and one ``coord_check_<scheme>.png`` per scheme run (a panel per layer:
activation size and change since init against width/depth, one colour per step).
Importing this module does not import torch (the CLI builds every parser on each call).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmech import _argtypes as argtypes

__all__ = ["add_parser"]

_SCHEMES = ("sp", "ntp", "mup", "depth_mup", "completep")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "coord-check",
        help="coordinate check of a parameterization over widths or depths",
        description="Train a model for a few steps on a fixed batch at several widths (or depths) and fit "
        "log-log slopes of every layer's activation size and change since init. Passes when every slope of "
        "the scheme is within the tolerance and the negative controls (SP/NTP for width, muP without depth "
        "scaling for depth) separate.",
    )
    p.add_argument("--model", choices=("mlp", "resmlp", "gpt"), default="mlp", help="built-in model (default mlp)")
    p.add_argument("--scheme", choices=_SCHEMES, default="mup", help="parameterization under test (default mup)")
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--widths", nargs="+", action=argtypes.list_action(argtypes.positive_int, min_len=2), default=None,
                      help="increasing widths, space- or comma-separated; the first is the base (default 64,128,256,512,1024)")
    grid.add_argument("--depths", nargs="+", action=argtypes.list_action(argtypes.positive_int, min_len=2), default=None,
                      help="increasing depths, space- or comma-separated (residual models); the first is the base")
    p.add_argument("--width", type=argtypes.positive_int, default=128, help="fixed width of a depth check (default 128)")
    p.add_argument("--depth", type=argtypes.positive_int, default=None,
                   help="fixed depth of a width check (default 3 layers for mlp, 2 blocks otherwise)")
    p.add_argument("--steps", type=argtypes.positive_int, default=4, help="optimizer steps on the fixed batch (default 4)")
    p.add_argument("--seeds", type=argtypes.positive_int, default=3, help="seeds averaged per point (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed offset (default 0)")
    p.add_argument("--readout-init", choices=("zero", "normal"), default="zero",
                   help="readout initialisation (default zero, the muP recommendation; normal = same as SP)")
    p.add_argument("--optimizer", type=argtypes.optimizer, default="adamw", metavar="{adamw,sgd}",
                   help="adamw (default; no weight decay in the check, so the same update as Adam) or sgd; "
                        "the old spelling adam is accepted with a deprecation note")
    p.add_argument("--lr", type=argtypes.positive_float, default=None, help="base learning rate (default: per model)")
    p.add_argument("--tolerance", type=argtypes.positive_float, default=0.1, help="max |slope| to pass (default 0.1)")
    p.add_argument("--separation", type=argtypes.positive_float, default=0.4,
                   help="min |slope| a negative control must reach (default 0.4)")
    p.add_argument("--fit-points", type=argtypes.positive_int, default=4, help="fit slopes on the largest N grid points")
    p.add_argument("--no-controls", action="store_true", help="skip the negative controls (verdict: inconclusive)")
    p.add_argument("--out", default="runs/coord_check", help="output folder (default runs/coord_check)")
    p.add_argument("--threads", type=argtypes.positive_int, default=None,
                   help="torch intra-op threads (default: torch's; 1 is best for small models on a busy machine)")
    p.add_argument("--no-plot", action="store_true", help="write only the JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    import torch

    from lmech._errors import UsageError
    from lmech.sim.coord_check import coord_check

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.fit_points < 2:
        raise UsageError(f"--fit-points {args.fit_points}: must be at least 2")
    out = argtypes.output_dir(args.out)
    try:
        result = coord_check(
            args.model, args.scheme, widths=args.widths, depths=args.depths, width=args.width, depth=args.depth,
            steps=args.steps, seeds=args.seeds, seed=args.seed,
            optimizer="adam" if args.optimizer == "adamw" else args.optimizer,  # the solver's name for it
            zero_readout=args.readout_init == "zero", lr=args.lr, tolerance=args.tolerance,
            separation=args.separation, fit_points=args.fit_points,
            controls=() if args.no_controls else None, progress=not args.no_progress,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    (out / "coord_check.json").write_text(json.dumps(result.to_dict(), indent=1))
    if not args.no_plot:
        for scheme in [result.scheme] + result.controls:
            result.plot(str(out / f"coord_check_{scheme}.png"), scheme=scheme)
    print(result.summary())
    print(f"results: {out / 'coord_check.json'}")
    return 0 if result.passed else 1
