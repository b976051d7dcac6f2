"""What items cost (``cost=``), and chunks of misses sized by count and by cost.

Pure functions: the cache's engine calls ``cost`` once per distinct item of a call and
cuts its misses into chunks of at most ``max_batch_size`` items and ``max_batch_cost``
total cost, in order of first appearance (greedily: a chunk closes when the next item
would not fit; an item that alone costs more than the budget goes alone).
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from ._errors import BatchArgumentError
from ._inflight import Flight
from ._instructions import Call
from ._store_access import StoreAccess

__all__ = [
    "CallCosts", "bad_cost", "checked_sum", "cost_bounds", "distinct_costs", "first_bad_cost",
    "total_cost",
]  # fmt: skip


class CallCosts(StoreAccess):
    """With ``cost=``: what a call's items cost, its chunks, and ``cost_paid``/``cost_saved``."""

    def saved_by_hits(
        self, cost: Callable[[Any], Any], keys: Sequence[Hashable], items: Sequence[Any]
    ) -> None:
        """A call whose every item hit saved its whole cost."""
        where = (self.fname, self.shown_names)
        _, saved = distinct_costs(cost, keys, items, self.items_are_keys, where, table=False)
        with self._lock:
            self.cost_saved += saved

    def plan_costs(
        self, cost: Callable[[Any], Any], call: Call
    ) -> tuple[Callable[[list[Hashable]], list[tuple[int, int]]] | None, float]:
        """Cost the call's items (kept in ``call.costs``): the chunker of its misses when
        ``max_batch_cost`` bounds them, and the cost of the whole call."""
        where = (self.fname, self.shown_names)
        table, total = distinct_costs(cost, call.keys, call_items(call), self.items_are_keys, where)
        call.costs = costs = table
        budget = None if self.api is None else self.api.max_batch_cost
        if budget is None or costs is None:
            return None, total
        size = self.max_batch_size
        return (lambda keys: cost_bounds(keys, costs, size, budget)), total

    def saved_by_claim(
        self, costs: dict[Hashable, float], total: float, mine: list[Flight]
    ) -> None:
        """Count as saved the cost of the call (``total``) but what it sends itself."""
        sent: float = 0
        for flight in mine:
            early = flight.early
            sent += sum(costs[key] for key in flight.keys if key not in early)
        with self._lock:
            self.cost_saved += total - sent

    def paid(self, call: Call, keys: list[Hashable]) -> float:
        """The cost of ``keys`` (0 without ``cost=``), counted as paid."""
        if call.costs is None:
            return 0
        paid = total_cost(call.costs, keys)
        with self._lock:
            self.cost_paid += paid
        return paid


def call_items(call: Call) -> Sequence[Any]:
    """The items of a call by position (tuples of the batch parameters when several)."""
    if len(call.seqs) == 1:
        return call.seqs[0]
    return list(zip(*call.seqs))


def distinct_costs(
    cost: Callable[[Any], Any],
    keys: Sequence[Hashable],
    items: Sequence[Any],
    items_are_keys: bool,
    where: tuple[str, str],
    *,
    table: bool = True,
) -> tuple[dict[Hashable, float] | None, float]:
    """``cost(item)`` of each distinct key of a call, called once per key on the item at
    its first position, and the cost of every position together. The table of costs by
    key is None when not asked for (``table``) and not needed to sum the positions.
    ``where`` (the function, the batch's names) is for errors."""
    if items_are_keys:
        distinct: dict[Hashable, Any] = dict.fromkeys(keys)
        values = list(map(cost, distinct))
    else:
        # Each key's earliest position: walking backwards, the earliest is written last.
        distinct = dict(zip(reversed(keys), reversed(range(len(keys)))))
        values = [cost(items[position]) for position in distinct.values()]
    total = checked_sum(values)
    if total is None:
        bad = first_bad_cost(values)
        key = list(distinct)[bad]
        position = distinct[key] if not items_are_keys else list(keys).index(key)
        raise bad_cost(where, position, items[position], values[bad])
    if not table and len(values) == len(keys):
        return None, total
    costs = dict(zip(distinct, values))
    if len(values) != len(keys):  # a repeated key costs at each of its positions
        total = total_cost(costs, keys)
    return costs, total


def checked_sum(values: list[Any]) -> Any:
    """The sum of ``values``, or None when one is not a finite number >= 0, or is a bool
    (one sum, one min and one pass over the types, in C)."""
    try:
        total = sum(values)
        if (
            math.isfinite(total)
            and (not values or min(values) >= 0)
            and _bools().isdisjoint(map(type, values))
        ):
            return total
    except TypeError:
        pass
    return None


def first_bad_cost(values: list[Any]) -> int:
    """The index of the first value that is not a finite number >= 0 or is a bool (or
    the last, when only their sum is not finite)."""
    bools = _bools()
    for index, value in enumerate(values):
        if (
            type(value) in bools
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            return index
    return len(values) - 1


def _bools() -> frozenset[type]:
    """``bool`` and numpy's (a True that sums as 1 is a bug of the cost function, not a cost)."""
    np = sys.modules.get("numpy")
    return _BOOL if np is None else frozenset((bool, np.bool_))


_BOOL: frozenset[type] = frozenset((bool,))


def _kind(value: Any) -> str:
    """What is wrong with a cost, in a word or two."""
    if type(value) in _bools():
        return "a bool"
    if value is None:
        return "None"
    if not isinstance(value, numbers.Real):
        return f"a {type(value).__name__}"
    if value != value:  # NaN, the value unequal to itself
        return "NaN"
    return "an infinite number" if not math.isfinite(value) else "a negative number"


def bad_cost(where: tuple[str, str], position: int, item: Any, value: Any) -> BatchArgumentError:
    """The error of a call whose ``cost=`` returned ``value`` for ``item`` at ``position``."""
    shown = repr(item)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return BatchArgumentError(
        f"{where[0]}: cost= returned {value!r} for item {position} of {where[1]} ({shown}); "
        f"it must return a finite number >= 0, not {_kind(value)}"
    )


def total_cost(costs: dict[Hashable, float], keys: Sequence[Hashable]) -> float:
    """The cost of ``keys``, each position counted (a repeated key as often as it is)."""
    return sum(map(costs.__getitem__, keys))


def cost_bounds(
    keys: Sequence[Hashable],
    costs: dict[Hashable, float],
    max_size: int | None,
    max_cost: float,
) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``keys``: at most ``max_size`` keys and at most
    ``max_cost`` in total, except a key that alone costs more, which goes alone."""
    size = max_size or len(keys) or 1
    bounds = []
    start = 0
    spent = 0.0
    for index, value in enumerate(map(costs.__getitem__, keys)):
        if index > start and (index - start >= size or spent + value > max_cost):
            bounds.append((start, index))
            start, spent = index, 0.0
        spent += value
    if keys:
        bounds.append((start, len(keys)))
    return bounds
