"""The event-loop driver: runs an async batch function on one event loop.

One dispatcher task per loop, started by the first call made in it, takes batches from the
queue and runs each as a task; an idle dispatcher awaits an event with no timeout. A driver
holds its loop: its batcher keeps it only while its dispatcher runs, so that a loop that
``asyncio.run`` has finished (its tasks cancelled, then closed) is free to go.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._batch_engine import batch_engine
from ._drivers import run_async
from ._queue import TIMER_SLACK, Piece, Request, size, wake_all

if TYPE_CHECKING:
    from ._batchers import AsyncBatcher

__all__ = ["LoopDriver"]


class LoopDriver:
    """Runs an async batch function on one event loop: a dispatcher task and batch tasks."""

    def __init__(
        self, owner: AsyncBatcher[..., Any], func: Callable[..., Awaitable[Any]], loop: Any
    ) -> None:
        self._owner = owner
        self._func = func
        self._loop = loop
        self._concurrency = owner._concurrency
        self.queue = owner._new_queue()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._running = 0
        self._dispatcher: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self.closed = False

    def enqueue(self, request: Request) -> bool:
        """Queue the request if there is room (False: wait with ``submit``)."""
        if self.closed:
            raise self._owner._closed_error()
        queue = self.queue
        queue.measure(request)
        if queue.max_queue is not None and not queue.has_room(len(request.items)):
            return False
        queue.add(request, time.monotonic())
        if self._dispatcher is None or self._dispatcher.done():
            if self._dispatcher is not None:  # it ended (cancelled) while the loop goes on
                self._owner._register(self)
            self._dispatcher = self._loop.create_task(self._dispatch())
        self._wakeup.set()
        return True

    async def submit(self, request: Request) -> None:
        """Queue the request, waiting for room first if the queue is full."""
        while not self.enqueue(request):
            self._room.clear()
            await self._room.wait()

    async def _dispatch(self) -> None:
        queue = self.queue
        loop = self._loop
        try:
            while True:
                wait = queue.wait_time(time.monotonic(), TIMER_SLACK)
                if wait == 0 and self._running < self._concurrency:
                    self._start(queue.take(time.monotonic()))
                    continue
                if wait is None and self.closed and not self._running:
                    return
                self._wakeup.clear()
                if wait is None or self._running >= self._concurrency:
                    await self._wakeup.wait()
                else:
                    # Woken by new work, or by the oldest item's deadline. The event loop
                    # rounds its sleeps up to whole milliseconds: the timer is set that
                    # much early, and wait_time counts a batch that near as due.
                    timer = loop.call_later(max(0.0, wait - TIMER_SLACK), self._wakeup.set)
                    try:
                        await self._wakeup.wait()
                    finally:
                        timer.cancel()
        except asyncio.CancelledError:
            # The loop is shutting down: nobody will run what is queued.
            wake_all(queue.drain(self._owner._closed_error("its event loop stopped")))
            raise
        finally:
            self._owner._unregister(self)  # the batcher no longer holds this loop

    def _start(self, pieces: list[Piece]) -> None:
        """Run a batch as a task of its own (the dispatcher's frame keeps no reference to
        its requests, nor to a method's instance they hold)."""
        self._room.set()
        if pieces:  # none when every caller in it left
            self._running += 1
            task = self._loop.create_task(self._run(pieces))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _run(self, pieces: list[Piece]) -> None:
        self._owner._running_here()  # this task's calls of its own batcher would hang
        if self._owner._api is not None:
            await self._run_engine(pieces)
            return
        started = time.perf_counter()
        try:
            out = await self._owner._call(self._func, pieces)
            outputs = self._owner._shape.outputs(out, size(pieces))
        except asyncio.CancelledError as exc:
            wake_all(self.queue.fail(pieces, exc, time.perf_counter() - started))
            self._finished()
            raise  # the task was cancelled: it ends cancelled, after the callers know
        except BaseException as exc:  # noqa: BLE001 - delivered to this batch's callers
            # Any other exception, BaseException included, goes to the callers and ends
            # here: re-raised, it would end the task unretrieved ("Task exception was
            # never retrieved"). A KeyboardInterrupt still stops the loop: asyncio raises
            # it again from each caller's task.
            done = self.queue.fail(pieces, exc, time.perf_counter() - started)
        else:
            done = self.queue.deliver(pieces, outputs, time.perf_counter() - started)
        wake_all(done)
        self._finished()

    async def _run_engine(self, pieces: list[Piece]) -> None:
        """Run a batch through ``_batch_engine`` (isolate=, cost=, rate_limit=)."""

        def settle(
            part: list[Piece], outputs: Any, error: BaseException | None, took: float
        ) -> None:
            if error is None:
                wake_all(self.queue.deliver(part, outputs, took))
            else:
                wake_all(self.queue.fail(part, error, took))

        try:
            await run_async(batch_engine(self._owner, pieces, settle), self._func)
        except asyncio.CancelledError:
            raise  # the task was cancelled: it ends cancelled, after the callers know
        except BaseException:  # noqa: BLE001, S110 - settled: its callers have it
            pass
        finally:
            self._finished()

    def _finished(self) -> None:
        self._running -= 1
        self._wakeup.set()

    async def aclose(self) -> None:
        self.closed = True
        self.queue.closing = True
        self._wakeup.set()
        if self._dispatcher is not None and not self._dispatcher.done():
            await asyncio.shield(self._dispatcher)
        if self._batches:
            await asyncio.wait(set(self._batches))

    def close_from_outside(self) -> None:
        """Close from another thread (or with the loop gone): stop taking new calls."""
        self.closed = True
        self.queue.closing = True
        with contextlib.suppress(RuntimeError):  # a closed loop: its dispatcher went with it
            self._loop.call_soon_threadsafe(self._wakeup.set)
