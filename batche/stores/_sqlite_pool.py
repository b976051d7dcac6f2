"""A bounded pool of connections to one SQLite file, shared by the threads of a process."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Optional

__all__ = ["POOL_SIZE", "Pool"]

log = logging.getLogger("batche")

#: Most connections a store holds open at once: concurrent readers in WAL mode, each
#: holding two files (the database and its -wal), whatever the number of threads.
POOL_SIZE = 8

# An idle connection, or None: a free place for one not opened yet (or closed since).
Slot = Optional[sqlite3.Connection]


def _close_idle(idle: queue.LifoQueue[Slot]) -> list[sqlite3.Connection]:
    """Take the idle connections out of ``idle``, leaving free places: the ones taken."""
    taken = []
    while True:
        try:
            taken.append(idle.get_nowait())
        except queue.Empty:
            break
    for _ in taken:
        idle.put(None)
    return [connection for connection in taken if connection is not None]


def _close_all_idle(idle: queue.LifoQueue[Slot]) -> None:
    for connection in _close_idle(idle):
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
        self, open_: Callable[[], sqlite3.Connection], size: int, timeout: float, where: str
    ) -> None:
        self._open_ = open_
        self.size = size
        self.timeout = timeout
        self.where = where
        self._idle: queue.LifoQueue[Slot] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)
        # Guards _opened, size, _shrunk, _generation and the emptying of _idle in close().
        self._lock = threading.Lock()
        self._opened = 0
        self._shrunk = False  # a connection could not be opened (logged once)
        # Bumped by close(): a connection checked out before is closed when put back.
        self._generation = 0
        self._finalizer = weakref.finalize(self, _close_all_idle, self._idle)
        _POOLS.add(self)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of this thread's own until the ``with`` block ends."""
        generation = self._generation  # read first: see _put_back
        connection = self._take()
        try:
            yield connection
        finally:
            self._put_back(connection, generation)

    def _take(self) -> sqlite3.Connection:
        while True:
            try:
                connection = self._idle.get(timeout=self.timeout)
            except queue.Empty:
                raise sqlite3.OperationalError(
                    f"no connection free after {self.timeout} s ({self.size} in use)"
                ) from None
            if connection is not None:
                return connection
            try:
                connection = self._open_()
            except sqlite3.Error as exc:
                with self._lock:
                    others = self._opened
                    if others:  # give this place up: wait for one of those instead
                        self.size -= 1
                        first, self._shrunk = not self._shrunk, True
                if not others:
                    self._idle.put(None)
                    raise
                if first:
                    log.warning(
                        "%s: could not open another connection (%s); going on with the %d "
                        "open (further ones are not logged)", self.where, exc, others,
                    )  # fmt: skip
                continue
            with self._lock:
                self._opened += 1
            return connection

    def _put_back(self, connection: sqlite3.Connection, generation: int) -> None:
        with self._lock:
            # A connection left inside a transaction (a ROLLBACK that failed) is not reused;
            # one taken before close() is closed, so that close() leaves nothing open.
            if generation == self._generation and not connection.in_transaction:
                self._idle.put(connection)
                return
            self._opened -= 1
            self._idle.put(None)
        connection.close()

    def close(self) -> None:
        """Close the idle connections now, the busy ones when they are put back."""
        with self._lock:
            self._generation += 1
            closing = _close_idle(self._idle)
            self._opened -= len(closing)
        for connection in closing:
            connection.close()

    def _after_fork(self) -> None:
        """In a child process: start afresh, never touching the parent's connections."""
        # SQLite forbids using or closing a connection a child inherited: keep them
        # referenced forever, so that nothing closes them, and open new ones.
        _INHERITED.append(self._idle)
        self._finalizer.detach()
        self._lock = threading.Lock()
        self._idle = queue.LifoQueue()
        for _ in range(self.size):
            self._idle.put(None)
        self._opened = 0
        self._finalizer = weakref.finalize(self, _close_all_idle, self._idle)


_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()
_INHERITED: list[queue.LifoQueue[Slot]] = []


def _forget_inherited() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_inherited)
