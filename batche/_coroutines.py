"""Telling async callables and generator functions apart; marking async wrappers as
coroutine functions."""

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


def generator_kind(func: Any) -> str | None:
    """'a generator function' or 'an async generator function' (also through partials),
    whose calls return an iterator, never the list a batch function returns; else None."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.isasyncgenfunction(func):
        return "an async generator function"
    if inspect.isgeneratorfunction(func):
        return "a generator function"
    return None


def func_name(func: Any) -> str:
    """The name of a function, or of a partial's function."""
    while isinstance(func, functools.partial):
        func = func.func
    return str(getattr(func, "__qualname__", type(func).__name__))


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
