"""MkDocs hooks of the lmech documentation (no network at build time).

* before the build: regenerate ``docs/equations.md`` from the docstrings (gen_equations.py);
* ``index.md``: the marker ``<!-- include README.md -->`` is replaced by the README, with its
  ``docs/`` links made relative to the site;
* tutorials (pages under ``tutorials/``): every fenced ````` ```python ````` block is executed in
  order in one namespace per page, and what it prints is inserted below it; any exception
  fails the build. Blocks fenced ````` ```py ````` are shown but not run.

``python docs/hooks.py docs/tutorials/NAME.md ...`` runs tutorials without building the site.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
import traceback
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
FENCE_RE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


class TutorialError(RuntimeError):
    pass


def execute_markdown(markdown: str, name: str) -> str:
    """Run the ```python blocks of ``markdown`` in one namespace; return the markdown with each
    block's printed output inserted after it. Raise TutorialError on the first failing block."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"tutorial_{Path(name).stem}"}
    pieces, pos = [], 0
    for i, m in enumerate(FENCE_RE.finditer(markdown)):
        pieces.append(markdown[pos:m.end()])
        pos = m.end()
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(m.group(1), f"{name}[block {i + 1}]", "exec"), namespace)
        except Exception as exc:
            raise TutorialError(f"{name}, block {i + 1} failed:\n{traceback.format_exc()}") from exc
        out = buf.getvalue().rstrip()
        if out:
            pieces.append("\n\nOutput:\n\n```text\n" + out + "\n```")
    pieces.append(markdown[pos:])
    return "".join(pieces)


def on_pre_build(config, **kwargs):
    sys.path.insert(0, str(DOCS))
    try:
        import gen_equations
    finally:
        sys.path.remove(str(DOCS))
    gen_equations.main(DOCS / "equations.md")


def on_page_markdown(markdown, page, config, files, **kwargs):
    src = page.file.src_uri
    if src == "index.md" and "<!-- include README.md -->" in markdown:
        readme = (ROOT / "README.md").read_text()
        readme = re.sub(r"\]\(docs/", "](", readme)
        readme = readme.split("\n", 1)[1] if readme.startswith("# ") else readme  # title is the page's
        return markdown.replace("<!-- include README.md -->", readme)
    if src.startswith("tutorials/"):
        t0 = time.perf_counter()
        out = execute_markdown(markdown, src)
        print(f"hooks: executed {src} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        return out
    return markdown


if __name__ == "__main__":
    for path in sys.argv[1:]:
        t0 = time.perf_counter()
        print(execute_markdown(Path(path).read_text(), path))
        print(f"== {path}: ok in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
