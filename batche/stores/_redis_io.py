"""How RedisStore talks to Redis: one deadline per round trip, a client per event loop
closed with its loop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, Generic, TypeVar, Union, cast

try:
    import redis
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisClusterException
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - the redis extra is installed in tests
    raise ImportError("RedisStore needs the redis package: pip install 'batche[redis]'") from exc

__all__ = [
    "ERRORS", "BoundedPool", "LoopClients", "Op", "Step", "acluster_enabled", "adrive", "arun",
    "async_client", "bounded", "cluster_enabled", "deadline", "drive", "rows", "run",
    "sync_client", "until", "within",
]  # fmt: skip

T = TypeVar("T")
C = TypeVar("C")

#: what a failing Redis raises: redis-py's errors (its cluster client's too, some of which
#: are not RedisErrors), socket errors, a deadline passed
ERRORS = (redis.RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


def rows(keys: Sequence[str], values: Sequence[Any]) -> list[tuple[str, bytes]]:
    """The (key, bytes) of the keys an ``MGET`` of ``keys`` found."""
    return [(key, value) for key, value in zip(keys, values) if value is not None]


# -- one deadline per round trip -----------------------------------------------------------

# The monotonic time by which the round trip under way in this thread must end (None: no
# round trip of ours is under way). A context variable: each thread has its own.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "batche_redis_deadline", default=None
)


def deadline() -> float | None:
    """The monotonic time by which the round trip under way in this thread must end."""
    return _DEADLINE.get()


def bounded(seconds: float, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on the sync client, every socket wait of it ending ``seconds`` from
    now at the latest: connecting, the handshake, sending and reading, all together."""
    ends = time.monotonic() + seconds
    outer = _DEADLINE.get()  # within a round trip already: never past its deadline
    token = _DEADLINE.set(ends if outer is None else min(ends, outer))
    try:
        return call(*args)
    finally:
        _DEADLINE.reset(token)


if sys.version_info >= (3, 11):

    async def within(seconds: float, awaitable: Awaitable[T]) -> T:
        """``await awaitable``, cancelled after ``seconds`` (``TimeoutError``)."""
        try:
            async with asyncio.timeout(seconds):
                return await awaitable
        except TimeoutError:
            raise TimeoutError(f"no answer within {seconds:.2g} s") from None

else:  # pragma: no cover - Python 3.9 and 3.10

    async def within(seconds: float, awaitable: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"no answer within {seconds:.2g} s") from None


async def until(ends: float, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, cancelled at the monotonic time ``ends`` (``TimeoutError``)."""
    return await within(max(0.0, ends - time.monotonic()), awaitable)


class _BoundedSocket:
    """A connected socket whose blocking calls also end by the running round trip's
    deadline. redis-py only ever waits in these calls, so the deadline holds for all."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()  # what redis-py asked for

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _wait(self, method: Callable[..., T], *args: Any) -> T:
        deadline = _DEADLINE.get()
        if deadline is None:
            return method(*args)
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        if self._timeout is not None and self._timeout <= left:
            return method(*args)
        self._sock.settimeout(left)
        try:
            return method(*args)
        finally:
            self._sock.settimeout(self._timeout)

    def recv(self, *args: Any) -> Any:
        return self._wait(self._sock.recv, *args)

    def recv_into(self, *args: Any) -> Any:
        return self._wait(self._sock.recv_into, *args)

    def send(self, *args: Any) -> Any:
        return self._wait(self._sock.send, *args)

    def sendall(self, *args: Any) -> None:
        self._wait(self._sock.sendall, *args)


class _BoundedConnection:
    """Mixed in before a redis-py connection class: its socket keeps the deadline, and
    connecting waits no longer than what is left of it."""

    socket_connect_timeout: float | None

    def _connect(self) -> Any:
        deadline = _DEADLINE.get()
        if deadline is None:
            return _BoundedSocket(super()._connect())  # type: ignore[misc]
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        configured = self.socket_connect_timeout
        self.socket_connect_timeout = left if configured is None else min(configured, left)
        try:
            return _BoundedSocket(super()._connect())  # type: ignore[misc]
        finally:
            self.socket_connect_timeout = configured


_bounded_classes: dict[type, type] = {}
_bounded_lock = threading.Lock()  # guards _bounded_classes


def _bounded_class(base: type) -> type:
    """``base`` (TCP, TLS or Unix socket connection) with ``_BoundedConnection`` mixed in."""
    with _bounded_lock:
        made = _bounded_classes.get(base)
        if made is None:
            made = type(f"Bounded{base.__name__}", (_BoundedConnection, base), {})
            _bounded_classes[base] = made
        return made


def sync_client(url: str, timeout: float) -> redis.Redis:
    """A sync client of ``url`` that never retries (one deadline, never one per attempt),
    every round trip bounded by ``bounded``. Raises ValueError for a bad URL."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    pool = client.connection_pool
    pool.connection_class = _bounded_class(pool.connection_class)
    return client


class BoundedPool(redis.ConnectionPool):
    """A connection pool whose connections keep the deadline of ``bounded`` (for the pools
    redis-py's cluster client makes, one per node)."""

    def __init__(self, **options: Any) -> None:
        base = options.pop("connection_class", redis.Connection)
        super().__init__(connection_class=_bounded_class(base), **options)


def async_client(url: str, timeout: float) -> aredis.Redis:
    """An asyncio client of ``url`` that never retries (each round trip runs ``within``
    its deadline)."""
    return aredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(NoBackoff(), 0),
    )


# -- a single server or a cluster? ----------------------------------------------------------


def _on_database_0(client: Any) -> Any:
    """A new connection like the client's, on database 0 (a cluster refuses any other)."""
    pool = client.connection_pool
    return pool.connection_class(**{**pool.connection_kwargs, "db": 0})


def cluster_enabled(client: redis.Redis) -> bool:
    """Whether the server of ``client`` is a node of a Redis Cluster (``INFO cluster``),
    within the running deadline."""
    connection = _on_database_0(client)
    try:
        connection.send_command("INFO", "cluster")
        return b"cluster_enabled:1" in connection.read_response()
    finally:
        connection.disconnect()


async def acluster_enabled(client: aredis.Redis) -> bool:
    """``cluster_enabled`` on an asyncio client."""
    connection = _on_database_0(client)
    try:
        await connection.send_command("INFO", "cluster")
        return b"cluster_enabled:1" in await connection.read_response()
    finally:
        await connection.disconnect()


# -- an asyncio client per event loop -----------------------------------------------------


class LoopClients(Generic[C]):
    """An asyncio client for each event loop that asks (redis-py's belong to one loop).

    A client is closed when its loop shuts down its async generators, as ``asyncio.run``,
    ``asyncio.Runner`` and test runners do before closing a loop: the client's closer is
    an async generator parked in that loop. Its connections are then closed on the loop
    that opened them and no loop is kept alive. ``aclose()`` closes the running loop's
    client at once. A loop closed without that shutdown (``loop.close()`` alone) cannot
    close anything any more: its client is dropped on the next use of this object, and
    asyncio warns about its sockets as it does for any library.
    """

    def __init__(self, make: Callable[[], C]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[Any, tuple[C, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # guards _clients: loops of several threads share it

    def get(self) -> C:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            entry = self._open(loop)
        return entry[0]

    def _open(self, loop: Any) -> tuple[C, Any]:
        self.drop_closed()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is None:
                client = self._make()
                closer = self._closer(client)
                # Run it to its `yield` now: the loop registers it as one of its async
                # generators, so that its shutdown runs the `finally` below.
                step = cast("Coroutine[Any, Any, None]", closer.__anext__())
                with contextlib.suppress(StopIteration):
                    step.send(None)
                entry = self._clients[loop] = (client, closer)
        return entry

    async def _closer(self, client: C) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self._lock:
                self._clients.pop(asyncio.get_running_loop(), None)
            await client.aclose()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Close the running loop's client now (a later use opens a new one)."""
        entry = self._clients.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()

    def drop_closed(self) -> None:
        """Forget the clients of loops closed without shutting down."""
        with self._lock:
            for loop in [loop for loop in list(self._clients) if loop.is_closed()]:
                del self._clients[loop]

    def __len__(self) -> int:
        return len(self._clients)


# -- several round trips, one engine for the sync and the asyncio client ------------------

#: a round trip: given the client, send a command (or a pipeline) and return its reply
Op = Callable[[Any], Any]
#: a step of several round trips: a round trip, or seconds to wait (for a message)
Step = Union[Op, float]


def pump(steps: Generator[Any, Any, T], answer: Callable[[Any], Any]) -> T:
    """Run ``steps``: what it yields answered by ``answer``, the answer sent back in; what
    ``steps`` returns."""
    reply: Any = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as stop:
            return cast("T", stop.value)
        reply = answer(step)


async def apump(steps: Generator[Any, Any, T], answer: Callable[[Any], Awaitable[Any]]) -> T:
    """``pump`` with a coroutine function."""
    reply: Any = None
    while True:
        try:
            step = steps.send(reply)
        except StopIteration as stop:
            return cast("T", stop.value)
        reply = await answer(step)


def drive(
    steps: Generator[Step, Any, T], trip: Callable[[Op], Any], wait: Callable[[float], Any]
) -> T:
    """Run ``steps``: each round trip by ``trip``, each wait by ``wait``, their results
    sent back into ``steps``; what ``steps`` returns."""
    return pump(steps, lambda step: wait(step) if isinstance(step, float) else trip(step))


async def adrive(
    steps: Generator[Step, Any, T],
    trip: Callable[[Op], Awaitable[Any]],
    wait: Callable[[float], Awaitable[Any]],
) -> T:
    """``drive`` with coroutine functions."""
    return await apump(steps, lambda step: wait(step) if isinstance(step, float) else trip(step))


def _no_wait(seconds: float) -> Any:
    raise TypeError("these steps do not wait")


def run(client: redis.Redis, seconds: float, steps: Generator[Step, Any, T]) -> T:
    """``steps`` on the sync client, each round trip within ``seconds``."""
    return drive(steps, lambda op: bounded(seconds, op, client), _no_wait)


async def arun(client: aredis.Redis, seconds: float, steps: Generator[Step, Any, T]) -> T:
    """``steps`` on an asyncio client, each round trip within ``seconds``."""
    return await adrive(steps, lambda op: within(seconds, op(client)), _no_wait)
