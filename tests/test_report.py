"""The HTML report: template data (summary counts, papers, residuals), formulas, figures, CLI.

:func:`sample_results` builds hand-made results of every category (the browser test reuses it).
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from lmech.papers import PAPERS, find_paper, normalize_title
from lmech.plotdata import Panel, Series
from lmech.records import CATEGORIES, ClaimResult, summary_counts
from lmech.report.figures import residuals
from lmech.report.html import CATEGORY_ORDER, failure_reasons, report_context, write_report
from lmech.report.mathtext import math_html

ENV = {"lmech": "0.1.0", "git_commit": "0123456789abcdef", "git_dirty": False, "python": "3.11",
       "torch": "2.13.0+cpu", "numpy": "2.4"}


def _curve_panel(scale: float = 1.0) -> Panel:
    P = np.array([10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0])
    dense = np.geomspace(10, 3000, 40)
    return Panel(
        "learning curve", "P (training samples)", "E_g",
        (Series("ridge 0 theory", dense, dense ** -0.8, role="theory"),
         Series("ridge 0 sim", P, scale * P ** -0.8 * (1 + 0.03 * np.sin(P)), yerr=0.05 * P ** -0.8,
                role="simulation"),
         Series("ridge 0.1 theory", P, 0.5 * P ** -0.5, role="theory"),
         Series("ridge 0.1 sim", P, 0.5 * P ** -0.5 * 1.02, role="simulation"),
         Series("P^-1 reference", P, 2 * P ** -1.0, role="reference")),
        xscale="log", yscale="log",
    )


def _result(name, *, status="passed", value=0.01, tolerance=0.05, expect="pass", reason="", checks=None,
            seed_results=(), min_passing=1, error=None, panels=None,
            paper="Spectrum Dependent Learning Curves in Kernel Regression and Wide Neural Networks"):
    return ClaimResult(
        name=name, paper=paper, statement="E_g ~ P^-alpha with gamma0 -> 0 <b>bold?</b>",
        metric="mean relative error of E_g over P", mode="quick", seed=0, status=status,
        passed=status == "passed", value=value, tolerance=tolerance, seconds=1.5,
        setting={"P": [10, 100], "ridge": 0.0}, checks=dict(checks or {}), details={"note": "x"},
        panels=[p.to_dict() for p in (panels if panels is not None else [_curve_panel()])],
        error=error, started_at=1.7e9, environment=dict(ENV), expect=expect, reason=reason,
        min_passing=min_passing, seed_results=list(seed_results),
    )


def sample_results() -> list[ClaimResult]:
    """Hand-made results covering every category (two passed, one of each other)."""
    return [
        _result("kernel.curve.ok", checks={"peak where predicted": True}),
        _result("dmft.width.ok", value=0.02, paper="Self-Consistent Dynamical Field Theory of Kernel Evolution "
                "in Wide Neural Networks", panels=[_curve_panel(), _curve_panel(1.1)]),
        _result("scaling.hard.kf", status="failed", value=0.3, expect="known_failure",
                reason="the finite-N correction at t ~ 10^3 is not in the theory (measured 30 %)",
                checks={"exponent within 0.1": False}, paper="A Dynamical Model of Neural Scaling Laws"),
        _result("transfer.mup.fragile", status="failed", value=0.4, tolerance=0.5, expect="fragile", min_passing=2,
                reason="the optimum is flat: seed noise moves it by one grid step",
                seed_results=[{"seed": 0, "value": 0.4, "passed": True}, {"seed": 1, "value": 0.45, "passed": True},
                              {"seed": 2, "value": 0.7, "passed": False}],
                paper="dont be lazy  completep enables compute efficient deep transformers"),
        _result("kernel.ood.broken", status="failed", value=0.12, checks={"monotone in P": False, "finite": True},
                paper="Out-of-Distribution Generalization in Kernel Regression"),
        _result("td.plateau.now_ok", expect="known_failure", reason="plateau height off by 15 %",
                paper="Loss Dynamics of Temporal Difference Reinforcement Learning"),
        _result("icl.depth.crash", status="error", value=float("nan"), panels=[],
                error="Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: solver diverged",
                paper="Some Paper Not In The Table"),
    ]


# ----------------------------------------------------------------------------- summary data
def test_sample_covers_every_category():
    assert {r.category for r in sample_results()} == set(CATEGORIES)


def test_context_counts_equal_record_categories():
    results = sample_results()
    ctx = report_context(results, figures=False)
    assert ctx["counts"] == summary_counts(results)
    assert [s["category"] for s in ctx["summary"]] == list(CATEGORY_ORDER)
    assert ctx["counts"] == {"passed": 2, "known_failure": 1, "fragile": 1, "failed": 1, "error": 1,
                             "unexpected_pass": 1}
    assert ctx["met"] == 4 and ctx["n"] == 7
    assert {c["name"] for c in ctx["attention"]} == {"kernel.ood.broken", "icl.depth.crash", "td.plateau.now_ok"}
    assert {c["name"] for c in ctx["expected"]} == {"scaling.hard.kf", "transfer.mup.fragile"}
    assert ctx["families"] == ["dmft", "icl", "kernel", "scaling", "td", "transfer"]


def test_context_groups_by_paper():
    ctx = report_context(sample_results(), figures=False)
    by_title = {p["title"]: p for p in ctx["papers"]}
    spectrum = by_title["Spectrum Dependent Learning Curves in Kernel Regression and Wide Neural Networks"]
    assert spectrum["n"] == 1 and spectrum["year"] == 2020 and spectrum["url"] == "https://arxiv.org/abs/2002.02561"
    # found despite case and punctuation, and shown under its real title
    cp = by_title["Don't be lazy: CompleteP enables compute-efficient deep transformers"]
    assert cp["counts"]["fragile"] == 1 and cp["authors"].startswith("Nolan Dey")
    unknown = by_title["Some Paper Not In The Table"]
    assert unknown["url"] == "" and unknown["counts"]["error"] == 1
    assert sum(p["n"] for p in ctx["papers"]) == 7


def test_claim_entries_carry_reasons_and_seeds():
    ctx = report_context(sample_results(), figures=False)
    c = {x["name"]: x for x in ctx["claims"]}
    assert c["transfer.mup.fragile"]["seeds_passed"] == 2 and c["transfer.mup.fragile"]["seeds_run"] == 3
    assert [s["passed"] for s in c["transfer.mup.fragile"]["seeds"]] == [True, True, False]
    assert "finite-N correction" in c["scaling.hard.kf"]["reason"]
    why = [str(w) for w in c["kernel.ood.broken"]["why"]]
    assert why == ["metric 0.12 exceeds tolerance 0.05", "check failed: monotone in P"]
    assert c["icl.depth.crash"]["value"] == "nan"


def test_failure_reasons():
    by = {r.name: r for r in sample_results()}
    assert failure_reasons(by["kernel.curve.ok"]) == []
    assert failure_reasons(by["icl.depth.crash"]) == ["error: RuntimeError: solver diverged"]
    assert failure_reasons(by["transfer.mup.fragile"]) == ["2 of 3 seeds passed (failed at seed 2)"]
    assert failure_reasons(by["scaling.hard.kf"]) == ["metric 0.3 exceeds tolerance 0.05",
                                                       "check failed: exponent within 0.1"]


# ----------------------------------------------------------------------------- papers
def test_paper_table_is_complete_and_well_formed():
    seeds = [p for p in PAPERS if p.seed]
    assert len(seeds) == 31
    assert len({normalize_title(p.title) for p in PAPERS}) == len(PAPERS)
    for p in PAPERS:
        assert p.year is None or 2018 <= p.year <= 2026, p
        assert p.arxiv == "" or re.fullmatch(r"\d{4}\.\d{4,5}", p.arxiv), p
        # the arXiv id starts with the year and month of first submission
        assert not p.arxiv or p.year is None or int(p.arxiv[:2]) + 2000 == p.year, p


def test_find_paper_is_case_and_punctuation_tolerant():
    p = find_paper("Don't be lazy: CompleteP enables compute-efficient deep transformers")
    assert p is not None and p.arxiv == "2505.01618"
    assert find_paper("DONT BE LAZY -- completep enables compute efficient deep transformers") is p
    assert find_paper("Don’t be lazy: CompleteP enables compute‐efficient deep transformers") is p
    assert find_paper("Do Mice Grok Glimpses of Hidden Progress During Overtraining in Sensory Cortex").year == 2024
    # a title cut before its subtitle still finds the paper; too short a prefix does not
    assert find_paper("Capacity of Group-invariant Linear Readouts from Equivariant Representations").arxiv == "2110.07472"
    assert find_paper("Theory of") is None
    assert find_paper("A paper nobody wrote") is None
    assert find_paper("") is None
    with pytest.raises(TypeError, match="title"):
        normalize_title(None)


def test_every_registered_claim_names_a_known_paper():
    from lmech.claims import select_claims

    missing = sorted({c.paper for c in select_claims(None) if find_paper(c.paper) is None})
    assert missing == []


# ----------------------------------------------------------------------------- residuals
def test_residuals_match_by_x_and_label():
    panel = Panel("t", "x", "y", (
        Series("a theory", [1, 2, 3], [1.0, 2.0, 4.0], role="theory"),
        Series("a sim", [3, 1, 2, 7], [4.0, 1.1, 1.8, 9.0], yerr=[0.4, 0.1, 0.2, 1.0], role="simulation"),
        Series("b sim", [1, 2], [1.0, 1.0], role="simulation"),  # no theory partner
        Series("c theory", [1, 2], [0.0, 1.0], role="theory"),
        Series("c sim", [1, 2], [0.5, 1.5], role="simulation"),  # theory zero at x = 1: dropped
    ))
    res = {r.label: r for r in residuals(panel)}
    assert set(res) == {"a", "c"}
    np.testing.assert_allclose(res["a"].x, [3, 1, 2])  # x = 7 lies outside the theory: left out
    np.testing.assert_allclose(res["a"].rel, [0.0, 0.1, -0.1], atol=1e-12)
    np.testing.assert_allclose(res["a"].err, [0.1, 0.1, 0.1])
    np.testing.assert_allclose(res["c"].rel, [0.5])
    assert res["c"].err is None


def test_residuals_interpolate_theory_log_log():
    x = np.array([1.0, 10.0, 100.0])
    panel = Panel("t", "x", "y", (Series("p theory", x, 3 * x ** -1.5, role="theory"),
                                  Series("p sim", [np.sqrt(10.0), 50.0], [1.05 * 3 * 10 ** -0.75, 3 * 50 ** -1.5],
                                         role="simulation")), xscale="log", yscale="log")
    (r,) = residuals(panel)
    np.testing.assert_allclose(r.rel, [0.05, 0.0], atol=1e-12)  # a power law is exact in log-log


# ----------------------------------------------------------------------------- formulas
@pytest.mark.parametrize("text, html", [
    ("E_g ~ P^-alpha.", "E<sub>g</sub> ∼ P<sup>-α</sup>."),
    ("gamma0 -> 0 under muP", "γ₀ → 0 under μP"),
    ("C^{1/(1+b)} and t^-(a-1)/b", "C<sup>1/(1+b)</sup> and t<sup>-(a-1)/b</sup>"),
    ("1/sqrt(depth), x <= 3", "1/√(depth), x ≤ 3"),
    ("lam_k w*_k^2 ~ k^-a", "λ<sub>k</sub> w*<sub>k</sub><sup>2</sup> ∼ k<sup>-a</sup>"),
    ("P_1/2(N), E_inf, N = inf", "P<sub>1/2</sub>(N), E<sub>∞</sub>, N = ∞"),
    ("train_tmax and the beta-alphabet", "train_tmax and the β-alphabet"),
    ("min_eta sum_k lam_k h_k(2t)", "min<sub>η</sub> Σ<sub>k</sub> λ<sub>k</sub> h<sub>k</sub>(2t)"),
    ("L* ~ C^-(a-1)/(1+b); F^T/N; P^-b_E", "L* ∼ C<sup>-(a-1)/(1+b)</sup>; F<sup>T</sup>/N; P<sup>-b<sub>E</sub></sup>"),
    ("<script>alert(1)</script> & x", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; x"),
])
def test_math_html(text, html):
    assert math_html(text) == html


# ----------------------------------------------------------------------------- figures
def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("lo, hi", [(10.0, 1e6), (30.0, 300.0), (50.0, 120.0)])
def test_log_tick_labels_do_not_overlap_and_legend_is_below(lo, hi):
    import matplotlib.pyplot as plt

    from lmech.report.figures import _figure

    x = np.geomspace(lo, hi, 8)
    panel = Panel("t", "x", "y", (Series("a theory", x, x ** -1.0), Series("a sim", x, 1.01 * x ** -1.0,
                                                                           role="simulation"),
                                  Series("b theory", x, 2 * x ** -1.0), Series("b sim", x, 2 * x ** -1.0,
                                                                               role="simulation"),
                                  Series("ref", x, x ** -0.5, role="reference")),
                  xscale="log", yscale="log")
    fig = _figure(panel)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    main, resid = fig.axes[0], fig.axes[1]
    for axis in (resid.xaxis, main.yaxis):
        labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
        a0, a1 = axis.get_view_interval()
        inside = [t for t in labels if min(a0, a1) <= (t.get_position()[0] if axis is resid.xaxis
                                                       else t.get_position()[1]) <= max(a0, a1)]
        assert 2 <= len(inside) <= 7, [t.get_text() for t in inside]
        boxes = [t.get_window_extent(renderer) for t in inside]
        assert not any(_boxes_overlap(p, q) for i, p in enumerate(boxes) for q in boxes[i + 1:])
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert legend.y1 <= ax.get_window_extent(renderer).y0 + 1  # legend below all data
    plt.close(fig)


# ----------------------------------------------------------------------------- page and CLI
class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_write_report_is_self_contained(tmp_path):
    results = sample_results()
    page = write_report(results, tmp_path).read_text()
    parser = _Collect()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag not in ("link", "img", "iframe"), (tag, attrs)
        assert not (tag == "script" and "src" in attrs)
    assert page.count("<svg") == 1 + 2 + 1 + 1 + 1 + 1  # one per panel; the error has none
    assert "<b>bold?</b>" not in page and "&lt;b&gt;bold?&lt;/b&gt;" in page
    assert "E<sub>g</sub>" in page
    data = json.loads((tmp_path / "results.json").read_text())
    counts = {c: sum(r["category"] == c for r in data) for c in CATEGORIES}
    for cat, n in counts.items():
        assert f'data-count="{cat}">{n}<' in page
    assert "the finite-N correction" in page and "RuntimeError: solver diverged" in page


def _store_with(tmp_path: Path, results) -> Path:
    from lmech.store import ResultStore

    store = ResultStore(tmp_path / "results.sqlite")
    for r in results:
        store.put("claim", f"{r.mode}/{r.seed}/{r.name}", r.status, r.to_dict())
    return tmp_path


def test_cli_report_refuses_a_mode_without_results(tmp_path, capsys):
    from lmech.cli import main

    out = _store_with(tmp_path, [r for r in sample_results() if r.category == "passed"])
    assert main(["report", "--out", str(out), "--mode", "quick"]) == 0
    before = (out / "report.html").read_bytes(), (out / "results.json").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["report", "--out", str(out), "--mode", "full"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no full-mode results" in err and "modes present: quick" in err
    assert ((out / "report.html").read_bytes(), (out / "results.json").read_bytes()) == before
    assert main(["report", "--out", str(out)]) == 0  # the only mode present is taken


def test_cli_report_needs_mode_when_store_mixes_modes(tmp_path, capsys):
    import dataclasses

    from lmech.cli import main

    quick = [r for r in sample_results() if r.category == "passed"]
    out = _store_with(tmp_path, quick + [dataclasses.replace(r, mode="full") for r in quick])
    with pytest.raises(SystemExit) as exc:
        main(["report", "--out", str(out)])
    assert exc.value.code == 2 and "--mode" in capsys.readouterr().err
    assert main(["report", "--out", str(out), "--mode", "full"]) == 0
    assert {r["mode"] for r in json.loads((out / "results.json").read_text())} == {"full"}
