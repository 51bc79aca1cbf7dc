"""Write the markdown table of a full reproduction (docs/full_results.md) from its results.json.

    python docs/gen_full_results.py runs/full/results.json [--intro FILE] > docs/full_results.md

One row per claim: status, value, tolerance, the expectation (pass / known failure / fragile),
whether the claim met it, and its seconds (wall clock of that claim alone). The header gives the
run's wall time (first start to last finish), the sum of the claims' seconds, the commits and
machine the claims ran on, and the claims slower than the 10-minute limit. ``--intro`` puts a
hand-written paragraph (conditions of the run, what changed) under the title.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

LIMIT_S = 600.0  # each full claim should finish within 10 minutes


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(results: list[dict], intro: str = "") -> str:
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
    for r in rows:
        out.append(f"| `{r['name']}` | {r['status']} | {_fmt(r.get('value'))} | {_fmt(r.get('tolerance'))} | "
                   f"{(r.get('expect') or 'pass').replace('_', ' ')} | {'yes' if r.get('met_expectation') else 'NO'} | "
                   f"{(r.get('seconds') or 0.0):.0f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="results.json written by `lmech reproduce --full`")
    ap.add_argument("--intro", type=Path, default=None, help="markdown paragraph to put under the title")
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text())
    intro = args.intro.read_text() if args.intro else ""
    sys.stdout.write(render(results, intro))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
