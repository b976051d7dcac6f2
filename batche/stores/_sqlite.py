"""A persistent store in one SQLite file: embedded, shared by the processes of a machine."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._checks import int_at_least
from .._errors import BatchConfigError
from ._base import RemoteStore

__all__ = ["SQLiteStore"]

# A rowid table (not WITHOUT ROWID, which suits small rows only) on 16 KiB pages: an
# embedding of 1.5 KiB then fills pages instead of leaving most of each one empty.
_PAGE_SIZE = 16384
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batche_entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batche_entries_used ON batche_entries (used);
"""
_CHUNK = 500  # keys per statement, well under SQLite's bound on parameters


def _close_all(connections: list[sqlite3.Connection], lock: threading.Lock) -> None:
    with lock:
        closing = list(connections)
        connections.clear()
    for connection in closing:
        connection.close()


class SQLiteStore(RemoteStore):
    """Results in a SQLite file, kept across runs and shared by processes on one machine.

    WAL mode: readers never wait for the writer, several processes may read and write at
    once, and a process killed mid-batch loses only that batch (each batch is one
    transaction; the file is never left corrupt). ``maxsize`` bounds the entries, evicting
    the least recently used; ``ttl`` (seconds) makes older entries misses.

    Example::

        @cache_batch_variable("texts", cache=SQLiteStore("embeddings.db"))
        def embed(texts: list[str]) -> list[list[float]]: ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        maxsize: int | None = None,
        ttl: float | None = None,
        serializer: Any = "safe",
        on_store_error: str = "compute",
    ) -> None:
        where = f"SQLiteStore({os.fspath(path)!r})"
        super().__init__(serializer, on_store_error, where)
        if maxsize is not None and not int_at_least(maxsize, 1):
            raise BatchConfigError(f"{where}: maxsize must be None or an int >= 1, got {maxsize!r}")
        self.path = Path(path)
        self.maxsize = maxsize
        self.ttl = self._check_ttl(ttl)
        # One connection per thread, each used only by its thread. All of them are also
        # listed, so that close() (or the store being garbage-collected) closes them all.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()  # guards _connections
        self._finalizer = weakref.finalize(
            self, _close_all, self._connections, self._connections_lock
        )
        self._connect()  # create the file and schema now: a bad path fails here

    def _connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so that close() may close it from any thread
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            with self._connections_lock:
                self._connections.append(connection)
            # the page size of a new file; it cannot change once WAL is on
            connection.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            self._local.connection = connection
        return connection

    # -- sync --------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        try:
            rows = self._select(keys)
        except sqlite3.Error as exc:
            self._failed("read", exc)
            return {}
        self._succeeded()
        return self._decoded(rows)

    def _select(self, keys: Sequence[str]) -> list[tuple[str, bytes]]:
        connection = self._connect()
        now = time.time()
        rows: list[tuple[str, bytes]] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            rows.extend(
                connection.execute(
                    f"SELECT key, value FROM batche_entries WHERE key IN ({marks})"  # noqa: S608 - placeholders only
                    " AND (expires IS NULL OR expires > ?)",
                    (*chunk, now),
                ).fetchall()
            )
        if rows and self.maxsize is not None:
            # recency for eviction: one statement per batch of hits
            hit = [(now, key) for key, _ in rows]
            connection.executemany("UPDATE batche_entries SET used = ? WHERE key = ?", hit)
        return rows

    def set_many(self, mapping: Mapping[str, Any]) -> None:
        encoded = [(key, self.serializer.dumps(value)) for key, value in mapping.items()]
        try:
            self._write(encoded)
        except sqlite3.Error as exc:
            self._failed("write", exc)
            return
        self._succeeded()

    def _write(self, encoded: list[tuple[str, bytes]]) -> None:
        connection = self._connect()
        now = time.time()
        expires = None if self.ttl is None else now + self.ttl
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT OR REPLACE INTO batche_entries (key, value, expires, used) "
                "VALUES (?, ?, ?, ?)",
                [(key, data, expires, now) for key, data in encoded],
            )
            if self.maxsize is not None:
                (count,) = connection.execute("SELECT COUNT(*) FROM batche_entries").fetchone()
                if count > self.maxsize:
                    connection.execute(
                        "DELETE FROM batche_entries WHERE key IN (SELECT key FROM "
                        "batche_entries ORDER BY used LIMIT ?)",
                        (count - self.maxsize,),
                    )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def delete_many(self, keys: Sequence[str]) -> None:
        connection = self._connect()
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            connection.execute(
                f"DELETE FROM batche_entries WHERE key IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk,
            )

    def clear(self, prefix: str | None = None) -> None:
        connection = self._connect()
        if prefix is None:
            connection.execute("DELETE FROM batche_entries")
        else:
            connection.execute(
                "DELETE FROM batche_entries WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            )

    def __len__(self) -> int:
        (count,) = self._connect().execute("SELECT COUNT(*) FROM batche_entries").fetchone()
        return int(count)

    def stats(self) -> dict[str, Any]:
        """Entries, bytes and the entries of each namespace and version."""
        connection = self._connect()
        groups: dict[str, int] = {}
        total_bytes = 0
        for key, size in connection.execute(
            "SELECT key, length(value) FROM batche_entries"
        ).fetchall():
            group = key.rsplit(":", 1)[0]
            groups[group] = groups.get(group, 0) + 1
            total_bytes += size
        return {"entries": sum(groups.values()), "bytes": total_bytes, "groups": groups}

    def close(self) -> None:
        """Close every connection (the store opens new ones if it is used again)."""
        _close_all(self._connections, self._connections_lock)
        self._local = threading.local()

    # -- async: the same work on a worker thread, so the event loop never blocks ----------

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.get_many, keys)

    async def aset_many(self, mapping: Mapping[str, Any]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.set_many, mapping)

    async def adelete_many(self, keys: Sequence[str]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.delete_many, keys)

    async def aclear(self, prefix: str | None = None) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.clear, prefix)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, maxsize={self.maxsize}, ttl={self.ttl})"
