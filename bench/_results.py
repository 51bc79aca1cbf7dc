"""Benchmark results as data: what each bench script records, and how bench/run_all.py merges them
into ``bench/results.json`` and bench/compare.py compares two such files.

A script records into a :class:`Recorder` beside what it prints, and writes it with ``--json PATH``:

* ``ratios``   -- dimensionless speed ratios (sim/theory, lmech/neural-tangents, lmech/plain, ...):
  what ``bench/compare.py`` compares by default;
* ``measures`` -- other dimensionless numbers (fitted cost exponents, relative errors);
* ``skipped``  -- what could not be measured here, with the reason (e.g. neural-tangents absent);
* ``details``  -- anything else (absolute seconds, sizes), kept but never compared.

The merged file holds ``machine`` (cpu count, torch, lmech, git commit, date), ``benches`` (one
entry per script run: status ok / error / skipped, seconds, the recorded data) and the flat maps
``ratios`` and ``measures`` keyed ``"<bench>/<key>"``, and ``skipped`` (what was not measured, why).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA = 1
SECTIONS = ("ratios", "measures")


def _plain(value):
    """numpy scalars/arrays to Python, non-finite floats to None (strict JSON)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Recorder:
    """What one benchmark script measured, as data (see the module docstring)."""

    def __init__(self) -> None:
        self.ratios: dict = {}
        self.measures: dict = {}
        self.skipped: dict = {}
        self.details: dict = {}

    def ratio(self, key: str, value: float) -> None:
        self.ratios[key] = float(value)

    def measure(self, key: str, value: float) -> None:
        self.measures[key] = float(value)

    def skip(self, key: str, reason: str) -> None:
        self.skipped[key] = str(reason)

    def detail(self, key: str, value) -> None:
        self.details[key] = value

    def to_dict(self) -> dict:
        return _plain({"ratios": self.ratios, "measures": self.measures, "skipped": self.skipped,
                       "details": self.details})

    def write(self, path) -> None:
        if path:
            Path(path).write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")


def add_json_argument(ap) -> None:
    ap.add_argument("--json", metavar="PATH", default=None,
                    help="also write the measured ratios and numbers to PATH as JSON (what is printed is unchanged)")


# --------------------------------------------------------------------------- merging
def flatten(benches: dict) -> dict:
    """``{"ratios": {"bench/key": v}, "measures": {...}, "skipped": {"bench/key": reason}}`` over
    the benches; a bench that was skipped or failed as a whole appears in ``skipped`` by its name."""
    out: dict = {s: {} for s in (*SECTIONS, "skipped")}
    for name in sorted(benches):
        entry = benches[name]
        for section in (*SECTIONS, "skipped"):
            for key, value in (entry.get(section) or {}).items():
                out[section][f"{name}/{key}"] = value
        if entry.get("status") in ("skipped", "error"):
            out["skipped"][name] = f"{entry['status']}: {entry.get('reason') or entry.get('error')}"
    return out


def merge(existing: dict | None, entries: dict, machine: dict) -> dict:
    """The results file after a run: ``entries`` (bench name -> entry) replace those of ``existing``
    (a previous file, kept for the benches not rerun, when given); ``machine`` describes this run."""
    benches = dict((existing or {}).get("benches", {}))
    benches.update(entries)
    flat = flatten(benches)
    return {"schema": SCHEMA, "machine": machine, "benches": dict(sorted(benches.items())), **flat}


# --------------------------------------------------------------------------- comparing
def compare(old: dict, new: dict, threshold: float = 0.2, sections=("ratios",)) -> dict:
    """Differences between two results files.

    A value has *changed* when ``max(new/old, old/new) - 1 > threshold`` (symmetric, so a
    halving and a doubling count alike; values of opposite sign or a zero on one side always
    count, and None - a value that could not be measured - against a number too). Returns
    ``{"changed": [(key, old, new, factor)], "added": [keys], "removed": [keys], "status":
    [(bench, old status, new status)]}``, ``factor`` being new/old (None where undefined);
    changed keys are sorted by how much they moved.
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    changed, added, removed = [], [], []
    for section in sections:
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if key not in b:
                removed.append(key)
            elif key not in a:
                added.append(key)
            else:
                x, y = a[key], b[key]
                if x is None and y is None:
                    continue
                if x is None or y is None or x == 0 or y == 0 or (x > 0) != (y > 0):
                    if x != y:
                        changed.append((key, x, y, None))
                    continue
                factor = y / x
                if max(factor, 1 / factor) - 1 > threshold:
                    changed.append((key, x, y, factor))
    changed.sort(key=lambda r: -math.inf if r[3] is None else -abs(math.log(r[3])))
    status = []
    ob, nb = old.get("benches") or {}, new.get("benches") or {}
    for name in sorted(set(ob) | set(nb)):
        s_old, s_new = (ob.get(name) or {}).get("status"), (nb.get(name) or {}).get("status")
        if s_old != s_new:
            status.append((name, s_old, s_new))
    return {"changed": changed, "added": added, "removed": removed, "status": status}


def format_comparison(diff: dict, threshold: float) -> str:
    lines = []
    if diff["status"]:
        lines.append("status changed:")
        lines += [f"  {name}: {a} -> {b}" for name, a, b in diff["status"]]
    if diff["changed"]:
        lines.append(f"changed by more than {threshold:.0%} (new/old):")
        width = max(len(k) for k, *_ in diff["changed"])
        for key, a, b, f in diff["changed"]:
            ratio = "   n/a" if f is None else f"{f:6.2f}x"
            lines.append(f"  {key:<{width}}  {_fmt(a):>10} -> {_fmt(b):>10}  {ratio}")
    else:
        lines.append(f"no value changed by more than {threshold:.0%}")
    if diff["added"]:
        lines.append(f"new ({len(diff['added'])}): " + ", ".join(diff["added"]))
    if diff["removed"]:
        lines.append(f"gone ({len(diff['removed'])}): " + ", ".join(diff["removed"]))
    return "\n".join(lines)


def _fmt(v) -> str:
    return "None" if v is None else f"{v:.4g}"


def load(path) -> dict:
    """A results file, with errors naming it."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"results file {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"results file {str(p)!r} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not any(s in data for s in SECTIONS):
        raise ValueError(f"results file {str(p)!r} holds no 'ratios' (not written by bench/run_all.py?)")
    return data
