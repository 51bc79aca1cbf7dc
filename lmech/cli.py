"""The ``lmech`` command.

Exit status of ``lmech reproduce``: 0 when every claim met its expectation (passed, a
known failure that still fails, a fragile claim with enough passing seeds); 1 when a claim
failed unexpectedly, errored, or is a known failure that now passes (its expectation must
be updated); 2 on a usage error, an output folder in use by another run, or an unusable
results store (the message says what to do; no traceback).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lmech import _argtypes as argtypes
from lmech._errors import StoreError, UsageError

__all__ = ["main", "build_parser"]

# Sub-commands implemented elsewhere: (name, module). Each module defines
# ``add_parser(subparsers) -> argparse.ArgumentParser`` whose defaults set ``handler``
# (a function taking the parsed args and returning an exit status). Such modules must be
# cheap to import (no torch at import time): the parser is built on every call.
_EXTERNAL_COMMANDS: tuple[tuple[str, str], ...] = (
    ("transfer", "lmech.commands.transfer"),
    ("transfer-doctor", "lmech.commands.transfer_doctor"),
    ("transfer-recommend", "lmech.commands.transfer_recommend"),
    ("coord-check", "lmech.commands.coord_check"),
    ("scaling", "lmech.commands.scaling"),
    ("schedule", "lmech.commands.schedule"),
    ("predict", "lmech.commands.predict"),
)


def _expectations(c) -> dict[str, dict]:
    out = {}
    for mode in ("quick", "full"):
        e = c.expectation_for(mode)
        row = {"kind": e.kind, "reason": e.reason}
        if e.kind == "fragile":
            row.update(n_seeds=e.n_seeds, min_passing=e.min_passing)
        out[mode] = row
    return out


def _cmd_claims_list(args: argparse.Namespace) -> int:
    from lmech.claims import select_claims

    claims = select_claims(args.only)
    if args.only and not claims:
        raise UsageError(f"--only {' '.join(args.only)!s} matches no claim")
    if args.json:
        rows = [
            {"name": c.name, "paper": c.paper, "statement": c.statement, "metric": c.metric,
             "tolerance_quick": c.tolerance_for("quick"), "tolerance_full": c.tolerance_for("full"),
             "expect": _expectations(c)}
            for c in claims
        ]
        print(json.dumps(rows, indent=1))
        return 0
    width = max((len(c.name) for c in claims), default=10)
    for c in claims:
        exps = _expectations(c)
        print(f"{c.name.ljust(width)}  tol {c.tolerance_for('full'):<8.3g} {c.metric}")
        print(f"{' ' * width}  {c.paper}")
        if exps["quick"] == exps["full"]:
            groups = [("quick, full", exps["quick"])]
        else:
            groups = [(m, exps[m]) for m in ("quick", "full")]
        for modes, e in groups:
            if e["kind"] == "pass" and len(groups) == 1:
                continue
            kind = e["kind"] if e["kind"] != "fragile" else \
                f"fragile (at least {e['min_passing']} of {e['n_seeds']} seeds pass)"
            reason = f": {e['reason']}" if e["reason"] else ""
            print(f"{' ' * width}  expect {kind} ({modes}){reason}")
    print(f"{len(claims)} claims")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from lmech.claims import run_claims, select_claims
    from lmech.records import summary_line
    from lmech.report import write_report
    from lmech.store import run_lock

    mode = "full" if args.full else "quick"
    if args.address is not None and args.backend not in (None, "ray"):
        raise UsageError("--address needs --backend ray")
    backend = args.backend or ("ray" if args.address else "local")
    claims = select_claims(args.only)
    if not claims:
        raise UsageError(f"--only {' '.join(args.only or [])} matches no claim; see `lmech claims list`")
    out = argtypes.output_dir(args.out or f"runs/{mode}")
    with run_lock(out, command=getattr(args, "command_line", None)):
        print(f"lmech reproduce: {len(claims)} claims, {mode} settings, seed {args.seed}, {backend} backend, "
              f"out {out}", file=sys.stderr)
        try:
            results = run_claims(claims, mode=mode, seed=args.seed, out=out, jobs=args.jobs, force=args.force,
                                 progress=not args.no_progress, backend=backend, address=args.address)
        except ImportError as exc:  # e.g. ray missing
            raise UsageError(str(exc)) from None
        report = write_report(results, out)
    _print_summary(results)
    print(f"results: {out / 'results.json'}")
    print(f"{summary_line(results)} — see {report}")
    return 0 if results and all(r.met_expectation for r in results) else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from lmech.claims import load_results
    from lmech.report import write_report
    from lmech.store import ResultStore

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: must be a folder holding results.sqlite; it is a file")
    db = Path(args.out) / "results.sqlite"
    if not db.exists():
        raise UsageError(f"no results store at {db}; run `lmech reproduce --out {args.out}` first")
    stored = load_results(ResultStore(db))
    modes = sorted({r.mode for r in stored})
    if not stored:
        raise UsageError(f"the store {db} holds no claim results; nothing to report "
                         f"(report.html and results.json left as they are)")
    mode = args.mode
    if mode is None:
        if len(modes) > 1:
            raise UsageError(f"the store {db} holds results of modes {', '.join(modes)}; "
                             f"pick one with --mode")
        mode = modes[0]
    results = [r for r in stored if r.mode == mode]
    if not results:
        raise UsageError(f"the store {db} holds no {mode}-mode results (modes present: {', '.join(modes)}); "
                         f"report.html and results.json left as they are; try --mode {modes[0]}")
    print(f"report: {write_report(results, args.out)}")
    return 0 if all(r.passed for r in results) else 1


_STORES = {"claims": ("results.sqlite", "claim", "lmech reproduce"), "sweep": ("sweep.sqlite", "trial", "lmech transfer")}
_FORMATS = ("csv", "json", "parquet")


def _cmd_results(args: argparse.Namespace) -> int:
    import csv

    from lmech.store import ResultStore

    folder = Path(args.out)
    if not folder.is_dir():
        raise UsageError(f"--out {args.out}: must be an existing folder holding results.sqlite or sweep.sqlite")
    present = [k for k, (name, _, _) in _STORES.items() if (folder / name).is_file()]
    kind = args.kind
    if kind is None:
        if not present:
            raise UsageError(f"--out {args.out}: holds neither results.sqlite (lmech reproduce) nor sweep.sqlite "
                             f"(lmech transfer)")
        if len(present) > 1:
            raise UsageError(f"--out {args.out}: holds both results.sqlite and sweep.sqlite; pick one with "
                             f"--kind claims or --kind sweep")
        kind = present[0]
    name, record_kind, producer = _STORES[kind]
    if kind not in present:
        raise UsageError(f"--kind {kind}: no {name} in {args.out} (written by `{producer} --out {args.out}`)")
    store = ResultStore(folder / name)
    to = args.to if args.to is not None else str(folder / f"{kind}.{args.format}")
    if to == "-" and args.format == "parquet":
        raise UsageError("--to -: parquet cannot be written to stdout; give a file name")
    if to != "-":
        target = Path(to)
        if target.is_dir():
            raise UsageError(f"--to {to}: must be a file name; it is a folder")
        argtypes.output_dir(str(target.parent), flag=f"--to {to}: the folder")
    if args.format == "parquet":
        try:
            frame = store.to_dataframe(record_kind)
            import pyarrow  # noqa: F401 - pandas writes parquet through it
        except ImportError as exc:
            raise UsageError(f"--format parquet needs pandas and pyarrow ({exc}); install them with "
                             f"pip install 'lmech[pandas]', or use --format csv or json") from None
        frame.to_parquet(to, index=False)
        n = len(frame)
    else:
        rows = store.flat_rows(record_kind)
        n = len(rows)
        fh = sys.stdout if to == "-" else open(to, "w", newline="", encoding="utf-8")  # noqa: SIM115
        try:
            if args.format == "json":
                json.dump(rows, fh, indent=1)
                fh.write("\n")
            else:
                columns = list(dict.fromkeys(k for row in rows for k in row)) or ["key", "status", "created", "updated"]
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
        finally:
            if fh is not sys.stdout:
                fh.close()
    if to != "-":
        print(f"{n} {'claim' if kind == 'claims' else 'trial'} rows from {folder / name} -> {to}")
    return 0


def _print_summary(results) -> None:
    width = max((len(r.name) for r in results), default=10)
    labels = {"passed": "PASS", "known_failure": "KNOWN", "fragile": "FRAGILE", "failed": "FAIL",
              "unexpected_pass": "UNEXP", "error": "ERROR"}
    for r in results:
        value = "nan" if r.value != r.value else f"{r.value:.4g}"
        seeds = f" {r.seeds_passed} of {r.seeds_run} seeds" if r.seed_results else ""
        print(f"  {labels.get(r.category, r.category):7s} {r.name.ljust(width)}  {value:>10} <= {r.tolerance:<8.3g} "
              f"({r.seconds:.1f} s){seeds}")
    for r in results:
        if r.category == "unexpected_pass":
            print(f"{r.name} is a known failure ({r.reason}) but now passes: update its expectation "
                  f"(remove known_failure for {r.mode})")
        elif r.category == "error":
            last = (r.error or "").strip().splitlines()[-1:] or ["?"]
            print(f"{r.name}: error: {last[0]}")


class _Parser(argparse.ArgumentParser):
    """The top-level parser: ``lmech transfer doctor|recommend ...`` is read as the commands
    ``transfer-doctor`` / ``transfer-recommend`` (``transfer`` itself takes options, not actions)."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        i = 0
        while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-h", "--help", "--version"):
            i += 1  # global options before the command (-v, -q)
        if i + 1 < len(argv) and argv[i] == "transfer" and argv[i + 1] in ("doctor", "recommend"):
            argv[i:i + 2] = [f"transfer-{argv[i + 1]}"]
        return super().parse_known_args(argv, namespace)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmech", description="Learning mechanics: theory vs simulation, HP transfer.")
    parser.add_argument("--version", action="version", version=f"lmech {_version()}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0,
                           help="more log output (-v: info, -vv: debug)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p_claims = sub.add_parser("claims", help="inspect registered claims")
    claims_sub = p_claims.add_subparsers(dest="claims_command", metavar="ACTION", required=True)
    p_list = claims_sub.add_parser("list", help="list registered claims")
    p_list.add_argument("--only", nargs="+", action="extend", metavar="GLOB", help="only claims matching these globs")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(handler=_cmd_claims_list)

    p_rep = sub.add_parser(
        "reproduce", help="run claims and write the HTML report and results.json",
        description="Run the selected claims, storing each result in <out>/results.sqlite as it finishes (a "
                    "rerun resumes: errors are retried, passed and failed claims kept unless --force), then "
                    "write report.html and results.json. Exit status: 0 when every claim met its expectation, "
                    "1 when one failed unexpectedly, errored or is a known failure that now passes, 2 on usage "
                    "errors, an --out folder in use by another run, or an unusable results store.")
    size = p_rep.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="quick settings (default; seconds per claim)")
    size.add_argument("--full", action="store_true", help="full settings (reproduce the papers' figures)")
    p_rep.add_argument("--only", nargs="+", action="extend", metavar="GLOB", help="claims matching these globs, e.g. 'kernel.*'")
    p_rep.add_argument("--jobs", type=argtypes.positive_int, default=None,
                       help="worker processes, or Ray tasks in flight (default: CPU cores)")
    p_rep.add_argument("--backend", choices=("local", "ray", "inprocess"), default=None,
                       help="local: a pool of worker processes where a worker that dies fails only its own claim "
                            "(default); ray: a local loopback-only Ray instance, or the cluster at --address; "
                            "inprocess: one claim after another in this process (debugging)")
    p_rep.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="address of an existing Ray cluster (implies --backend ray)")
    p_rep.add_argument("--out", default=None,
                       help="output folder (default runs/<mode>); one run at a time: a second run into a folder "
                            "in use is refused (exit 2) naming the running one (lock file .lmech.lock)")
    p_rep.add_argument("--force", action="store_true", help="rerun claims already finished in the store")
    p_rep.add_argument("--seed", type=argtypes.nonnegative_int, default=0, help="seed passed to every claim (default 0)")
    p_rep.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_rep.set_defaults(handler=_cmd_reproduce)

    p_report = sub.add_parser("report", help="rewrite report.html/results.json from a results store")
    p_report.add_argument("--out", required=True, help="folder holding results.sqlite")
    p_report.add_argument("--mode", choices=("quick", "full"), default=None)
    p_report.set_defaults(handler=_cmd_report)

    p_res = sub.add_parser(
        "results", help="export a results or sweep store as a flat table (csv, json, parquet)",
        description="Export the claims store (<out>/results.sqlite, one row per claim result) or a sweep store "
                    "(<out>/sweep.sqlite, one row per trial) as a flat table: columns key, status, created, "
                    "updated, then the stored fields with nested ones flattened to dotted names (config.width, "
                    "result.final_train_loss) and lists (curves, plot data) as JSON text. parquet needs pandas "
                    "and pyarrow (pip install 'lmech[pandas]'); csv and json need nothing extra.",
        epilog="examples:\n  lmech results --out runs/k --format csv\n"
               "  lmech results --out runs/mlp_width --kind sweep --format json --to trials.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p_res.add_argument("--out", required=True, help="folder holding results.sqlite or sweep.sqlite")
    p_res.add_argument("--format", choices=_FORMATS, default="csv", help="table format (default csv)")
    p_res.add_argument("--kind", choices=tuple(_STORES), default=None,
                       help="claims (results.sqlite) or sweep (sweep.sqlite); default: the one present in --out")
    p_res.add_argument("--to", default=None, metavar="FILE",
                       help="output file (default <out>/<kind>.<format>; - writes csv or json to stdout)")
    p_res.set_defaults(handler=_cmd_results)

    for name, module in _EXTERNAL_COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue  # command not available in this build
        mod.add_parser(sub)
    _tag_leaf_parsers(parser)
    return parser


def _tag_leaf_parsers(parser: argparse.ArgumentParser) -> None:
    """Record in each sub-command parser's defaults a reference to itself (``_parser``), so that
    an error found after parsing is reported with that sub-command's usage line."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                sub.set_defaults(_parser=sub)
                _tag_leaf_parsers(sub)


def _version() -> str:
    from lmech import __version__

    return __version__


def _configure_logging(args: argparse.Namespace) -> None:
    """The library logs to the ``lmech`` logger and never prints; the command line shows it."""
    import logging

    level = logging.WARNING if getattr(args, "quiet", False) else (
        logging.DEBUG if getattr(args, "verbose", 0) >= 2 else logging.INFO if getattr(args, "verbose", 0) else logging.WARNING)
    logger = logging.getLogger("lmech")
    logger.setLevel(level)
    if not any(getattr(h, "_lmech_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._lmech_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    import shlex

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)  # exits with status 2 on usage errors
    _configure_logging(args)
    args.command_line = shlex.join(["lmech", *argv])
    try:
        return int(args.handler(args))
    except UsageError as exc:
        getattr(args, "_parser", parser).error(str(exc))  # the sub-command's usage; exits 2
    except StoreError as exc:
        print(f"lmech {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is in the store, rerun to resume", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
