"""The sliding-window log of a rate limit: when each acquisition may go (no clock, no I/O).

Times are integer microseconds, so that window arithmetic is exact. Two acquisitions are
in one window of ``per`` when less than ``per`` apart. The log holds every slot handed out
whose window is still open, including slots ahead of ``now`` that callers are waiting for.
Slots are handed out in order (first come, first served), each at the earliest time at
which it and the slots before it fit the budget. The Lua script in ``_redislog.py`` does
the same arithmetic inside Redis; both are checked by the same property tests.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["SlidingLog"]


class SlidingLog:
    """Slots for acquisitions so that any window of ``per_us`` holds at most ``requests``
    of them and at most ``cost`` of total cost (``None``: that budget is not limited).

    An acquisition whose cost alone is more than ``cost`` waits until no costed slot is
    in its window, then goes alone: no other costed slot is given within ``per_us`` of it.
    A cost of 0 is never held back by the cost budget.
    """

    def __init__(self, requests: int | None, cost: float | None, per_us: int) -> None:
        self.requests = requests
        self.cost = cost
        self.per_us = per_us
        self._slots: deque[tuple[int, float, int]] = deque()  # (slot, cost, token), in order
        self._spent = 0.0  # the cost of every slot in _slots
        self._tokens = 0
        # Guards _slots, _spent and _tokens: threads and event loops of any thread share
        # one log. Held for a few microseconds, never while anyone waits.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def fits(self, count: int, spent: float, cost: float) -> bool:
        """True when one more acquisition of ``cost`` fits beside ``count`` others of
        total ``spent`` in one window."""
        if self.requests is not None and count + 1 > self.requests:
            return False
        budget = self.cost
        return budget is None or cost == 0 or spent + min(cost, budget) <= budget

    def reserve(self, now: int, cost: float) -> tuple[int, int]:
        """The slot (``>= now``) of an acquisition of ``cost`` asked at ``now``, recorded in
        the log, and its token for :meth:`cancel`."""
        with self._lock:
            self._forget(now)
            slots = self._slots
            slot = max(now, slots[-1][0]) if slots else now
            count, spent = len(slots), self._spent
            # Drop the oldest slots out of the new one's window until it fits.
            for when, paid, _ in slots:
                if self.fits(count, spent, cost):
                    break
                count -= 1
                spent = spent - paid if count else 0.0
                slot = max(slot, when + self.per_us)
            self._tokens += 1
            slots.append((slot, cost, self._tokens))
            self._spent += cost
            return slot, self._tokens

    def cancel(self, token: int, now: int) -> None:
        """Give back the slot of ``token`` if it is still ahead of ``now`` (its caller
        stopped waiting): removing a slot can only leave more room for the others."""
        with self._lock:
            for entry in self._slots:
                if entry[2] == token:
                    if entry[0] > now:
                        self._slots.remove(entry)
                        self._spent = self._spent - entry[1] if self._slots else 0.0
                    return

    def _forget(self, now: int) -> None:
        """Drop the slots whose window closed: nothing at or after ``now`` can share one."""
        slots = self._slots
        horizon = now - self.per_us
        while slots and slots[0][0] <= horizon:
            self._spent -= slots.popleft()[1]
        if not slots:
            self._spent = 0.0  # no drift from float sums survives an empty log
