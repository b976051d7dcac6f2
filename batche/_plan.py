"""Pure split and merge: which items of a batch are hits, which distinct keys to compute.

No I/O and no locks here; the sync and async drivers of the decorator share these
functions, so the order and dedup rules live in one place.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from itertools import compress, repeat
from operator import is_
from typing import Any, Final

__all__ = ["MISS", "Plan", "merge", "plan"]


class _Miss:
    """The marker of an item not found in a store (``None`` is a valid cached result)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<MISS>"

    def __reduce__(self) -> str:
        return "MISS"


MISS: Final[Any] = _Miss()


class Plan:
    """The misses of one lookup: their positions, and the distinct keys to compute."""

    __slots__ = ("firsts", "positions", "recency", "todo")

    def __init__(
        self,
        positions: list[int],
        todo: list[Hashable],
        firsts: list[int],
        recency: dict[Hashable, int] | None = None,
    ) -> None:
        #: positions of the batch whose value is missing, in order
        self.positions = positions
        #: distinct missing keys in order of first appearance
        self.todo = todo
        #: for each key of ``todo``, the position where it first appears
        self.firsts = firsts
        #: when a key repeats: each key's rank by its last appearance, the order in which
        #: an LRU store must receive them to end as if every position had been written
        self.recency = recency

    def write_order(self, keys: list[Hashable]) -> list[Hashable]:
        """``keys`` (part of ``todo``) in the order a store should receive them."""
        if self.recency is None:
            return keys
        return sorted(keys, key=self.recency.__getitem__)


def plan(keys: Sequence[Hashable], values: Sequence[Any]) -> Plan:
    """Plan the misses of ``values`` (looked up for ``keys``; ``MISS`` where absent)."""
    # map/compress run in C: the planning cost per item stays near a dict lookup.
    positions = list(compress(range(len(values)), map(is_, values, repeat(MISS))))
    missing = list(map(keys.__getitem__, positions))
    todo = list(dict.fromkeys(missing))
    if len(todo) == len(missing):
        return Plan(positions, todo, positions)
    # Duplicates: the first position of each key. Walking backwards, the earliest
    # position is the last one written for its key.
    earliest = dict(zip(reversed(missing), reversed(positions)))
    latest = dict(zip(missing, positions))
    return Plan(positions, todo, list(map(earliest.__getitem__, todo)), latest)


def merge(
    values: list[Any], keys: Sequence[Hashable], positions: list[int], found: Mapping[Hashable, Any]
) -> list[Any]:
    """Fill the missing ``positions`` of ``values`` with the results ``found`` for their keys."""
    if len(positions) == len(values):
        return list(map(found.__getitem__, keys))
    for position in positions:
        values[position] = found[keys[position]]
    return values
