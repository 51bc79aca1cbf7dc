"""``lmech transfer``: run an HP-transfer sweep (size x LR x seed), resumably, and analyse it.

Writes into ``--out``: ``sweep.sqlite`` (every trial as it finishes; rerun the same command
to resume), ``summary.json`` (optimum per size with its bootstrap interval, criteria,
trial counts) and ``transfer.png`` (loss vs log2 LR per size; log2 LR* vs size).

Exit status: 0 when every trial finished (done or diverged) - and, with ``--check``, the
transfer criteria of every scheme passed; 1 when trials errored or remain unfinished (or
``--check`` failed); 2 on usage errors (bad arguments, an ``--out`` folder holding a
different sweep without ``--force``, an ``--out`` folder in use by another run, an unusable
``sweep.sqlite``).

One run per output folder: the command holds the folder's advisory run lock
(``fcntl.flock`` on ``<out>/.lmech.lock``, see :func:`lmech.store.run_lock`) for its whole
life, so a second ``lmech transfer`` (or ``lmech reproduce``) into the same folder is
refused at once with the running one's pid, command and start time. The lock dies with its
process, so a run killed by SIGKILL never blocks the next one. Workers of a killed driver
exit within seconds (local pool workers watch their parent; a local Ray instance started
here is stopped by a watchdog process). Whether transfer *holds* is a measurement, not a
failure of the command, so it sets the exit status only with ``--check``.

This module is imported to build the ``lmech`` parser: it imports neither torch nor ray.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from lmech import _argtypes as argtypes

__all__ = ["add_parser", "parse_lr", "log2_range"]

EXAMPLE = """examples:
  lmech transfer --model mlp --scheme mup sp --widths 64 128 256 --depth 3 \\
      --log2-lrs -10 -4 1 --seeds 0 1 --steps 100 --out runs/mlp_width --jobs 2
  lmech transfer --model resmlp --scheme completep --depths 2 4 8 --width 64 \\
      --lrs 2^-9 2^-7 2^-5 --steps 50 --out runs/resmlp_depth
add --backend ray [--address HOST:PORT] to run the trials on Ray.
rerun the same command to resume; --force replaces a different sweep in --out.
one run per --out folder at a time: a second one is refused (exit 2) naming the running one.
related: `lmech transfer doctor` (does muP hold on your own model? which parameter breaks it?) and
`lmech transfer recommend --from runs/mlp_width --width 2048` (hyperparameters at a target shape).
"""


def parse_lr(text: str) -> float:
    """A positive learning rate: ``0.001``, ``1e-3``, ``2^-10`` or ``2**-10``."""
    t = text.strip()
    try:
        if t.startswith(("2^", "2**")):
            value = 2.0 ** float(t.split("^", 1)[1] if "^" in t else t[3:])
        else:
            value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number such as 1e-3 or 2^-10; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive learning rate; got {text!r}")
    return value


def log2_range(start: float, stop: float, step: float) -> list[float]:
    """``2**x`` for x from ``start`` to ``stop`` inclusive in steps of ``step``."""
    if not step > 0:
        raise ValueError(f"`--log2-lrs` step must be positive; got {step!r}")
    if stop < start:
        raise ValueError(f"`--log2-lrs` stop must be >= start; got {start!r} > {stop!r}")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    return [2.0 ** (start + i * step) for i in range(n)]


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE with an identifier KEY; got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string
    return key, value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``transfer`` on the ``lmech`` sub-command parser."""
    p = subparsers.add_parser(
        "transfer", help="HP-transfer sweep: loss vs LR across widths or depths (resumable)",
        description="Run a size x learning-rate x seed sweep of one model under one or more parameterizations, "
                    "store every trial as it finishes, and report the optimal LR per size with its bootstrap "
                    "interval across seeds.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model of the trial function (e.g. mlp, resmlp, gpt)")
    p.add_argument("--scheme", required=True, nargs="+", metavar="S",
                   help="parameterization(s), e.g. mup sp depth_mup completep; several = one sweep with a scheme axis")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--widths", nargs="+", action=argtypes.list_action(argtypes.positive_int), metavar="N", help="widths to sweep (depth fixed)")
    size.add_argument("--depths", nargs="+", action=argtypes.list_action(argtypes.positive_int), metavar="L", help="depths to sweep (width fixed)")
    lr = p.add_mutually_exclusive_group(required=True)
    lr.add_argument("--lrs", nargs="+", type=parse_lr, metavar="LR", help="learning rates, e.g. 1e-3 or 2^-10")
    lr.add_argument("--log2-lrs", nargs=3, type=float, metavar=("START", "STOP", "STEP"),
                    help="learning rates 2^x for x = START..STOP (inclusive) in steps of STEP")
    p.add_argument("--seeds", nargs="+", action=argtypes.list_action(argtypes.nonnegative_int), default=[0], metavar="SEED", help="seeds (default 0)")
    p.add_argument("--steps", type=argtypes.positive_int, default=200, help="training steps per trial (default 200)")
    p.add_argument("--out", required=True, help="output folder (sweep.sqlite, summary.json, transfer.png)")
    fixed = p.add_argument_group("fixed model/optimizer settings (passed to the trial function when given)")
    fixed.add_argument("--width", type=argtypes.positive_int, help="fixed width of a depth sweep")
    fixed.add_argument("--depth", type=argtypes.positive_int, help="fixed depth of a width sweep")
    fixed.add_argument("--base-width", type=argtypes.positive_int, help="base (tuned) width of the parameterization")
    fixed.add_argument("--base-depth", type=argtypes.positive_int, help="base (tuned) depth of the parameterization")
    fixed.add_argument("--batch-size", type=argtypes.positive_int)
    fixed.add_argument("--optimizer", type=argtypes.optimizer, metavar="{adamw,sgd}",
                       help="adamw (torch.optim.AdamW, the trial's default) or sgd; the old spelling adam "
                            "is accepted as adamw with a deprecation note")
    fixed.add_argument("--weight-decay", type=float)
    fixed.add_argument("--set", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                       help="any other trial config entry (VALUE parsed as JSON), repeatable")
    run = p.add_argument_group("execution")
    run.add_argument("--backend", choices=("local", "ray", "inprocess"), default=None,
                     help="local process pool (default), ray, or inprocess (debugging)")
    run.add_argument("--address", help="address of an existing Ray cluster (implies --backend ray)")
    run.add_argument("--jobs", type=argtypes.positive_int, help="parallel trials (default: CPU cores)")
    run.add_argument("--retries", type=argtypes.nonnegative_int, default=1, help="retries of a trial that raised (default 1)")
    run.add_argument("--fail-fast", action="store_true", help="stop at the first trial that still fails")
    run.add_argument("--force", action="store_true",
                     help="replace a different sweep stored in --out (trials with identical configs are reused)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--trial", default=None, metavar="MODULE:FUNCTION",
                     help="trial function (default lmech.sim.hp_trial:run_trial); imported here before any "
                          "worker starts, so a bad path is a usage error")
    ana = p.add_argument_group("analysis")
    ana.add_argument("--metric", default="final_train_loss", help="result key to minimise (default final_train_loss)")
    ana.add_argument("--shift-tol", type=float, default=0.5, help="allowed |log2 LR* shift| (default 0.5)")
    ana.add_argument("--n-boot", type=argtypes.positive_int, default=1000, help="bootstrap resamples (default 1000)")
    ana.add_argument("--check", action="store_true", help="exit 1 unless every scheme meets the transfer criteria")
    ana.add_argument("--no-plot", action="store_true", help="do not write transfer.png")
    p.set_defaults(handler=_cmd_transfer)
    return p


def _build_spec(args: argparse.Namespace):
    from lmech.sweep.spec import DEFAULT_TRIAL, SweepSpec, transfer_spec

    lrs = args.lrs if args.lrs is not None else log2_range(*args.log2_lrs)
    fixed: dict[str, Any] = {}
    for name in ("width", "depth", "base_width", "base_depth", "batch_size", "optimizer", "weight_decay"):
        value = getattr(args, name)
        if value is not None:
            fixed[name] = value
    if (args.trial or DEFAULT_TRIAL) == DEFAULT_TRIAL:
        if args.widths is not None and args.depth is None:
            raise ValueError("`--depth` (the fixed depth of a width sweep) is required")
        if args.depths is not None and args.width is None:
            raise ValueError("`--width` (the fixed width of a depth sweep) is required")
    for key, value in args.set:
        if key in fixed or key in ("model", "scheme", "steps", "lr", "seed"):
            raise ValueError(f"`--set {key}=...` conflicts with an option that sets {key!r}")
        fixed[key] = value
    schemes = list(dict.fromkeys(args.scheme))
    spec = transfer_spec(model=args.model, scheme=schemes[0], widths=args.widths, depths=args.depths, lrs=lrs,
                         seeds=args.seeds, steps=args.steps, trial=args.trial or DEFAULT_TRIAL, **fixed)
    if len(schemes) > 1:
        base = {k: v for k, v in spec.base.items() if k != "scheme"}
        spec = SweepSpec(spec.trial, base=base, grid={"scheme": schemes, **spec.grid},
                         name=f"{args.model}/{'+'.join(schemes)} {spec.name.split(' ', 1)[1]}")
    return spec, schemes


def _validate_configs(spec, metric: str | None = None) -> None:
    """With the default trial function, build its TrialConfig for every grid point so bad
    names (model, scheme, optimizer, unknown keys) are usage errors before anything runs."""
    from lmech.sweep.spec import DEFAULT_TRIAL

    if spec.trial != DEFAULT_TRIAL:
        return
    try:
        from lmech.sim.hp_trial import TrialConfig
    except ImportError as exc:
        raise RuntimeError(f"the default trial function is unavailable: {exc}") from exc
    defaults = {f.name: f.default for f in dataclasses.fields(TrialConfig)}
    for size, base in (("width", "base_width"), ("depth", "base_depth")):
        if size not in spec.grid:
            continue
        smallest = min(spec.grid[size])
        base_value = spec.base.get(base, defaults.get(base))
        if isinstance(base_value, int) and smallest < base_value:
            origin = "" if base in spec.base else " (the default)"
            flag = "--" + base.replace("_", "-")
            raise ValueError(f"--{size}s {smallest} is below the base {size} {base_value}{origin}; every swept "
                             f"{size} must be >= {flag}: pass {flag} {smallest} (the base at which the learning "
                             f"rate is tuned) or sweep {size}s >= {base_value}")
    for _, config in spec.trials():
        TrialConfig.from_dict(config)
    if metric is not None:
        from lmech.sim.hp_trial import TrialOutcome

        scalars = [f.name for f in dataclasses.fields(TrialOutcome) if f.type in ("float", "int", float, int)]
        if metric not in scalars:
            raise ValueError(f"--metric {metric}: not a scalar result of the default trial function; choose "
                             f"one of {', '.join(scalars)}")


def _check_trial(path: str | None) -> None:
    """Import a user trial function here, before any worker starts (a bad path is a usage error)."""
    if path is None:
        return
    from lmech.executors import resolve_callable

    try:
        resolve_callable(path)
    except (ImportError, ValueError, TypeError) as exc:
        raise ValueError(f"--trial {path}: cannot use it as the trial function ({exc}); expected "
                         f"MODULE:FUNCTION naming an importable function f(config: dict) -> dict") from None


def _cmd_transfer(args: argparse.Namespace) -> int:
    from lmech._errors import UsageError
    from lmech.executors import make_executor
    from lmech.store import run_lock

    if args.address is not None and args.backend not in (None, "ray"):
        raise UsageError("--address needs --backend ray")
    backend = args.backend or ("ray" if args.address else "local")
    try:
        _check_trial(args.trial)
        spec, schemes = _build_spec(args)
        _validate_configs(spec, args.metric)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        print(f"lmech transfer: {exc}", file=sys.stderr)
        return 1
    out = argtypes.output_dir(args.out)
    try:
        executor = make_executor(backend, jobs=args.jobs, address=args.address)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    with run_lock(out, command=getattr(args, "command_line", None)):
        return _run_and_analyse(args, spec, schemes, out, backend, executor)


def _run_and_analyse(args: argparse.Namespace, spec, schemes: list[str], out: Path, backend: str, executor) -> int:
    from lmech._errors import UsageError
    from lmech.sweep.analysis import analyze
    from lmech.sweep.runner import SweepConfigError, run_sweep

    print(f"lmech transfer: {spec.name}: {len(spec)} trials on {backend} -> {out}", file=sys.stderr)
    try:
        with executor:
            run = run_sweep(spec, out, executor=executor, force=args.force, retries=args.retries,
                            fail_fast=args.fail_fast, progress=not args.no_progress)
    except SweepConfigError as exc:
        raise UsageError(str(exc)) from None
    except ImportError as exc:  # e.g. ray missing
        raise UsageError(str(exc)) from None

    print(run.summary())
    for t in run.errors[:3]:
        last = (t.error or "").strip().splitlines()[-1:] or ["?"]
        print(f"  error in {json.dumps(t.config, sort_keys=True)}: {last[0]}")

    size_key = "width" if args.widths is not None else "depth"
    done = [t for t in run.trials if t.status == "done" and isinstance(t.result, dict)]
    if done and not any(args.metric in (t.result or {}) for t in done):
        keys = sorted({k for t in done for k, v in (t.result or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})
        raise UsageError(f"--metric {args.metric}: not a key of the trial results; numeric keys present: "
                         f"{', '.join(keys) or 'none'} (the trials are stored: rerun with another --metric to "
                         f"analyse them without training again)")
    analyses = {}
    for scheme in schemes:
        trials = [t for t in run.trials if t.config.get("scheme") == scheme and t.finished]
        if not trials:
            continue
        sizes = {t.config[size_key] for t in trials}
        if len(sizes) < 2:
            print(f"{scheme}: fewer than 2 sizes finished; no transfer analysis")
            continue
        analyses[scheme] = analyze(trials, size_key=size_key, metric=args.metric, n_boot=args.n_boot,
                                   shift_tol=args.shift_tol)
    for scheme, a in analyses.items():
        print(f"\n== {args.model} / {scheme} ({a.metric}; log2 {a.hp_key}* with {int(100 * a.confidence)}% "
              f"bootstrap interval over {len(a.seeds)} seed(s))")
        print(a.loss_table())
        print(a.table())

    summary = {
        "spec": spec.to_dict(), "sweep_id": spec.sweep_id, "counts": run.counts, "complete": run.complete,
        "analyses": {s: a.to_dict() for s, a in analyses.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=False))
    print(f"\nsummary: {out / 'summary.json'}")
    if analyses and not args.no_plot:
        from lmech.sweep.plots import plot_transfer

        plot_transfer(list(analyses.values()), out / "transfer.png", names=list(analyses),
                      title=f"{args.model}: {size_key} transfer")
        print(f"figure: {out / 'transfer.png'}")
    status = 0 if run.complete else 1
    if args.check and not (analyses and len(analyses) == len(schemes) and all(a.passed for a in analyses.values())):
        status = 1
    return status
