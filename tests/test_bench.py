"""bench/run_all.py and bench/compare.py: the merge and compare logic, on fake benchmark results
and fake benchmark scripts (nothing is timed here)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import _results  # noqa: E402
import compare as compare_cli  # noqa: E402
import run_all  # noqa: E402


def _entry(ratios=None, measures=None, status="ok", **extra):
    return {"status": status, "ratios": ratios or {}, "measures": measures or {}, **extra}


def test_merge_flattens_and_keeps_benches_not_rerun():
    old = _results.merge(None, {"a": _entry({"x": 2.0}), "b": _entry({"y": 3.0}, {"slope": 1.5})}, {"date": "d0"})
    assert old["ratios"] == {"a/x": 2.0, "b/y": 3.0} and old["measures"] == {"b/slope": 1.5}
    new = _results.merge(old, {"b": _entry({"y": 4.0}), "c": _entry(status="error", error="boom")}, {"date": "d1"})
    assert new["ratios"] == {"a/x": 2.0, "b/y": 4.0}  # a kept, b replaced (its old measure gone)
    assert new["measures"] == {} and new["machine"] == {"date": "d1"}
    assert new["skipped"] == {"c": "error: boom"} and list(new["benches"]) == ["a", "b", "c"]
    sk = _results.merge(None, {"k": _entry({"n=500/wall": 1.0}, skipped={"nt": "not installed"})}, {})
    assert sk["skipped"] == {"k/nt": "not installed"}


def test_compare_reports_changes_beyond_the_threshold_both_ways():
    old = {"ratios": {"a": 100.0, "b": 1.0, "c": 2.0, "gone": 1.0, "z": 0.0, "n": None},
           "benches": {"x": {"status": "ok"}, "y": {"status": "ok"}}}
    new = {"ratios": {"a": 79.0, "b": 1.19, "c": 2.5, "new": 5.0, "z": 1.0, "n": None},
           "benches": {"x": {"status": "ok"}, "y": {"status": "error"}}}
    diff = _results.compare(old, new, threshold=0.2)
    changed = {k: f for k, _, _, f in diff["changed"]}
    # a: 100 -> 79 is a factor 1.27 down (> 20 %); b: +19 % (not); c: +25 %; z: from zero (always)
    assert set(changed) == {"a", "c", "z"} and changed["c"] == pytest.approx(1.25) and changed["z"] is None
    assert [k for k, *_ in diff["changed"]] == ["z", "a", "c"]  # undefined first, then by size of the move
    assert diff["added"] == ["new"] and diff["removed"] == ["gone"]
    assert diff["status"] == [("y", "ok", "error")]
    assert _results.compare(old, new, threshold=0.3)["changed"][1:] == []  # only z (from zero) beyond 30 %
    assert {k for k, *_ in _results.compare(old, old)["changed"]} == set()
    with pytest.raises(ValueError, match="threshold"):
        _results.compare(old, new, threshold=-1)


def test_compare_measures_only_on_request():
    old = {"ratios": {"r": 1.0}, "measures": {"m": 1.0}}
    new = {"ratios": {"r": 1.0}, "measures": {"m": 3.0}}
    assert _results.compare(old, new)["changed"] == []
    assert [k for k, *_ in _results.compare(old, new, sections=("ratios", "measures"))["changed"]] == ["m"]


def test_compare_cli(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"machine": {"quick": True, "git_commit": "abc"}, "ratios": {"t/x": 10.0, "t/y": 1.0}}))
    b.write_text(json.dumps({"machine": {"quick": True}, "ratios": {"t/x": 30.0, "t/y": 1.05}}))
    assert compare_cli.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "t/x" in out and "3.00x" in out and "t/y" not in out
    assert compare_cli.main([str(a), str(b), "--fail"]) == 1
    assert compare_cli.main([str(a), str(b), "--threshold", "5", "--fail"]) == 0
    (tmp_path / "bad.json").write_text("{nope")
    assert compare_cli.main([str(a), str(tmp_path / "bad.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert compare_cli.main([str(a), str(tmp_path / "missing.json")]) == 2


def test_recorder_writes_strict_json(tmp_path):
    rec = _results.Recorder()
    rec.ratio("r", 2)
    rec.measure("m", float("nan"))
    rec.skip("s", "absent")
    rec.detail("d", {"t": [1.0, float("inf")]})
    rec.write(tmp_path / "o.json")
    data = json.loads((tmp_path / "o.json").read_text())
    assert data == {"ratios": {"r": 2.0}, "measures": {"m": None}, "skipped": {"s": "absent"},
                    "details": {"d": {"t": [1.0, None]}}}


_FAKE = '''import json, sys
args = sys.argv[1:]
path = args[args.index("--json") + 1]
if "--boom" in args:
    raise RuntimeError("fake failure")
json.dump({"ratios": {"%s/case": 4.0, "other": 1.0}, "measures": {}, "skipped": {}, "details": {"args": args}},
          open(path, "w"))
'''


def _fake_bench(tmp_path: Path) -> Path:
    folder = tmp_path / "bench"
    (folder / "tvs").mkdir(parents=True)
    for fam in ("alpha", "beta", "_private"):
        (folder / "tvs" / f"{fam}.py").write_text("CASES = []\n")
    (folder / "theory_vs_sim.py").write_text(_FAKE.replace("%s", "alpha"))
    (folder / "extra.py").write_text(_FAKE.replace("%s", "extra") + "# takes --quick\n")
    (folder / "silent.py").write_text("print('no json here')\n")
    (folder / "_helper.py").write_text("")
    return folder


def test_plan_picks_up_new_families_and_scripts(tmp_path):
    folder = _fake_bench(tmp_path)
    names = {n: a for n, _, a in run_all.plan(True, folder=folder)}
    assert {"theory_vs_sim/alpha", "theory_vs_sim/beta", "extra", "silent"} <= set(names)
    assert "theory_vs_sim/_private" not in names and "_helper" not in names
    assert names["theory_vs_sim/beta"] == ["--only", "beta", "--repeats", "1"] and names["extra"] == ["--quick"]
    full = {n: a for n, _, a in run_all.plan(False, folder=folder)}
    assert full["extra"] == [] and full["theory_vs_sim/beta"] == ["--only", "beta"] and names["silent"] == []
    only = [n for n, *_ in run_all.plan(True, ["theory_vs_sim"], folder=folder)]
    assert only == ["theory_vs_sim/alpha", "theory_vs_sim/beta"]
    with pytest.raises(SystemExit, match="no bench named"):
        run_all.plan(True, ["nope"], folder=folder)


def test_run_one_records_ok_error_and_skipped(tmp_path):
    folder = _fake_bench(tmp_path)
    ok = run_all.run_one("theory_vs_sim/alpha", folder / "theory_vs_sim.py", ["--only", "alpha"], timeout=60)
    assert ok["status"] == "ok" and ok["ratios"] == {"case": 4.0, "other": 1.0}  # family prefix stripped
    bad = run_all.run_one("extra", folder / "extra.py", ["--boom"], timeout=60)
    assert bad["status"] == "error" and "fake failure" in bad["error"]
    (folder / "own.py").write_text("import json, sys\njson.dump({'lif_seconds': 0.5}, open(sys.argv[-1], 'w'))"
                                   "  # --json\n")
    own = run_all.run_one("own", folder / "own.py", [], timeout=60)
    assert own["status"] == "ok" and own["details"] == {"lif_seconds": 0.5}  # its own format: kept as details
    quiet = run_all.run_one("silent", folder / "silent.py", [], timeout=60)
    assert quiet["status"] == "skipped" and "--json" in quiet["reason"]
    (folder / "slow.py").write_text("import json, sys, time\njson.dump({'ratios': {'first': 2.0}}, "
                                    "open(sys.argv[-1], 'w'))  # --json\ntime.sleep(60)\n")
    slow = run_all.run_one("slow", folder / "slow.py", [], timeout=3)
    assert slow["status"] == "error" and "timed out" in slow["error"] and slow["ratios"] == {"first": 2.0}
    merged = _results.merge(None, {"theory_vs_sim/alpha": ok, "extra": bad, "silent": quiet}, {})
    assert merged["ratios"] == {"theory_vs_sim/alpha/case": 4.0, "theory_vs_sim/alpha/other": 1.0}
    assert set(merged["skipped"]) == {"extra", "silent"}
    json.dumps(merged, allow_nan=False)


def test_machine_info_fields():
    info = run_all.machine_info(quick=True)
    for key in ("date", "cpu_count", "torch", "lmech", "git_commit", "python", "quick"):
        assert key in info
    assert info["quick"] is True and info["cpu_count"] >= 1


def test_every_bench_script_takes_json():
    """The driver records only scripts that write --json: every shipped benchmark does."""
    for path in BENCH.glob("*.py"):
        if not path.stem.startswith("_") and path.stem not in ("run_all", "compare"):
            assert "--json" in path.read_text(), path.name
