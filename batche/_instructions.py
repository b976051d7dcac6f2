"""What the engine yields to its driver, and the state of a call it computes.

The engine does no I/O: it yields one of these instructions and the driver (sync or
async, ``_drivers.py``) carries it out and sends back the result, or throws the error.
"""

from __future__ import annotations

from collections.abc import Generator, Hashable, Sequence
from typing import Any, Union

from ._inflight import Flight, Run


class Invoke:
    """Instruction to the driver: call the function with these arguments, send the result.

    ``run`` is the computation the call belongs to when it runs in the caller's own
    context (threads): the driver marks the context so nested calls never wait on it.
    """

    __slots__ = ("args", "kwargs", "run")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], run: Run | None) -> None:
        self.args = args
        self.kwargs = kwargs
        self.run = run


class Spawn:
    """Instruction to the async driver: run this caller's computation as a task.

    A task of its own, so that the caller's cancellation does not end it while others
    wait for it. (Threads cannot be cancelled: a thread computes its claim inline.)
    """

    __slots__ = ("engine", "run")

    def __init__(self, engine: Engine, run: Run) -> None:
        self.engine = engine
        self.run = run


class Wait:
    """Instruction to the driver: return once every one of these flights is done."""

    __slots__ = ("flights",)

    def __init__(self, flights: list[Flight]) -> None:
        self.flights = flights


class StoreIO:
    """Instruction to the driver: call this method of a store outside the process.

    The sync driver calls ``store.<method>(*args)``; the async one awaits
    ``store.a<method>(*args)``, so the event loop never blocks on store I/O.
    """

    __slots__ = ("args", "method", "store")

    def __init__(self, store: Any, method: str, *args: Any) -> None:
        self.store = store
        self.method = method
        self.args = args


class Pace:
    """Instruction to the driver: wait until ``limit`` lets a call of ``cost`` go.

    The sync driver sleeps in ``limit.acquire(cost)``; the async one awaits
    ``limit.aacquire(cost)``, so the event loop never blocks on a rate limit.
    """

    __slots__ = ("cost", "limit")

    def __init__(self, limit: Any, cost: float) -> None:
        self.limit = limit
        self.cost = cost


#: the engine of one call: yields instructions, returns the call's answer
Engine = Generator[Union[Invoke, Spawn, Wait, StoreIO, Pace], Any, Any]


class Call:
    """A call with misses: its arguments, batches and keys, and the values found."""

    __slots__ = ("args", "costs", "generation", "keys", "kwargs", "seqs", "sources", "values")

    def __init__(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        sources: tuple[Any, ...],
        seqs: tuple[Sequence[Any], ...],
        keys: Sequence[Hashable],
        values: list[Any] | None,
        generation: int,
    ) -> None:
        self.generation = generation
        self.args = args
        self.kwargs = kwargs
        self.sources = sources
        self.seqs = seqs
        self.keys = keys
        self.values = values
        #: with ``cost=``: the cost of each distinct key of the call
        self.costs: dict[Hashable, float] | None = None
