"""What one decorated function knows: its binding, its stores, its counts, its flights.

Set up once, at decoration; the parts of the engine (``_calls.py``, ``_store_access.py``,
``_computing.py``) read it and update the counts.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

from ._api_options import ApiOptions
from ._binding import Binder, display_name
from ._checks import for_running_loop
from ._inflight import Flights
from ._keys import Encoder
from .stores._base import Store
from .stores._memory import LRUStore, MemoryStore

KeyFunc = Callable[[Any], Hashable]


class CoreState:
    """The state of one decorated function, shared by its sync and async wrapper."""

    def __init__(
        self,
        func: Callable[..., Any],
        names: tuple[str, ...] | None,
        *,
        mapping: MutableMapping[Hashable, Any] | Store,
        key: KeyFunc | None,
        ignore: tuple[str, ...],
        max_batch_size: int | None,
        namespace: str | None = None,
        version: str = "1",
        local_maxsize: int | None = None,
        lock_timeout: float | None = None,
        api: ApiOptions | None = None,
    ) -> None:
        self.func = func
        self.fname = display_name(func)
        self.binder = Binder(func, names, ignore, fname=self.fname)
        names = self.binder.names
        self.shown_names = repr(names[0]) if len(names) == 1 else repr(names)
        self.mapping = mapping
        #: a store outside the process (SQLite, Redis): stable keys, reads and writes
        #: through the driver; ``store`` is then the optional in-memory layer before it
        self.remote: Store | None = None
        self.encoder: Encoder | None = None
        if isinstance(mapping, MutableMapping):
            self.store: MemoryStore | None = MemoryStore(mapping)
        else:
            self.remote = mapping
            if namespace is None:
                module = getattr(func, "__module__", None) or "__main__"
                namespace = f"{module}.{getattr(func, '__qualname__', self.fname[:-2])}"
            self.encoder = Encoder(namespace, version)
            self.store = None if local_maxsize is None else MemoryStore(LRUStore(local_maxsize))
        #: with ``lock=True``: seconds a lease on a key lasts (None: no leases)
        self.lock_timeout = lock_timeout
        self.key = key
        #: an item's key is the item itself: no key function, no other argument in the key
        self.items_are_keys = key is None and self.binder.ctx_static_empty and self.remote is None
        self.max_batch_size = max_batch_size
        #: the options for real APIs (``_api_options.py``): who is isolated, what an item
        #: costs, the budgets of a call and of a window
        self.api = api
        self.cost = None if api is None else api.cost
        self.isolates = None if api is None else api.isolates
        self.rate_limit = None if api is None else api.rate_limit
        # None: results are lists; an empty array like the last result when the function
        # returns arrays; True when only the return annotation says it does.
        self.template: Any = True if annotated_array(func) else None
        # Guards the counters (+= is not atomic across threads) and the registry per loop.
        self._lock = threading.Lock()
        # Calls whose every item hit append their count here instead of taking the lock:
        # list.append is atomic, and folding removes only the entries it has summed.
        self._hit_log: list[int] = []
        self.hits = 0
        self.misses = 0
        self.joined = 0
        self.cost_paid: float = 0
        self.cost_saved: float = 0
        #: flights finished, by every registry of this function (see ``Flights.claim``)
        self.finished = [0]
        self.thread_flights = Flights.for_threads(self.finished)
        self._loop_flights: weakref.WeakKeyDictionary[Any, Flights] = weakref.WeakKeyDictionary()

    def loop_flights(self) -> Flights:
        """The registry of flights of the running event loop."""
        return for_running_loop(
            self._loop_flights, self._lock, lambda loop: Flights.for_loop(loop, self.finished)
        )


def annotated_array(func: Callable[..., Any]) -> bool:
    """True when the return annotation names a numpy array."""
    annotation = getattr(inspect.unwrap(func), "__annotations__", {}).get("return")
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not isinstance(text, str):
        return False
    origin = getattr(annotation, "__origin__", None)
    if origin is not None:
        text = getattr(origin, "__name__", "")
    return text.split("[", 1)[0].rsplit(".", 1)[-1] in ("ndarray", "NDArray")
