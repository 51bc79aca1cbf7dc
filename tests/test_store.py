import multiprocessing as mp

import pytest

from lmech.store import ResultStore


def test_put_get_roundtrip_and_upsert(tmp_path):
    store = ResultStore(tmp_path / "a" / "r.sqlite")
    store.put("trial", "k1", "running", {"x": 1.5, "nan": float("nan")})
    rec = store.get("trial", "k1")
    assert rec.status == "running" and rec.payload == {"x": 1.5, "nan": None}
    store.put("trial", "k1", "done", {"x": 2})
    assert store.count("trial") == 1
    assert store.get("trial", "k1").payload == {"x": 2}
    assert store.get("trial", "missing") is None


def test_put_if_absent_never_duplicates(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    assert store.put_if_absent("t", "a", "s", {})
    assert not store.put_if_absent("t", "a", "s", {"other": 1})
    assert store.get("t", "a").payload == {}


def test_records_filter_and_delete(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    for i, st in enumerate(["done", "error", "done"]):
        store.put("t", f"k{i}", st, {"i": i})
    store.put("other", "k0", "done", {})
    assert store.keys("t", ["done"]) == {"k0", "k2"}
    assert store.kinds() == ["other", "t"]
    assert store.delete("t", "k0") == 1
    assert store.delete("t") == 2
    assert store.count("t") == 0


def test_rejects_memory_path():
    with pytest.raises(ValueError, match="path"):
        ResultStore(":memory:")


def _writer(path, start):
    store = ResultStore(path)
    for i in range(start, start + 50):
        store.put("t", f"k{i}", "done", {"i": i})


def test_concurrent_writers_from_processes(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s)) for s in (0, 25)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert ResultStore(path).count("t") == 75  # overlapping keys 25..49 written once each
