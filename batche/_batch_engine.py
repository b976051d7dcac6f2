"""One batch of ``dynamically`` with ``isolate=``, ``cost=`` or ``rate_limit=``.

A generator that does no I/O, run by the cache's drivers (``_drivers.run_sync`` in a
worker thread, ``run_async`` in a batch task): it waits for the rate limit (``Pace``),
calls the function (``Invoke``) and, when the batch fails with an exception ``isolate``
matches, splits it in halves by request (``_isolation.halving``), so that only the
callers whose own requests fail alone receive an exception. Each part is handed to the
driver's ``settle`` as soon as it is known, so its callers are woken at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._instructions import Engine, Invoke, Pace
from ._isolation import halving
from ._queue import Piece, size

if TYPE_CHECKING:
    from ._batcher_base import BatcherBase

__all__ = ["Settle", "batch_engine"]

#: ``settle(pieces, outputs, error, took)``: deliver ``outputs`` to the callers of
#: ``pieces``, or fail them with ``error`` (the driver takes its lock, wakes them)
Settle = Callable[[list[Piece], Any, "BaseException | None", float], None]


def batch_engine(owner: BatcherBase, pieces: list[Piece], settle: Settle) -> Engine:
    """Run the batch ``pieces``: every piece ends settled, with outputs or an error.

    An error that is not isolated (or a failed check of the outputs) settles every
    piece not settled yet, and is raised for the driver to end on.
    """
    api = owner._api
    limit = None if api is None else api.rate_limit
    isolates = None if api is None else api.isolates
    settled = [False] * len(pieces)
    started = [0.0]

    def attempt(part: list[int]) -> Engine:
        chosen = [pieces[i] for i in part]
        if limit is not None:
            yield Pace(limit, sum(request.cost_of(start, stop) for request, start, stop in chosen))
        args, kwargs = owner._call_args(chosen)
        started[0] = time.perf_counter()
        return (yield Invoke(args, kwargs, None))

    def accept(part: list[int], out: Any) -> Engine:
        chosen = [pieces[i] for i in part]
        outputs = owner._shape.outputs(out, size(chosen))
        _settle(part, outputs, None)
        return
        yield  # a generator, as halving wants: settling does no I/O

    def _settle(part: list[int], outputs: Any, error: BaseException | None) -> None:
        for i in part:
            settled[i] = True
        settle([pieces[i] for i in part], outputs, error, time.perf_counter() - started[0])

    def reject(index: int, error: Exception) -> None:
        _settle([index], None, error)

    try:
        yield from halving(list(range(len(pieces))), attempt, accept, reject, isolates)
    except BaseException as exc:
        _settle([i for i, done in enumerate(settled) if not done], None, exc)
        raise
