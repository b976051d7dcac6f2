"""Isolating the items (or requests) that make a batch fail: the halving engine.

When the function raises an exception that ``isolate=`` matches on a set of items, the
set is split in halves and the function called on each, recursively, until every item
has a result or has failed on its own. One bad item among n costs at most
``2 * ceil(log2(n)) + 1`` calls. The same generator runs under the sync and the async
driver, for the cache (sets of keys) and for ``dynamically`` (sets of requests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._errors import BatchItemsError
from ._instructions import Engine
from ._results import assemble

__all__ = ["Failed", "halving", "outcome"]

T = TypeVar("T")


class Failed:
    """What an item that failed on its own gets instead of a result (never stored)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def halving(
    items: list[T],
    attempt: Callable[[list[T]], Engine],
    accept: Callable[[list[T], Any], Engine],
    reject: Callable[[T, Exception], None],
    isolates: Callable[[BaseException], bool] | None,
) -> Engine:
    """Call ``attempt`` on ``items``; where it raises an exception ``isolates`` matches,
    on each half in turn (first half first), down to single items.

    ``accept(part, out)`` takes what a successful attempt returned (its errors are not
    isolated, nor is anything but an ``Exception``: cancellation and exits propagate);
    ``reject(item, exc)`` takes each item that failed alone, as soon as it has.
    """
    todo = [items]
    while todo:
        part = todo.pop()
        try:
            out = yield from attempt(part)
        except Exception as exc:
            if isolates is None or not isolates(exc):
                raise
            if len(part) == 1:
                reject(part[0], exc)
            else:
                middle = (len(part) + 1) // 2
                todo += (part[middle:], part[:middle])
            continue
        yield from accept(part, out)


def outcome(
    values: list[Any], template: Any, where: tuple[str, str], return_exceptions: bool
) -> Any:
    """The answer of a call whose values may hold ``Failed`` items: the answer as usual
    when none did; else the list with each exception in place (``return_exceptions``),
    or ``BatchItemsError`` raised. ``where`` (the function, the batch's names) is for
    the message."""
    positions = [index for index, value in enumerate(values) if value.__class__ is Failed]
    if not positions:
        return assemble(values, template)
    results = list(values)
    errors: dict[int, BaseException] = {}
    for index in positions:
        errors[index] = results[index] = values[index].error
    if return_exceptions:
        return results
    shown = "; ".join(f"position {i}: {_describe(errors[i])}" for i in positions[:3])
    more = f"; and {len(positions) - 3} more" if len(positions) > 3 else ""
    raise BatchItemsError(
        f"{where[0]}: {len(positions)} of {len(values)} items of {where[1]} failed on their "
        f"own ({shown}{more}); "
        + (
            "the others have their results in .results"
            if len(positions) < len(values)
            else "none has a result"
        ),
        errors,
        results,
    ) from errors[positions[0]]


def _describe(error: BaseException) -> str:
    text = str(error)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
