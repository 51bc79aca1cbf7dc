"""Self-contained HTML report and machine-readable results.json.

:func:`report_context` turns stored :class:`~lmech.records.ClaimResult` objects into the
plain data the Jinja2 template ``templates/report.html.j2`` draws; :func:`write_report`
renders it to ``<out>/report.html`` and writes ``<out>/results.json``. The page needs no
network: CSS and JavaScript are inline and figures are inline SVG.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from lmech._json import jsonable
from lmech.papers import Paper, find_paper
from lmech.records import CATEGORIES, ClaimResult
from lmech.report.figures import render_panel_svg
from lmech.report.mathtext import math_html

__all__ = ["write_report", "write_results_json", "report_context", "render_html", "CATEGORY_ORDER",
           "CATEGORY_LABELS", "failure_reasons"]

# order of the summary: what met its expectation first, then what needs attention
CATEGORY_ORDER = ("passed", "known_failure", "fragile", "failed", "error", "unexpected_pass")
CATEGORY_LABELS = {
    "passed": "passed", "known_failure": "known failure", "fragile": "fragile", "failed": "failed",
    "error": "error", "unexpected_pass": "unexpected pass",
}
CATEGORY_HELP = {
    "passed": "within tolerance, every check holds",
    "known_failure": "fails as expected, for a stated reason",
    "fragile": "passes at enough seeds (k of n), not all",
    "failed": "failed although expected to pass",
    "error": "raised an exception",
    "unexpected_pass": "declared a known failure but passes: update its expectation",
}
_ENV_KEYS = ("lmech", "git_commit", "git_dirty", "python", "torch", "numpy", "scipy", "platform", "cpu_count")
assert set(CATEGORY_ORDER) == set(CATEGORIES)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "∞" if v > 0 else "−∞"
        return f"{v:.4g}"
    if v is None:
        return "—"
    return str(v)


def _short(v: Any, limit: int = 300) -> str:
    text = v if isinstance(v, str) else json.dumps(jsonable(v))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def failure_reasons(r: ClaimResult) -> list[str]:
    """Why ``r`` did not pass, in words: the error, the metric over tolerance, failing checks.

    Empty for a passed result.
    """
    if r.status == "passed":
        return []
    out: list[str] = []
    if r.error:
        lines = [ln for ln in r.error.strip().splitlines() if ln.strip()]
        out.append("error: " + (lines[-1] if lines else r.error.strip()))
    value = _num(r.value)
    if r.status != "error":
        if value is None:
            out.append(f"metric is not a number ({_fmt(r.value)})")
        elif value > r.tolerance:
            out.append(f"metric {_fmt(value)} exceeds tolerance {_fmt(r.tolerance)}")
    out.extend(f"check failed: {name}" for name, ok in r.checks.items() if not ok)
    if r.seed_results:
        bad = [str(s.get("seed")) for s in r.seed_results if not s.get("passed")]
        if bad:
            out.append(f"{r.seeds_passed} of {r.seeds_run} seeds passed (failed at seed {', '.join(bad)})")
    if not out:
        out.append("did not pass (no failing check or metric recorded)")
    return out


def _expectation(r: ClaimResult) -> str:
    if r.expect == "known_failure":
        return "known failure"
    if r.expect == "fragile":
        return f"fragile: at least {r.min_passing} of {r.seeds_run} seeds pass"
    return "pass"


def _paper_entry(title: str) -> dict[str, Any]:
    p: Paper | None = find_paper(title) if title else None
    if p is None:
        return {"title": title or "(no paper)", "authors": "", "year": None, "url": "", "short": title or "—",
                "key": title or "—", "known": False}
    return {"title": p.title, "authors": p.authors, "year": p.year, "url": p.url, "short": p.short,
            "key": p.title, "known": True}


def _claim(r: ClaimResult, index: int, figures: bool) -> dict[str, Any]:
    category = r.category
    paper = _paper_entry(r.paper)
    value = _num(r.value)
    panels = []
    if figures:
        for i, panel in enumerate(r.panel_objects):
            panels.append({"title": Markup(math_html(panel.title)), "svg": Markup(render_panel_svg(panel, salt=f"{r.name}#{i}"))})
    env = r.environment or {}
    started = ""
    if r.started_at:
        started = _dt.datetime.fromtimestamp(r.started_at, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    seeds = [{"seed": s.get("seed"), "value": _fmt(s.get("value")), "passed": bool(s.get("passed"))}
             for s in r.seed_results]
    ratio = value / r.tolerance if value is not None and r.tolerance else None
    return {
        "index": index,
        "name": r.name,
        "family": r.name.split(".")[0],
        "category": category,
        "category_label": CATEGORY_LABELS[category],
        "category_rank": CATEGORY_ORDER.index(category),
        "status": r.status,
        "met": r.met_expectation,
        "paper": paper,
        "statement": Markup(math_html(r.statement)),
        "metric": Markup(math_html(r.metric)),
        "value": _fmt(r.value),
        "value_num": value,
        "tolerance": _fmt(r.tolerance),
        "tolerance_num": r.tolerance,
        "ratio": ratio,
        "within": value is not None and value <= r.tolerance,
        "expect": r.expect,
        "expectation": _expectation(r),
        "reason": Markup(math_html(r.reason)) if r.reason else "",
        "why": [Markup(math_html(w)) for w in failure_reasons(r)],
        "seeds": seeds,
        "seeds_passed": r.seeds_passed,
        "seeds_run": r.seeds_run,
        "min_passing": r.min_passing,
        "checks": [{"name": Markup(math_html(k)), "ok": bool(ok)} for k, ok in r.checks.items()],
        "checks_ok": sum(bool(v) for v in r.checks.values()),
        "figures": panels,
        "error": r.error or "",
        "setting": [(k, _short(v)) for k, v in r.setting.items()],
        "details": [(k, _short(v)) for k, v in r.details.items()],
        "seconds": r.seconds,
        "seconds_str": f"{r.seconds:.1f}",
        "mode": r.mode,
        "seed": r.seed,
        "started": started,
        "environment": [(k, _fmt(v)) for k, v in env.items()],
        "commit": str(env.get("git_commit", ""))[:10] + ("+dirty" if env.get("git_dirty") else ""),
        "search": " ".join([r.name, r.paper, paper["short"], r.statement, r.metric, r.reason]).lower(),
    }


def report_context(results: Sequence[ClaimResult], *, title: str = "lmech reproduction report",
                   figures: bool = True) -> dict[str, Any]:
    """The data the template draws (also what the unit tests check).

    ``figures=False`` skips drawing the panels (for fast tests of everything else).
    """
    results = list(results)
    for r in results:
        if not isinstance(r, ClaimResult):
            raise TypeError(f"`results` must hold ClaimResult objects; got {type(r).__name__}")
    claims = [_claim(r, i, figures) for i, r in enumerate(results)]
    counts = Counter(c["category"] for c in claims)
    summary = [{"category": c, "label": CATEGORY_LABELS[c], "help": CATEGORY_HELP[c], "n": counts.get(c, 0)}
               for c in CATEGORY_ORDER]
    papers: dict[str, dict[str, Any]] = {}
    for c in claims:
        entry = papers.setdefault(c["paper"]["key"], {**c["paper"], "n": 0, "counts": Counter(), "claims": []})
        entry["n"] += 1
        entry["counts"][c["category"]] += 1
        entry["claims"].append(c["name"])
    paper_rows = sorted(papers.values(), key=lambda p: (-(p["year"] or 0), p["title"]))
    for p in paper_rows:
        p["cells"] = [p["counts"].get(cat, 0) for cat in CATEGORY_ORDER]
    envs = [r.environment for r in results if r.environment]
    commits = sorted({str(e.get("git_commit", ""))[:10] + ("+dirty" if e.get("git_dirty") else "")
                      for e in envs if e.get("git_commit")})
    env0 = envs[0] if envs else {}
    return {
        "title": title,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "n": len(claims),
        "summary": summary,
        "counts": {s["category"]: s["n"] for s in summary},
        "met": sum(c["met"] for c in claims),
        "total_seconds": sum(r.seconds for r in results),
        "modes": sorted({r.mode for r in results}),
        "seeds": sorted({r.seed for r in results}),
        "papers": paper_rows,
        "families": sorted({c["family"] for c in claims}),
        "categories": [(c, CATEGORY_LABELS[c]) for c in CATEGORY_ORDER],
        "attention": [c for c in claims if c["category"] in ("failed", "error", "unexpected_pass")],
        "expected": [c for c in claims if c["category"] in ("known_failure", "fragile")],
        "claims": claims,
        "environment": [(k, _fmt(env0[k])) for k in _ENV_KEYS if k in env0],
        "commits": commits,
    }


def _template():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("lmech.report") / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    return env.get_template("report.html.j2")


def render_html(results: Sequence[ClaimResult], *, title: str = "lmech reproduction report",
                figures: bool = True) -> str:
    """The report page as a string."""
    return _template().render(**report_context(results, title=title, figures=figures))


def write_results_json(results: Sequence[ClaimResult], path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jsonable([r.to_dict() for r in results])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def write_report(results: Sequence[ClaimResult], out: str | os.PathLike[str], *,
                 title: str = "lmech reproduction report") -> Path:
    """Write ``<out>/report.html`` (self-contained) and ``<out>/results.json``; return the HTML path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = render_html(results, title=title)
    write_results_json(results, out / "results.json")
    path = out / "report.html"
    tmp = out / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
