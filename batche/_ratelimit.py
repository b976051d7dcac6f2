"""RateLimit: a budget of requests and cost per window, shared by threads, loops, processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import pickle
import time
from typing import Any, NamedTuple

from ._checks import MAX_SECONDS_TEXT, int_at_least, number_above, seconds
from ._errors import BatchConfigError
from ._slidinglog import SlidingLog
from .stores._circuit import SKIP, Circuit
from .stores._urls import database_fault, masked, secrets_of

__all__ = ["RateLimit"]

log = logging.getLogger("batche")


class _Ticket(NamedTuple):
    """One acquisition's slot, the now it was computed at (microseconds, same clock), the
    token to cancel it with, and the log that gave it."""

    slot: int
    now: int
    token: Any
    log: Any

    @property
    def wait(self) -> float:
        """Seconds to the slot, one microsecond more: no rounding lets a caller go early."""
        return (self.slot - self.now + 1) / 1e6 if self.slot > self.now else 0.0


def _number(value: Any, floor: float, *, inclusive: bool = False) -> bool:
    return number_above(value, floor, inclusive=inclusive) and math.isfinite(value)


class RateLimit:
    """At most ``requests`` acquisitions and at most ``cost`` total cost in any window of
    ``per`` seconds.

    Call :meth:`acquire` (threads) or :meth:`aacquire` (asyncio) before each request you
    send; it returns when the request fits the budget, at once when it already does.
    Callers are served first come, first served, each as early as the budget allows, so a
    steady workload uses the whole budget and a large request is never starved by small
    ones. A request whose cost alone is more than ``cost`` waits until no other costed
    request is in its window, then goes alone: the next costed one waits a full ``per``
    after it. A caller interrupted while waiting gives its place back.

    One object is one budget: share it between functions, threads and event loops (no
    loop is kept alive by it). With ``redis="redis://..."`` the budget lives in Redis and
    every process that uses the same URL, numbers and ``name`` shares it (one atomic Lua
    script per acquisition, on the Redis server's clock). If Redis cannot be reached, each
    process paces itself with its own budget (one warning is logged when it starts, one
    when Redis is back) and no call fails. A failure (an error, or no answer within
    ``timeout``) opens a circuit breaker, as a ``RedisStore``'s does: for ``retry_after``
    seconds acquisitions use the local budget without touching Redis, then one at a time
    tries Redis again while the others stay local, and the first that Redis answers
    shares the budget again. An acquisition pays at most one ``timeout``.

    Args:
        requests: acquisitions allowed per window (an int >= 1), or None.
        cost: total cost allowed per window (a number > 0, e.g. tokens), or None.
        per: the window, in seconds.
        redis: a Redis URL to share the budget between processes (``batche[redis]``).
        name: the budget's name in Redis (default: made of the three numbers).
        timeout: seconds a Redis acquisition may take, in all, before the local budget
            is used (no retries: one deadline).
        retry_after: seconds Redis is left alone after a failure (5.0).

    Example::

        limit = RateLimit(requests=3_000, cost=1_000_000, per=60)  # RPM and TPM
        limit.acquire(cost=tokens)   # or: await limit.aacquire(cost=tokens)
        response = client.embeddings.create(model=model, input=texts)
    """

    def __init__(
        self,
        requests: int | None = None,
        cost: float | None = None,
        per: float = 60.0,
        *,
        redis: str | None = None,
        name: str | None = None,
        timeout: float = 1.0,
        retry_after: float = 5.0,
    ) -> None:
        self.requests, self.cost, self.per = _checked_budget(requests, cost, per)
        if not _number(retry_after, 0, inclusive=True):
            raise BatchConfigError(
                f"RateLimit(): retry_after must be a number of seconds >= 0, got {retry_after!r}"
            )
        self.retry_after = float(retry_after)
        # Whether Redis is used, skipped after a failure, or tried again by one caller.
        self._circuit = Circuit(self.retry_after)
        per_us = max(1, round(per * 1e6))
        self._local = SlidingLog(requests, cost, per_us)
        self._redis: Any = None
        if name is None:  # the same in every process that gives the same numbers
            name = f"{requests}/{None if cost is None else float(cost)!r}/{float(per)!r}"
        self.name = name
        self._secrets: tuple[str, ...] = ()
        if redis is not None:
            self._redis = _redis_log(redis, self.name, timeout, self._local)
            self._secrets = secrets_of(redis)
        #: the Redis URL, its password masked (``redis://user:***@host/0``): safe to show
        self.redis = None if redis is None else masked(redis)

    def acquire(self, cost: float = 0) -> None:
        """Sleep in this thread until an acquisition of ``cost`` fits the budget."""
        ticket = self._reserve(_checked_cost(cost, "acquire"))
        if ticket.wait > 0:
            try:
                time.sleep(ticket.wait)
            except BaseException:
                self._cancel(ticket)
                raise

    async def aacquire(self, cost: float = 0) -> None:
        """Wait, without blocking the event loop, until an acquisition of ``cost`` fits."""
        cost = _checked_cost(cost, "aacquire")
        if self._redis is None or self._skipping():
            ticket = self._reserve(cost)  # a few microseconds of arithmetic: no I/O
        else:
            ticket = await self._areserve(cost)
        if ticket.wait > 0:
            try:
                await asyncio.sleep(ticket.wait)
            except BaseException:
                if ticket.log is self._local:
                    self._cancel(ticket)
                else:
                    await asyncio.get_running_loop().run_in_executor(None, self._cancel, ticket)
                raise

    async def _areserve(self, cost: float) -> _Ticket:
        """:meth:`_reserve` on a worker thread (Redis I/O), its slot given back if the
        caller is cancelled meanwhile: no event loop is tied to a client of ours."""
        loop = asyncio.get_running_loop()
        reserving = loop.run_in_executor(None, self._reserve, cost)
        try:
            return await asyncio.shield(reserving)
        except asyncio.CancelledError:
            # The slot is being taken (one round trip, bounded by timeout): give it back.
            await loop.run_in_executor(None, self._cancel, await reserving)
            raise

    def close(self) -> None:
        """Close the Redis client's connections (nothing to do without Redis)."""
        if self._redis is not None:
            self._redis.close()

    def _granted(self, slot: int, now: int, cost: float) -> None:
        """Called with every slot handed out (microseconds on the clock of ``now``)."""

    def _skipping(self) -> bool:
        """True while Redis is left alone after a failure (no probe is due yet)."""
        reopens = self._circuit.reopens
        return reopens is not None and time.monotonic() < reopens

    def _reserve(self, cost: float) -> _Ticket:
        """A slot for ``cost``: from Redis when it answers, else from the local log."""
        redis = self._redis
        ticket = SKIP if redis is None else self._circuit.enter()
        if ticket != SKIP:
            try:
                slot, now, token = redis.reserve(cost)
            except redis.error as exc:
                self._redis_failed(exc, ticket)
            except BaseException:
                self._circuit.leave(ticket)
                raise
            else:
                if self._circuit.succeeded(ticket):
                    log.warning("%r: Redis is back; the budget is shared again", self)
                self._granted(slot, now, cost)
                return _Ticket(slot, now, token, redis)
        now = time.monotonic_ns() // 1000
        slot, token = self._local.reserve(now, cost)
        self._granted(slot, now, cost)
        return _Ticket(slot, now, token, self._local)

    def _cancel(self, ticket: _Ticket) -> None:
        if ticket.log is self._local:
            self._local.cancel(ticket.token, time.monotonic_ns() // 1000)
            return
        # If Redis fails here, or is skipped, the slot stays taken: a little budget lost,
        # never exceeded.
        if self._skipping():
            return
        with contextlib.suppress(*ticket.log.error):
            ticket.log.cancel(ticket.token)

    def _redis_failed(self, exc: BaseException, ticket: int) -> None:
        error = self._scrub(str(exc) or type(exc).__name__)
        if self._circuit.failed(ticket, error):
            log.warning(
                "%r: Redis cannot be reached (%s); each process paces itself with its own "
                "budget until it is back, tried again every %g s", self, error, self.retry_after,
            )  # fmt: skip

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __reduce__(self) -> Any:
        # Its log and locks belong to this process: say so, rather than pickle's "cannot
        # pickle '_thread.lock' object", and say how processes share a budget.
        raise pickle.PicklingError(
            f"{self!r} cannot be pickled: its log and locks belong to this process; make "
            "a RateLimit in each worker process (at module level, or in the pool's "
            "initializer): with the same redis=... and numbers, they share one budget"
        )

    def __repr__(self) -> str:
        where = "" if self.redis is None else f", redis={self.redis!r}"
        return f"RateLimit(requests={self.requests}, cost={self.cost}, per={self.per}{where})"


def _checked_budget(requests: Any, cost: Any, per: Any) -> tuple[Any, Any, Any]:
    if requests is not None and not int_at_least(requests, 1):
        raise BatchConfigError(
            f"RateLimit(): requests must be None or an int >= 1, got {requests!r}"
        )
    if cost is not None and not _number(cost, 0):
        raise BatchConfigError(f"RateLimit(): cost must be None or a number > 0, got {cost!r}")
    if requests is None and cost is None:
        raise BatchConfigError("RateLimit(): requests and cost are both None; give one or both")
    if not seconds(per):  # a caller may sleep up to per: past MAX_SECONDS it cannot
        raise BatchConfigError(
            f"RateLimit(): per must be a number of seconds > 0, got {per!r} {MAX_SECONDS_TEXT}"
        )
    return requests, cost, per


def _checked_cost(cost: Any, method: str) -> float:
    if not _number(cost, 0, inclusive=True):
        raise BatchConfigError(f"RateLimit.{method}(): cost must be a number >= 0, got {cost!r}")
    return float(cost)


def _redis_log(url: Any, name: Any, timeout: Any, local: SlidingLog) -> Any:
    """The Redis log for ``url``, its options checked."""
    if not isinstance(url, str):
        raise BatchConfigError(f"RateLimit(): redis must be a Redis URL string, got {url!r}")
    if not isinstance(name, str) or not name:
        raise BatchConfigError(f"RateLimit(): name must be a non-empty string, got {name!r}")
    if not seconds(timeout):
        raise BatchConfigError(
            f"RateLimit(): timeout must be a number of seconds > 0, got {timeout!r} "
            f"{MAX_SECONDS_TEXT}"
        )
    fault = database_fault(url)
    if fault is not None:
        raise BatchConfigError(f"RateLimit(): redis ({masked(url)!r}): {fault}")
    from ._redislog import RedisLog

    try:
        return RedisLog(url, name, local.requests, local.cost, local.per_us, timeout=timeout)
    except ValueError as exc:
        detail = str(exc)
        for secret in secrets_of(url):
            detail = detail.replace(secret, "***")
        raise BatchConfigError(
            f"RateLimit(): redis is not a Redis URL ({masked(url)!r}): {detail}"
        ) from None
