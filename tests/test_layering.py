"""The import contract of lmech's layers (docs/architecture.md), checked on the source.

Every ``import`` and ``from ... import`` statement of every module (including those inside
functions, which still create a dependency) is parsed with :mod:`ast` and mapped to the
layer it names. The forbidden edges are the ones the architecture rules out.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lmech"

# Base layer: imports nothing of lmech except other base modules.
BASE = {"results", "_validation", "_errors", "_json", "seeds", "plotdata", "fits", "metrics",
        "nonlinearities", "provenance", "_argtypes", "papers", "_logging"}

# layer of a module -> layers it must never import
FORBIDDEN = {
    "theory": {"sim", "models", "param", "claims", "sweep", "report", "cli", "commands", "executors", "store"},
    "kernels": {"theory", "sim", "claims", "sweep", "report", "cli", "commands", "param", "models"},
    "spectra": {"theory", "sim", "claims", "sweep", "report", "cli", "commands", "param", "models", "kernels"},
    "sim": {"theory", "claims", "sweep", "report", "cli", "commands"},
    "param": {"models", "data", "sim", "sweep", "claims", "cli", "commands", "theory", "report"},
    "models": {"sim", "theory", "claims", "sweep", "report", "cli", "commands", "data"},
    "data": {"sim", "theory", "claims", "sweep", "report", "cli", "commands", "models", "param"},
    "sweep": {"claims", "cli", "commands", "report", "theory"},
    "report": {"claims", "cli", "commands", "sweep", "theory", "sim"},
    "claims": {"cli", "commands", "report"},
    "scaling": {"sim", "claims", "sweep", "report", "cli", "commands", "executors", "store", "models", "param", "data"},
    "predict": {"sim", "claims", "sweep", "report", "cli", "commands", "executors", "store", "models", "param", "data"},
    "executors": {"claims", "sweep", "cli", "commands", "report", "theory", "sim"},
    "store": {"claims", "sweep", "cli", "commands", "report", "theory", "sim"},
}
TOP = {"cli", "commands", "__main__", "__init__"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "lmech":
        return None
    if len(parts) == 1:
        return "__init__"
    head = parts[1]
    return "base" if head in BASE else head


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py"))


def _name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    inside = ROOT.parent in path.resolve().parents
    name = _name(path) if inside else path.stem
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            if mod == "lmech":  # `from lmech import theory` names a layer too
                found += [(node.lineno, f"lmech.{a.name}") for a in node.names]
    return found


def _violations() -> list[str]:
    bad = []
    for path in _modules():
        src_layer = _layer(_name(path))
        for lineno, target in _imports(path):
            dst = _layer(target)
            if dst is None or dst == src_layer:
                continue
            if src_layer == "base" and dst != "base":
                bad.append(f"{path.relative_to(ROOT.parent)}:{lineno} base module imports {target}")
            elif src_layer not in TOP and dst in {"cli", "commands"}:
                bad.append(f"{path.relative_to(ROOT.parent)}:{lineno} imports the command line ({target})")
            elif dst in FORBIDDEN.get(src_layer, ()):
                bad.append(f"{path.relative_to(ROOT.parent)}:{lineno} {src_layer} imports {target}")
    return bad


def test_no_forbidden_imports():
    bad = _violations()
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_contract_sees_imports_inside_functions(tmp_path):
    # the checker must not be blind to lazy imports (the usual way cycles hide)
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from lmech.sim import x\n    import lmech.claims.registry\n")
    assert [t for _, t in _imports(f)] == ["lmech.sim", "lmech.claims.registry"]


@pytest.mark.parametrize("module, layer", [("lmech.theory.sgd", "theory"), ("lmech.results", "base"),
                                           ("lmech.cli", "cli"), ("numpy", None)])
def test_layer_mapping(module, layer):
    assert _layer(module) == layer

