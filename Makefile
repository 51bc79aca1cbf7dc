# Two commands on a fresh machine:
#   make demo   -- set up .venv, run the quick reproduction, print where the report is
#   make test   -- set up .venv, run the test suite (tests/test_doctests.py runs the docstring examples)
#   make docs   -- also install the `docs` extra, build the documentation site into site/ (offline)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lmech-installed
DOCS_STAMP := $(VENV)/.lmech-docs-installed
OUT    ?= runs/quick
JOBS   ?=
BACKEND ?=
PYTEST_ARGS ?=

.PHONY: demo test test-slow bench bench-compare venv clean docs

venv: $(STAMP)

# torch is pinned first: this exact version lies on the build machines as a CPU wheel;
# the package itself only asks for torch>=2.2, which the pin satisfies.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

# the last line printed is the summary, e.g. "66 passed, 2 known failures — see runs/quick/report.html"
demo: $(STAMP)
	$(VENV)/bin/lmech reproduce --quick --out $(OUT) $(if $(JOBS),--jobs $(JOBS)) $(if $(BACKEND),--backend $(BACKEND))

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n auto $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# The site: API reference from the docstrings, the equation index (docs/gen_equations.py) and
# the tutorials (executed; any error fails the build), all run by docs/hooks.py. The build
# needs no network: the readthedocs theme's assets are bundled with mkdocs.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg $(VENV)/bin/mkdocs build --strict --site-dir site
	@echo "documentation site: site/index.html"

# Every benchmark (bench/run_all.py: one process per script, theory_vs_sim once per bench/tvs
# family), its output printed, every ratio merged into bench/results.json with the machine, the
# versions and the commit. QUICK=1: smaller sizes and fewer repeats. Compare two runs with
# `make bench-compare OLD=old.json NEW=bench/results.json` (THRESHOLD, default 0.2 = 20 %).
BENCH_OUT ?= bench/results.json
THRESHOLD ?= 0.2
bench: $(STAMP)
	$(PY) bench/run_all.py $(if $(QUICK),--quick) --out $(BENCH_OUT)

bench-compare:
	@test -n "$(OLD)" && test -n "$(NEW)" || { echo "usage: make bench-compare OLD=a.json NEW=b.json [THRESHOLD=0.2]"; exit 2; }
	$(PY) bench/compare.py $(OLD) $(NEW) --threshold $(THRESHOLD)

clean:
	rm -rf $(VENV) runs .pytest_cache site docs/equations.md
