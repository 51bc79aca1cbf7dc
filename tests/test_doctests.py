"""The package's docstring examples run as doctests (one test per module that has any).

Equivalent to ``pytest --doctest-modules lmech``, but collected from here so that the
default run does not also import the helper modules of tests/ as doctest modules. Examples
must be fast; an illustrative-only line is marked ``# doctest: +SKIP``.
"""
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import lmech

ROOT = Path(lmech.__file__).resolve().parent


def _modules_with_examples():
    names = []
    for info in pkgutil.walk_packages(lmech.__path__, prefix="lmech."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        rel = Path(*info.name.split(".")[1:])
        path = ROOT / (str(rel) + ".py") if not info.ispkg else ROOT / rel / "__init__.py"
        if path.exists() and ">>>" in path.read_text():
            names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_some_modules_have_examples():
    assert len(MODULES) >= 5


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name} has '>>>' in its source but no doctest was found"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
