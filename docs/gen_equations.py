"""Collect the labelled equations of lmech's docstrings into docs/equations.md.

Label convention (readable in ``help()`` and in the rendered API pages): a docstring line

    Equation (eq:family.name): ``left = right``

optionally followed by continuation lines indented deeper than the ``Equation`` line (a long
equation, or a second line of the same system). Labels are ``eq:`` followed by lower-case
letters, digits, ``.``, ``_`` or ``-``; they are unique across the package. The paper of an
equation is the title(s) in double quotes cited in the same docstring, else in its module's
docstring.

Run ``python docs/gen_equations.py [OUT]`` (default ``docs/equations.md``); the docs build
runs it before collecting pages (hook in docs/hooks.py). The output is generated and
gitignored.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path

LABEL_RE = re.compile(r"^(?P<indent>\s*)Equation \((?P<label>eq:[a-z0-9][a-z0-9_.\-]*)\):\s*(?P<text>.*)$")
# A title: double-quoted, starting with a capital letter, at least three words.
TITLE_RE = re.compile(r'"([A-Z][^"]{8,300})"')
SKIP_MODULES = {"lmech.__main__"}


@dataclass(frozen=True)
class Equation:
    label: str
    module: str
    qualname: str  # "" for the module docstring itself
    text: str
    papers: tuple[str, ...]

    @property
    def target(self) -> str:
        return f"{self.module}:{self.qualname}" if self.qualname else self.module


def parse_labels(doc: str) -> list[tuple[str, str]]:
    """Return ``[(label, equation text), ...]`` found in one docstring, in order."""
    lines = (doc or "").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = LABEL_RE.match(line)
        if not m:
            continue
        indent = len(m["indent"].expandtabs())
        parts = [m["text"].strip()]
        for nxt in lines[i + 1:]:
            if not nxt.strip() or len(nxt) - len(nxt.lstrip()) <= indent:
                break
            parts.append(nxt.strip())
        text = "\n".join(p for p in parts if p)
        if text.startswith("``") and text.endswith("``"):  # the recommended code-span form
            text = text[2:-2].strip()
        out.append((m["label"], text))
    return out


def papers_in(doc: str) -> tuple[str, ...]:
    """Quoted paper titles cited in a docstring (at least three words), without duplicates."""
    seen = []
    for t in TITLE_RE.findall(doc or ""):
        t = " ".join(t.split())
        if len(t.split()) >= 3 and t not in seen:
            seen.append(t)
    return tuple(seen)


def iter_modules(package: str = "lmech"):
    """Import every module of ``package`` (skipping ``__main__`` and modules whose optional
    dependencies are missing) and yield it."""
    pkg = importlib.import_module(package)
    yield pkg
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if info.name in SKIP_MODULES or info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra (e.g. ray) not installed
            print(f"gen_equations: skipped {info.name}: {exc}", file=sys.stderr)


def _members(mod):
    """(qualname, object) for the functions, classes and methods defined in ``mod``."""
    for name, obj in vars(mod).items():
        if getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj
            for mname, meth in vars(obj).items():
                fn = meth.__func__ if isinstance(meth, (staticmethod, classmethod)) else meth
                if inspect.isfunction(fn) or isinstance(meth, property):
                    yield f"{name}.{mname}", (meth.fget if isinstance(meth, property) else fn)


def collect(package: str = "lmech") -> list[Equation]:
    """Every labelled equation of the package, in module order. Duplicates are kept (the test
    and :func:`main` reject them)."""
    eqs = []
    seen_objs = set()
    for mod in iter_modules(package):
        mod_doc = inspect.getdoc(mod) or ""
        mod_papers = papers_in(mod_doc)
        for label, text in parse_labels(mod_doc):
            eqs.append(Equation(label, mod.__name__, "", text, mod_papers))
        for qualname, obj in _members(mod):
            if id(obj) in seen_objs:
                continue
            seen_objs.add(id(obj))
            doc = obj.__doc__ or ""
            if "Equation (eq:" not in doc:
                continue
            doc = inspect.cleandoc(doc)
            for label, text in parse_labels(doc):
                eqs.append(Equation(label, mod.__name__, qualname, text, papers_in(doc) or mod_papers))
    return eqs


def duplicates(eqs) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for e in eqs:
        where.setdefault(e.label, []).append(e.target)
    return {k: v for k, v in where.items() if len(v) > 1}


def resolve(target: str):
    """Import ``module:qual.name`` and return the object."""
    mod_name, _, qual = target.partition(":")
    obj = importlib.import_module(mod_name)
    for part in filter(None, qual.split(".")):
        obj = getattr(obj, part)
    return obj


def _anchor(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label).strip("-")


def _link(e: Equation) -> str:
    """Cross-reference to the solver's API entry (resolved by mkdocstrings' autorefs)."""
    ident = e.module + ("." + e.qualname if e.qualname else "")
    return f"[`{e.target}`][{ident}]"


def render(eqs) -> str:
    lines = [
        "# Equation index",
        "",
        "Every equation labelled in lmech's docstrings, with the function that solves it and the",
        "paper it comes from. Generated by `docs/gen_equations.py` at build time; a label is a",
        "docstring line ``Equation (eq:NAME): `...` `` (the convention is in the generator's docstring",
        "and in *Writing claims*).",
        "",
    ]
    lines += ["| Label | Solver | Equation |", "| --- | --- | --- |"]
    for e in eqs:
        first = e.text.splitlines()[0].replace("|", "\\|")
        more = " ..." if "\n" in e.text else ""
        lines.append(f"| [`{e.label}`](#{_anchor(e.label)}) | {_link(e)} | `{first}`{more} |")
    lines.append("")
    by_mod: dict[str, list[Equation]] = {}
    for e in eqs:
        by_mod.setdefault(e.module, []).append(e)
    for mod, group in by_mod.items():
        lines += [f"## `{mod}`", ""]
        for e in group:
            lines += [f"### {e.label} {{#{_anchor(e.label)}}}", "", f"Solver: {_link(e)}", "",
                      "```text", e.text, "```", ""]
            if e.papers:
                lines += ["Paper: " + "; ".join(f"*{p}*" for p in e.papers), ""]
    lines += [f"{len(eqs)} equations.", ""]
    return "\n".join(lines)


def main(out: str | Path | None = None) -> list[Equation]:
    eqs = collect()
    dup = duplicates(eqs)
    if dup:
        raise SystemExit(f"duplicate equation labels: {dup}")
    out = Path(out) if out else Path(__file__).resolve().parent / "equations.md"
    text = render(eqs)
    if not out.exists() or out.read_text() != text:  # unchanged file: no rebuild loop in `serve`
        out.write_text(text)
    return eqs


if __name__ == "__main__":
    eqs = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"{len(eqs)} equations")
