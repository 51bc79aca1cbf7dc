"""Embedded results store (SQLite, standard library only).

One table of JSON records keyed by ``(kind, key)``: claims use ``kind="claim"`` with keys
``"<mode>/<seed>/<name>"``; sweeps use their own kinds. Each write is its own committed
transaction, so a process killed at any point loses at most the unit of work in flight,
and a rerun sees every finished unit exactly once (the primary key forbids duplicates).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmech._json import jsonable

__all__ = ["ResultStore", "Record"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    status  TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_kind_status ON records(kind, status);
"""


@dataclass(frozen=True)
class Record:
    kind: str
    key: str
    status: str
    payload: dict[str, Any]
    created: float
    updated: float


class ResultStore:
    """A SQLite file of JSON records.

    Parameters
    ----------
    path : str or Path
        Database file; parent folders are created. ``":memory:"`` is not supported
        (every call opens its own connection so the store is safe across processes).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if str(path) == ":memory:":
            raise ValueError("`path` must be a file path; ':memory:' cannot be shared between connections")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60.0)
        try:
            con.execute("PRAGMA synchronous=NORMAL")
            with con:  # commits, or rolls back on exception
                yield con
        finally:
            con.close()

    # ------------------------------------------------------------------ writes
    def put(self, kind: str, key: str, status: str, payload: dict[str, Any]) -> None:
        """Insert or replace one record (atomic)."""
        text = json.dumps(jsonable(payload), allow_nan=False)
        now = time.time()
        with self._connect() as con:
            con.execute(
                "INSERT INTO records(kind, key, status, payload, created, updated) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(kind, key) DO UPDATE SET status=excluded.status, payload=excluded.payload, "
                "updated=excluded.updated",
                (kind, key, status, text, now, now),
            )

    def put_if_absent(self, kind: str, key: str, status: str, payload: dict[str, Any]) -> bool:
        """Insert a record unless the key exists; return True if inserted."""
        text = json.dumps(jsonable(payload), allow_nan=False)
        now = time.time()
        with self._connect() as con:
            cur = con.execute(
                "INSERT OR IGNORE INTO records(kind, key, status, payload, created, updated) VALUES (?,?,?,?,?,?)",
                (kind, key, status, text, now, now),
            )
            return cur.rowcount == 1

    def delete(self, kind: str, key: str | None = None) -> int:
        """Delete one record, or every record of ``kind`` when ``key`` is None."""
        with self._connect() as con:
            if key is None:
                return con.execute("DELETE FROM records WHERE kind=?", (kind,)).rowcount
            return con.execute("DELETE FROM records WHERE kind=? AND key=?", (kind, key)).rowcount

    # ------------------------------------------------------------------ reads
    def get(self, kind: str, key: str) -> Record | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT kind, key, status, payload, created, updated FROM records WHERE kind=? AND key=?",
                (kind, key),
            ).fetchone()
        return None if row is None else _record(row)

    def records(self, kind: str, statuses: Iterable[str] | None = None) -> list[Record]:
        """All records of ``kind`` (optionally only those with a status in ``statuses``), oldest first."""
        query = "SELECT kind, key, status, payload, created, updated FROM records WHERE kind=?"
        args: list[Any] = [kind]
        if statuses is not None:
            sts = list(statuses)
            query += f" AND status IN ({','.join('?' * len(sts))})"
            args += sts
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY created, key", args).fetchall()
        return [_record(r) for r in rows]

    def keys(self, kind: str, statuses: Iterable[str] | None = None) -> set[str]:
        return {r.key for r in self.records(kind, statuses)}

    def count(self, kind: str) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,)).fetchone()[0])

    def kinds(self) -> list[str]:
        with self._connect() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT kind FROM records ORDER BY kind")]


def _record(row: tuple[Any, ...]) -> Record:
    return Record(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])
