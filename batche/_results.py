"""Checking what the wrapped function returned, and shaping what a call returns."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ._errors import BatchResultError

_SAME_LENGTH = "batch function must return a list of predictions of the same length as the batch"


def result_rows(out: Any, expected: int, fname: str, names: str) -> tuple[list[Any], Any]:
    """The per-item results of one call, and an empty array like them when ``out`` is one.

    Rows of a 2-D (or higher) array are copied: the cache must not share memory with an
    array the caller of the function also holds.
    """
    np = sys.modules.get("numpy")
    if np is not None and isinstance(out, np.ndarray):
        if out.ndim == 0:
            raise BatchResultError(
                f"{fname} returned a 0-d array for {expected} items of {names}; {_SAME_LENGTH}"
            )
        rows = list(out) if out.ndim == 1 else [row.copy() for row in out]
        template = out[:0].copy()
    elif type(out) is list:
        rows, template = out, None
    elif isinstance(out, (str, bytes, bytearray, Mapping)) or not hasattr(out, "__len__"):
        raise BatchResultError(
            f"{fname} returned {type(out).__name__}, not a list of {expected} results for "
            f"{names}; {_SAME_LENGTH}"
        )
    else:
        rows, template = list(out), None
    if len(rows) != expected:
        raise BatchResultError(
            f"{fname} returned {len(rows)} results for {expected} items of {names}; {_SAME_LENGTH}"
        )
    return rows, template


def assemble(values: list[Any], template: Any) -> Any:
    """The value a call returns: the list, or an array stacked like the function's.

    ``template`` is None for a function returning lists, an empty array shaped like its
    last result when it returned an array, or True when only its annotation says so.
    """
    if template is None:
        return values
    import numpy as np  # the function returns arrays, so numpy is loaded already

    if values:
        return np.stack(values)
    return template.copy() if isinstance(template, np.ndarray) else np.empty((0,))
