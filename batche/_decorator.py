"""``cache_batch_variable``: the decorator, its overloads, and what it builds.

It checks the options (``_options.py``) when it is called, and at decoration makes the
engine of the function (``_Core``, ``_core.py``) and wraps it in a sync or an async
decorated function (``_wrappers.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, MutableMapping, Sequence
from typing import Any, Union, overload

from ._api_options import IsolateSpec, check_api_options
from ._core import _Core
from ._coroutines import func_name, generator_kind, is_async_callable
from ._errors import BatchDefinitionError
from ._options import (
    check_ignore,
    check_key_and_batch_size,
    check_names,
    check_remote_options,
    check_store,
)
from ._ratelimit import RateLimit
from ._state import KeyFunc
from ._wrappers import AsyncCachedBatchFunction, CachedBatchFunction, P, R
from .stores._base import Store
from .stores._memory import MemoryStore

__all__ = ["cache_batch_variable"]


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
    typed: bool = False,
    namespace: str | None = None,
    version: str | int = 1,
    local_maxsize: int | None = None,
    lock: bool = False,
    lock_timeout: float = 60.0,
    isolate: IsolateSpec | None = None,
    return_exceptions: bool = False,
    cost: Callable[[Any], float] | None = None,
    max_batch_cost: float | None = None,
    rate_limit: RateLimit | None = None,
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
    typed: bool = False,
    namespace: str | None = None,
    version: str | int = 1,
    local_maxsize: int | None = None,
    lock: bool = False,
    lock_timeout: float = 60.0,
    isolate: IsolateSpec | None = None,
    return_exceptions: bool = False,
    cost: Callable[[Any], float] | None = None,
    max_batch_cost: float | None = None,
    rate_limit: RateLimit | None = None,
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
        typed: as ``functools.lru_cache``'s: items of different types are different
            items (``1``, ``1.0`` and ``True`` are three; ``0.0`` and ``-0.0`` two). By
            default items that compare equal share an entry, in every store.
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
        isolate: an exception type, a tuple of them, or a predicate: when the function
            raises a matching exception on a set of misses, the set is split in halves,
            recursively, until every item has a result or failed on its own. The call
            then raises ``BatchItemsError`` (``.errors`` by position, ``.results``).
        return_exceptions: with ``isolate``: return the results with each failing
            item's exception in its place instead of raising.
        cost: the cost of one item (e.g. its tokens), called at most once per distinct
            item of a call; counted in ``cache_info()`` as ``cost_paid``/``cost_saved``.
        max_batch_cost: most total cost sent to the function in one call (needs
            ``cost``); an item that alone costs more goes alone.
        rate_limit: a ``RateLimit``: each call of the function (each chunk) waits until
            its budget allows it. One with a cost budget needs ``cost``.

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
        "typed": typed,
        **check_remote_options(cache, namespace, version, local_maxsize, lock, lock_timeout),
    }
    api = check_api_options(
        "cache_batch_variable()", isolate, cost, max_batch_cost, rate_limit, return_exceptions
    )
    if api is not None:
        options["api"] = api
    check_key_and_batch_size(key, max_batch_size, typed)
    return _Decorator(options)


def _decorate(
    func: Any,
    names: tuple[str, ...] | None,
    mapping: MutableMapping[Hashable, Any] | MemoryStore | Store | None,
    key: KeyFunc | None = None,
    ignore: tuple[str, ...] = (),
    max_batch_size: int | None = None,
    **options: Any,
) -> Any:
    if isinstance(func, (classmethod, staticmethod)):
        wrapped = _decorate(func.__func__, names, mapping, key, ignore, max_batch_size, **options)
        return type(func)(wrapped)
    if not callable(func):
        raise BatchDefinitionError(
            f"cache_batch_variable() decorates a function, got {type(func).__name__}"
        )
    kind = generator_kind(func)
    if kind is not None:  # its calls would all fail with BatchResultError
        raise BatchDefinitionError(
            f"cache_batch_variable() decorates a function that returns a list of results; "
            f"{func_name(func)}() is {kind}: return the list instead of yielding"
        )
    core = _Core(
        func,
        names,
        mapping={} if mapping is None else mapping,
        key=key,
        ignore=ignore,
        max_batch_size=max_batch_size,
        **options,
    )
    if is_async_callable(func):
        return AsyncCachedBatchFunction(core)
    return CachedBatchFunction(core)
