"""The in-memory layer in front of a store outside the process (``local_maxsize``).

Before a store without a ``ttl`` it is an LRU (``LRUStore``). Before a store whose entries
expire it must never serve an entry the store has already dropped, so it is an LRU whose
entries expire too (``ExpiringLayer``): an entry this process wrote lives ``ttl`` from the
moment before its write was sent, on the store's own clock when it has one (SQLite's wall
clock), so it expires no later than the store's copy. An entry read from the store is
not kept: its age is unknown, and ``ttl`` counted from the read could serve it up to
``ttl`` after the store expired it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Union

from ._plan import MISS
from .stores._memory import LRUStore, MemoryStore

__all__ = ["ExpiringLayer", "LocalLayer", "local_layer"]

#: Redis keeps an entry a whole number of milliseconds (``PX``, rounded down): the layer
#: lets its entries go this much earlier than the ``ttl`` itself
_MARGIN = 0.001


class ExpiringLayer:
    """An LRU of at most ``maxsize`` entries that expire by ``clock`` (thread-safe)."""

    def __init__(self, maxsize: int, ttl: float, clock: Callable[[], float]) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        #: the clock deadlines are measured on (the store's, when it has one)
        self.clock = clock
        # key -> (deadline, value), least recently used first
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()  # guards _data; held for in-memory work only

    def lookup(self, keys: Sequence[Hashable]) -> tuple[list[Any] | None, bool]:
        """Every key's value (MISS where absent or expired), or None when none was
        found; and whether every key was found (``MemoryStore.lookup``'s contract)."""
        if not keys:
            return [], True
        now = self.clock()
        values: list[Any] = []
        found = 0
        with self._lock:
            data = self._data
            for key in keys:
                entry = data.get(key)
                if entry is None:
                    values.append(MISS)
                elif entry[0] <= now:
                    del data[key]  # the store has dropped it, or is about to
                    values.append(MISS)
                else:
                    data.move_to_end(key)
                    values.append(entry[1])
                    found += 1
        if not found:
            return None, False
        return values, found == len(keys)

    def put(
        self, keys: Sequence[Hashable], values: Sequence[Any], since: float | None = None
    ) -> None:
        """Keep ``values`` written to the store after ``since`` (on ``clock``), in order.

        Without ``since`` (values read from the store, of unknown age) nothing is kept.
        """
        if since is None:
            return
        deadline = since + self.ttl - _MARGIN
        with self._lock:
            data = self._data
            for key, value in zip(keys, values):
                data[key] = (deadline, value)
                data.move_to_end(key)
            while len(data) > self.maxsize:
                data.popitem(last=False)

    def delete_many(self, keys: Iterable[Hashable]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


LocalLayer = Union[MemoryStore, ExpiringLayer]


def local_layer(store: Any, maxsize: int) -> LocalLayer:
    """The in-memory layer of ``maxsize`` entries in front of ``store``."""
    ttl = getattr(store, "ttl", None)
    if ttl is None:
        return MemoryStore(LRUStore(maxsize))
    # SQLiteStore stamps its entries with its own clock (tests set theirs): the same one
    # then tells when they expire here. Redis expires on the server: our monotonic clock.
    return ExpiringLayer(maxsize, ttl, getattr(store, "_clock", time.monotonic))
