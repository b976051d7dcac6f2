"""Reading and writing the stores of a decorated function, and counting what it did.

A store outside the process (SQLite, Redis) is read and written through the driver
(``StoreIO``); the in-memory store, and the in-memory layer in front of a store outside
the process, directly. Calls whose every item hit are counted without the lock.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import repeat
from typing import Any, NamedTuple

from ._instructions import Engine, StoreIO
from ._local import ExpiringLayer
from ._plan import MISS, Plan
from ._results import assemble
from ._state import CoreState
from .stores._base import StoreError


class CacheInfo(NamedTuple):
    """Counts of one decorated function, per item (``functools.lru_cache``'s names first).

    ``misses`` counts items sent to the function; ``hits`` every other item asked for,
    so ``hits + misses`` is the number of items asked for. ``joined`` counts the items
    (of ``hits``) answered by joining a computation another caller had in flight (in
    this process, or under another process's lease with ``lock=True``).

    ``currsize`` is the number of entries of an in-memory store. For a store outside the
    process it is ``len(store)`` (every entry of the store, not only this function's)
    when the store says counting is cheap (``store.len_is_cheap``), else None: a count
    that scans a whole Redis keyspace or a SQLite table is never made on the way. It is
    None too when the store cannot be counted now (unreachable, failing, or skipped after
    a failure): ``cache_info()`` never raises for a store's fault, and costs at most one
    round trip's deadline (none while the store is skipped).

    With ``cost=``, ``cost_paid`` is the cost of the misses and ``cost_saved`` that of
    the hits (joined ones included); both stay 0 without it.
    """

    hits: int
    misses: int
    maxsize: int | None
    currsize: int | None
    joined: int = 0
    cost_paid: float = 0
    cost_saved: float = 0


class StoreAccess(CoreState):
    """The reads and writes of the stores, and the counts: ``cache_info``, clearing."""

    def _read_remote(self, keys: Sequence[Hashable], values: list[Any] | None) -> Engine:
        """Fill ``values`` (None: nothing found yet) from the store outside the process."""
        if values is None:
            wanted = list(dict.fromkeys(keys))
        else:
            wanted = list(dict.fromkeys(k for k, v in zip(keys, values) if v is MISS))
        found = yield from self.read_remote(wanted)
        if not found:
            return values
        if self.store is not None:  # the in-memory layer keeps what was read
            self.store.put(list(found), list(found.values()))
        return list(map(found.get, keys, values if values is not None else repeat(MISS)))

    def _present(self, keys: list[Hashable]) -> Engine:
        """What the store holds of ``keys`` (one outside the process: through the driver)."""
        if self.remote is not None:
            return (yield from self.read_remote(keys))
        return self.store.get_many(keys)  # type: ignore[union-attr]

    def _keep(self, todo_plan: Plan, keys: list[Hashable], rows: list[Any]) -> Engine:
        """Store the checked results of ``keys``: outside the process, then in memory."""
        local = self.store
        since = None
        if self.remote is not None:
            if isinstance(local, ExpiringLayer):
                since = local.clock()  # before the write: expire here no later than there
            yield from self.store_io("set_many", self.remote_entries(keys, rows))
        if local is None:
            return
        order = todo_plan.write_order(keys)
        if order is not keys:
            chunk = dict(zip(keys, rows))
            keys, rows = order, list(map(chunk.__getitem__, order))
        if isinstance(local, ExpiringLayer):
            local.put(keys, rows, since)
        else:
            local.put(keys, rows)

    def _all_hits(self, values: list[Any]) -> Any:
        """The answer of a call whose every item was found (counted without the lock)."""
        log = self._hit_log
        log.append(len(values))
        if len(log) > 4096:
            self._fold_hits()
        return values if self.template is None else assemble(values, self.template)

    def _fold_hits(self) -> None:
        """Move the logged hit counts into ``hits``."""
        log = self._hit_log
        with self._lock:
            count = len(log)
            self.hits += sum(log[:count])
            del log[:count]  # entries appended meanwhile stay, after these

    def cache_info(self) -> CacheInfo:
        self._fold_hits()
        with self._lock:
            hits, misses, joined = self.hits, self.misses, self.joined
            paid, saved = self.cost_paid, self.cost_saved
        remote = self.remote
        if remote is None:  # then the in-memory store is the store
            store: Any = self.store
            return CacheInfo(hits, misses, store.maxsize, len(store), joined, paid, saved)
        size = _cheap_count(remote) if getattr(remote, "len_is_cheap", False) else None
        return CacheInfo(hits, misses, getattr(remote, "maxsize", None), size, joined, paid, saved)

    def clearing(self) -> Engine:
        """Empty the stores of this function's entries, then reset the counts.

        For a store outside the process: only this function's namespace and version.
        """
        if self.store is not None:
            self.store.clear()
        if self.remote is not None:
            assert self.encoder is not None
            prefix = f"{self.encoder.namespace}:{self.encoder.version}:"
            yield from self._outside("cache_clear()", "clear", prefix)
        self._fold_hits()
        with self._lock:
            self.hits = self.misses = self.joined = 0
            self.cost_paid = self.cost_saved = 0

    def dropping(self, keys: Sequence[Hashable]) -> Engine:
        """Delete ``keys`` from the store outside the process (``invalidate``)."""
        yield from self._outside("invalidate()", "delete_many", keys)

    def _outside(self, operation: str, method: str, *args: Any) -> Engine:
        """``method`` of the store outside the process, for ``operation``: a failure is a
        ``StoreError`` naming this function (an invalidation that silently failed would
        leave stale results behind)."""
        try:
            return (yield StoreIO(self.remote, method, *args))
        except Exception as exc:
            raise self._store_error(operation, exc) from exc

    def _store_error(self, operation: str, exc: Exception) -> StoreError:
        detail = str(exc)
        if not isinstance(exc, StoreError):  # its message names the store already
            detail = f"{type(self.remote).__name__}: {type(exc).__name__}: {exc}"
        return StoreError(f"{self.fname}: {operation} failed: {detail}")


def _cheap_count(remote: Any) -> int | None:
    """``len(remote)``; None when the store cannot say now (a dashboard reads "unknown",
    never a failure, and never 0 for a store that may hold millions of entries)."""
    count_or_none = getattr(remote, "count_or_none", None)  # RedisStore's: skipped -> None
    try:
        return count_or_none() if count_or_none is not None else len(remote)
    except Exception:  # noqa: BLE001 - any fault of the store: its size is unknown
        return None
