"""A circuit breaker: whether a call may use a store that failed lately (no I/O here)."""

from __future__ import annotations

import threading
import time

__all__ = ["PROBE", "SKIP", "USE", "Circuit"]

# What a call may do, from Circuit.enter(): skip the store, use it, or use it as the one
# call that tries a store that failed (its outcome closes or reopens the circuit).
SKIP, USE, PROBE = 0, 1, 2


class Circuit:
    """The state of a circuit breaker in front of one store.

    Closed (the store answers): every call uses the store. A failure opens the circuit:
    for ``retry_after`` seconds calls skip the store. Then one call at a time tries it (a
    probe) while the others still skip; the probe's success closes the circuit, its
    failure opens it for another ``retry_after``. The store reports each outcome; a
    transition is reported once (so that trouble and recovery are each logged once).
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        #: monotonic time from which a probe may start; None while the circuit is closed
        self.reopens: float | None = None
        #: the last failure, for the messages of calls that skip the store
        self.error = ""
        # Held by the one call probing an open circuit; taken without blocking, so that
        # no thread and no event loop ever waits on it.
        self._probe = threading.Lock()
        # Guards the transitions of `reopens`, so that each is reported to one caller.
        self._lock = threading.Lock()

    def enter(self) -> int:
        """``USE``, ``SKIP`` or ``PROBE``: what this call may do with the store."""
        reopens = self.reopens
        if reopens is None:
            return USE
        if time.monotonic() < reopens or not self._probe.acquire(blocking=False):
            return SKIP
        return PROBE

    def succeeded(self, ticket: int) -> bool:
        """Record a call that worked; True when it closed the circuit (the store is back)."""
        closed = False
        if self.reopens is not None:
            with self._lock:
                closed, self.reopens = self.reopens is not None, None
        self.leave(ticket)
        return closed

    def failed(self, ticket: int, error: str) -> bool:
        """Record a failure; True when it opened the circuit (the trouble starts)."""
        with self._lock:
            opened = self.reopens is None
            self.reopens = time.monotonic() + self.retry_after
            self.error = error
        self.leave(ticket)
        return opened

    def leave(self, ticket: int) -> None:
        """End a call without an outcome (cancelled, or a bug): a probe makes way."""
        if ticket == PROBE:
            self._probe.release()
