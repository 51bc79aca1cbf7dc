"""HTML report (plots, tables, pass/fail) and results.json from stored claim results."""
from lmech.report.figures import render_panels
from lmech.report.html import write_report, write_results_json

__all__ = ["write_report", "write_results_json", "render_panels"]
