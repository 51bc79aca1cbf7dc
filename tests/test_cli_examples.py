"""Every command shown to users runs as written.

The commands are extracted, not copied: lines starting with ``lmech`` in the README's
```bash blocks (with ``\\`` continuations, ``#`` comments dropped) and in the epilog of every
``lmech`` sub-command's ``--help``. Each runs through :func:`lmech.cli.main` in a fresh working
folder.

Default tests run the *cheapest flavour* of each command: the command as written with only
the size flags listed in ``CHEAP`` replaced (fewer widths, learning rates, seeds, steps,
bootstrap resamples; one claim instead of a family for ``reproduce``). Every override is
listed there, nothing else changes (backend, jobs, output folders stay as written). The
commands as written run under ``-m slow``, except ``reproduce --full`` of every claim (hours;
parsed only). Input files a command reads (``runs.csv``, ``curve.csv``, ``X.npy``/``y.npy``, ``data.csv``,
the model factory module ``mynets.py``), stores a command
reads (``report``, ``results``) and the ``prediction.json`` of ``schedule --from-prediction`` are
made first by the fixtures below.
"""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from lmech.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


# --------------------------------------------------------------------------- extraction
def _commands(text: str) -> list[str]:
    """Lines starting with ``lmech`` (continuations joined, comments dropped)."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("lmech ") or line == "lmech":
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1].rstrip() + " " + lines[i].strip()
            out.append(" ".join(shlex.split(line, comments=True)))
        i += 1
    return out


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    return [c for b in blocks for c in _commands(b)]


def _leaf_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _leaf_parsers(sub)


def epilog_commands() -> list[str]:
    return [c for p in _leaf_parsers(build_parser()) for c in _commands(p.epilog or "")]


# --------------------------------------------------------------------------- flavours
# Cheap flavour: flag -> replacement values (the flag and its values are replaced; the flag
# is added when absent). Only size flags, by the prefix of the command they apply to.
CHEAP: list[tuple[str, dict[str, list[str]]]] = [
    ("lmech reproduce --quick", {"--only": ["kernel.ood.shift"]}),  # one claim of the family
    ("lmech reproduce --full", {"--only": ["variance_onset.toy_model.exponent"]}),  # its fastest claim
    ("lmech coord-check", {"--widths": ["64,128"], "--steps": ["2"], "--seeds": ["1"]}),
    ("lmech transfer --model mlp", {"--widths": ["64", "128"], "--log2-lrs": ["-8", "-6", "1"],
                                    "--seeds": ["0"], "--steps": ["2"]}),
    ("lmech transfer --model resmlp", {"--depths": ["2", "4"], "--lrs": ["2^-8", "2^-6"], "--steps": ["2"]}),
    ("lmech scaling fit", {"--bootstrap": ["10"]}),
    ("lmech transfer doctor", {"--widths": ["16,32,64"], "--steps": ["2"], "--seeds": ["1"], "--no-plot": []}),
    ("lmech predict", {"--bootstrap": ["4"], "--splits": ["2"]}),
]
# As written, but not run even under -m slow (parsed only).
NOT_RUN = {"lmech reproduce --full --out runs/full": "every claim at paper size takes hours"}


def _override(argv: list[str], flag: str, values: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] == flag:
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                i += 1
            continue
        out.append(argv[i])
        i += 1
    return out + [flag, *values]


def cheap(command: str) -> list[str]:
    argv = shlex.split(command)
    for prefix, flags in CHEAP:
        if command.startswith(prefix):
            for flag, values in flags.items():
                argv = _override(argv, flag, values)
    return argv[1:]


# --------------------------------------------------------------------------- set-up of inputs
def _write_inputs(folder: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["N,D,loss"]
    for N in (1e6, 3e6, 1e7, 3e7, 1e8):
        for D in (1e8, 3e8, 1e9, 3e9):
            loss = 1.7 + 400 / N**0.34 + 410 / D**0.28
            rows.append(f"{N:g},{D:g},{loss * np.exp(0.002 * rng.standard_normal()):.6f}")
    (folder / "runs.csv").write_text("\n".join(rows) + "\n")
    steps = np.unique(np.geomspace(1, 2000, 60).astype(int))
    (folder / "curve.csv").write_text("step,loss\n" + "".join(f"{s},{2.0 * s ** -0.5:.6f}\n" for s in steps))
    # `lmech predict`: a small regression data set as .npy pair and as .csv, and a model factory
    X = rng.standard_normal((300, 5))
    y = np.tanh(X[:, 0]) + 0.1 * rng.standard_normal(300)
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    header = ",".join([f"x{i}" for i in range(5)] + ["label"])
    (folder / "data.csv").write_text(header + "\n" + "".join(",".join(f"{v:.6f}" for v in row) + "\n"
                                                             for row in np.column_stack([X, y])))
    (folder / "mynets.py").write_text(
        "import torch\n\n\ndef make_net(d):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))\n\n\n"
        "def make_mlp(width):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.ReLU(), torch.nn.Linear(width, width),\n"
        "                               torch.nn.ReLU(), torch.nn.Linear(width, 3))\n\n\n"
        "def make_batch():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    return torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)\n")


def _prepare(command: str, folder: Path) -> None:
    """Stores that ``report`` / ``results`` read (made cheaply, in-process)."""
    argv = shlex.split(command)
    if argv[1:3] == ["transfer", "recommend"]:
        argv = ["lmech", "results", "--kind", "sweep", "--out", argv[argv.index("--from") + 1]]
    if argv[1] not in ("report", "results"):
        return
    out = argv[argv.index("--out") + 1]
    if argv[1] == "report" or "--kind" not in argv or argv[argv.index("--kind") + 1] == "claims":
        if "mlp_width" not in out:
            assert main(["reproduce", "--quick", "--only", "variance_onset.toy_model.exponent", "--out", out,
                         "--backend", "inprocess", "--no-progress"]) == 0
            return
    assert main(["transfer", "--model", "mlp", "--scheme", "mup", "--widths", "64", "128", "--depth", "3",
                 "--lrs", "2^-8", "2^-6", "--steps", "2", "--out", out, "--backend", "inprocess",
                 "--no-progress", "--no-plot"]) == 0


def _prepare_prediction(argv: list[str]) -> None:
    """The ``prediction.json`` that ``schedule --from-prediction`` reads (a cheap ``lmech predict``)."""
    if argv[0] == "schedule" and "--from-prediction" in argv:
        out = str(Path(argv[argv.index("--from-prediction") + 1]).parent)
        assert main(["predict", "--X", "X.npy", "--y", "y.npy", "--bootstrap", "0", "--no-check", "--no-plot",
                     "--out", out]) == 0


def _run(argv: list[str], folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(folder)
    _write_inputs(folder)
    _prepare_prediction(argv)
    try:
        rc = main(argv)
    except SystemExit as exc:  # a usage error: the example is wrong
        pytest.fail(f"`lmech {shlex.join(argv)}` exited {exc.code}: {capsys.readouterr().err[-2000:]}")
    out = capsys.readouterr()
    # 0, or 1 where the outcome is a measurement (a failed check, a claim that failed)
    assert rc in (0, 1), f"`lmech {shlex.join(argv)}` returned {rc}: {out.err[-2000:]}"
    assert "Traceback" not in out.err


ALL = readme_commands() + epilog_commands()


def test_examples_found():
    names = {shlex.split(c)[1] for c in ALL}
    assert {"claims", "reproduce", "report", "coord-check", "transfer", "scaling", "schedule", "results"} <= names
    assert len(epilog_commands()) >= 3  # transfer's two and results'
    for prefix, _ in CHEAP:
        assert any(c.startswith(prefix) for c in ALL), f"override {prefix!r} matches no example"
    for command in NOT_RUN:
        assert command in ALL


@pytest.mark.parametrize("command", ALL, ids=str)
def test_example_parses(command):
    build_parser().parse_args(shlex.split(command)[1:])  # exits 2 on a bad flag


@pytest.mark.parametrize("command", ALL, ids=str)
def test_example_cheap_flavour(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _prepare(command, tmp_path)
    _run(cheap(command), tmp_path, monkeypatch, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in ALL if c not in NOT_RUN], ids=str)
def test_example_as_written(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _prepare(command, tmp_path)
    _run(shlex.split(command)[1:], tmp_path, monkeypatch, capsys)


def test_sweep_package_example_runs(tmp_path, monkeypatch):
    """The usage example in the ``lmech.sweep`` docstring, as written (local pool, 2 workers)."""
    import textwrap

    import lmech.sweep

    code = textwrap.dedent(re.search(r"::\n\n((?:    .*\n|\n)+)", lmech.sweep.__doc__).group(1))
    assert "run_sweep" in code and "analyze" in code
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "lmech.sweep docstring", "exec"), namespace)
    run, result = namespace["run"], namespace["result"]
    assert run.complete and not run.errors
    assert np.isfinite(result.optima[0].log2_lr)
    assert (tmp_path / "runs/mlp_mup/transfer.png").stat().st_size > 0
