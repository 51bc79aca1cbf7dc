"""``lmech results`` and ``ResultStore.flat_rows`` / ``to_dataframe``: one flat row per claim
or trial, checked against the records read back from the store."""
from __future__ import annotations

import csv
import json
import sys

import pytest

from lmech.cli import main
from lmech.store import ResultStore
from lmech.sweep import SweepSpec, run_sweep

GRID = {"width": [64, 128], "lr": [2.0**-9, 2.0**-7], "seed": [0, 1]}


@pytest.fixture
def sweep_dir(tmp_path):
    out = tmp_path / "sweep"
    run_sweep(SweepSpec("_toy_trials:quadratic", base={"tags": {"a": 1}, "grid_list": [1, 2]}, grid=GRID), out,
              executor="inprocess", progress=False)
    return out


@pytest.fixture
def claims_dir(tmp_path, isolated_registry):
    out = tmp_path / "claims"
    assert main(["reproduce", "--only", "variance_onset.toy_model.exponent", "--backend", "inprocess",
                 "--no-progress", "--out", str(out)]) == 0
    return out


def test_flat_rows_of_a_sweep(sweep_dir):
    store = ResultStore(sweep_dir / "sweep.sqlite")
    rows = store.flat_rows("trial")
    records = {r.key: r for r in store.records("trial")}
    assert len(rows) == 8 == len(records)
    for row in rows:
        rec = records[row["key"]]
        assert row["status"] == rec.status == "done"
        assert row["config.width"] == rec.payload["config"]["width"]
        assert row["config.tags.a"] == 1  # nested dicts flattened
        assert json.loads(row["config.grid_list"]) == [1, 2]  # lists as JSON text
        assert row["result.final_train_loss"] == rec.payload["result"]["final_train_loss"]
        assert all(not isinstance(v, (dict, list)) for v in row.values())
    with pytest.raises(TypeError, match="`kind`"):
        store.flat_rows(None)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_results_sweep_csv_json(sweep_dir, fmt, capsys):
    assert main(["results", "--out", str(sweep_dir), "--format", fmt]) == 0
    path = sweep_dir / f"sweep.{fmt}"
    assert "8 trial rows" in capsys.readouterr().out
    if fmt == "csv":
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = json.loads(path.read_text())
    expected = {r["key"]: r for r in ResultStore(sweep_dir / "sweep.sqlite").flat_rows("trial")}
    assert sorted(r["key"] for r in rows) == sorted(expected)
    for r in rows:
        assert float(r["result.final_train_loss"]) == pytest.approx(expected[r["key"]]["result.final_train_loss"],
                                                                    rel=1e-12)
        assert int(r["config.width"]) == expected[r["key"]]["config.width"]


def test_results_claims_and_kind_choice(claims_dir, sweep_dir, tmp_path, capsys):
    to = tmp_path / "x" / "claims.json"
    assert main(["results", "--out", str(claims_dir), "--format", "json", "--to", str(to)]) == 0
    rows = json.loads(to.read_text())
    assert len(rows) == 1 and rows[0]["name"] == "variance_onset.toy_model.exponent"
    assert rows[0]["status"] == "passed" and rows[0]["mode"] == "quick" and isinstance(rows[0]["value"], float)
    # both stores in one folder: --kind picks
    (claims_dir / "sweep.sqlite").write_bytes((sweep_dir / "sweep.sqlite").read_bytes())
    with pytest.raises(SystemExit) as e:
        main(["results", "--out", str(claims_dir)])
    assert e.value.code == 2 and "--kind claims or --kind sweep" in capsys.readouterr().err
    assert main(["results", "--out", str(claims_dir), "--kind", "sweep", "--to", "-"]) == 0
    assert len(list(csv.DictReader(capsys.readouterr().out.splitlines()))) == 8


@pytest.mark.parametrize("argv, says", [
    (["--out", "{tmp}/missing"], "must be an existing folder"),
    (["--out", "{tmp}"], "holds neither results.sqlite"),
    (["--out", "{sweep}", "--kind", "claims"], "--kind claims: no results.sqlite"),
    (["--out", "{sweep}", "--to", "{sweep}"], "must be a file name"),
    (["--out", "{sweep}", "--format", "parquet", "--to", "-"], "parquet cannot be written to stdout"),
    (["--out", "{sweep}", "--format", "xlsx"], "invalid choice"),
])
def test_results_usage_errors(argv, says, sweep_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path / "empty", sweep=sweep_dir) for a in argv]
    with pytest.raises(SystemExit) as e:
        main(["results", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "usage: lmech results" in err


def test_to_dataframe_and_parquet(sweep_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    store = ResultStore(sweep_dir / "sweep.sqlite")
    df = store.to_dataframe("trial")
    assert len(df) == 8 and {"key", "status", "config.width", "result.final_train_loss"} <= set(df.columns)
    assert sorted(df["config.width"].unique().tolist()) == [64, 128]
    assert list(store.to_dataframe("nothing_here").columns) == ["key", "status", "created", "updated"]
    pytest.importorskip("pyarrow")
    assert main(["results", "--out", str(sweep_dir), "--format", "parquet", "--to", str(tmp_path / "t.parquet")]) == 0
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["result.final_train_loss"].tolist() == pytest.approx(df["result.final_train_loss"].tolist())


def test_missing_pandas_is_a_clear_message(sweep_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=r"lmech\[pandas\]"):
        ResultStore(sweep_dir / "sweep.sqlite").to_dataframe("trial")
    with pytest.raises(SystemExit) as e:
        main(["results", "--out", str(sweep_dir), "--format", "parquet"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--format parquet needs pandas and pyarrow" in err and "--format csv" in err
    assert main(["results", "--out", str(sweep_dir), "--format", "csv"]) == 0  # csv needs no pandas
