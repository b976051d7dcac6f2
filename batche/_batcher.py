"""``dynamically``: concurrent calls of a batch function coalesced into shared batches.

One engine (``_Queue``) holds the requests, decides when a batch goes and what it holds,
and hands results back; it does no I/O and takes no lock. Two drivers run it:

- ``_ThreadDriver`` for sync functions: worker threads that sleep on a condition until
  there is work (or the oldest item's deadline), run the function outside the lock,
  and wake each caller (a thread, or an event loop awaiting ``acall``);
- ``_LoopDriver`` for async functions: one dispatcher task per event loop, started by
  the first call made in that loop, running batches as tasks on it.

Nothing polls: an idle batcher waits on a condition (or an event) with no timeout.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import sys
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

from ._binding import display_name
from ._checks import for_running_loop, int_at_least, number_above
from ._errors import BatchArgumentError, BatchDefinitionError, BatcheError, BatchResultError
from ._padding import Padder

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - exercised on 3.9 only
    from typing_extensions import ParamSpec

__all__ = ["BatcherClosedError", "BatcherStats", "Percentiles", "dynamically"]

P = ParamSpec("P")
R = TypeVar("R")


class BatcherClosedError(BatcheError, RuntimeError):
    """The batcher was closed: the call was refused, or could not run before shutdown."""


# -- statistics ---------------------------------------------------------------------------


class Percentiles:
    """The latest samples of a duration (milliseconds), with their median and 99th centile."""

    __slots__ = ("_samples",)

    def __init__(self, keep: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)

    def add(self, value: float) -> None:
        self._samples.append(value)

    def _at(self, fraction: float) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def p50(self) -> float:
        return self._at(0.50)

    @property
    def p99(self) -> float:
        return self._at(0.99)

    @property
    def count(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        return f"Percentiles(p50={self.p50:.3f}, p99={self.p99:.3f}, count={self.count})"


class BatcherStats:
    """What a batcher has done: batches run, items, batch sizes and timings (ms)."""

    def __init__(self) -> None:
        self.batches = 0
        self.items = 0
        #: batch size -> number of batches of that size
        self.batch_sizes: Counter[int] = Counter()
        #: per batch, how long its oldest item waited in the queue before the batch started
        self.queue_wait_ms = Percentiles()
        #: how long the function took per batch
        self.batch_ms = Percentiles()

    def __repr__(self) -> str:
        return (
            f"BatcherStats(batches={self.batches}, items={self.items}, "
            f"queue_wait_ms={self.queue_wait_ms!r}, batch_ms={self.batch_ms!r})"
        )


# -- requests and the queue (the engine) ---------------------------------------------------


class _Request:
    """One call's items on their way through the queue, and what came back for them."""

    __slots__ = (
        "cancelled", "enqueued", "error", "items", "loop", "offset", "one", "parts", "remaining",
        "signal",
    )  # fmt: skip

    def __init__(
        self, items: Sequence[Any], signal: Any, loop: Any = None, one: bool = False
    ) -> None:
        self.items = items
        self.offset = 0  # the first item not yet given to a batch
        self.remaining = len(items)  # items whose result has not come back
        # (start in items, a batch's outputs, offset in them, count) as batches return;
        # sliced by the caller, not by the thread or task that runs the batches
        self.parts: list[tuple[int, Any, int, int]] = []
        self.error: BaseException | None = None
        # how the caller is woken: a held lock (a thread), or a future of ``loop``
        # (woken through call_soon_threadsafe when ``loop`` is another thread's)
        self.signal = signal
        self.loop = loop
        #: a ``.one`` call whose future is awaited directly: it gets the value (or error)
        self.one = one
        self.enqueued = 0.0
        self.cancelled = False

    def wake(self) -> None:
        """Tell the caller its request is done (called once)."""
        signal = self.signal
        if self.loop is not None:
            self.loop.call_soon_threadsafe(_set_done, signal)
        elif type(signal) is _FUTURE:
            if signal.done():  # the caller left
                return
            if not self.one:
                signal.set_result(None)
            elif self.error is not None:
                signal.set_exception(self.error)
            else:
                signal.set_result(self.first())
        else:
            signal.release()

    def left(self) -> bool:
        """True when the caller is gone (cancelled): its items need not be sent."""
        signal = self.signal
        return self.cancelled or (type(signal) is _FUTURE and signal.cancelled())

    def result(self) -> Any:
        """The results in order (a list, or an array if the function returns arrays)."""
        if self.error is not None:
            raise self.error
        if len(self.parts) == 1:
            _, outputs, offset, count = self.parts[0]
            if offset == 0 and count == len(outputs):
                return outputs
            return outputs[offset : offset + count]
        parts = [out[off : off + n] for _, out, off, n in sorted(self.parts, key=_first)]
        np = sys.modules.get("numpy")
        if np is not None and parts and all(isinstance(p, np.ndarray) for p in parts):
            return np.concatenate(parts)
        torch = sys.modules.get("torch")
        if torch is not None and parts and all(isinstance(p, torch.Tensor) for p in parts):
            return torch.cat(parts)
        return [result for part in parts for result in part]

    def first(self) -> Any:
        """The result of the first item (``.one``)."""
        if self.error is not None:
            raise self.error
        _, outputs, offset, _ = self.parts[0]
        return outputs[offset]


def _first(part: tuple[int, Any, int, int]) -> int:
    return part[0]


_Piece = tuple[_Request, int, int]  # a request, and the slice of its items in a batch
_FUTURE = asyncio.Future  # the type loop.create_future() makes (checked with ``is``)


class _Queue:
    """When a batch goes, what it holds, and where its results go. No I/O, no lock."""

    def __init__(
        self, batch_size: int, timeout_s: float, small_batch_threshold: int, max_queue: int | None
    ) -> None:
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.small = small_batch_threshold
        self.max_queue = max_queue
        self._urgent: deque[_Request] = deque()  # small requests go first, FIFO among them
        self._normal: deque[_Request] = deque()
        self.queued = 0  # items waiting, not yet in a batch
        self.closing = False
        self.stats = BatcherStats()

    def has_room(self, count: int) -> bool:
        """Whether ``count`` more items fit (a request larger than the queue fits alone)."""
        return self.max_queue is None or self.queued == 0 or self.queued + count <= self.max_queue

    def add(self, request: _Request, now: float) -> None:
        request.enqueued = now
        if len(request.items) <= self.small:
            self._urgent.append(request)
        else:
            self._normal.append(request)
        self.queued += len(request.items)

    def wait_time(self, now: float, slack: float = 0.0) -> float | None:
        """0: a batch should go now; seconds until one should; None: nothing is queued.

        A batch due within ``slack`` seconds goes now (a driver whose timers fire late
        passes the lateness, so that the timeout stays a maximum).
        """
        if not self.queued:
            return None
        if self.queued >= self.batch_size or self.timeout_s == 0 or self.closing:
            return 0.0
        oldest = min(q[0].enqueued for q in (self._urgent, self._normal) if q)
        remaining = oldest + self.timeout_s - now
        return 0.0 if remaining <= slack else remaining

    def take(self, now: float) -> list[_Piece]:
        """The next batch: up to ``batch_size`` items, small requests first, in order."""
        pieces: list[_Piece] = []
        room = self.batch_size
        for queue in (self._urgent, self._normal):
            while room and queue:
                request = queue[0]
                if request.left():  # its caller left: its items are not sent
                    queue.popleft()
                    self.queued -= len(request.items) - request.offset
                    continue
                start = request.offset
                stop = min(len(request.items), start + room)
                pieces.append((request, start, stop))
                request.offset = stop
                room -= stop - start
                self.queued -= stop - start
                if stop == len(request.items):
                    queue.popleft()
        if pieces:
            # per batch, how long its oldest item waited for the batch to start
            oldest = min(request.enqueued for request, _, _ in pieces)
            self.stats.queue_wait_ms.add((now - oldest) * 1000)
        return pieces

    def deliver(self, pieces: list[_Piece], outputs: Any, took: float) -> list[_Request]:
        """Hand each request its slice of ``outputs``; return the requests now complete."""
        size = sum(stop - start for _, start, stop in pieces)
        self._count(size, took)
        done = []
        offset = 0
        for request, start, stop in pieces:
            count = stop - start
            if request.error is None:
                request.parts.append((start, outputs, offset, count))
            offset += count
            request.remaining -= count
            if request.remaining == 0:
                done.append(request)
        return done

    def fail(self, pieces: list[_Piece], error: BaseException, took: float) -> list[_Request]:
        """The batch failed: each of its requests fails (the first error it meets)."""
        self._count(sum(stop - start for _, start, stop in pieces), took)
        done = []
        for request, start, stop in pieces:
            first_failure = request.error is None
            if first_failure:
                request.error = error
            request.remaining -= stop - start
            # A request spanning several batches is answered at its first failure; its
            # other pieces still run (they were taken already) and are ignored.
            if first_failure or request.remaining == 0:
                done.append(request)
        return done

    def drain(self, error: BaseException) -> list[_Request]:
        """Fail every request still waiting in the queue."""
        done = []
        for queue in (self._urgent, self._normal):
            while queue:
                request = queue.popleft()
                if request.error is None and not request.left():
                    request.error = error
                    done.append(request)
        self.queued = 0
        return done

    def _count(self, size: int, took: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += size
        stats.batch_sizes[size] += 1
        stats.batch_ms.add(took * 1000)


def _wake_all(requests: Iterable[_Request]) -> None:
    for request in requests:
        request.wake()


# -- what one batch call looks like -----------------------------------------------------------


class _Shape:
    """How items travel: one list parameter, parallel lists, or padded feature dicts."""

    def __init__(self, func: Callable[..., Any], fname: str, pad_token: Mapping[str, Any] | None):
        self.fname = fname
        signature = inspect.signature(func)
        params = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is p.empty
        ]
        if params and params[0].name in ("self", "cls"):
            # a method: each instance gets a batcher of its own, bound (see _per_instance)
            params = params[1:]
        if not params:
            raise BatchDefinitionError(
                f"{fname}: dynamically() needs a function taking the batch as a parameter"
            )
        self.signature = signature
        self.names = tuple(p.name for p in params)
        self.padder = Padder(pad_token, fname) if pad_token is not None else None
        if self.padder is not None and len(self.names) != 1:
            raise BatchDefinitionError(
                f"{fname}: pad_token= needs a function of one parameter, a dict of feature "
                f"arrays; it has {len(self.names)}: {', '.join(self.names)}"
            )

    def items(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[Any]:
        """The items of one call (a list, tuples for parallel lists, rows for features)."""
        if len(self.names) == 1 and len(args) == 1 and not kwargs:
            batch = args[0]
        else:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise BatchArgumentError(f"{self.fname}: {exc}") from None
            extra = [name for name in bound.arguments if name not in self.names]
            if extra:
                raise BatchArgumentError(
                    f"{self.fname}: dynamically() batches calls over "
                    f"{', '.join(map(repr, self.names))} only; other arguments "
                    f"({', '.join(map(repr, extra))}) would be shared by every caller of a "
                    "batch: fix them with functools.partial or a closure"
                )
            if len(self.names) == 1:
                batch = bound.arguments[self.names[0]]
            else:
                return self._parallel([bound.arguments[n] for n in self.names])
        if self.padder is not None:
            return self.padder.rows(batch)
        if type(batch) is list:
            return batch
        if isinstance(batch, (str, bytes, bytearray, Mapping)):
            raise BatchArgumentError(
                f"{self.fname}: {self.names[0]!r} must be a list of items, got "
                f"{type(batch).__name__}; use .one(item) for a single item"
            )
        try:
            return list(batch)
        except TypeError:
            raise BatchArgumentError(
                f"{self.fname}: {self.names[0]!r} must be a list of items, got "
                f"{type(batch).__name__}"
            ) from None

    def one(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[Any]:
        """The items of a ``.one(...)`` call: exactly one."""
        if self.padder is not None:
            (features,) = args if args else (kwargs[self.names[0]],)
            return self.padder.rows(self.padder.single(features))
        if len(self.names) == 1:
            if len(args) + len(kwargs) != 1:
                raise BatchArgumentError(f"{self.fname}: .one() takes exactly one item")
            return [args[0] if args else kwargs[self.names[0]]]
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise BatchArgumentError(f"{self.fname}.one: {exc}") from None
        return [tuple(bound.arguments[n] for n in self.names)]

    def _parallel(self, columns: list[Any]) -> list[tuple[Any, ...]]:
        lengths = {n: len(c) for n, c in zip(self.names, columns)}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{n!r} has {k}" for n, k in lengths.items())
            raise BatchArgumentError(f"{self.fname}: the lists must be parallel: {shown}")
        return list(zip(*columns))

    def call_args(self, items: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """How to call the function on one batch of items."""
        if self.padder is not None:
            return (self.padder.batch(items),), {}
        if len(self.names) == 1:
            return (items,), {}
        columns = [list(c) for c in zip(*items)] if items else [[] for _ in self.names]
        return (), dict(zip(self.names, columns))

    def outputs(self, out: Any, expected: int) -> Any:
        """Check the function's result for a batch: one per item, indexable."""
        np = sys.modules.get("numpy")
        torch = sys.modules.get("torch")
        is_array = (np is not None and isinstance(out, np.ndarray)) or (
            torch is not None and isinstance(out, torch.Tensor)
        )
        if (is_array and out.ndim > 0) or isinstance(out, (list, tuple)):
            count = len(out)
        else:
            raise BatchResultError(
                f"{self.fname} returned {type(out).__name__}, not a list of {expected} results"
            )
        if count != expected:
            raise BatchResultError(
                f"{self.fname} returned {count} results for a batch of {expected} items"
            )
        return out if not isinstance(out, tuple) else list(out)


def _gather(pieces: list[_Piece]) -> list[Any]:
    if len(pieces) == 1:
        request, start, stop = pieces[0]
        items = request.items
        if start == 0 and stop == len(items) and type(items) is list:
            return items
        return list(items[start:stop])
    batch: list[Any] = []
    for request, start, stop in pieces:
        batch.extend(request.items[start:stop])
    return batch


# -- the drivers ------------------------------------------------------------------------------


#: How late a timed wait may end: an event loop sleeps in whole milliseconds, and a
#: thread is scheduled when the OS gets to it. A batch due within it goes early.
_TIMER_SLACK = 0.001


class _ThreadDriver:
    """Runs a sync batch function on worker threads that sleep until there is work."""

    def __init__(self, owner: _Batcher, func: Callable[..., Any], concurrency: int) -> None:
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

    def submit(self, request: _Request) -> None:
        count = len(request.items)
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
        queue = self.queue
        cond = self._cond
        while True:
            with cond:
                while True:
                    wait = queue.wait_time(time.monotonic(), _TIMER_SLACK)
                    if wait == 0 and self._running < self._concurrency:
                        pieces = queue.take(time.monotonic())
                        self._running += 1
                        if self._held:
                            cond.notify_all()  # room for callers held back by max_queue
                        break
                    if wait is None and self.closed:
                        return
                    # A timed wait only while a partial batch waits for company; woken
                    # up to _TIMER_SLACK early, as the thread may be scheduled late.
                    self._idle += 1
                    idle = wait is None or self._running >= self._concurrency
                    cond.wait(None if idle else max(0.0, wait - _TIMER_SLACK))  # type: ignore[operator]
                    self._idle -= 1
            if not pieces:
                with cond:
                    self._running -= 1
                continue
            started = time.perf_counter()
            try:
                out = self._owner._call(self._func, pieces)
                outputs = self._owner._shape.outputs(out, _size(pieces))
            except BaseException as exc:  # noqa: BLE001 - delivered to this batch's callers
                with cond:
                    done = queue.fail(pieces, exc, time.perf_counter() - started)
                    self._finished()
            else:
                with cond:
                    done = queue.deliver(pieces, outputs, time.perf_counter() - started)
                    self._finished()
            _wake_all(done)

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


def _size(pieces: list[_Piece]) -> int:
    return sum(stop - start for _, start, stop in pieces)


class _LoopDriver:
    """Runs an async batch function on one event loop: a dispatcher task and batch tasks."""

    def __init__(self, owner: _Batcher, func: Callable[..., Awaitable[Any]], loop: Any) -> None:
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

    def enqueue(self, request: _Request) -> bool:
        """Queue the request if there is room (False: wait with ``submit``)."""
        if self.closed:
            raise self._owner._closed_error()
        queue = self.queue
        if queue.max_queue is not None and not queue.has_room(len(request.items)):
            return False
        queue.add(request, time.monotonic())
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = self._loop.create_task(self._dispatch())
        self._wakeup.set()
        return True

    async def submit(self, request: _Request) -> None:
        """Queue the request, waiting for room first if the queue is full."""
        while not self.enqueue(request):
            self._room.clear()
            await self._room.wait()

    async def _dispatch(self) -> None:
        queue = self.queue
        loop = self._loop
        try:
            while True:
                wait = queue.wait_time(time.monotonic(), _TIMER_SLACK)
                if wait == 0 and self._running < self._concurrency:
                    pieces = queue.take(time.monotonic())
                    self._room.set()
                    if pieces:
                        self._running += 1
                        task = loop.create_task(self._run(pieces))
                        self._batches.add(task)
                        task.add_done_callback(self._batches.discard)
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
                    timer = loop.call_later(max(0.0, wait - _TIMER_SLACK), self._wakeup.set)
                    try:
                        await self._wakeup.wait()
                    finally:
                        timer.cancel()
        except asyncio.CancelledError:
            # The loop is shutting down: nobody will run what is queued.
            _wake_all(queue.drain(self._owner._closed_error("its event loop stopped")))
            raise

    async def _run(self, pieces: list[_Piece]) -> None:
        started = time.perf_counter()
        try:
            out = await self._owner._call(self._func, pieces)
            outputs = self._owner._shape.outputs(out, _size(pieces))
        except BaseException as exc:
            done = self.queue.fail(pieces, exc, time.perf_counter() - started)
            if not isinstance(exc, Exception):
                _wake_all(done)
                self._finished()
                raise  # cancellation and exits still propagate, after the callers know
        else:
            done = self.queue.deliver(pieces, outputs, time.perf_counter() - started)
        _wake_all(done)
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
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wakeup.set)


# -- the batcher ---------------------------------------------------------------------------------

_LIVE: weakref.WeakSet[_Batcher] = weakref.WeakSet()


def _close_all() -> None:
    """At interpreter exit, queued requests are run (sync) or failed, never left waiting."""
    for batcher in list(_LIVE):
        batcher._shutdown(wait=True)


# Python joins its non-daemon threads before atexit handlers run; a thread waiting on a
# batch would hold the exit up until its batch's timeout. threading's own exit hook (the
# one concurrent.futures uses) runs before that join; atexit is the fallback.
_register_early = getattr(threading, "_register_atexit", None)
if _register_early is not None:
    _register_early(_close_all)
else:  # pragma: no cover - every supported CPython has it
    atexit.register(_close_all)


class _Batcher:
    """State shared by the sync and async batchers of one function (or one instance)."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        batch_size: int,
        timeout_ms: float,
        concurrency: int,
        max_queue: int | None,
        small_batch_threshold: int,
        pad_token: Mapping[str, Any] | None,
    ) -> None:
        self.__wrapped__ = func
        self._fname = display_name(func)
        self._batch_size = batch_size
        self._timeout_s = timeout_ms / 1000
        self._concurrency = concurrency
        self._max_queue = max_queue
        self._small = small_batch_threshold
        self._pad_token = pad_token
        self._shape = _Shape(func, self._fname, pad_token)
        #: one list parameter, no padding: ``.one(item)`` needs no binding
        self._plain = len(self._shape.names) == 1 and self._shape.padder is None
        self._closed = False
        _LIVE.add(self)

    def _new_queue(self) -> _Queue:
        return _Queue(self._batch_size, self._timeout_s, self._small, self._max_queue)

    def _call(self, func: Callable[..., Any], pieces: list[_Piece]) -> Any:
        """Call ``func`` on the batch these pieces make."""
        args, kwargs = self._shape.call_args(_gather(pieces))
        return func(*args, **kwargs)

    def _closed_error(self, why: str = "it was closed") -> BatcherClosedError:
        return BatcherClosedError(f"{self._fname}: the batcher cannot take this call: {why}")

    def _options(self) -> dict[str, Any]:
        return {
            "batch_size": self._batch_size,
            "timeout_ms": self._timeout_s * 1000,
            "concurrency": self._concurrency,
            "max_queue": self._max_queue,
            "small_batch_threshold": self._small,
            "pad_token": self._pad_token,
        }

    def _shutdown(self, wait: bool) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<dynamically batched {self._fname[:-2]}>"


class SyncBatcher(_Batcher, Generic[P, R]):
    """A sync batch function whose concurrent calls share batches (``dynamically``)."""

    def __init__(self, func: Callable[P, R], **options: Any) -> None:
        super().__init__(func, **options)
        functools.update_wrapper(self, func)
        self._driver = _ThreadDriver(self, func, self._concurrency)

    @property
    def stats(self) -> BatcherStats:
        """Batches, items, sizes and timings so far."""
        return self._driver.queue.stats

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        items = self._shape.items(args, kwargs)
        if not items:
            if self._closed:
                raise self._closed_error()
            return self._shape.padder.empty() if self._shape.padder else []  # type: ignore[return-value]
        return self._wait(items).result()  # type: ignore[no-any-return]

    def one(self, *args: Any, **kwargs: Any) -> Any:
        """The result for a single item."""
        if self._plain and len(args) == 1 and not kwargs:
            return self._wait(args).first()  # the tuple (item,) serves as the list of one
        return self._wait(self._shape.one(args, kwargs)).first()

    def _wait(self, items: Sequence[Any]) -> _Request:
        signal = threading.Lock()
        signal.acquire()
        request = _Request(items, signal)
        self._driver.submit(request)
        signal.acquire()  # released by the worker that completes the request
        return request

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """``await`` the batched call from async code; the function runs on a worker thread."""
        return await self._await(self._shape.items(args, kwargs))

    async def _await(self, items: Sequence[Any]) -> Any:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request = _Request(items, future, loop)
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

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else _per_instance(self, obj)


class AsyncBatcher(_Batcher, Generic[P, R]):
    """An async batch function whose concurrent calls share batches (``dynamically``)."""

    def __init__(self, func: Callable[P, Awaitable[R]], **options: Any) -> None:
        super().__init__(func, **options)
        functools.update_wrapper(self, func)
        _mark_async(self)
        self._drivers: weakref.WeakKeyDictionary[Any, _LoopDriver] = weakref.WeakKeyDictionary()
        # Guards _drivers (loops of several threads may call one batcher).
        self._lock = threading.Lock()
        self._stats = BatcherStats()
        # The driver of the loop used last, kept weakly (a loop's driver must not keep
        # the loop alive once it is closed); the common case is one loop.
        self._last_ref: weakref.ReferenceType[_LoopDriver] | None = None

    @property
    def stats(self) -> BatcherStats:
        """Batches, items, sizes and timings so far (over every event loop)."""
        return self._stats

    def _new_queue(self) -> _Queue:
        queue = super()._new_queue()
        queue.stats = self._stats  # one set of figures whatever the loop
        return queue

    def _driver(self) -> _LoopDriver:
        last = self._last_ref() if self._last_ref is not None else None
        if last is not None and last._loop is asyncio.get_running_loop():
            return last  # the common case, one loop: no weak-dict lookup per call
        driver = for_running_loop(
            self._drivers, self._lock, lambda loop: _LoopDriver(self, self.__wrapped__, loop)
        )
        self._last_ref = weakref.ref(driver)
        return driver

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        items = self._shape.items(args, kwargs)
        if not items:
            if self._closed:
                raise self._closed_error()
            return self._shape.padder.empty() if self._shape.padder else []  # type: ignore[return-value]
        return (await self._await(items)).result()  # type: ignore[no-any-return]

    def one(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """The result for a single item, as an awaitable (a future of the running loop).

        A future rather than a coroutine: awaiting it costs no extra frame, and
        ``asyncio.gather`` needs no task for it. Cancelling it withdraws the item.
        """
        if self._plain and len(args) == 1 and not kwargs:
            items: Sequence[Any] = args  # the tuple (item,) serves as the list of one
        else:
            items = self._shape.one(args, kwargs)
        if self._closed:
            raise self._closed_error()
        try:
            driver = self._driver()
        except RuntimeError:  # no running loop yet: asyncio.run(f.one(item))
            return self._one_in_loop(items)
        future = driver._loop.create_future()
        request = _Request(items, future, one=True)
        if driver.enqueue(request):
            return future  # type: ignore[no-any-return]
        return driver._loop.create_task(self._one_when_room(driver, request))  # type: ignore[no-any-return]

    async def _one_in_loop(self, items: Sequence[Any]) -> Any:
        return (await self._await(items)).first()

    async def _one_when_room(self, driver: _LoopDriver, request: _Request) -> Any:
        await driver.submit(request)
        return await request.signal

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """The same as awaiting the call (kept for symmetry with sync functions)."""
        return await self(*args, **kwargs)

    async def _await(self, items: Sequence[Any]) -> _Request:
        if self._closed:
            raise self._closed_error()
        driver = self._driver()
        future = driver._loop.create_future()
        request = _Request(items, future)
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
        for driver_loop, driver in list(self._drivers.items()):
            if driver_loop is loop:
                await driver.aclose()
            else:
                driver.close_from_outside()

    def close(self) -> None:
        """Refuse new calls (from any thread); queued calls still finish on their loop."""
        self._shutdown(wait=False)

    def _shutdown(self, wait: bool) -> None:
        self._closed = True
        for driver in list(self._drivers.values()):
            driver.close_from_outside()

    async def __aenter__(self) -> AsyncBatcher[P, R]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> AsyncBatcher[P, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else _per_instance(self, obj)


def _set_done(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _mark_async(obj: Any) -> None:
    from ._decorator import _mark_coroutine_function

    _mark_coroutine_function(obj)


# Each instance of a class gets its own batcher (its own queue) for each batched method.
_INSTANCES: weakref.WeakKeyDictionary[Any, dict[int, _Batcher]] = weakref.WeakKeyDictionary()
_INSTANCES_LOCK = threading.Lock()  # guards _INSTANCES


def _per_instance(batcher: _Batcher, obj: Any) -> Any:
    try:
        per_object = _INSTANCES.get(obj)
    except TypeError:
        raise BatchDefinitionError(
            f"{batcher._fname}: a batched method needs instances that support weak "
            f"references; add '__weakref__' to the __slots__ of {type(obj).__name__}"
        ) from None
    if per_object is not None:
        bound = per_object.get(id(batcher))
        if bound is not None:
            return bound
    with _INSTANCES_LOCK:
        per_object = _INSTANCES.setdefault(obj, {})
        bound = per_object.get(id(batcher))
        if bound is None:
            method = functools.partial(batcher.__wrapped__, obj)
            # named for errors; no __wrapped__, so its signature is the bound one
            method.__qualname__ = getattr(batcher.__wrapped__, "__qualname__", "method")  # type: ignore[attr-defined]
            kind = AsyncBatcher if isinstance(batcher, AsyncBatcher) else SyncBatcher
            bound = kind(method, **batcher._options())
            per_object[id(batcher)] = bound
    return bound


# -- the decorator ---------------------------------------------------------------------------------


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

    Example::

        @dynamically(batch_size=64, timeout_ms=5)
        def embed(texts: list[str]) -> list[list[float]]: ...

        embed(["a", "b"])   # from many threads at once
        embed.one("a")
    """
    options = {
        "batch_size": batch_size,
        "timeout_ms": timeout_ms,
        "concurrency": concurrency,
        "max_queue": max_queue,
        "small_batch_threshold": small_batch_threshold,
        "pad_token": pad_token,
    }
    _check_options(options)
    if func is not None:
        return _make(func, options)
    return _Dynamically(options)


def _make(func: Callable[..., Any], options: dict[str, Any]) -> Any:
    if not callable(func):
        raise BatchDefinitionError(f"dynamically() decorates a function, got {type(func).__name__}")
    from ._decorator import is_async_callable

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
    if not number_above(timeout, 0, inclusive=True):
        raise BatchDefinitionError(
            f"dynamically(): timeout_ms must be a number >= 0, got {timeout!r}"
        )
    pad = options["pad_token"]
    if pad is not None and not isinstance(pad, Mapping):
        raise BatchDefinitionError(
            f"dynamically(): pad_token must be a dict of feature name -> pad value, got {pad!r}"
        )
