"""A bounded pool of connections to one SQLite file, shared by the threads of a process."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable

__all__ = ["POOL_SIZE", "Pool"]

log = logging.getLogger("batche")

#: Most connections a store holds open at once: concurrent readers in WAL mode, each
#: holding two files (the database and its -wal), whatever the number of threads.
POOL_SIZE = 8


def _close_each(connections: list[sqlite3.Connection]) -> None:
    closing = connections[:]
    connections.clear()
    for connection in closing:
        connection.close()


class Pool:
    """At most ``size`` connections, each used by one thread at a time.

    A connection per thread would cost two files for every thread that ever touched the
    store, and threads come and go (each ``asyncio.run`` makes its own executor threads).
    Here an operation checks a connection out and puts it back: the last one put back is
    the next one handed out, so a quiet process uses one connection. When no connection
    is free and all ``size`` are open, the operation waits for one, at most ``timeout``.
    A connection that cannot be opened while others are (a process short of file
    descriptors) is logged once and given up: the pool goes on with the ones it has.
    """

    def __init__(
        self,
        open_: Callable[[], sqlite3.Connection],
        size: int,
        timeout: float,
        where: str,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._open_ = open_
        self.size = size
        self.timeout = timeout
        self.where = where
        # The file the connections are to: checked before each use (one stat), since a
        # connection to a file deleted or replaced meanwhile would go on using the old
        # one for good, apart from every process that opens the path afresh.
        self._path = path
        self._fresh_state()

    def _fresh_state(self) -> None:
        # Guards every attribute below; _free is notified when a connection or a place to
        # open one is given back.
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._idle: list[sqlite3.Connection] = []  # last in, first out: a warm connection
        self._places = self.size  # connections that may still be opened
        self._waiting = 0  # threads waiting on _free
        self._opened = 0
        self._shrunk = False  # a connection could not be opened (logged once)
        # Bumped by close(): a connection checked out before is closed when put back.
        self._generation = 0
        self._file: tuple[int, int] | None = None  # (device, inode) the connections hold
        self._finalizer = weakref.finalize(self, _close_each, self._idle)
        _POOLS.add(self)

    def connection(self) -> _Lease:
        """A connection of this thread's own until the ``with`` block ends."""
        return _Lease(self)

    def _identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file at the path now; None when there is none."""
        try:
            status = os.stat(self._path)  # type: ignore[arg-type]
        except OSError:
            return None
        return status.st_dev, status.st_ino

    def _check_file(self) -> None:
        """Close the connections if the file they hold is no longer the one at the path."""
        now = self._identity()
        with self._lock:
            held, self._file = self._file, now
            # retired under the same lock: a thread that finds the new file never takes
            # an idle connection to the old one
            closing = self._retire() if held is not None and now != held else None
        if closing is not None:
            log.warning(
                "%s: the file was deleted or replaced while open; opening the one at the "
                "path now (created afresh if missing)", self.where,
            )  # fmt: skip
            _close_each(closing)  # the busy ones are closed when put back

    def _take(self) -> sqlite3.Connection:
        if self._path is not None:
            self._check_file()
        deadline = None
        while True:
            with self._lock:
                while not self._idle and not self._places:
                    if deadline is None:
                        deadline = time.monotonic() + self.timeout
                    left = deadline - time.monotonic()
                    self._waiting += 1
                    try:
                        woken = left > 0 and self._free.wait(left)
                    finally:
                        self._waiting -= 1
                    if not woken:
                        raise sqlite3.OperationalError(
                            f"no connection free after {self.timeout} s ({self.size} in use)"
                        )
                if self._idle:
                    return self._idle.pop()
                self._places -= 1
            try:
                connection = self._open_()
            except sqlite3.Error as exc:
                with self._lock:
                    others = self._opened
                    if others:  # give this place up: wait for one of those instead
                        self.size -= 1
                        first, self._shrunk = not self._shrunk, True
                    else:
                        self._places += 1
                        if self._waiting:
                            self._free.notify()
                if not others:
                    raise
                if first:
                    log.warning(
                        "%s: could not open another connection (%s); going on with the %d "
                        "open (further ones are not logged)", self.where, exc, others,
                    )  # fmt: skip
                continue
            identity = None if self._path is None else self._identity()
            with self._lock:
                self._opened += 1
                if self._file is None:
                    self._file = identity
            return connection

    def _put_back(self, connection: sqlite3.Connection, generation: int) -> None:
        with self._lock:
            if self._waiting:
                self._free.notify()
            # A connection left inside a transaction (a ROLLBACK that failed) is not reused;
            # one taken before close() is closed, so that close() leaves nothing open.
            if generation == self._generation and not connection.in_transaction:
                self._idle.append(connection)
                return
            self._opened -= 1
            self._places += 1
        connection.close()

    def close(self) -> None:
        """Close the idle connections now, the busy ones when they are put back."""
        with self._lock:
            closing = self._retire()
        _close_each(closing)

    def _retire(self) -> list[sqlite3.Connection]:
        """The idle connections, taken out to be closed (the lock held); the busy ones are
        closed when put back."""
        self._generation += 1
        closing = self._idle[:]
        self._idle.clear()
        self._opened -= len(closing)
        self._places += len(closing)
        return closing

    def _after_fork(self) -> None:
        """In a child process: start afresh, never touching the parent's connections."""
        # SQLite forbids using or closing a connection a child inherited: keep them
        # referenced forever, so that nothing closes them, and open new ones.
        _INHERITED.append(self._idle)
        self._finalizer.detach()
        self._fresh_state()


class _Lease:
    """``with pool.connection() as connection``: a connection checked out, then put back."""

    __slots__ = ("connection", "generation", "pool")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def __enter__(self) -> sqlite3.Connection:
        self.generation = self.pool._generation  # read first: see Pool._put_back
        self.connection = self.pool._take()
        return self.connection

    def __exit__(self, *exc_info: object) -> None:
        self.pool._put_back(self.connection, self.generation)


_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()
_INHERITED: list[list[sqlite3.Connection]] = []


def _forget_inherited() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_inherited)
