"""Embedded results store (SQLite, standard library only), and the run lock of an output folder.

One table of JSON records keyed by ``(kind, key)``: claims use ``kind="claim"`` with keys
``"<mode>/<seed>/<name>"``; sweeps use their own kinds. Each write is its own committed
transaction, so a process killed at any point loses at most the unit of work in flight,
and a rerun sees every finished unit exactly once (the primary key forbids duplicates).

A store is marked as lmech's (SQLite ``application_id`` and ``user_version`` in the file
header) and created atomically (built under a temporary name, then linked into place), so a
file at the store's path is either a complete lmech store or something else. Opening one
that is zero-length, truncated, corrupt or foreign (another program's SQLite file, or not
SQLite at all) raises :class:`lmech._errors.StoreError` naming the file and what to do; it
is never silently replaced by a fresh store. Stores written before the mark existed are
recognised by their schema and marked on open.

:func:`run_lock` is an advisory lock (``fcntl.flock``) on ``<folder>/.lmech.lock`` held by
the process running into that folder: a second run is refused at once with the first one's
pid, command and start time. The kernel releases the lock when its holder dies, however it
dies, so a lock left by a dead process never blocks.
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmech._errors import StoreError
from lmech._json import jsonable

__all__ = ["ResultStore", "Record", "run_lock", "LOCK_NAME", "APPLICATION_ID", "SCHEMA_VERSION"]

APPLICATION_ID = 0x6C6D6563  # "lmec" in the SQLite header: this file is an lmech store
SCHEMA_VERSION = 1  # PRAGMA user_version of the schema below
_COLUMNS = ["kind", "key", "status", "payload", "created", "updated"]

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

    Raises
    ------
    StoreError
        The file exists but is not a usable lmech store (zero-length, truncated, corrupt,
        foreign, or from a newer lmech); also raised for database errors later on.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if str(path) == ":memory:":
            raise ValueError("`path` must be a file path; ':memory:' cannot be shared between connections")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create()
        self._check()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # ------------------------------------------------------------------ opening
    def _unusable(self, why: str) -> StoreError:
        return StoreError(
            f"{self.path} is not a usable lmech results store: {why}. Nothing was changed; move the file away "
            f"(e.g. `mv {self.path} {self.path}.bad`) to start afresh there, or choose another output folder (--out)")

    def _create(self) -> None:
        """Build a marked, empty store under a temporary name and link it into place."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            con = sqlite3.connect(tmp)
            try:
                con.executescript(_SCHEMA)
                con.execute(f"PRAGMA application_id={APPLICATION_ID}")
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                con.commit()
                con.execute("PRAGMA journal_mode=WAL")
            finally:
                con.close()
            try:
                os.link(tmp, self.path)  # atomic; fails if another process created the store first
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)

    def _check(self) -> None:
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise self._unusable(f"it cannot be read ({exc.strerror})") from None
        if size == 0:
            raise self._unusable("the file is empty (zero bytes)")
        try:
            with open(self.path, "rb") as fh:
                header = fh.read(16)
        except OSError as exc:
            raise self._unusable(f"it cannot be read ({exc.strerror})") from None
        if header != b"SQLite format 3\x00":
            raise self._unusable("it is not an SQLite database")
        try:
            con = sqlite3.connect(self.path, timeout=60.0)
            try:
                app_id = con.execute("PRAGMA application_id").fetchone()[0]
                version = con.execute("PRAGMA user_version").fetchone()[0]
                problems = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
                if problems != ["ok"]:
                    raise self._unusable(f"it is corrupt or truncated ({'; '.join(map(str, problems[:3]))})")
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                columns = [r[1] for r in con.execute("PRAGMA table_info(records)")]
                if app_id == APPLICATION_ID:
                    if version > SCHEMA_VERSION:
                        raise self._unusable(f"it was written by a newer lmech (schema {version}; this lmech "
                                             f"reads up to {SCHEMA_VERSION}); upgrade lmech")
                    if columns != _COLUMNS:
                        raise self._unusable("its records table is missing or has other columns")
                elif app_id == 0 and "records" in tables and columns == _COLUMNS:
                    # a store from before the mark: same schema; mark it so it is recognised from now on
                    with con:
                        con.execute(f"PRAGMA application_id={APPLICATION_ID}")
                        con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                else:
                    owner = f"application id {app_id:#x}" if app_id else f"tables {sorted(tables) or 'none'}"
                    raise self._unusable(f"it is an SQLite database of some other program ({owner})")
                con.execute("PRAGMA journal_mode=WAL")
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise self._unusable(f"SQLite cannot read it ({exc})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=60.0)
        except sqlite3.DatabaseError as exc:
            raise self._unusable(f"SQLite cannot open it ({exc})") from None
        try:
            con.execute("PRAGMA synchronous=NORMAL")
            with con:  # commits, or rolls back on exception
                yield con
        except sqlite3.OperationalError as exc:
            raise StoreError(f"results store {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # corrupt pages met after opening
            raise self._unusable(f"SQLite failed on it ({exc})") from None
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

    def flat_rows(self, kind: str) -> list[dict[str, Any]]:
        """One flat dict per record of ``kind`` (e.g. ``"claim"`` in ``results.sqlite``,
        ``"trial"`` in ``sweep.sqlite``), ordered by key.

        Columns: ``key``, ``status``, ``created``, ``updated`` (Unix seconds), then the payload
        with nested dicts flattened to dotted names (``config.width``,
        ``result.final_train_loss``) and lists or other nested values as JSON text. A payload
        field named like one of the four record columns is prefixed ``payload.``.
        """
        if not isinstance(kind, str):
            raise TypeError(f"`kind` must be a record kind string such as 'claim' or 'trial'; got {kind!r}")
        rows = []
        for rec in sorted(self.records(kind), key=lambda r: r.key):
            flat: dict[str, Any] = {}
            _flatten("", rec.payload, flat)
            row = {"key": rec.key, "status": rec.status, "created": rec.created, "updated": rec.updated}
            for k, v in flat.items():
                row[f"payload.{k}" if k in row else k] = v
            rows.append(row)
        return rows

    def to_dataframe(self, kind: str):
        """The records of ``kind`` as a pandas DataFrame, one row per record (see :meth:`flat_rows`).

        Needs pandas (the optional extra ``lmech[pandas]``); raises ImportError saying so when
        it is missing.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("ResultStore.to_dataframe needs pandas, which is not installed: "
                              "pip install 'lmech[pandas]' (or pip install pandas)") from None
        rows = self.flat_rows(kind)
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        return pd.DataFrame(rows, columns=list(columns) or ["key", "status", "created", "updated"])

    def kinds(self) -> list[str]:
        with self._connect() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT kind FROM records ORDER BY kind")]


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested dicts become dotted column names; lists and other non-scalars are JSON text."""
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = "{}"
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is None or isinstance(value, (str, bool, int, float)):
        out[prefix] = value
    else:
        out[prefix] = json.dumps(value, sort_keys=True, default=str)


def _record(row: tuple[Any, ...]) -> Record:
    return Record(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])


# --------------------------------------------------------------------------- run lock
LOCK_NAME = ".lmech.lock"
_HELD: dict[str, list[Any]] = {}  # resolved lock path -> [open file, depth] held by this process


def _describe_holder(text: str) -> str:
    try:
        info = json.loads(text)
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(info["started"])))
        return f"pid {info['pid']} on {info.get('host', '?')}, started {started}: {info.get('command', '?')}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not yet written its details"


@contextmanager
def run_lock(folder: str | os.PathLike[str], command: str | None = None) -> Iterator[Path]:
    """Hold the advisory run lock of ``folder`` (created) for the duration of the block.

    The lock is ``fcntl.flock`` on ``<folder>/.lmech.lock``; the file records the holder's
    pid, host, command and start time so that a refused run can say who holds it. The
    kernel drops the lock when the holding process dies (even by SIGKILL), so a lock file
    left behind by a dead process does not block. Re-entrant within one process (the
    command line holds it around a run that takes it again). Advisory: only lmech runs
    honour it, and ``flock`` may not work across hosts on some network file systems.

    Raises
    ------
    StoreError
        Another live process holds the lock (the message names it).
    """
    import fcntl
    import socket

    path = Path(folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield path
        finally:
            held[1] -= 1
        return
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block; not inherited by exec'd children
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            fh.close()
            raise
        fh.seek(0)
        holder = _describe_holder(fh.read())
        fh.close()
        raise StoreError(f"{Path(folder)} is in use by another lmech run ({holder}); wait for it to finish, stop "
                         f"it, or choose another output folder (--out)") from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                             "command": command or " ".join([os.path.basename(sys.argv[0] or "python"),
                                                             *sys.argv[1:]])}))
        fh.flush()
        _HELD[key] = [fh, 1]
        yield path
    finally:
        _HELD.pop(key, None)
        try:
            fh.seek(0)
            fh.truncate()  # the details go with the lock; the empty file is harmless
        except OSError:
            pass
        fh.close()  # releases the lock
