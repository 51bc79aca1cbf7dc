"""The documentation's equation index: labels unique, resolvable, and the generator runs.

(The site build itself, ``make docs``, needs the ``docs`` extra and is not part of this suite.)
"""
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_lmech_docs_{name}", DOCS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _load("gen_equations")


@pytest.fixture(scope="module")
def equations(gen):
    return gen.collect()


def test_parse_labels_convention(gen):
    doc = """Summary.

    Equation (eq:demo.one): ``a = b + c``

    Equation (eq:demo.two): ``x = y,
        z = w``
    Not part of it.
    Equation (eq:Bad Label): ignored
    """
    assert gen.parse_labels(inspect.cleandoc(doc)) == [("eq:demo.one", "a = b + c"), ("eq:demo.two", "x = y,\nz = w")]
    assert gen.papers_in('Authors, "A Long Paper\n Title Here" and "two words"') == ("A Long Paper Title Here",)


def test_labels_unique_and_resolve(gen, equations):
    assert len(equations) >= 20
    assert gen.duplicates(equations) == {}
    for e in equations:
        obj = gen.resolve(e.target)
        doc = inspect.getdoc(obj) or ""
        assert f"Equation ({e.label}):" in doc, e.target
        assert e.text.strip(), e.label


def test_central_solvers_are_labelled(equations):
    labelled = {e.target for e in equations}
    for target in [
        "lmech.theory.kappa:solve_kappa",
        "lmech.theory.kernel_curves:learning_curve",
        "lmech.theory.sgd:learning_curve",
        "lmech.theory.scaling:rf_loss_curve",
        "lmech.theory.schedules:optimal_schedule",
        "lmech.theory.td:td_learning_curve",
        "lmech.theory.dmft.deep_linear:deep_linear",
        "lmech.theory.dmft.sampling:two_layer",
        "lmech.theory.icl:icl_risk",
        "lmech.theory.capacity:separable_fraction",
        "lmech.theory.precision:precision_loss",
        "lmech.theory.variance_onset:noisy_feature_curve",
    ]:
        assert target in labelled, target


def test_every_equation_cites_a_paper(equations):
    missing = [e.label for e in equations if not e.papers]
    assert missing == []


def test_no_stray_label_lines(gen):
    """A line that starts like a label but does not parse is a typo, not prose."""
    bad = []
    for path in (DOCS.parent / "lmech").rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*Equation \(", line) and not gen.LABEL_RE.match(line):
                bad.append(f"{path}:{i}")
    assert bad == []


def test_generator_writes_index(gen, tmp_path):
    out = tmp_path / "equations.md"
    eqs = gen.main(out)
    text = out.read_text()
    assert text.startswith("# Equation index")
    for e in eqs:
        assert f"### {e.label} " in text
    assert f"{len(eqs)} equations." in text


def test_tutorial_runner_executes_and_fails_loudly():
    hooks = _load("hooks")
    md = "# t\n\n```python\nx = 2\nprint(x * 21)\n```\n\n```py\nnot run\n```\n"
    out = hooks.execute_markdown(md, "t.md")
    assert "```text\n42\n```" in out and "not run" in out
    with pytest.raises(hooks.TutorialError, match="block 1"):
        hooks.execute_markdown("```python\nraise RuntimeError('boom')\n```\n", "bad.md")


def test_full_results_table_from_results_json(tmp_path, capsys):
    """docs/gen_full_results.py: wall time from start/end stamps, the sum of seconds, the rows and the
    claims over the 10-minute limit, from a hand-made results.json."""
    import json

    gen = _load("gen_full_results")
    env = {"git_commit": "abcdef123", "cpu_count": 2, "torch": "2.13.0+cpu"}
    rows = [dict(name="b.two", status="failed", value=0.8, tolerance=0.5, seconds=700.0, started_at=1000.0,
                 expect="known_failure", met_expectation=True, environment=env),
            dict(name="a.one", status="passed", value=0.01, tolerance=0.05, seconds=60.0, started_at=1100.0,
                 expect="pass", met_expectation=True, environment=env)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(rows))
    assert gen.main([str(path)]) == 0
    text = capsys.readouterr().out
    assert "11.7 min from the first claim's start" in text  # (1700 - 1000) s
    assert "add up to 12.7 min" in text  # 760 s
    assert "`b.two` (700 s)" in text and "1 passed; 2 of 2 met" in text
    body = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert [ln.split("`")[1] for ln in body] == ["a.one", "b.two"]
    assert "| known failure | yes | 700 |" in body[1]
    # a claim rerun alone replaces its row; an earlier page fills in the claims not rerun
    (tmp_path / "more.json").write_text(json.dumps([dict(rows[0], seconds=300.0)]))
    (tmp_path / "old.md").write_text("| `c.three` | passed | 0.1 | 0.5 | pass | yes | 42 |\n"
                                     "| `a.one` | passed | 0.02 | 0.05 | pass | yes | 99 |\n")
    assert gen.main([str(path), str(tmp_path / "more.json"), "--carry", str(tmp_path / "old.md")]) == 0
    body = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| `")]
    assert [ln.split("`")[1] for ln in body] == ["a.one", "b.two", "c.three"]
    assert body[0].endswith("| 60 |") and "`b.two` (rerun alone)" in body[1] and body[1].endswith("| 300 |")
    assert body[2] == "| `c.three` (earlier run) | passed | 0.1 | 0.5 | pass | yes | 42 |"
