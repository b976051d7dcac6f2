"""Computations in flight: concurrent callers that miss the same keys compute them once.

A caller that misses keys *claims* the ones nobody is computing and *joins* the flights
that compute the others. The claim/finish bookkeeping is one class for threads and for
asyncio; only the lock (a real one for threads, none within one event loop) and the way a
waiter is woken (an ``Event``, a ``Future``) differ.

The registry keeps the list of active flights rather than a map of every key: with no
concurrency (the common case) a claim costs a few attribute reads, not a dict write per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Hashable, Sequence
from contextvars import ContextVar, Token
from typing import Any

from ._errors import for_one_more_caller

__all__ = ["Flight", "Flights", "Run", "enter_computing", "leave_computing"]


class Run:
    """One caller's computation of the keys it claimed, in one or more flights (chunks)."""

    __slots__ = ("flights", "registry", "task", "waiters")

    def __init__(self, registry: Flights) -> None:
        #: the asyncio task computing the flights (None for threads)
        self.task: Any = None
        #: callers waiting for it (asyncio): it is cancelled when the last one leaves
        self.waiters = 0
        self.registry = registry
        self.flights: list[Flight] = []

    def abandon(self, _task: Any = None) -> None:
        """Finish the flights still open as cancelled (a task's done callback).

        A task cancelled before its first step never runs its code, so the engine never
        finishes its flights: without this, whoever waits for them would wait forever.
        """
        self.registry.finish_open(self.flights, asyncio.CancelledError())


# The runs the current context computes on behalf of: a call made from inside the wrapped
# function must never wait for them (it would wait for itself). asyncio tasks inherit the
# context they were created in, so a computation nested in a task sees its ancestors too.
_COMPUTING: ContextVar[frozenset[Run]] = ContextVar("batche_computing", default=frozenset())


def enter_computing(run: Run) -> Token[frozenset[Run]]:
    """Mark the current context as computing ``run``; undo with ``leave_computing``."""
    return _COMPUTING.set(_COMPUTING.get() | {run})


def leave_computing(token: Token[frozenset[Run]]) -> None:
    _COMPUTING.reset(token)


class Flight:
    """One chunk of keys in flight: its results or its error once done."""

    __slots__ = (
        "_computed", "_mapping", "done", "early", "error", "keys", "raw", "run", "signal", "trace",
    )  # fmt: skip

    def __init__(self, keys: dict[Hashable, None], run: Run, signal: Any) -> None:
        self.keys = keys
        self.run = run
        #: results found in the store after the claim (not computed again)
        self.early: dict[Hashable, Any] = {}
        self._computed: tuple[list[Hashable], list[Any]] = ([], [])
        self._mapping: dict[Hashable, Any] | None = None
        #: the function's own result when one call computed every key of the flight
        self.raw: Any = None
        self.error: BaseException | None = None
        #: ``error``'s traceback when the flight failed (before its owner raised it further)
        self.trace: Any = None
        self.done = False
        self.signal = signal

    def record(self, keys: list[Hashable], rows: list[Any], raw: Any) -> None:
        """Keep what the function computed for ``keys`` (a mapping is made only if read)."""
        done_keys, done_rows = self._computed
        if done_keys:  # computed in parts (leases): keep them all, no single raw result
            self._computed = (done_keys + keys, done_rows + rows)
            self.raw = None
            return
        self._computed = (keys, rows)
        if len(keys) == len(self.keys):
            self.raw = raw

    def mapping(self, joined: bool = False) -> dict[Hashable, Any]:
        """Every key's result; raises the flight's error (a caller that ``joined`` the
        flight raises a copy of its own: see ``for_one_more_caller``)."""
        if self.error is not None:
            if joined:
                raise for_one_more_caller(self.error, self.trace)
            raise self.error
        if self._mapping is None:
            self._mapping = dict(zip(*self._computed))
            self._mapping.update(self.early)
        return self._mapping

    def outcome(self, keys: Sequence[Hashable]) -> list[Any]:
        """The results of ``keys`` for a caller that joined the flight, or its error raised."""
        return list(map(self.mapping(joined=True).__getitem__, keys))


class Flights:
    """The flights of one decorated function (for threads, or for one event loop)."""

    def __init__(
        self,
        lock: contextlib.AbstractContextManager[Any],
        new_signal: Callable[[], Any],
        fire: Callable[[Any], None],
        *,
        eager: bool,
        finished: list[int],
    ) -> None:
        # Guards ``_active`` and ``generation``; held for in-memory bookkeeping only.
        self._lock = lock
        self._new_signal = new_signal
        self._fire = fire
        self._eager = eager
        #: the flights in progress, in the order they were claimed (a dict: O(1) removal)
        self._active: dict[Flight, None] = {}
        #: ``finished[0]`` counts the flights finished so far (shared by a function's
        #: registries): a claim that sees it changed since its lookup looks its keys up
        #: again, since they may have been stored in between
        self._finished = finished

    @classmethod
    def for_threads(cls, finished: list[int]) -> Flights:
        return cls(
            threading.Lock(), threading.Event, threading.Event.set, eager=False, finished=finished
        )

    @classmethod
    def for_loop(cls, finished: list[int]) -> Flights:
        # One event loop runs one callback at a time: no lock is needed, and none is taken.
        # The registry keeps no reference to its loop (futures are made on the running
        # one), so a table of registries keyed weakly by loop lets a closed loop go.
        return cls(contextlib.nullcontext(), _new_future, _resolve, eager=True, finished=finished)

    def claim(
        self,
        todo: list[Hashable],
        step: int,
        generation: int,
        distinct: dict[Hashable, None] | None = None,
        cut: Callable[[list[Hashable]], list[tuple[int, int]]] | None = None,
    ) -> tuple[Run | None, list[Flight], list[tuple[Flight, list[Hashable]]], bool]:
        """Split ``todo`` into flights of this caller and flights to join.

        ``distinct`` may hold ``todo``'s keys as a dict, reused for a lone flight.
        ``cut(keys)``, if given, chunks the keys to compute instead of ``step``: the
        ``(start, stop)`` of each chunk (``max_batch_cost``).
        Returns the caller's run (None if it computes nothing), its flights (chunks of at
        most ``step`` keys), the flights it joins with the keys it wants from each, and
        whether a flight finished since the count ``generation`` was read, before the
        caller's lookup (the caller then looks its claimed keys up again).
        """
        joined: list[tuple[Flight, list[Hashable]]] = []
        ancestors = _COMPUTING.get()
        with self._lock:
            remaining = todo
            if self._active:
                remaining = self._join(todo, distinct, ancestors, joined)
            run = None
            mine: list[Flight] = []
            if remaining:
                run = Run(self)
                if cut is None:
                    bounds = [(s, s + step) for s in range(0, len(remaining), step)]
                else:
                    bounds = cut(remaining)
                for start, stop in bounds:
                    if remaining is todo and stop - start >= len(todo) and distinct is not None:
                        chunk = distinct  # the plan's own dict: no copy per key
                    else:
                        chunk = dict.fromkeys(remaining[start:stop])
                    signal = self._new_signal() if self._eager else None
                    mine.append(Flight(chunk, run, signal))
                self._active.update(dict.fromkeys(mine))
                run.flights = mine
            stale = self._finished[0] != generation
        return run, mine, joined, stale

    def _join(
        self,
        todo: list[Hashable],
        distinct: dict[Hashable, None] | None,
        ancestors: frozenset[Run],
        joined: list[tuple[Flight, list[Hashable]]],
    ) -> list[Hashable]:
        """Append to ``joined`` the active flights holding keys of ``todo``; the rest.

        Each flight is matched from its smaller side (its keys, or the keys still left),
        so a claim costs about ``len(todo)`` plus the keys in flight, however many chunks
        the flights are cut in (a scan of ``todo`` per flight was quadratic).
        """
        left = dict.fromkeys(todo) if distinct is None else distinct.copy()
        for flight in self._active:
            if flight.run in ancestors:
                continue  # a call from inside our own computation: never wait on it
            keys = flight.keys
            if len(keys) < len(left):
                wanted = list(filter(left.__contains__, keys))
            else:
                wanted = list(filter(keys.__contains__, left))
            if wanted:
                if flight.signal is None:
                    flight.signal = self._new_signal()
                joined.append((flight, wanted))
                for key in wanted:
                    del left[key]
                if not left:
                    break
        return todo if len(left) == len(todo) else list(left)

    def finish(self, flight: Flight, error: BaseException | None = None) -> None:
        """Mark ``flight`` done (its results are set, or ``error``) and wake its waiters.

        The caller stores the results before finishing, so a claim made after this
        either finds them in the store or sees the finished count moved and looks again.
        """
        with self._lock:
            if flight.done:
                return  # finished already (``finish_open`` after the engine's own finish)
            flight.error = error
            if error is not None:
                flight.trace = error.__traceback__
            flight.done = True
            del self._active[flight]
            self._finished[0] += 1
            signal = flight.signal
        if signal is not None:
            self._fire(signal)

    def finish_open(self, flights: list[Flight], error: BaseException) -> None:
        """Finish with ``error`` those of ``flights`` not done yet."""
        for flight in flights:
            self.finish(flight, error)

    def __len__(self) -> int:
        return len(self._active)


def _new_future() -> Any:
    return asyncio.get_running_loop().create_future()


def _resolve(future: Any) -> None:
    if not future.done():
        future.set_result(None)
