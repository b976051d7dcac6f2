"""The public batchers: ``SyncBatcher`` (a thread driver) and ``AsyncBatcher`` (a driver
per event loop); a batched method gets a batcher of its own for each instance (``_methods``).

Each entry point (a call, ``.one``, ``.acall``) is a thin public method over a private one
taking the instance apart (None for a function): ``BoundBatcher`` calls the private ones.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from ._batcher_base import BatcherBase
from ._checks import for_running_loop
from ._coroutines import mark_coroutine_function
from ._loop_driver import LoopDriver
from ._methods import instances_of
from ._queue import Queue, Request
from ._stats import BatcherStats
from ._thread_driver import ThreadDriver

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - exercised on 3.9 only
    from typing_extensions import ParamSpec

__all__ = ["AsyncBatcher", "SyncBatcher"]

P = ParamSpec("P")
R = TypeVar("R")


class SyncBatcher(BatcherBase, Generic[P, R]):
    """A sync batch function whose concurrent calls share batches (``dynamically``)."""

    def __init__(self, func: Callable[P, R], **options: Any) -> None:
        super().__init__(func, **options)
        functools.update_wrapper(self, func)
        self._driver = ThreadDriver(self, func, self._concurrency)

    @property
    def stats(self) -> BatcherStats:
        """Batches, items, sizes and timings so far."""
        return self._driver.queue.stats

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._method:
            return self._of(args)._run(args[0], args[1:], kwargs)  # type: ignore[no-any-return]
        return self._run(None, args, kwargs)  # type: ignore[no-any-return]

    def _run(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        items = self._shape.items(args, kwargs)
        if not items:
            if self._closed:
                raise self._closed_error()
            return self._shape.padder.empty() if self._shape.padder else []
        return self._wait(items, instance).result()

    def one(self, *args: Any, **kwargs: Any) -> Any:
        """The result for a single item."""
        if self._method:
            return self._of(args)._one(args[0], args[1:], kwargs)
        return self._one(None, args, kwargs)

    def _one(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._plain and len(args) == 1 and not kwargs:
            return self._wait(args, instance).first()  # the tuple (item,): a list of one
        return self._wait(self._shape.one(args, kwargs), instance).first()

    def _wait(self, items: Sequence[Any], instance: Any) -> Request:
        self._refuse_reentry()
        signal = threading.Lock()
        signal.acquire()
        request = Request(items, signal, instance=instance)
        self._driver.submit(request)
        signal.acquire()  # released by the worker that completes the request
        return request

    def acall(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """``await`` the batched call from async code; the function runs on a worker thread."""
        if self._method:
            return self._of(args)._acall(args[0], args[1:], kwargs)
        return self._acall(None, args, kwargs)

    def _acall(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        return self._await(self._shape.items(args, kwargs), instance)

    async def _await(self, items: Sequence[Any], instance: Any) -> Any:
        if not items:
            return []
        self._refuse_reentry()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request = Request(items, future, loop, instance=instance)
        # submit may wait for room (max_queue): not on the loop's thread
        if self._driver.queue.max_queue is None:
            self._driver.submit(request)
        else:
            await loop.run_in_executor(None, self._driver.submit, request)
        try:
            await future
        except asyncio.CancelledError:
            request.cancelled = True
            raise
        return request.result()

    def close(self) -> None:
        """Refuse new calls, run what is queued, and stop the workers (waits for them)."""
        self._shutdown(wait=True)

    def _shutdown(self, wait: bool) -> None:
        self._closed = True
        self._driver.close(wait)
        self._close_instances(wait)

    def _after_fork(self) -> None:
        self._driver = ThreadDriver(self, self.__wrapped__, self._concurrency)

    def __enter__(self) -> SyncBatcher[P, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    async def __aenter__(self) -> SyncBatcher[P, R]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncBatcher(BatcherBase, Generic[P, R]):
    """An async batch function whose concurrent calls share batches (``dynamically``)."""

    def __init__(self, func: Callable[P, Awaitable[R]], **options: Any) -> None:
        super().__init__(func, **options)
        functools.update_wrapper(self, func)
        mark_coroutine_function(self)
        self._stats = BatcherStats()
        self._after_fork()

    def _after_fork(self) -> None:
        # Each loop's driver while its dispatcher runs: a driver holds its loop, so a
        # driver whose dispatcher ended (asyncio.run cancels it) is dropped from here.
        self._drivers: weakref.WeakKeyDictionary[Any, LoopDriver] = weakref.WeakKeyDictionary()
        # Guards _drivers (loops of several threads may call one batcher).
        self._lock = threading.Lock()
        # The driver of the loop used last, kept weakly (it must not keep its loop alive
        # once the loop is finished); the common case is one loop.
        self._last_ref: weakref.ReferenceType[LoopDriver] | None = None

    @property
    def stats(self) -> BatcherStats:
        """Batches, items, sizes and timings so far (over every event loop)."""
        return self._stats

    def _new_queue(self) -> Queue:
        queue = super()._new_queue()
        queue.stats = self._stats  # one set of figures whatever the loop
        return queue

    def _driver(self) -> LoopDriver:
        last = self._last_ref() if self._last_ref is not None else None
        if last is not None and last._loop is asyncio.get_running_loop():
            return last  # the common case, one loop: no weak-dict lookup per call
        driver = for_running_loop(
            self._drivers, self._lock, lambda loop: LoopDriver(self, self.__wrapped__, loop)
        )
        self._last_ref = weakref.ref(driver)
        return driver

    def _register(self, driver: LoopDriver) -> None:
        """The driver's dispatcher starts again on its loop (it had been cancelled)."""
        with self._lock:
            self._drivers[driver._loop] = driver

    def _unregister(self, driver: LoopDriver) -> None:
        """The driver's dispatcher ended: the batcher lets go of it, and of its loop."""
        with self._lock:
            if self._drivers.get(driver._loop) is driver:
                del self._drivers[driver._loop]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        if self._method:
            return self._of(args)._run(args[0], args[1:], kwargs)
        return self._run(None, args, kwargs)

    async def _run(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        items = self._shape.items(args, kwargs)
        if not items:
            if self._closed:
                raise self._closed_error()
            return self._shape.padder.empty() if self._shape.padder else []
        return (await self._await(items, instance)).result()

    _acall = _run  # BoundBatcher's acall: the same as awaiting the call

    def one(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """The result for a single item, as an awaitable (a future of the running loop).

        A future rather than a coroutine: awaiting it costs no extra frame, and
        ``asyncio.gather`` needs no task for it. Cancelling it withdraws the item.
        """
        if self._method:
            return self._of(args)._one(args[0], args[1:], kwargs)
        return self._one(None, args, kwargs)

    def _one(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]:
        if self._plain and len(args) == 1 and not kwargs:
            items: Sequence[Any] = args  # the tuple (item,) serves as the list of one
        else:
            items = self._shape.one(args, kwargs)
        if self._closed:
            raise self._closed_error()
        self._refuse_reentry()
        try:
            driver = self._driver()
        except RuntimeError:  # no running loop yet: asyncio.run(f.one(item))
            return self._one_in_loop(items, instance)
        future = driver._loop.create_future()
        request = Request(items, future, one=True, instance=instance)
        if driver.enqueue(request):
            return future  # type: ignore[no-any-return]
        return driver._loop.create_task(self._one_when_room(driver, request))  # type: ignore[no-any-return]

    async def _one_in_loop(self, items: Sequence[Any], instance: Any) -> Any:
        return (await self._await(items, instance)).first()

    async def _one_when_room(self, driver: LoopDriver, request: Request) -> Any:
        await driver.submit(request)
        return await request.signal

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """The same as awaiting the call (kept for symmetry with sync functions)."""
        return await self(*args, **kwargs)

    async def _await(self, items: Sequence[Any], instance: Any) -> Request:
        if self._closed:
            raise self._closed_error()
        self._refuse_reentry()
        driver = self._driver()
        future = driver._loop.create_future()
        request = Request(items, future, instance=instance)
        if not driver.enqueue(request):
            await driver.submit(request)
        try:
            await future
        except asyncio.CancelledError:
            request.cancelled = True
            raise
        return request

    async def aclose(self) -> None:
        """Refuse new calls and finish what is queued on this loop."""
        self._closed = True
        loop = asyncio.get_running_loop()
        with self._lock:  # a loop of another thread may drop its driver meanwhile
            drivers = list(self._drivers.items())
        for driver_loop, driver in drivers:
            if driver_loop is loop:
                await driver.aclose()
            else:
                driver.close_from_outside()
        for batcher in instances_of(self):
            await batcher.aclose()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Refuse new calls (from any thread); queued calls still finish on their loop."""
        self._shutdown(wait=False)

    def _shutdown(self, wait: bool) -> None:
        self._closed = True
        with self._lock:  # a loop of another thread may drop its driver meanwhile
            drivers = list(self._drivers.values())
        for driver in drivers:
            driver.close_from_outside()
        self._close_instances(wait)

    async def __aenter__(self) -> AsyncBatcher[P, R]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> AsyncBatcher[P, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
