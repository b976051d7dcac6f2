"""In-process stores: a fast LRU mapping, and the adapter batche uses for any mapping."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict, deque
from collections.abc import (
    Callable,
    Hashable,
    ItemsView,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from itertools import compress, islice, repeat
from operator import is_not
from typing import Any

from .._checks import int_at_least
from .._errors import BatchConfigError
from .._plan import MISS, has_miss

__all__ = ["LRUStore", "MemoryStore"]


class LRUStore(MutableMapping[Hashable, Any]):
    """A mapping of at most ``maxsize`` entries that evicts the least recently used.

    It behaves as ``cachetools.LRUCache`` does, operation by operation: reading an entry
    (``store[key]``, ``get``, ``pop``, ``setdefault``) or writing it makes it the most
    recent; a write to a full store first evicts the least recent (``popitem``); with
    ``getsizeof``, ``maxsize`` bounds the sum of the sizes (``currsize``) and a value
    larger than ``maxsize`` is refused with ``ValueError``, as is any value when
    ``maxsize`` is 0 (through the decorator, ``maxsize=0`` simply caches nothing).

    Looking the entries over never reorders them and never fails while the store is
    written to: iteration, ``keys()``, ``values()``, ``items()``, ``dict(store)``,
    ``==``, ``copy.copy`` and pickling read a snapshot, least recent first.

    It is built on the C ``OrderedDict`` so that batche can look a whole batch up at C
    speed. Not thread-safe on its own: batche guards it with a lock.
    """

    def __init__(self, maxsize: int, getsizeof: Callable[[Any], int] | None = None) -> None:
        if not int_at_least(maxsize, 0):
            raise BatchConfigError(f"LRUStore: maxsize must be an int >= 0, got {maxsize!r}")
        if getsizeof is not None and not callable(getsizeof):
            raise BatchConfigError(f"LRUStore: getsizeof must be callable, got {getsizeof!r}")
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._maxsize = maxsize
        #: the size of each entry, with ``getsizeof`` (None: each entry counts 1)
        self._sizes: dict[Hashable, int] | None = None if getsizeof is None else {}
        self._currsize = 0
        self._getsizeof = getsizeof

    def getsizeof(self, value: Any) -> int:
        """The size of an entry's value: 1, unless ``getsizeof`` was given."""
        return 1 if self._getsizeof is None else self._getsizeof(value)

    @property
    def maxsize(self) -> int:
        """The most entries (with ``getsizeof``: the largest total size) the store keeps."""
        return self._maxsize

    @property
    def currsize(self) -> int:
        """The entries (with ``getsizeof``: their total size) the store holds now."""
        return len(self._data) if self._sizes is None else self._currsize

    def __getitem__(self, key: Hashable) -> Any:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        data, sizes = self._data, self._sizes
        if sizes is not None:
            self._set_sized(key, value, sizes)
            return
        if self._maxsize == 0:
            raise ValueError("value too large")
        if key in data:
            data[key] = value
            data.move_to_end(key)
            return
        while len(data) >= self._maxsize:
            data.popitem(last=False)
        data[key] = value

    def _set_sized(self, key: Hashable, value: Any, sizes: dict[Hashable, int]) -> None:
        """``__setitem__`` with ``getsizeof``: ``cachetools.Cache``'s arithmetic."""
        size = self.getsizeof(value)
        if size > self._maxsize:
            raise ValueError("value too large")
        if size < 0:
            raise ValueError("value size must be non-negative")
        grows = size - sizes.get(key, 0)
        while self._currsize + grows > self._maxsize:
            self.popitem()  # may evict the key itself: it then grows by its whole size
            grows = size - sizes.get(key, 0)
        self._data[key] = value
        self._data.move_to_end(key)
        sizes[key] = size
        self._currsize += grows

    def __delitem__(self, key: Hashable) -> None:
        del self._data[key]
        if self._sizes is not None:
            self._currsize -= self._sizes.pop(key)

    def popitem(self) -> tuple[Hashable, Any]:
        """Remove and return the least recently used entry."""
        if not self._data:
            raise KeyError("LRUStore is empty")
        key, value = self._data.popitem(last=False)
        if self._sizes is not None:
            self._currsize -= self._sizes.pop(key)
        return key, value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Hashable]:
        # A snapshot: reading entries while iterating (dict(store) does) cannot fail.
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def items(self) -> ItemsView[Hashable, Any]:
        return _Items(self)

    def clear(self) -> None:
        self._data.clear()
        if self._sizes is not None:
            self._sizes.clear()
            self._currsize = 0

    def __copy__(self) -> LRUStore:
        copy = LRUStore.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._data = self._data.copy()
        copy._sizes = None if self._sizes is None else dict(self._sizes)
        return copy

    def __repr__(self) -> str:
        return f"LRUStore(maxsize={self._maxsize}, currsize={self.currsize})"

    def _lookup(self, keys: Sequence[Hashable]) -> tuple[list[Any] | None, bool]:
        """``MemoryStore.lookup`` for this store, touching each hit in order."""
        data = self._data
        try:
            values = list(map(data.__getitem__, keys))
        except KeyError:
            pass
        else:
            deque(map(data.move_to_end, keys), 0)
            return values, True
        if _all_new(data, keys):
            return None, False
        values = list(map(data.get, keys, repeat(MISS)))
        deque(map(data.move_to_end, compress(keys, map(is_not, values, repeat(MISS)))), 0)
        return values, False

    def _put(self, keys: Sequence[Hashable], values: Sequence[Any]) -> None:
        """Write ``values[i]`` under ``keys[i]`` in order, then evict down to maxsize.

        An LRU's contents are its ``maxsize`` most recently used keys, so writing the
        whole batch and trimming the oldest once ends exactly where writing one entry
        at a time would (``cachetools.LRUCache``'s order), at C speed. With sizes, one
        at a time; a value too large for the store is not cached.
        """
        if self._maxsize == 0:
            return
        if self._sizes is not None:
            for key, value in zip(keys, values):
                with contextlib.suppress(ValueError):
                    self[key] = value
            return
        data = self._data
        before = len(data)
        data.update(zip(keys, values))
        if len(data) - before != len(keys):
            # Some keys were there already: update() left them in place; a write makes
            # an entry the most recent.
            deque(map(data.move_to_end, keys), 0)
        overflow = len(data) - self._maxsize
        if overflow > 0:
            deque(map(data.__delitem__, list(islice(data, overflow))), 0)


class _Values(ValuesView[Any]):
    """``LRUStore.values()``: read without touching, from a snapshot."""

    _mapping: LRUStore

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._mapping._data.values()))


class _Items(ItemsView[Hashable, Any]):
    """``LRUStore.items()``: read without touching, from a snapshot."""

    _mapping: LRUStore

    def __iter__(self) -> Iterator[tuple[Hashable, Any]]:
        return iter(list(self._mapping._data.items()))

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        key, value = item
        data = self._mapping._data
        if key not in data:
            return False
        found = data[key]
        return found is value or bool(found == value)


def _all_new(data: Mapping[Hashable, Any], keys: Sequence[Hashable]) -> bool:
    """True when no key is in ``data`` (a batch of new items)."""
    return bool(keys) and keys[0] not in data and not any(map(data.__contains__, keys))


class MemoryStore:
    """Any ``MutableMapping`` (dict, ``LRUStore``, ``cachetools`` caches) as a batche store.

    Reads and writes go through one lock unless the mapping is a plain ``dict``, whose
    single operations are atomic in CPython; ``cachetools`` caches reorder themselves on
    reads and are not thread-safe on their own.
    """

    def __init__(self, mapping: MutableMapping[Hashable, Any]) -> None:
        if not isinstance(mapping, MutableMapping):  # else every call would fail on it
            raise BatchConfigError(
                f"MemoryStore(): mapping must be a MutableMapping (dict, LRUStore, a "
                f"cachetools cache), got {type(mapping).__name__}"
            )
        self.mapping = mapping
        # Guards every access to a mapping that is not a plain dict; held only for the
        # in-memory reads and writes of one batch, never while the function runs.
        self._lock = threading.Lock()
        if type(mapping) is dict:
            self.lookup = self._lookup_dict
        elif type(mapping) is LRUStore:
            self._lru_lookup = mapping._lookup
            self.lookup = self._lookup_lru
        else:
            self.lookup = self._lookup_mapping

    @property
    def maxsize(self) -> int | None:
        """The mapping's bound, when it has one."""
        maxsize = getattr(self.mapping, "maxsize", None)
        return maxsize if isinstance(maxsize, int) else None

    # A lookup returns the value of every key (MISS where absent), or None when no key
    # was found; and whether every key was found. The fast paths learn both for free,
    # and a batch of new items costs one C pass instead of two.

    def _lookup_dict(self, keys: Sequence[Hashable]) -> tuple[list[Any] | None, bool]:
        mapping = self.mapping
        try:
            # All hits is the path worth having fast: one C loop, no per-item test.
            return list(map(mapping.__getitem__, keys)), True
        except KeyError:
            pass
        if _all_new(mapping, keys):
            return None, False
        return list(map(mapping.get, keys, repeat(MISS))), False

    def _lookup_lru(self, keys: Sequence[Hashable]) -> tuple[list[Any] | None, bool]:
        with self._lock:
            return self._lru_lookup(keys)

    def _lookup_mapping(self, keys: Sequence[Hashable]) -> tuple[list[Any] | None, bool]:
        with self._lock:
            values = list(map(self.mapping.get, keys, repeat(MISS)))
        return values, not has_miss(values)

    def get_many(self, keys: Iterable[Hashable]) -> dict[Hashable, Any]:
        """The entries found for ``keys``; absent keys are left out."""
        keys = list(keys)
        values, _ = self.lookup(keys)
        if values is None:
            return {}
        return {k: v for k, v in zip(keys, values) if v is not MISS}

    def set_many(self, mapping: Mapping[Hashable, Any]) -> None:
        """Store every entry of ``mapping``, in its order."""
        self.put(list(mapping), list(mapping.values()))

    def put(self, keys: Sequence[Hashable], values: Sequence[Any]) -> None:
        """Store ``values[i]`` under ``keys[i]``, in order."""
        target = self.mapping
        if type(target) is dict:
            target.update(zip(keys, values))
            return
        if type(target) is LRUStore:
            with self._lock:
                target._put(keys, values)
            return
        with self._lock:
            for key, value in zip(keys, values):
                try:
                    target[key] = value
                except ValueError:
                    # cachetools refuses an entry larger than its maxsize ("value too
                    # large"): such an entry is simply not cached.
                    continue

    def delete_many(self, keys: Iterable[Hashable]) -> None:
        """Remove the entries of ``keys``; absent keys are ignored."""
        with self._lock:
            for key in keys:
                self.mapping.pop(key, None)

    def clear(self, prefix: str | None = None) -> int:
        """Remove every entry (with ``prefix``: the string keys that start with it); the
        number removed."""
        with self._lock:
            if prefix is None:
                removed = len(self.mapping)
                self.mapping.clear()
                return removed
            keys = [k for k in self.mapping if isinstance(k, str) and k.startswith(prefix)]
            for key in keys:
                self.mapping.pop(key, None)
            return len(keys)

    def __len__(self) -> int:
        return len(self.mapping)

    # The store protocol's async twins: in-memory work never blocks, so they just run it.

    async def aget_many(self, keys: Sequence[Hashable]) -> dict[Hashable, Any]:
        return self.get_many(keys)

    async def aset_many(self, mapping: Mapping[Hashable, Any]) -> None:
        self.set_many(mapping)

    async def adelete_many(self, keys: Sequence[Hashable]) -> None:
        self.delete_many(keys)

    async def aclear(self, prefix: str | None = None) -> int:
        return self.clear(prefix)
