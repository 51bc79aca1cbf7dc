"""HTML report (summary, sortable and filterable claims table, figures) and results.json.

The page is rendered from the Jinja2 template ``templates/report.html.j2`` and is
self-contained: inline CSS and JavaScript, figures as inline SVG, formulas as HTML.
"""
from lmech.report.figures import render_panel_svg, render_panels, residuals
from lmech.report.html import render_html, report_context, write_report, write_results_json

__all__ = ["write_report", "write_results_json", "render_html", "report_context", "render_panels",
           "render_panel_svg", "residuals"]
