"""``cache_batch_variable``: the per-item cache around a list-in/list-out function.

Data flows one way: bind the call -> make keys -> look them up -> call the function on
the distinct misses -> check the results -> store them -> merge in input order. The
steps after the lookup are one generator (``_Core.compute``) that does no I/O itself; a
sync driver and an async driver run it, so both kinds of function share every rule.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    MutableMapping,
    Sequence,
)
from typing import Any, Generic, TypeVar, Union, overload

from ._core import _Core
from ._coroutines import is_async_callable as is_async_callable  # re-exported: see below
from ._coroutines import mark_coroutine_function
from ._drivers import run_async, run_sync
from ._errors import BatchDefinitionError
from ._instructions import Call
from ._options import (
    check_chunk_size,
    check_ignore,
    check_key_and_batch_size,
    check_names,
    check_remote_options,
    check_store,
)
from ._state import KeyFunc
from ._store_access import CacheInfo
from .stores._base import Store

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - exercised on 3.9 only
    from typing_extensions import ParamSpec

__all__ = ["AsyncCachedBatchFunction", "CacheInfo", "CachedBatchFunction", "cache_batch_variable"]

# _batcher.py imports these two from here (their home is _coroutines.py).
_mark_coroutine_function = mark_coroutine_function

P = ParamSpec("P")
R = TypeVar("R")


class _Wrapper:
    """What the sync and async decorated functions have in common."""

    _core: _Core
    __wrapped__: Callable[..., Any]

    def __init__(self, core: _Core) -> None:
        self._core = core
        functools.update_wrapper(self, core.func)  # type: ignore[arg-type]

    @property
    def cache(self) -> MutableMapping[Hashable, Any] | Store:
        """The store, as passed with ``cache=`` (or made from ``maxsize``/``ttl``)."""
        return self._core.mapping

    def cache_info(self) -> CacheInfo:
        """Hits, misses (items sent to the function), maxsize and current size."""
        return self._core.cache_info()

    def cache_clear(self) -> None:
        """Empty the store and reset the counts."""
        self._core.cache_clear()

    def invalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        """Drop the cached results of ``batch``'s items for these other arguments.

        The other arguments are given as in a call, without the batch; absent items are
        ignored. With several batch parameters, ``batch`` holds tuples of items.
        """
        core = self._core
        keys = core.invalidate(batch, args, kwargs)
        if core.remote is not None:
            core.remote.delete_many(keys)

    def __repr__(self) -> str:
        return f"<cached batch function {self._core.fname[:-2]}>"

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
            await core.remote.adelete_many(keys)

    async def _chunk(self, chunk: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call_args, call_kwargs = self._core.binder.place(
            self._core.split_items(chunk), args, kwargs
        )
        return await self(*call_args, **call_kwargs)


class _Bound:
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

    def __repr__(self) -> str:
        return f"<bound {self.__func__!r} of {self.__self__!r}>"


# -- the decorator ---------------------------------------------------------------------


class _Decorator:
    """``cache_batch_variable(...)`` before it is applied to a function."""

    __slots__ = ("_options",)

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]  # async first, on purpose
        self, func: Callable[P, Awaitable[R]]
    ) -> AsyncCachedBatchFunction[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> CachedBatchFunction[P, R]: ...
    def __call__(self, func: Callable[..., Any]) -> Any:
        return _decorate(func, **self._options)


NameSpec = Union[str, Sequence[str], None]


@overload
def cache_batch_variable(  # type: ignore[overload-overlap]  # async first, on purpose
    batch_variable_name: Callable[P, Awaitable[R]],
) -> AsyncCachedBatchFunction[P, R]: ...
@overload
def cache_batch_variable(batch_variable_name: Callable[P, R]) -> CachedBatchFunction[P, R]: ...
@overload
def cache_batch_variable(
    batch_variable_name: NameSpec = None,
    maxsize: int | None = None,
    *,
    cache: MutableMapping[Any, Any] | None = None,
    ttl: float | None = None,
    key: KeyFunc | None = None,
    ignore: str | Iterable[str] = (),
    max_batch_size: int | None = None,
    namespace: str | None = None,
    version: str | int = 1,
    local_maxsize: int | None = None,
    lock: bool = False,
    lock_timeout: float = 60.0,
) -> _Decorator: ...
def cache_batch_variable(
    batch_variable_name: Any = None,
    maxsize: int | None = None,
    *,
    cache: MutableMapping[Any, Any] | None = None,
    ttl: float | None = None,
    key: KeyFunc | None = None,
    ignore: str | Iterable[str] = (),
    max_batch_size: int | None = None,
    namespace: str | None = None,
    version: str | int = 1,
    local_maxsize: int | None = None,
    lock: bool = False,
    lock_timeout: float = 60.0,
) -> Any:
    """Cache a list-in/list-out function per item of its batch argument.

    A call looks each item up, sends only the misses to the function (each distinct
    item once, in order of first appearance; not at all when nothing is missing) and
    returns one result per item in input order, exactly what the plain function would
    return. The other arguments are part of each item's key. If the function raises or
    returns the wrong number of results, nothing from that call is cached.

    Args:
        batch_variable_name: the parameter holding the batch; optional when the function
            has one parameter (besides ``self``/``cls``) or one annotated as a list. A
            tuple of names zips several equal-length batch parameters item by item.
        maxsize: ``None`` for an unbounded dict; an int for an LRU of that many items.
        cache: any ``MutableMapping`` to use as the store (a ``cachetools`` cache, a dict
            shared on purpose).
        ttl: seconds an entry lives (a ``cachetools.TTLCache``, bounded by ``maxsize``).
        key: maps an item to a hashable key (for dicts, arrays, models).
        ignore: names of arguments left out of the key (``"self"``, ``"client"``).
        max_batch_size: most items sent to the function in one call; misses go in
            chunks, each stored as soon as it is computed.
        namespace: with a store outside the process (``SQLiteStore``, ``RedisStore``):
            the part of every key that tells this function's entries apart (default:
            the function's module and qualified name).
        version: part of every key too; bump it when the results change (a new model),
            and old entries are no longer seen.
        local_maxsize: an in-memory LRU of this many items in front of a store outside
            the process, so that hot items skip the network.
        lock: with a ``RedisStore``: processes that miss the same items at the same
            moment compute each once; the others wait for its result (a lease per key).
        lock_timeout: seconds a lease lasts; a lease whose holder died expires then,
            and a waiter computes the item itself.

    Example::

        @cache_batch_variable(batch_variable_name="texts", maxsize=10_000)
        def embed(texts: list[str], model: str = "small") -> list[list[float]]: ...
    """
    if callable(batch_variable_name) and not isinstance(batch_variable_name, str):
        return _decorate(batch_variable_name, None, None)
    options: dict[str, Any] = {
        "names": check_names(batch_variable_name),
        "mapping": check_store(maxsize, cache, ttl),
        "key": key,
        "ignore": check_ignore(ignore),
        "max_batch_size": max_batch_size,
        **check_remote_options(cache, namespace, version, local_maxsize, lock, lock_timeout),
    }
    check_key_and_batch_size(key, max_batch_size)
    return _Decorator(options)


def _decorate(
    func: Any,
    names: tuple[str, ...] | None,
    mapping: MutableMapping[Hashable, Any] | Store | None,
    key: KeyFunc | None = None,
    ignore: tuple[str, ...] = (),
    max_batch_size: int | None = None,
    **remote: Any,
) -> Any:
    if isinstance(func, (classmethod, staticmethod)):
        wrapped = _decorate(func.__func__, names, mapping, key, ignore, max_batch_size, **remote)
        return type(func)(wrapped)
    if not callable(func):
        raise BatchDefinitionError(
            f"cache_batch_variable() decorates a function, got {type(func).__name__}"
        )
    core = _Core(
        func,
        names,
        mapping={} if mapping is None else mapping,
        key=key,
        ignore=ignore,
        max_batch_size=max_batch_size,
        **remote,
    )
    if is_async_callable(func):
        return AsyncCachedBatchFunction(core)
    return CachedBatchFunction(core)
