"""The decorated functions: ``CachedBatchFunction``, ``AsyncCachedBatchFunction``.

Each runs a call through its ``_Core`` (the engine) with the sync or the async driver,
and adds ``lru_cache``'s surface (``cache_info``, ``cache_clear``, ``__wrapped__``),
``invalidate`` and ``map``. Decorated methods bind to their instance as ``_Bound``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    MutableMapping,
)
from typing import Any, Generic, TypeVar

from ._by_reference import BoundByReference, ByReference
from ._core import _Core
from ._coroutines import mark_coroutine_function
from ._drivers import run_async, run_sync
from ._instructions import Call
from ._options import check_chunk_size
from ._store_access import CacheInfo
from .stores._base import Store
from .stores._memory import MemoryStore

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - exercised on 3.9 only
    from typing_extensions import ParamSpec

__all__ = ["AsyncCachedBatchFunction", "CachedBatchFunction"]

P = ParamSpec("P")
R = TypeVar("R")


class _Wrapper(ByReference):
    """What the sync and async decorated functions have in common."""

    _core: _Core
    __wrapped__: Callable[..., Any]

    def __init__(self, core: _Core) -> None:
        self._core = core
        functools.update_wrapper(self, core.func)  # type: ignore[arg-type]

    @property
    def cache(self) -> MutableMapping[Hashable, Any] | MemoryStore | Store:
        """The store, as passed with ``cache=`` (or made from ``maxsize``/``ttl``)."""
        return self._core.mapping

    def cache_info(self) -> CacheInfo:
        """Hits, misses (items sent to the function), maxsize and current size."""
        return self._core.cache_info()

    def cache_clear(self) -> None:
        """Empty the store of this function's entries and reset the counts.

        In memory an entry's key is the item (with the other arguments), nothing tells
        which function wrote it: a mapping passed with ``cache=`` to several functions
        holds entries they share, and it is emptied whole, for all of them (their counts
        are left alone). A SQLite or Redis store is cleared of this function's namespace
        and version only, as is its in-memory layer (``local_maxsize``, never shared).
        Raises ``StoreError`` (naming the function) when a store outside the process
        fails; the counts are then left as they were.
        """
        run_sync(self._core.clearing(), self._core.func)

    def invalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        """Drop the cached results of ``batch``'s items for these other arguments.

        The other arguments are given as in a call, without the batch; absent items are
        ignored. With several batch parameters, ``batch`` holds tuples of items. Raises
        ``StoreError`` when a store outside the process fails (stale results would stay).
        """
        core = self._core
        keys = core.invalidate(batch, args, kwargs)
        if core.remote is not None:
            run_sync(core.dropping(keys), core.func)

    def __repr__(self) -> str:
        return f"<cached batch function {self._core.fname[:-2]}>"

    # Pickled by reference, as functions and ``functools.lru_cache`` wrappers are: by the
    # name it has in its module. A process that loads it (a ProcessPoolExecutor or
    # multiprocessing worker) imports that module and uses its own cache; a copy is
    # the function itself, sharing its cache.

    def _referenced(self) -> tuple[Callable[..., Any], str]:
        return self._core.func, self._core.fname

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return _Bound(self, obj)


class CachedBatchFunction(_Wrapper, Generic[P, R]):
    """A sync batch function with a per-item cache (what ``cache_batch_variable`` returns)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        core = self._core
        call = core.begin(args, kwargs)
        if call.__class__ is not Call:
            return call  # type: ignore[no-any-return]
        engine = core.compute(call, core.thread_flights, inline=True)
        return run_sync(engine, core.func)  # type: ignore[no-any-return]

    def map(
        self, iterable: Iterable[Any], /, *args: Any, chunk_size: int = 256, **kwargs: Any
    ) -> Iterator[Any]:
        """Results for an iterable of any length, lazily and in order, a chunk at a time.

        Each chunk of ``chunk_size`` items is one cached call (with the other arguments
        as given, the batch left out); at most one chunk is held in memory.
        """
        for call_args, call_kwargs in self._core.chunks(iterable, chunk_size, args, kwargs):
            yield from self(*call_args, **call_kwargs)  # type: ignore[misc]


class AsyncCachedBatchFunction(_Wrapper, Generic[P, R]):
    """An async batch function with a per-item cache (what ``cache_batch_variable`` returns)."""

    def __init__(self, core: _Core) -> None:
        super().__init__(core)
        mark_coroutine_function(self)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        core = self._core
        call = core.begin(args, kwargs)
        if call.__class__ is not Call:
            return call  # type: ignore[no-any-return]
        engine = core.compute(call, core.loop_flights(), inline=False)
        return await run_async(engine, core.func)  # type: ignore[no-any-return]

    async def map(
        self,
        iterable: Iterable[Any] | AsyncIterable[Any],
        /,
        *args: Any,
        chunk_size: int = 256,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Results for a (sync or async) iterable of any length, lazily, a chunk at a time."""
        core = self._core
        if not isinstance(iterable, AsyncIterable):
            for call_args, call_kwargs in core.chunks(iterable, chunk_size, args, kwargs):
                for result in await self(*call_args, **call_kwargs):  # type: ignore[attr-defined]
                    yield result
            return
        check_chunk_size(core.fname, chunk_size)
        chunk: list[Any] = []
        async for item in iterable:
            chunk.append(item)
            if len(chunk) == chunk_size:
                for result in await self._chunk(chunk, args, kwargs):
                    yield result
                chunk = []
        if chunk:
            for result in await self._chunk(chunk, args, kwargs):
                yield result

    async def ainvalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        """``invalidate`` without blocking the event loop on a store outside the process."""
        core = self._core
        keys = core.invalidate(batch, args, kwargs)
        if core.remote is not None:
            await run_async(core.dropping(keys), core.func)

    async def acache_clear(self) -> None:
        """``cache_clear`` without blocking the event loop on a store outside the process."""
        await run_async(self._core.clearing(), self._core.func)

    async def _chunk(self, chunk: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call_args, call_kwargs = self._core.binder.place(
            self._core.split_items(chunk), args, kwargs
        )
        return await self(*call_args, **call_kwargs)


class _Bound(BoundByReference):
    """A decorated method bound to its instance (like a bound method, keeping the extras)."""

    __slots__ = ("__func__", "__self__")

    def __init__(self, wrapper: _Wrapper, obj: Any) -> None:
        self.__func__ = wrapper
        self.__self__ = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)  # type: ignore[operator]

    def map(self, iterable: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.map(iterable, self.__self__, *args, **kwargs)  # type: ignore[attr-defined]

    def invalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        self.__func__.invalidate(batch, self.__self__, *args, **kwargs)

    def ainvalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.ainvalidate(batch, self.__self__, *args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func__, name)

    def _bound(self) -> tuple[Any, str]:
        return self.__self__, self.__func__._core.func.__name__

    def __repr__(self) -> str:
        return f"<bound {self.__func__!r} of {self.__self__!r}>"
