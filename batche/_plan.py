"""Pure split and merge: which items of a batch are hits, which distinct keys to compute.

No I/O and no locks here; the sync and async drivers of the decorator share these
functions, so the order and dedup rules live in one place. The loops run in C
(``map``, ``compress``, ``dict.fromkeys``): planning costs about a dict operation per item.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from itertools import compress, repeat
from operator import is_
from typing import Any, Final

__all__ = ["MISS", "Plan", "has_miss", "plan"]


class _Miss:
    """The marker of an item not found in a store (``None`` is a valid cached result)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<MISS>"

    def __reduce__(self) -> str:
        return "MISS"


MISS: Final[Any] = _Miss()


def has_miss(values: Sequence[Any]) -> bool:
    """True when a value is MISS (by identity: ``==`` is unsafe on arrays)."""
    return any(map(is_, values, repeat(MISS)))


class Plan:
    """The misses of one lookup, and how to merge their results back in."""

    __slots__ = ("_missing", "_rank", "distinct", "keys", "todo", "values")

    def __init__(
        self,
        keys: Sequence[Hashable],
        values: list[Any] | None,
        distinct: dict[Hashable, None],
        missing: list[Hashable] | None,
    ) -> None:
        #: the key of every position of the batch
        self.keys = keys
        #: the value found for every position (MISS where absent); None when nothing
        #: was found and no key repeats, so the results are the answer as they come
        self.values = values
        #: distinct missing keys in order of first appearance: what the function gets
        self.todo = list(distinct)
        #: the same keys as a dict, for membership tests
        self.distinct = distinct
        self._missing = missing
        self._rank: dict[Hashable, int] | None = None

    @property
    def whole(self) -> bool:
        """True when the function computes every position of the batch, in order."""
        return self.values is None

    def firsts(self) -> list[int]:
        """For each key of ``todo``, the position where it first appears."""
        if self.values is None:
            return list(range(len(self.keys)))
        positions = list(compress(range(len(self.values)), map(is_, self.values, repeat(MISS))))
        if self._missing is not None and len(self._missing) == len(self.todo):
            return positions
        # A key repeats. Walking backwards, its earliest position is written last.
        missing = list(map(self.keys.__getitem__, positions))
        earliest = dict(zip(reversed(missing), reversed(positions)))
        return list(map(earliest.__getitem__, self.todo))

    def write_order(self, keys: list[Hashable]) -> list[Hashable]:
        """``keys`` (part of ``todo``) in the order a store should receive them.

        A repeated item was used last where it last appears; an LRU store that receives
        the keys in order of last appearance ends as if every position had been written
        (batche 0.1.1 wrote them all), so eviction picks the same victims.
        """
        missing = self._missing
        if missing is None or len(missing) == len(self.todo):
            return keys
        if self._rank is None:
            # Made once per call, not per chunk: with max_batch_size a batch of n items
            # is written in n / max_batch_size chunks, and a rank per chunk made writing
            # quadratic. A repeated key keeps the index of its last appearance.
            self._rank = dict(zip(missing, range(len(missing))))
        return sorted(keys, key=self._rank.__getitem__)

    def merge(self, found: Mapping[Hashable, Any]) -> list[Any]:
        """Every position's value: found for the misses, as looked up for the hits."""
        if self.values is None:
            return list(map(found.__getitem__, self.keys))
        return list(map(found.get, self.keys, self.values))


def plan(keys: Sequence[Hashable], values: list[Any] | None) -> Plan:
    """Plan the misses of ``values``, looked up for ``keys`` (None: none was found)."""
    if values is None:
        distinct = dict.fromkeys(keys)
        if len(distinct) == len(keys):
            return Plan(keys, None, distinct, None)
        values = [MISS] * len(keys)
        missing = list(keys)
    else:
        missing = list(compress(keys, map(is_, values, repeat(MISS))))
        distinct = dict.fromkeys(missing)
    return Plan(keys, values, distinct, missing)
