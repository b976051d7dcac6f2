"""A persistent store in one SQLite file: embedded, shared by the processes of a machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._checks import int_at_least, seconds
from .._errors import BatchConfigError
from .._results import SHAPE_SUFFIX
from ._base import RemoteStore, StoreError
from ._sqlite_pool import POOL_SIZE, Pool

__all__ = ["SQLiteStore", "is_batche_cache", "open_read_only", "summary"]

# A rowid table (not WITHOUT ROWID, which suits small rows only) on 16 KiB pages: an
# embedding of 1.5 KiB then fills pages instead of leaving most of each one empty.
_PAGE_SIZE = 16384
_TABLE = "batche_entries"
_COLUMNS = ("key", "value", "expires", "used")
# The expiry index is partial: entries without a ttl cost it nothing.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batche_entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batche_entries_used ON batche_entries (used);
CREATE INDEX IF NOT EXISTS batche_entries_expires ON batche_entries (expires)
    WHERE expires IS NOT NULL;
"""
_TEMPLATE = ":" + SHAPE_SUFFIX  # how the key of a row holding arrays' template ends
_CHUNK = 500  # keys per statement, well under SQLite's bound on parameters
# Every _PURGE_AFTER entries written, a write also deletes up to _PURGE_PER_ROW expired
# entries for each of them: expired entries go faster than new ones come, so they never
# pile up, no write pays for a sweep, and most writes skip the statement altogether.
_PURGE_AFTER = 256
_PURGE_PER_ROW = 2
# SQLite waits for a lock at most 2**31 - 1 ms; a longer timeout became no wait at all
_MAX_TIMEOUT = 2_147_483.647
_TIMEOUT = 30.0  # seconds an explicit reader (python -m batche stats) waits for a lock


def _open(path: Path, timeout: float) -> sqlite3.Connection:
    """A new connection to ``path`` in WAL mode, the file and its table made if missing;
    a lock held by another connection is waited for ``timeout`` seconds at most."""
    try:
        # check_same_thread=False: the pool hands a connection to one thread at a time
        connection = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # the page size of a new file; it cannot change once WAL is on
            connection.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except BaseException:
            connection.close()
            raise
    except sqlite3.OperationalError as exc:
        raise sqlite3.OperationalError(f"{exc}{_why_not(path)}") from exc
    return connection


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed whole, or rolled back whole."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _why_not(path: Path) -> str:
    """What the system says when it is asked for what a connection holds (SQLite does not
    tell): ``path`` opened, and two descriptors more (for its ``-wal`` and ``-shm``).

    Opening ``path`` alone could succeed where SQLite failed: with one descriptor free,
    SQLite opens the file and fails on the ``-wal``, then closes the file again.
    """
    descriptors: list[int] = []
    try:
        descriptors.append(os.open(path, os.O_RDONLY))
        descriptors.append(os.dup(descriptors[0]))
        descriptors.append(os.dup(descriptors[0]))
    except OSError as exc:
        return f": {exc.strerror}"
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    return ""


def open_read_only(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to an existing file (``mode=ro``: it is never created).

    SQLite may create the empty ``-wal`` and ``-shm`` files of a WAL database beside it
    (readers need them); the database file itself is left as it is.
    """
    # "file://" and an empty authority: a path starting "//" is not taken for a host
    uri = "file://" + quote(os.path.abspath(path)) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=_TIMEOUT, isolation_level=None)


def is_batche_cache(connection: sqlite3.Connection) -> bool:
    """True if the database holds batche's table (``sqlite3.DatabaseError``: not SQLite)."""
    columns = [row[1] for row in connection.execute(f"PRAGMA table_info({_TABLE})")]
    return all(column in columns for column in _COLUMNS)


def summary(connection: sqlite3.Connection) -> dict[str, Any]:
    """Entries, bytes and the entries of each namespace and version of a batche cache
    (the row of a namespace and version holding its arrays' template is not an entry)."""
    groups: dict[str, int] = {}
    total_bytes = 0
    for key, size in connection.execute("SELECT key, length(value) FROM batche_entries"):
        group, _, last = key.rpartition(":")
        if last == SHAPE_SUFFIX:
            continue
        groups[group] = groups.get(group, 0) + 1
        total_bytes += size
    return {"entries": sum(groups.values()), "bytes": total_bytes, "groups": groups}


class SQLiteStore(RemoteStore):
    """Results in a SQLite file, kept across runs and shared by processes on one machine.

    WAL mode: readers never wait for the writer, several processes may read and write at
    once, and a process killed mid-batch loses only that batch (each batch is one
    transaction; the file is never left corrupt). ``maxsize`` bounds the entries, evicting
    the least recently used; ``ttl`` (seconds) makes older entries misses, and writes
    delete expired entries as they go, so the file stops growing. The threads of a
    process share a pool of at most ``POOL_SIZE`` (8) connections, however many come and
    go; ``close()`` (or ``await aclose()``) closes them.

    Faults, as ``RedisStore``'s: a read or write that fails (a locked, unwritable or
    unopenable file) opens a circuit breaker, and for ``retry_after`` seconds calls skip
    the store (it is empty to them); then one call at a time tries it again. A lock held
    by another connection is waited for ``timeout`` seconds at most (SQLite's busy
    timeout), so a call pays at most that, once, and nothing while the store is skipped.
    Explicit operations (``clear``, ``delete_many``, ``len``, ``stats``) raise instead.

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
        *,
        timeout: float = 1.0,
        retry_after: float = 5.0,
    ) -> None:
        name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
        if not isinstance(name, str):  # os.fspath took None or 3 with a TypeError of its own
            raise BatchConfigError(
                f"SQLiteStore(): path must be a file name (a str or os.PathLike), got {path!r}"
            )
        where = f"SQLiteStore({name!r})"
        if name in ("", ":memory:"):
            # SQLite gives each connection a database of its own there: the pool's
            # connections would each hold a part of the cache, and close() would lose it.
            raise BatchConfigError(
                f"{where}: path must name a file; {name!r} gives each connection a database "
                "of its own, and the threads of a process share several connections: for "
                "one process, use an in-memory cache (maxsize=... or cache=LRUStore(...))"
            )
        super().__init__(serializer, on_store_error, where, retry_after=retry_after)
        if maxsize is not None and not int_at_least(maxsize, 1):
            raise BatchConfigError(f"{where}: maxsize must be None or an int >= 1, got {maxsize!r}")
        if not seconds(timeout) or timeout > _MAX_TIMEOUT:
            raise BatchConfigError(
                f"{where}: timeout must be a number of seconds > 0, got {timeout!r} (at "
                f"most {_MAX_TIMEOUT:,}: SQLite's busy timeout is an int of milliseconds)"
            )
        self.timeout = float(timeout)
        self.path = Path(path)
        self.maxsize = maxsize
        self.ttl = self._check_ttl(ttl)
        self._clock = time.time  # the time entries are stamped with (tests set their own)
        self._unpurged = 0  # entries written since expired ones were last deleted
        # A free connection is waited for as long as a lock, at most: operations take
        # milliseconds, and when all the connections wait for a lock the store is failing
        # (so a call pays at most a wait for a connection and a wait for the lock).
        self._pool = Pool(
            partial(_open, self.path, self.timeout), POOL_SIZE, self.timeout, where, path=self.path
        )
        try:
            with self._pool.connection():  # create the file and table now: a bad path fails here
                pass
        except sqlite3.Error as exc:
            self._pool.close()
            raise StoreError(f"{where}: could not open the file: {exc}") from exc

    # -- sync --------------------------------------------------------------------------

    errors = (sqlite3.Error,)

    # get_many and set_many are RemoteStore's: through the circuit breaker, to these.

    def _read_rows(self, keys: Sequence[str]) -> list[tuple[str, bytes]]:
        with self._pool.connection() as connection:
            return self._select(connection, keys)

    def _write_rows(self, encoded: list[tuple[str, bytes]]) -> None:
        with self._pool.connection() as connection:
            self._write(connection, encoded)

    def _select(
        self, connection: sqlite3.Connection, keys: Sequence[str]
    ) -> list[tuple[str, bytes]]:
        now = self._clock()
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
            # recency for eviction: one transaction per batch of hits (in autocommit mode
            # each row's UPDATE would be a transaction of its own, three times slower)
            hit = [(now, key) for key, _ in rows]
            with _transaction(connection):
                connection.executemany("UPDATE batche_entries SET used = ? WHERE key = ?", hit)
        return rows

    def _write(self, connection: sqlite3.Connection, encoded: list[tuple[str, bytes]]) -> None:
        now = self._clock()
        expires = None if self.ttl is None else now + self.ttl
        with _transaction(connection):
            # Threads may race on the count: a lost update only delays a purge.
            self._unpurged += len(encoded)
            if self._unpurged >= _PURGE_AFTER:
                limit, self._unpurged = _PURGE_PER_ROW * self._unpurged, 0
                # expired entries, whoever wrote them, found through the expiry index
                connection.execute(
                    "DELETE FROM batche_entries WHERE rowid IN (SELECT rowid FROM "
                    "batche_entries WHERE expires <= ? LIMIT ?)",
                    (now, limit),
                )
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

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._pool.connection() as connection:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                connection.execute(
                    f"DELETE FROM batche_entries WHERE key IN ({','.join('?' * len(chunk))})",  # noqa: S608
                    chunk,
                )

    def clear(self, prefix: str | None = None) -> int:
        """Remove the entries whose key starts with ``prefix`` (all: None); the number
        removed (the arrays' templates go too, and are not entries)."""
        prefix = prefix or ""
        with self._pool.connection() as connection, _transaction(connection):
            # the arrays' templates go too, but are not entries: not counted
            connection.execute(
                "DELETE FROM batche_entries WHERE substr(key, 1, ?) = ? AND substr(key, ?) = ?",
                (len(prefix), prefix, -len(_TEMPLATE), _TEMPLATE),
            )
            cursor = connection.execute(
                "DELETE FROM batche_entries WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            )
            return int(cursor.rowcount)

    def __len__(self) -> int:
        """The entries: a count of the table (its arrays' templates are not entries)."""
        with self._pool.connection() as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM batche_entries WHERE substr(key, ?) != ?",
                (-len(_TEMPLATE), _TEMPLATE),
            ).fetchone()
        return int(count)

    def stats(self) -> dict[str, Any]:
        """Entries, bytes and the entries of each namespace and version."""
        with self._pool.connection() as connection:
            return summary(connection)

    def close(self) -> None:
        """Close the store's connections (it opens new ones if it is used again).

        A connection in use by another thread is closed when that thread is done with it.
        """
        self._pool.close()

    # -- async: the same work on a worker thread, so the event loop never blocks ----------

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.get_many, keys)

    async def aset_many(self, mapping: Mapping[str, Any]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.set_many, mapping)

    async def adelete_many(self, keys: Sequence[str]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.delete_many, keys)

    async def aclear(self, prefix: str | None = None) -> int:
        return await asyncio.get_running_loop().run_in_executor(None, self.clear, prefix)

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop (closing may checkpoint the WAL)."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, maxsize={self.maxsize}, ttl={self.ttl})"
