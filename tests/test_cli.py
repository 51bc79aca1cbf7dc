import json
import subprocess
import sys

import pytest

from lmech.cli import main


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--jobs", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--quick", "--full"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--only", "no.such.claim.*"])
    assert e.value.code == 2
    assert "match no claim" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--backend", "local", "--address", "127.0.0.1:6379", "--only", "kernel.*"])
    assert e.value.code == 2
    assert "--address needs --backend ray" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--backend", "threads"])
    assert e.value.code == 2


def test_claims_list_json(isolated_registry, capsys):
    import _toy_claims

    _toy_claims.register()
    assert main(["claims", "list", "--only", "toy.*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["toy.crash", "toy.fragile", "toy.known", "toy.known_fixed", "toy.ok",
                                         "toy.sigkill", "toy.slow"]
    ok = rows[4]
    assert ok["expect"] == {"quick": {"kind": "pass", "reason": ""}, "full": {"kind": "pass", "reason": ""}}
    assert ok["statement"] == "1/x is 1/x." and ok["tolerance_quick"] == 0.05


def test_only_accumulates_repeated_flags_and_commas(isolated_registry, capsys):
    import _toy_claims

    _toy_claims.register()
    for argv in (["--only", "toy.ok", "--only", "toy.crash"], ["--only", "toy.ok,toy.crash"]):
        assert main(["claims", "list", *argv, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert sorted(r["name"] for r in rows) == ["toy.crash", "toy.ok"]


def test_reproduce_exit_status_and_outputs(isolated_registry, tmp_path, capsys):
    import _toy_claims

    _toy_claims.register()
    out = tmp_path / "o"
    assert main(["reproduce", "--only", "toy.ok", "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    assert (out / "report.html").exists() and (out / "results.json").exists()
    assert main(["reproduce", "--full", "--only", "toy.ok", "--out", str(out), "--no-progress"]) == 1
    assert main(["reproduce", "--only", "toy.ok,toy.crash", "--out", str(tmp_path / "p"), "--no-progress"]) == 1
    assert main(["report", "--out", str(out), "--mode", "quick"]) == 0


def test_console_script_help():
    proc = subprocess.run([sys.executable, "-m", "lmech.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "reproduce" in proc.stdout


def test_size_lists_accept_spaces_or_commas():
    from lmech.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["transfer", "--model", "mlp", "--scheme", "mup", "--widths", "64,128", "256",
                              "--lrs", "1e-3", "--seeds", "0,1", "--out", "x"])
    assert args.widths == [64, 128, 256] and args.seeds == [0, 1]
    args = parser.parse_args(["coord-check", "--widths", "64", "128,256"])
    assert args.widths == [64, 128, 256]
    for bad in (["coord-check", "--widths", "64"], ["coord-check", "--widths", "64,-1"],
                ["transfer", "--model", "mlp", "--scheme", "mup", "--widths", "x", "--lrs", "1", "--out", "x"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(bad)
        assert exc.value.code == 2
