"""``dynamically``: concurrent calls of a batch function coalesced into shared batches.

The decorator and its option checks (at decoration time). The rest is in the file named
after each idea: ``_queue`` (the engine: requests and batches, no I/O, no lock),
``_shapes`` (what a batch call looks like), ``_thread_driver`` and ``_loop_driver`` (who
runs the engine), ``_batchers`` (the public ``SyncBatcher`` and ``AsyncBatcher``),
``_methods`` (a batcher per instance for a method), ``_stats`` (what a batcher has done).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

from ._api_options import IsolateSpec, check_api_options
from ._batchers import AsyncBatcher, SyncBatcher
from ._checks import MAX_SECONDS, int_at_least, number_above
from ._coroutines import func_name, generator_kind, is_async_callable
from ._errors import BatchDefinitionError
from ._ratelimit import RateLimit

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - exercised on 3.9 only
    from typing_extensions import ParamSpec

__all__ = ["dynamically"]

P = ParamSpec("P")
R = TypeVar("R")


class _Dynamically:
    __slots__ = ("_options",)

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]  # async first, on purpose
        self, func: Callable[P, Awaitable[R]]
    ) -> AsyncBatcher[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> SyncBatcher[P, R]: ...
    def __call__(self, func: Callable[..., Any]) -> Any:
        return _make(func, self._options)


@overload
def dynamically(  # type: ignore[overload-overlap]  # async first, on purpose
    func: Callable[P, Awaitable[R]], /
) -> AsyncBatcher[P, R]: ...
@overload
def dynamically(func: Callable[P, R], /) -> SyncBatcher[P, R]: ...
@overload
def dynamically(
    func: None = None,
    /,
    *,
    batch_size: int = 32,
    timeout_ms: float = 5.0,
    concurrency: int = 1,
    max_queue: int | None = None,
    small_batch_threshold: int = 0,
    pad_token: Mapping[str, Any] | None = None,
    isolate: IsolateSpec | None = None,
    cost: Callable[[Any], float] | None = None,
    max_batch_cost: float | None = None,
    rate_limit: RateLimit | None = None,
) -> _Dynamically: ...
def dynamically(
    func: Callable[..., Any] | None = None,
    /,
    *,
    batch_size: int = 32,
    timeout_ms: float = 5.0,
    concurrency: int = 1,
    max_queue: int | None = None,
    small_batch_threshold: int = 0,
    pad_token: Mapping[str, Any] | None = None,
    isolate: IsolateSpec | None = None,
    cost: Callable[[Any], float] | None = None,
    max_batch_cost: float | None = None,
    rate_limit: RateLimit | None = None,
) -> Any:
    """Coalesce concurrent calls of a list-in/list-out function into shared batches.

    Callers keep calling with their own lists (or ``.one(item)``) and get their own
    results, in order; the function sees batches of up to ``batch_size`` items made of
    whatever callers have queued. An exception in a batch reaches the callers whose items
    were in it and no others.

    Args:
        batch_size: most items per call of the function.
        timeout_ms: longest time the first queued item waits for company (a maximum,
            not a fixed delay); 0 sends what is queued at once, so batches grow while
            the function is busy.
        concurrency: batches that may run at once.
        max_queue: most items waiting; callers block (or await) while it is full.
        small_batch_threshold: requests of at most this many items go first.
        pad_token: for a function taking a dict of feature arrays: the value each
            feature is padded with up to the longest row of the batch.
        isolate: an exception type, a tuple of them, or a predicate: a batch that fails
            with a matching exception is split in halves by request, recursively, so
            that only the callers whose own requests fail alone get the exception.
        cost: the cost of one item (e.g. its tokens).
        max_batch_cost: most total cost in one batch (needs ``cost``): a batch closes
            before a request that would take it past; a request over it runs alone.
        rate_limit: a ``RateLimit``: each batch waits until its budget allows it.

    Example::

        @dynamically(batch_size=64, timeout_ms=5)
        def embed(texts: list[str]) -> list[list[float]]: ...

        embed(["a", "b"])   # from many threads at once
        embed.one("a")
    """
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "timeout_ms": timeout_ms,
        "concurrency": concurrency,
        "max_queue": max_queue,
        "small_batch_threshold": small_batch_threshold,
        "pad_token": pad_token,
    }
    _check_options(options)
    options["api"] = check_api_options("dynamically()", isolate, cost, max_batch_cost, rate_limit)
    if func is not None:
        return _make(func, options)
    return _Dynamically(options)


def _make(func: Callable[..., Any], options: dict[str, Any]) -> Any:
    if not callable(func):
        raise BatchDefinitionError(f"dynamically() decorates a function, got {type(func).__name__}")
    kind = generator_kind(func)
    if kind is not None:  # its calls would all fail with BatchResultError
        raise BatchDefinitionError(
            f"dynamically() decorates a function that returns a list of results; "
            f"{func_name(func)}() is {kind}: return the list instead of yielding"
        )
    if is_async_callable(func):
        return AsyncBatcher(func, **options)
    return SyncBatcher(func, **options)


def _positive_int(options: dict[str, Any], name: str, minimum: int, allow_none: bool) -> None:
    value = options[name]
    if value is None and allow_none:
        return
    if not int_at_least(value, minimum):
        wanted = f"an int >= {minimum}" + (" or None" if allow_none else "")
        raise BatchDefinitionError(f"dynamically(): {name} must be {wanted}, got {value!r}")


def _check_options(options: dict[str, Any]) -> None:
    _positive_int(options, "batch_size", 1, False)
    _positive_int(options, "concurrency", 1, False)
    _positive_int(options, "max_queue", 1, True)
    _positive_int(options, "small_batch_threshold", 0, False)
    timeout = options["timeout_ms"]
    # A worker waits timeout_ms for company: past MAX_SECONDS the wait itself would fail.
    if not number_above(timeout, 0, inclusive=True) or not timeout / 1000 <= MAX_SECONDS:
        raise BatchDefinitionError(
            f"dynamically(): timeout_ms must be a number >= 0, got {timeout!r} (at most "
            f"{MAX_SECONDS * 1000:.3g} ms: threading.TIMEOUT_MAX)"
        )
    pad = options["pad_token"]
    if pad is not None and not isinstance(pad, Mapping):
        raise BatchDefinitionError(
            f"dynamically(): pad_token must be a dict of feature name -> pad value, got {pad!r}"
        )
