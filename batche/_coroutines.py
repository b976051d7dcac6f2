"""Telling async callables apart, and marking batche's async wrappers as coroutine functions."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any

_ASYNC_MARK = "_batche_is_async"


def is_async_callable(func: Any) -> bool:
    """True for ``async def`` functions, partials of them, and batche's async wrappers."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func) or getattr(func, _ASYNC_MARK, False) is True:
        return True
    # an object whose __call__ is an async def (not a function, not a class)
    if inspect.isroutine(func) or isinstance(func, type) or not callable(func):
        return False
    return inspect.iscoroutinefunction(type(func).__call__)


def mark_coroutine_function(obj: Any) -> None:
    """Let batche, ``inspect.iscoroutinefunction`` (3.12+) and ``asyncio``'s see an async
    wrapper (libraries such as ``batched`` ask ``asyncio.iscoroutinefunction``)."""
    setattr(obj, _ASYNC_MARK, True)
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(obj)
    legacy = getattr(asyncio.coroutines, "_is_coroutine", None)  # removed in Python 3.14
    if legacy is not None:
        obj._is_coroutine = legacy
