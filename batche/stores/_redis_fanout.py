"""One pipeline per node of a Redis Cluster, all under one deadline: every node's commands
are sent before any reply is read, and replies are read as they arrive, so a node that
hangs delays nobody else and costs at most what is left of the deadline."""

from __future__ import annotations

import asyncio
import selectors
import socket
import time
from collections.abc import Sequence
from typing import Any, Union

from redis.exceptions import ResponseError

from ._redis_io import ERRORS, deadline

__all__ = ["Commands", "Late", "Outcome", "afan_out", "fan_out"]

#: the commands of one node, each a tuple of arguments (``("MGET", key, ...)``)
Commands = Sequence[tuple[Any, ...]]
#: what one node gave: a reply per command (an error reply in its place), or the error
#: (a failure or the deadline) that ended its round trip
Outcome = Union[list[Any], BaseException]


class Late(socket.timeout):
    """The deadline passed before this node's turn came: nothing was asked of it."""


def _late() -> BaseException:
    return socket.timeout("timed out: no answer before the deadline")


# -- threads: the sync client of each node -------------------------------------------------


def fan_out(work: Sequence[tuple[Any, Commands]]) -> list[Outcome]:
    """Each (node's ``redis.Redis`` client, commands) in one pipeline, within the deadline
    of the running ``bounded`` call; an outcome per node, in order."""
    outcomes: list[Outcome | None] = [None] * len(work)
    sent: dict[int, tuple[Any, Any]] = {}  # index -> (pool, connection) awaiting replies
    try:
        ends = deadline()
        for index, (client, commands) in enumerate(work):
            if ends is not None and time.monotonic() >= ends:
                outcomes[index] = Late("the deadline passed before this node's turn")
                continue
            pool = client.connection_pool
            try:
                connection = _connection(pool)
            except ERRORS as exc:
                outcomes[index] = exc
                continue
            sent[index] = (pool, connection)
            try:  # connects first if need be (bounded too)
                connection.send_packed_command(connection.pack_commands(commands))
            except ERRORS as exc:
                outcomes[index] = exc
                _give_back(*sent.pop(index), broken=True)
        _read_as_they_come(work, sent, outcomes)
    finally:
        for pool, connection in sent.values():  # no reply read: never reuse the connection
            _give_back(pool, connection, broken=True)
    return [_late() if outcome is None else outcome for outcome in outcomes]


def _read_as_they_come(
    work: Sequence[tuple[Any, Commands]],
    sent: dict[int, tuple[Any, Any]],
    outcomes: list[Outcome | None],
) -> None:
    ends = deadline()
    with selectors.DefaultSelector() as selector:
        for index, (_, connection) in sent.items():
            selector.register(connection._sock, selectors.EVENT_READ, index)
        while sent:
            left = None if ends is None else ends - time.monotonic()
            if left is not None and left <= 0:
                return
            ready = selector.select(left)
            if not ready:
                return
            for key, _ in ready:
                index = key.data
                selector.unregister(key.fileobj)
                pool, connection = sent.pop(index)
                outcome = _replies(connection, len(work[index][1]))
                outcomes[index] = outcome
                _give_back(pool, connection, broken=isinstance(outcome, BaseException))


def _replies(connection: Any, count: int) -> Outcome:
    replies: list[Any] = []
    try:
        for _ in range(count):
            try:
                replies.append(connection.read_response())
            except ResponseError as exc:  # an error reply: the connection is still in step
                replies.append(exc)
    except ERRORS as exc:
        return exc
    return replies


def _connection(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # pragma: no cover - redis-py < 5.3 names a command
        return pool.get_connection("_")


def _give_back(pool: Any, connection: Any, *, broken: bool) -> None:
    if broken:  # a reply may be on its way: the next user must not read it
        connection.disconnect()
    pool.release(connection)


# -- asyncio: the nodes of redis-py's asyncio cluster client --------------------------------


async def afan_out(work: Sequence[tuple[Any, Commands]], ends: float) -> list[Outcome]:
    """Each (asyncio ``ClusterNode``, commands) in one pipeline, all concurrently, until the
    monotonic time ``ends``; an outcome per node, in order."""
    tasks = [asyncio.ensure_future(_anode(node, commands)) for node, commands in work]
    if not tasks:
        return []
    try:
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, ends - time.monotonic()))
    finally:  # the deadline passed, or the caller was cancelled: stop the nodes left
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    outcomes: list[Outcome] = []
    for task in tasks:
        if task in pending or task.cancelled():
            outcomes.append(_late())
            continue
        error = task.exception()
        if error is not None and not isinstance(error, ERRORS):
            raise error  # a bug, not a failing node
        outcomes.append(error if error is not None else task.result())
    return outcomes


async def _anode(node: Any, commands: Commands) -> list[Any]:
    connection = node.acquire_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:  # failed or cancelled mid-reply: never reuse the connection
        await connection.disconnect(nowait=True)
        raise
    finally:
        release = getattr(node, "release", None)
        if release is not None:
            release(connection)
        else:  # pragma: no cover - redis-py < 6 puts it back by hand
            node._free.append(connection)
