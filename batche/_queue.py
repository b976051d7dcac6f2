"""The engine of ``dynamically``: requests, and the queue that makes batches of them.

The queue decides when a batch goes and what it holds (small requests first, a large
request split across batches) and hands each request its slice of the results. It does no
I/O and takes no lock: a driver (``_thread_driver``, ``_loop_driver``) guards it, runs the
function and wakes the callers with ``wake_all``.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from typing import Any

from ._chunking import bad_cost, checked_sum, first_bad_cost
from ._errors import for_one_more_caller
from ._stats import BatcherStats

__all__ = ["TIMER_SLACK", "Piece", "Queue", "Request", "gather", "size", "wake_all"]

#: How late a timed wait may end: an event loop sleeps in whole milliseconds, and a
#: thread is scheduled when the OS gets to it. A batch due within it goes early.
TIMER_SLACK = 0.001


class Request:
    """One call's items on their way through the queue, and what came back for them."""

    __slots__ = (
        "cancelled", "costs", "enqueued", "error", "instance", "items", "loop", "offset", "one",
        "parts", "remaining", "signal",
    )  # fmt: skip

    def __init__(
        self,
        items: Sequence[Any],
        signal: Any,
        loop: Any = None,
        one: bool = False,
        instance: Any = None,
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
        #: with ``cost=``: the cost of the items before each position (``Queue.measure``)
        self.costs: list[float] | None = None
        #: for a batched method, the instance it was called on: the batch is run on it,
        #: and the request keeps it alive until then (the batcher holds it only weakly)
        self.instance = instance

    def wake(self) -> None:
        """Tell the caller its request is done (called once)."""
        signal = self.signal
        if self.loop is not None:
            try:  # noqa: SIM105 - cheaper than contextlib.suppress on every woken call
                self.loop.call_soon_threadsafe(_set_done, signal)
            except RuntimeError:  # the caller's event loop is closed: nobody is waiting
                pass
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

    def cost_of(self, start: int, stop: int) -> float:
        """The cost of ``items[start:stop]`` (0 without ``cost=``)."""
        costs = self.costs
        return 0 if costs is None else costs[stop] - costs[start]

    def first(self) -> Any:
        """The result of the first item (``.one``)."""
        if self.error is not None:
            raise self.error
        _, outputs, offset, _ = self.parts[0]
        return outputs[offset]


class _Shared:
    """One error for several callers: the first raises it, each other a copy of its own.

    Raised by every caller, one object would gather every caller's frames in its
    traceback; a copy starts from the traceback the error had here (``for_one_more_caller``).
    """

    __slots__ = ("error", "given", "trace")

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.trace = error.__traceback__
        self.given = False

    def next(self) -> BaseException:
        if not self.given:
            self.given = True
            return self.error
        return for_one_more_caller(self.error, self.trace)


def _first(part: tuple[int, Any, int, int]) -> int:
    return part[0]


Piece = tuple[Request, int, int]  # a request, and the slice of its items in a batch
_FUTURE = asyncio.Future  # the type loop.create_future() makes (checked with ``is``)


def _set_done(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


class Queue:
    """When a batch goes, what it holds, and where its results go. No I/O, no lock."""

    def __init__(
        self,
        batch_size: int,
        timeout_s: float,
        small_batch_threshold: int,
        max_queue: int | None,
        cost: Callable[[Any], Any] | None = None,
        max_cost: float | None = None,
        where: tuple[str, str] = ("", ""),
        keep_whole: bool = False,
    ) -> None:
        self.batch_size = batch_size
        #: with ``cost=``: what an item costs; a batch holds at most ``max_cost`` of them
        self.cost = cost
        self.max_cost = max_cost
        self.queued_cost: float = 0  # the cost of the items waiting
        self.where = where  # the function and its batch parameter, for errors
        #: with ``isolate=``: a request that fits in a batch is never cut in two, so that
        #: it succeeds or fails whole (a caller that isolates again, like the cache over
        #: the batcher, never sends items again that a batch has already computed)
        self.keep_whole = keep_whole
        self.timeout_s = timeout_s
        self.small = small_batch_threshold
        self.max_queue = max_queue
        self._urgent: deque[Request] = deque()  # small requests go first, FIFO among them
        self._normal: deque[Request] = deque()
        self.queued = 0  # items waiting, not yet in a batch
        self.closing = False
        self.stats = BatcherStats()

    def has_room(self, count: int) -> bool:
        """Whether ``count`` more items fit (a request larger than the queue fits alone)."""
        return self.max_queue is None or self.queued == 0 or self.queued + count <= self.max_queue

    def measure(self, request: Request) -> None:
        """With ``cost=``: cost the request's items (before taking the driver's lock)."""
        if self.cost is None or request.costs is not None:
            return
        values = list(map(self.cost, request.items))
        if checked_sum(values) is None:
            bad = first_bad_cost(values)
            raise bad_cost(self.where, bad, request.items[bad], values[bad])
        request.costs = list(accumulate(values, initial=0))

    def add(self, request: Request, now: float) -> None:
        request.enqueued = now
        if request.costs is not None:
            self.queued_cost += request.costs[-1]
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
        if self.max_cost is not None and self.queued_cost >= self.max_cost:
            return 0.0  # full by cost
        oldest = min(q[0].enqueued for q in (self._urgent, self._normal) if q)
        remaining = oldest + self.timeout_s - now
        return 0.0 if remaining <= slack else remaining

    def take(self, now: float) -> list[Piece]:
        """The next batch: up to ``batch_size`` items, small requests first, in order.

        With ``max_cost``, the batch also closes before a request that would take it past
        that cost; a request that alone costs more goes alone. With ``keep_whole``, it
        closes before a request that would not fit whole (unless larger than a batch).
        """
        pieces: list[Piece] = []
        room = self.batch_size
        budget = self.max_cost
        spent: float = 0
        for queue in (self._urgent, self._normal):
            while room and queue:
                request = queue[0]
                if request.left():  # its caller left: its items are not sent
                    queue.popleft()
                    self.queued -= len(request.items) - request.offset
                    self.queued_cost -= request.cost_of(request.offset, len(request.items))
                    continue
                start = request.offset
                stop = min(len(request.items), start + room)
                if self.keep_whole and pieces and stop < len(request.items) <= self.batch_size:
                    room = 0  # it goes whole in the next batch
                    break
                if request.costs is not None:
                    cost = request.cost_of(start, stop)
                    if budget is not None and pieces and spent + cost > budget:
                        room = 0  # the batch is full by cost
                        break
                    spent += cost
                    self.queued_cost -= cost
                    if budget is not None and spent > budget:
                        room = stop - start  # over the budget alone: nothing joins it
                pieces.append((request, start, stop))
                request.offset = stop
                room -= stop - start
                self.queued -= stop - start
                if stop == len(request.items):
                    queue.popleft()
        if not self.queued:
            self.queued_cost = 0  # no residue of float subtractions on an empty queue
        if pieces:
            # per batch, how long its oldest item waited for the batch to start
            oldest = min(request.enqueued for request, _, _ in pieces)
            self.stats.queue_wait_ms.add((now - oldest) * 1000)
        return pieces

    def deliver(self, pieces: list[Piece], outputs: Any, took: float) -> list[Request]:
        """Hand each request its slice of ``outputs``; return the requests now complete."""
        size = sum(stop - start for _, start, stop in pieces)
        self._count(size, took)
        done = []
        offset = 0
        for request, start, stop in pieces:
            count = stop - start
            offset += count
            request.remaining -= count
            if request.error is not None:  # answered at its failure, once: ignored
                if request.remaining == 0:
                    request.instance = None
                continue
            request.parts.append((start, outputs, offset - count, count))
            if request.remaining == 0:
                request.instance = None  # its caller may drop the instance now: let go
                done.append(request)
        return done

    def fail(self, pieces: list[Piece], error: BaseException, took: float) -> list[Request]:
        """The batch failed: each of its requests fails (the first error it meets)."""
        self._count(sum(stop - start for _, start, stop in pieces), took)
        done = []
        shared = _Shared(error)
        for request, start, stop in pieces:
            first_failure = request.error is None
            if first_failure:
                request.error = shared.next()
            request.remaining -= stop - start
            if request.remaining == 0:
                request.instance = None  # not before: its other pieces run on it
            # A request spanning several batches is answered at its first failure, and
            # only then (a thread's caller is woken by releasing a lock: once); its other
            # pieces still run and are ignored.
            if first_failure:
                done.append(request)
        return done

    def drain(self, error: BaseException) -> list[Request]:
        """Fail every request still waiting in the queue."""
        done = []
        shared = _Shared(error)
        for queue in (self._urgent, self._normal):
            while queue:
                request = queue.popleft()
                if request.error is None and not request.left():
                    request.error = shared.next()
                    done.append(request)
        self.queued = 0
        self.queued_cost = 0
        return done

    def _count(self, size: int, took: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += size
        stats.batch_sizes[size] += 1
        stats.batch_ms.add(took * 1000)


def wake_all(requests: Iterable[Request]) -> None:
    """Wake the caller of each request."""
    for request in requests:
        request.wake()


def size(pieces: list[Piece]) -> int:
    """How many items these pieces hold."""
    return sum(stop - start for _, start, stop in pieces)


def gather(pieces: list[Piece]) -> list[Any]:
    """The items of one batch, in order (the request's own list when it is the whole batch)."""
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
