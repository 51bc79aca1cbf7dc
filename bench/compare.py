"""Compare two benchmark results files (bench/run_all.py's bench/results.json).

Prints the ratios that changed by more than ``--threshold`` (default 0.2: by more than 20 % either
way, i.e. new/old above 1.2 or below 1/1.2), the benches whose status changed (ok / error /
skipped), and the ratios only one file has. ``--measures`` also compares the other numbers
(fitted cost exponents, errors). Ratios are compared as they are: on a shared or different
machine they move; rerun the baseline on the same machine before reading much into a change.

    python bench/compare.py OLD.json NEW.json [--threshold 0.2] [--measures] [--fail]

Exit status 0, or with ``--fail`` 1 when anything changed beyond the threshold; 2 on a bad file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import compare, format_comparison, load  # noqa: E402


def _describe(label: str, data: dict) -> str:
    m = data.get("machine") or {}
    commit = (m.get("git_commit") or "?")[:10] + ("+dirty" if m.get("git_dirty") else "")
    return (f"{label}: {m.get('date', '?')}  commit {commit}  {'quick' if m.get('quick') else 'full'}  "
            f"{m.get('cpus_usable', '?')}/{m.get('cpu_count', '?')} cpus  torch {m.get('torch', '?')}  "
            f"lmech {m.get('lmech', '?')}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.2, help="relative change to report (default 0.2)")
    ap.add_argument("--measures", action="store_true", help="also compare exponents and errors")
    ap.add_argument("--fail", action="store_true", help="exit 1 when something changed beyond the threshold")
    args = ap.parse_args(argv)
    try:
        old, new = load(args.old), load(args.new)
        diff = compare(old, new, args.threshold, ("ratios", "measures") if args.measures else ("ratios",))
    except ValueError as exc:
        print(f"compare.py: {exc}", file=sys.stderr)
        return 2
    print(_describe("old", old))
    print(_describe("new", new))
    if bool((old.get("machine") or {}).get("quick")) != bool((new.get("machine") or {}).get("quick")):
        print("note: one file is a --quick run, the other a full run: sizes differ")
    print(format_comparison(diff, args.threshold))
    return 1 if args.fail and (diff["changed"] or diff["status"]) else 0


if __name__ == "__main__":
    sys.exit(main())
