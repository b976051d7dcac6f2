"""The two drivers of the engine: the only code of a call that does I/O.

The sync driver calls the function and the store in the caller's thread and waits on
events; the async driver awaits them on the running loop and runs computations as tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ._inflight import Flight, Run, enter_computing, leave_computing
from ._instructions import Engine, Invoke, Pace, Spawn, Wait


def run_sync(engine: Engine, func: Callable[..., Any]) -> Any:
    """Drive the engine in this thread: call ``func``, run computations, wait on events."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = engine.send(value) if error is None else engine.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            if op.__class__ is Invoke:
                if op.run is None:
                    value = func(*op.args, **op.kwargs)
                else:
                    token = enter_computing(op.run)
                    try:
                        value = func(*op.args, **op.kwargs)
                    finally:
                        leave_computing(token)
            elif op.__class__ is Wait:
                for flight in op.flights:
                    if not flight.done:
                        flight.signal.wait()
            elif op.__class__ is Pace:
                op.limit.acquire(op.cost)
            else:
                value = getattr(op.store, op.method)(*op.args)  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001 - handed on to the engine, which re-raises
            error = exc


async def run_async(engine: Engine, func: Callable[..., Awaitable[Any]]) -> Any:
    """Drive the engine on the running loop: await ``func``, spawn computations, wait."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = engine.send(value) if error is None else engine.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            if op.__class__ is Invoke:
                value = await func(*op.args, **op.kwargs)
            elif op.__class__ is Spawn:
                task = asyncio.get_running_loop().create_task(_computation(op.engine, func, op.run))
                task.add_done_callback(op.run.abandon)
                op.run.task = task
            elif op.__class__ is Wait:
                await _wait_flights(op.flights)
            elif op.__class__ is Pace:
                await op.limit.aacquire(op.cost)
            else:
                value = await getattr(op.store, "a" + op.method)(*op.args)  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001 - handed on to the engine, which re-raises
            error = exc


async def _computation(engine: Engine, func: Callable[..., Awaitable[Any]], run: Run) -> None:
    """A caller's computation as a task: its outcome reaches everyone through its flights."""
    enter_computing(run)  # in this task's own context, for its whole life
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await run_async(engine, func)


async def _wait_flights(flights: list[Flight]) -> None:
    """Wait for ``flights``; the computations nobody waits for any more are cancelled."""
    runs = {flight.run for flight in flights if not flight.done}
    for run in runs:
        run.waiters += 1
    try:
        pending = [flight.signal for flight in flights if not flight.done]
        if pending:
            # asyncio.wait leaves the futures alone when this caller is cancelled.
            await asyncio.wait(pending)
    finally:
        for run in runs:
            run.waiters -= 1
            if run.waiters == 0 and run.task is not None and not run.task.done():
                run.task.cancel()
