"""Small predicates shared by the option checks (each caller words its own error)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def int_at_least(value: Any, minimum: int) -> bool:
    """True for an int (not a bool) >= ``minimum``."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


def number_above(value: Any, floor: float, *, inclusive: bool = False) -> bool:
    """True for an int or float (not a bool) > ``floor`` (>= with ``inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value >= floor if inclusive else value > floor


#: The longest wait Python's locks, sockets and sleeps accept (about 292 years): a longer
#: or infinite one raises OverflowError where it is waited, so options are held to it.
MAX_SECONDS = threading.TIMEOUT_MAX
#: How ``MAX_SECONDS`` is named in messages.
MAX_SECONDS_TEXT = f"(at most {MAX_SECONDS:.3g} s: threading.TIMEOUT_MAX)"


def seconds(value: Any, *, zero: bool = False) -> bool:
    """True for a number of seconds (not a bool) > 0 (>= 0 with ``zero``) that can be
    waited: at most ``MAX_SECONDS``, so neither NaN nor infinite."""
    return number_above(value, 0, inclusive=zero) and value <= MAX_SECONDS


def for_running_loop(
    table: weakref.WeakKeyDictionary[Any, T], lock: threading.Lock, make: Callable[[Any], T]
) -> T:
    """The object of ``table`` for the running event loop, made by ``make(loop)`` once.

    Keyed weakly, so a closed loop's object goes with it, provided the object holds no
    reference to its loop (a value that reaches its key keeps it alive for good: make
    futures on the running loop instead). ``lock`` guards the table, since loops of
    several threads may ask at once.
    """
    loop = asyncio.get_running_loop()
    found = table.get(loop)
    if found is None:
        with lock:
            found = table.get(loop)
            if found is None:
                found = table[loop] = make(loop)
    return found
