"""The thread driver: runs a sync batch function on worker threads.

Workers sleep on a condition until there is work (or the oldest item's deadline), take a
batch under the lock, run the function outside it, and wake each caller (a thread, or an
event loop awaiting ``acall``). An idle driver waits with no timeout: nothing polls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._batch_engine import batch_engine
from ._batcher_base import BatcherBase
from ._drivers import run_sync
from ._queue import TIMER_SLACK, Piece, Request, size, wake_all

__all__ = ["ThreadDriver"]


class ThreadDriver:
    """Runs a sync batch function on worker threads that sleep until there is work."""

    def __init__(self, owner: BatcherBase, func: Callable[..., Any], concurrency: int) -> None:
        self._owner = owner
        self._func = func
        self._concurrency = concurrency
        self.queue = owner._new_queue()
        # Guards the queue, the running count and the worker list; the function never
        # runs under it. Workers wait on it for work, callers for room (max_queue).
        self._cond = threading.Condition(threading.Lock())
        self._workers: list[threading.Thread] = []
        self._running = 0
        self._idle = 0  # workers waiting on the condition
        self._held = 0  # callers waiting for room
        self.closed = False

    def submit(self, request: Request) -> None:
        count = len(request.items)
        self.queue.measure(request)  # calls cost=, if given: not under the lock
        with self._cond:
            if self.closed:
                raise self._owner._closed_error()
            while self.queue.max_queue is not None and not self.queue.has_room(count):
                self._held += 1
                self._cond.wait()
                self._held -= 1
                if self.closed:
                    raise self._owner._closed_error()
            self.queue.add(request, time.monotonic())
            if len(self._workers) < self._concurrency:
                self._start_worker()
            elif self._idle:
                self._cond.notify_all()

    def _start_worker(self) -> None:
        worker = threading.Thread(
            target=self._work, name=f"batche-{self._owner._fname}", daemon=True
        )
        self._workers.append(worker)
        worker.start()

    def _work(self) -> None:
        self._owner._running_here()  # this thread's calls of its own batcher would hang
        try:
            while True:
                pieces = self._next()
                if pieces is None:
                    return
                self._run(pieces)
                # Not held while idle: the requests hold their callers' results and, for
                # a method, the instance, which must be free to go.
                del pieces
        finally:
            with self._cond:
                # a worker that ended any other way than closing is replaced by the next call
                self._workers.remove(threading.current_thread())

    def _next(self) -> list[Piece] | None:
        """Wait for the next batch, and take it (None: closed, and nothing is queued)."""
        queue = self.queue
        cond = self._cond
        with cond:
            while True:
                wait = queue.wait_time(time.monotonic(), TIMER_SLACK)
                if wait == 0 and self._running < self._concurrency:
                    pieces = queue.take(time.monotonic())
                    if self._held:
                        cond.notify_all()  # room for callers held back by max_queue
                    if pieces:  # none when every caller in it left
                        self._running += 1
                        return pieces
                    continue
                if wait is None and self.closed:
                    return None
                # A timed wait only while a partial batch waits for company; woken up to
                # TIMER_SLACK early, as the thread may be scheduled late.
                self._idle += 1
                idle = wait is None or self._running >= self._concurrency
                cond.wait(None if idle else max(0.0, wait - TIMER_SLACK))  # type: ignore[operator]
                self._idle -= 1

    def _run(self, pieces: list[Piece]) -> None:
        """Run one batch (outside the lock) and wake its callers."""
        if self._owner._api is not None:
            self._run_engine(pieces)
            return
        queue = self.queue
        started = time.perf_counter()
        try:
            out = self._owner._call(self._func, pieces)
            outputs = self._owner._shape.outputs(out, size(pieces))
        except BaseException as exc:  # noqa: BLE001 - delivered to this batch's callers
            with self._cond:
                done = queue.fail(pieces, exc, time.perf_counter() - started)
                self._finished()
        else:
            with self._cond:
                done = queue.deliver(pieces, outputs, time.perf_counter() - started)
                self._finished()
        wake_all(done)

    def _run_engine(self, pieces: list[Piece]) -> None:
        """Run a batch through ``_batch_engine`` (isolate=, cost=, rate_limit=)."""

        def settle(
            part: list[Piece], outputs: Any, error: BaseException | None, took: float
        ) -> None:
            with self._cond:
                if error is None:
                    done = self.queue.deliver(part, outputs, took)
                else:
                    done = self.queue.fail(part, error, took)
            wake_all(done)

        try:
            run_sync(batch_engine(self._owner, pieces, settle), self._func)
        except BaseException:  # noqa: BLE001, S110 - settled: its callers have it
            pass
        finally:
            with self._cond:
                self._finished()

    def _finished(self) -> None:
        """A batch is done (the lock is held): a waiting worker may take the next one."""
        self._running -= 1
        if self._idle or self._held:
            self._cond.notify_all()

    def close(self, wait: bool) -> None:
        """Refuse new calls; the workers finish what is queued, then exit."""
        with self._cond:
            self.closed = True
            self.queue.closing = True
            workers = list(self._workers)
            self._cond.notify_all()
        if wait:
            current = threading.current_thread()
            for worker in workers:
                if worker is not current:
                    worker.join()
