"""lmech ships ``py.typed``: its typed core must pass mypy.

Runs mypy (configured by ``[tool.mypy]`` in pyproject.toml) on the modules whose annotations
are promised clean. A cold run takes about half a minute; mypy's incremental cache in
``.mypy_cache`` at the repository root (git-ignored) makes later runs a few seconds.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The typed core; keep in step with the check_untyped_defs override in pyproject.toml.
TARGETS = [
    "lmech/theory",
    "lmech/kernels",
    "lmech/spectra.py",
    "lmech/param",
    "lmech/results.py",
    "lmech/store.py",
]


@pytest.mark.timeout(300)
def test_typed_core_passes_mypy():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("needs a source checkout (pyproject.toml holds the mypy configuration)")
    cache = REPO / ".mypy_cache"
    cmd = [
        sys.executable, "-m", "mypy",
        "--config-file", str(REPO / "pyproject.toml"),
        "--cache-dir", str(cache),
        "--no-error-summary", "--hide-error-context",
        *TARGETS,
    ]
    env = dict(os.environ, MYPY_FORCE_COLOR="0")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    errors = [ln for ln in proc.stdout.splitlines() if ": error:" in ln]
    assert proc.returncode == 0, (
        f"mypy found {len(errors)} error(s) in the typed core:\n" + proc.stdout + proc.stderr
    )
