"""Write the markdown table of a full reproduction (docs/full_results.md) from its results.json.

    python docs/gen_full_results.py runs/full/results.json [MORE.json ...] [--intro FILE] [--carry OLD.md] \
        > docs/full_results.md

One row per claim: status, value, tolerance, the expectation (pass / known failure / fragile),
whether the claim met it, and its seconds (wall clock of that claim alone). The header gives the
run's wall time (first start to last finish), the sum of the claims' seconds, the commits and
machine the claims ran on, and the claims slower than the 10-minute limit. ``--intro`` puts a
hand-written paragraph (conditions of the run, what changed) under the title.

Several results files may be given: the header's run statistics come from the first (the run the
page reports); a claim found in a later file replaces the earlier row (e.g. a claim rerun alone
after a change). ``--carry OLD.md`` keeps the rows of an earlier page for claims in none of the
files, marked "(earlier run)" with the seconds measured there; they do not enter the run statistics.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

LIMIT_S = 600.0  # each full claim should finish within 10 minutes


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def carried_rows(markdown: str, skip: set[str]) -> list[str]:
    """Table rows of an earlier page for claims not in ``skip``, marked as from the earlier run."""
    out = []
    for line in markdown.splitlines():
        m = re.match(r"\| `([^`]+)`( \(earlier run\))? \|", line)
        if m and m.group(1) not in skip:
            out.append(line if m.group(2) else line.replace(f"`{m.group(1)}` |", f"`{m.group(1)}` (earlier run) |", 1))
    return out


def render(results: list[dict], intro: str = "", extra: list[dict] | None = None, carried: list[str] | None = None) -> str:
    """The page: run statistics from ``results``; rows from ``results``, then ``extra`` (replacing
    rows of the same claim), then the ``carried`` markdown rows, by claim name."""
    rows = sorted(results, key=lambda r: r["name"])
    starts = [r["started_at"] for r in rows if r.get("started_at")]
    ends = [r["started_at"] + (r.get("seconds") or 0.0) for r in rows if r.get("started_at")]
    wall = (max(ends) - min(starts)) if starts else float("nan")
    total = sum(r.get("seconds") or 0.0 for r in rows)
    met = sum(bool(r.get("met_expectation")) for r in rows)
    passed = sum(r["status"] == "passed" for r in rows)
    commits = sorted({(r.get("environment") or {}).get("git_commit", "?")[:7] for r in rows})
    env = (rows[0].get("environment") or {}) if rows else {}
    slow = [r for r in rows if (r.get("seconds") or 0.0) > LIMIT_S]
    day = dt.datetime.fromtimestamp(min(starts), dt.timezone.utc).strftime("%Y-%m-%d") if starts else "?"
    out = ["# Full-setting results (seed 0)", ""]
    if intro:
        out += [intro.strip(), ""]
    out += [
        f"- **Run:** {day}, {len(rows)} claims on {env.get('cpu_count', '?')} CPU cores "
        f"(torch {env.get('torch', '?')}, commits {', '.join(commits)}).",
        f"- **Wall time:** {wall / 60:.1f} min from the first claim's start to the last claim's end; "
        f"the claims' own seconds add up to {total / 60:.1f} min.",
        f"- **Outcome:** {passed} passed; {met} of {len(rows)} met their expectation.",
        "- **Claims over 10 minutes:** " + (", ".join(f"`{r['name']}` ({r['seconds']:.0f} s)" for r in slow)
                                            if slow else "none."),
        "",
        "| claim | status | value | tolerance | expectation | met | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    by_name = {r["name"]: r for r in rows}
    by_name.update({r["name"]: dict(r, rerun=True) for r in extra or []})
    lines = {name: f"| `{name}`{' (rerun alone)' if r.get('rerun') else ''} | {r['status']} | {_fmt(r.get('value'))} | "
                   f"{_fmt(r.get('tolerance'))} | {(r.get('expect') or 'pass').replace('_', ' ')} | "
                   f"{'yes' if r.get('met_expectation') else 'NO'} | {(r.get('seconds') or 0.0):.0f} |"
             for name, r in by_name.items()}
    for line in carried or []:
        lines.setdefault(line.split("`")[1], line)
    out += [lines[k] for k in sorted(lines)]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, nargs="+", help="results.json written by `lmech reproduce --full`")
    ap.add_argument("--intro", type=Path, default=None, help="markdown paragraph to put under the title")
    ap.add_argument("--carry", type=Path, default=None, help="earlier page whose rows fill in claims not rerun")
    args = ap.parse_args(argv)
    first, *more = [json.loads(p.read_text()) for p in args.results]
    extra = [r for rs in more for r in rs]
    intro = args.intro.read_text() if args.intro else ""
    names = {r["name"] for r in first + extra}
    carried = carried_rows(args.carry.read_text(), names) if args.carry else None
    sys.stdout.write(render(first, intro, extra, carried))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
