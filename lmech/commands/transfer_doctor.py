"""``lmech transfer doctor``: does a parameterization hold on *your* model, parameter by parameter?

Builds the model with ``--model MODULE:FACTORY`` (``factory(width) -> nn.Module``) at each
width, trains it a few steps on one fixed batch under the scheme and under SP (the negative
control) and fits, per parameter, how its update changes its layer's output with width (see
:func:`lmech.sim.doctor.transfer_doctor`). Writes ``doctor.json`` (roles, per-parameter
slopes, findings, verdict) and ``doctor.png``; prints the roles table, the verdict and, for
each parameter or layer that breaks the scheme, the likely cause.

Exit status: 0 when the scheme holds, 1 when it breaks or the check is inconclusive (the
control did not break either), 2 on a usage error. Importing this module does not import torch.
"""
from __future__ import annotations

import argparse
import json

from lmech import _argtypes as argtypes

__all__ = ["add_parser"]

EXAMPLE = """examples:
  lmech transfer doctor --model mynets:make_mlp --widths 64,128,256,512
  lmech transfer doctor --model mynets:make_mlp --widths 64 128 256 --scheme mup --steps 5 --lr 1e-2 \\
      --batch mynets:make_batch --role '4.weight=readout' --out runs/doctor
the factory takes the width and returns an nn.Module; the first width is the base shape.
without --batch, a random batch fitted to the first layer (nn.Linear or nn.Embedding) is used.
"""


def _role(text: str) -> tuple[str, str]:
    pattern, sep, role = text.partition("=")
    if not sep or not pattern or not role:
        raise argparse.ArgumentTypeError(f"must be PATTERN=ROLE (e.g. 'head.weight=readout'); got {text!r}")
    return pattern, role


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "transfer-doctor", prog="lmech transfer doctor",
        help="diagnose muP (or another scheme) on your own model: which parameter breaks it and why "
             "(also spelled `lmech transfer doctor`)",
        description="Measure, at several widths, each parameter's update effect on its layer's output and each "
                    "layer's activations under the scheme and under SP, fit their slopes against width, and name "
                    "every parameter or layer that breaks the scheme with its likely cause.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="MODULE:FACTORY",
                   help="factory(width) -> nn.Module, imported from the current folder or the Python path")
    p.add_argument("--widths", nargs="+", action=argtypes.list_action(argtypes.positive_int, min_len=3),
                   default=[64, 128, 256, 512], metavar="N", help="increasing widths (default 64,128,256,512)")
    p.add_argument("--scheme", choices=("mup", "depth_mup", "completep", "ntp", "sp"), default="mup",
                   help="parameterization under test (default mup)")
    p.add_argument("--steps", type=argtypes.positive_int, default=5, help="optimizer steps on the batch (default 5)")
    p.add_argument("--seeds", type=argtypes.positive_int, default=3, help="seeds averaged per width (default 3)")
    p.add_argument("--seed", type=argtypes.nonnegative_int, default=0, help="seed offset (default 0)")
    p.add_argument("--lr", type=argtypes.positive_float, default=1e-2, help="base learning rate (default 1e-2)")
    p.add_argument("--eps", type=float, default=1e-8, help="Adam epsilon at the base width (default 1e-8)")
    p.add_argument("--optimizer", type=argtypes.optimizer, default="adamw", metavar="{adamw,sgd}",
                   help="update geometry of the groups (default adamw)")
    p.add_argument("--batch", metavar="MODULE:FUNCTION",
                   help="function() -> (x, y): the fixed batch (default: random, fitted to the first layer)")
    p.add_argument("--role", action="append", type=_role, default=[], metavar="PATTERN=ROLE",
                   help="role override for parameters matching the glob PATTERN (repeatable)")
    p.add_argument("--no-control", action="store_true", help="skip the SP negative control")
    p.add_argument("--tolerance", type=argtypes.positive_float, default=0.25,
                   help="largest |slope| vs width that still holds (default 0.25)")
    p.add_argument("--out", default="runs/doctor", help="output folder (default runs/doctor)")
    p.add_argument("--threads", type=argtypes.positive_int, default=None, help="torch intra-op threads")
    p.add_argument("--no-plot", action="store_true", help="write only doctor.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    import torch

    from lmech._errors import UsageError
    from lmech.sim.doctor import transfer_doctor

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if any(b <= a for a, b in zip(args.widths, args.widths[1:])):
        raise UsageError(f"--widths {args.widths}: must be strictly increasing")
    out = argtypes.output_dir(args.out)
    try:
        factory = argtypes.load_callable(args.model)
        batch = None
        if args.batch:
            batch = argtypes.load_callable(args.batch, "--batch")()
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ValueError(f"--batch {args.batch}: must return a pair (x, y); got {type(batch).__name__}")
            batch = tuple(batch)
        result = transfer_doctor(
            factory, args.widths, args.scheme, steps=args.steps, seeds=args.seeds, seed=args.seed, batch=batch,
            lr=args.lr, eps=args.eps, optimizer="sgd" if args.optimizer == "sgd" else "adam",
            roles=dict(args.role) or None, control=None if args.no_control else "sp", tolerance=args.tolerance,
            progress=not args.no_progress,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    (out / "doctor.json").write_text(json.dumps(result.to_dict(), indent=1))
    print(result.roles_table)
    print()
    print(result.summary())
    if not args.no_plot:
        _plot(result, out / "doctor.png")
        print(f"figure: {out / 'doctor.png'}")
    print(f"results: {out / 'doctor.json'}")
    return 0 if result.holds else 1


def _plot(result, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = [result.scheme] + ([result.control] if result.control else [])
    fig, axes = plt.subplots(1, len(schemes), figsize=(5.5 * len(schemes), 4.2), squeeze=False, sharey=True)
    broken = {f.where for f in result.findings}
    for ax, scheme in zip(axes[0], schemes):
        for r in result.rows:
            if r["scheme"] != scheme or r["quantity"] != "update":
                continue
            bad = abs(r["slope"]) > result.tolerance if scheme != result.scheme else r["name"] in broken
            ax.plot(result.widths, r["values"], marker="o", lw=2.0 if bad else 0.8, alpha=1.0 if bad else 0.4,
                    color="tab:red" if bad else "tab:blue", label=f"{r['name']} ({r['slope']:+.2f})" if bad else None)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width")
        ax.set_title(f"{scheme}: each parameter's update effect")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    axes[0][0].set_ylabel("RMS change of its layer's output")
    fig.suptitle(f"transfer doctor: {result.scheme} {result.verdict.upper()} (red: breaks; slope vs width)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
