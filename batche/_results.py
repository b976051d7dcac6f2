"""Checking what the wrapped function returned, and shaping what a call returns.

A function that returns a numpy array gets an array back from every call, hits or not.
What its arrays look like (dtype, shape of a row) is its *template*: an empty array
like its results, learned from the first result it computes, and written beside its
entries in a store outside the process, so that a new process whose every item is a hit
stacks its answers the same way.
"""

from __future__ import annotations

import collections.abc as cabc
import sys
from typing import Any, Final

from ._errors import BatchResultError

__all__ = ["SHAPE_SUFFIX", "UNKNOWN", "assemble", "is_array", "result_rows"]

_SAME_LENGTH = "batch function must return a list of predictions of the same length as the batch"

#: the key of the template beside a function's entries: ``namespace:version:`` + this
#: (never a digest, so never an item's key)
SHAPE_SUFFIX: Final = "array-shape"


class _Unknown:
    """The template of a function that has returned nothing yet (lists until told)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<UNKNOWN>"


UNKNOWN: Final[Any] = _Unknown()


def is_array(obj: Any) -> bool:
    """True for a numpy array (without importing numpy when nobody else has)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def result_rows(out: Any, expected: int, fname: str, names: str) -> tuple[list[Any], Any]:
    """The per-item results of one call, and its template: an empty array like ``out``
    when it is one, None for a list.

    Rows of a 2-D (or higher) array are copied: the cache must not share memory with an
    array the caller of the function also holds.
    """
    if is_array(out):
        if out.ndim == 0:
            raise BatchResultError(
                f"{fname} returned a 0-d array for {expected} items of {names}; {_SAME_LENGTH}"
            )
        rows = list(out) if out.ndim == 1 else [row.copy() for row in out]
        template = out[:0].copy()
    elif type(out) is list:
        rows, template = out, None
    elif (
        _unordered(out)
        or isinstance(out, (str, bytes, bytearray, cabc.Mapping))
        or not hasattr(out, "__len__")
    ):
        why = "a set has no order to match the items by; " if _unordered(out) else ""
        raise BatchResultError(
            f"{fname} returned {type(out).__name__}, not a list of {expected} results for "
            f"{names}; {why}{_SAME_LENGTH}"
        )
    else:
        rows, template = list(out), None
    if len(rows) != expected:
        raise BatchResultError(
            f"{fname} returned {len(rows)} results for {expected} items of {names}; {_SAME_LENGTH}"
        )
    return rows, template


def _unordered(out: Any) -> bool:
    """A set (a dict's keys or items keep their order: they are not refused)."""
    return isinstance(out, cabc.Set) and not isinstance(out, cabc.MappingView)


def assemble(values: list[Any], template: Any) -> Any:
    """The value a call returns: the list, or an array stacked like the function's.

    ``template`` is None for a function returning lists (UNKNOWN before it is known),
    an empty array shaped like its results when it returns arrays, or True when only
    its annotation says so.
    """
    if template is None or template is UNKNOWN:
        return values
    import numpy as np  # the function returns arrays, so numpy is loaded already

    if values:
        return np.stack(values)
    return template.copy() if isinstance(template, np.ndarray) else np.empty((0,))
