"""Self-contained HTML report and machine-readable results.json."""
from __future__ import annotations

import base64
import html
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from lmech._json import jsonable
from lmech.records import ClaimResult
from lmech.report.figures import render_panels

__all__ = ["write_report", "write_results_json"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.15em;margin:.2em 0} .muted{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} .passed{color:#fff;background:#2e7d32} .failed{color:#fff;background:#c62828} .error{color:#fff;background:#6a1b9a}
.badge{padding:1px 8px;border-radius:3px;font-size:.85em;font-weight:600}
section{border-top:1px solid #ccc;padding:1em 0} pre{background:#f8f8f8;padding:.6em;overflow-x:auto;font-size:.8em}
img{max-width:100%} .num{text-align:right;font-variant-numeric:tabular-nums} details{margin:.3em 0}
"""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.4g}"
    if v is None:
        return "—"
    return str(v)


def _badge(status: str) -> str:
    return f'<span class="badge {html.escape(status)}">{html.escape(status)}</span>'


def _kv_table(d: dict) -> str:
    if not d:
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_short(v))}</td></tr>" for k, v in d.items()
    )
    return f"<table>{rows}</table>"


def _short(v: object) -> str:
    text = json.dumps(jsonable(v)) if not isinstance(v, str) else v
    return text if len(text) <= 400 else text[:397] + "..."


def _section(r: ClaimResult) -> str:
    anchor = html.escape(r.name)
    parts = [f'<section id="{anchor}"><h2>{_badge(r.status)} {anchor}</h2>']
    parts.append(f'<div class="muted">{html.escape(r.paper)}</div>')
    parts.append(f"<p>{html.escape(r.statement)}</p>")
    cmp = "&le;" if r.status != "error" else "vs"
    parts.append(
        f"<p><b>{html.escape(r.metric)}</b>: {_fmt(r.value)} {cmp} tolerance {_fmt(r.tolerance)}"
        f" &nbsp;·&nbsp; {r.seconds:.1f} s &nbsp;·&nbsp; mode {html.escape(r.mode)}, seed {r.seed}</p>"
    )
    if r.checks:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_badge('passed' if ok else 'failed')}</td></tr>"
            for k, ok in r.checks.items()
        )
        parts.append(f"<table><tr><th>criterion</th><th>holds</th></tr>{rows}</table>")
    panels = r.panel_objects
    if panels:
        png = base64.b64encode(render_panels(panels)).decode("ascii")
        parts.append(f'<img alt="{anchor}" src="data:image/png;base64,{png}">')
    if r.error:
        parts.append(f"<details open><summary>error</summary><pre>{html.escape(r.error)}</pre></details>")
    if r.details:
        parts.append(f"<details><summary>details</summary>{_kv_table(r.details)}</details>")
    parts.append(f"<details><summary>setting</summary>{_kv_table(r.setting)}</details>")
    parts.append("</section>")
    return "\n".join(parts)


def write_results_json(results: Sequence[ClaimResult], path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jsonable([r.to_dict() for r in results])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def write_report(results: Sequence[ClaimResult], out: str | os.PathLike[str], *, title: str = "lmech reproduction report") -> Path:
    """Write ``<out>/report.html`` (self-contained) and ``<out>/results.json``; return the HTML path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_results_json(results, out / "results.json")
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "error")}
    total_s = sum(r.seconds for r in results)
    rows = "".join(
        f'<tr><td><a href="#{html.escape(r.name)}">{html.escape(r.name)}</a></td><td>{_badge(r.status)}</td>'
        f'<td class="num">{_fmt(r.value)}</td><td class="num">{_fmt(r.tolerance)}</td>'
        f'<td>{html.escape(r.metric)}</td><td class="num">{r.seconds:.1f}</td></tr>'
        for r in results
    )
    env = results[0].environment if results else {}
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="muted">generated {time.strftime('%Y-%m-%d %H:%M:%S')} · {len(results)} claims ·
{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors · {total_s:.0f} s of claim time</p>
<table><tr><th>claim</th><th>status</th><th>value</th><th>tolerance</th><th>metric</th><th>seconds</th></tr>{rows}</table>
<details><summary>environment</summary>{_kv_table(env)}</details>
{''.join(_section(r) for r in results)}
</body></html>"""
    path = out / "report.html"
    tmp = out / "report.html.tmp"
    tmp.write_text(page)
    os.replace(tmp, path)
    return path
