"""What one decorated function knows: its binding, its stores, its counts, its flights.

Set up once, at decoration; the parts of the engine (``_calls.py``, ``_store_access.py``,
``_computing.py``) read it and update the counts.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
from collections.abc import Callable, Hashable, MutableMapping, Sequence
from typing import Any

from ._annotations import annotated_array, underlying
from ._api_options import ApiOptions
from ._binding import Binder, display_name
from ._checks import for_running_loop
from ._errors import BatchDefinitionError
from ._inflight import Flights
from ._instructions import Engine, StoreIO
from ._keys import Encoder, UnstableKeyError, canonical
from ._local import LocalLayer, local_layer
from ._results import SHAPE_SUFFIX, UNKNOWN, is_array
from ._serialize import SerializationError
from .stores._base import Store, StoreError
from .stores._memory import MemoryStore

KeyFunc = Callable[[Any], Hashable]


class CoreState:
    """The state of one decorated function, shared by its sync and async wrapper."""

    def __init__(
        self,
        func: Callable[..., Any],
        names: tuple[str, ...] | None,
        *,
        mapping: MutableMapping[Hashable, Any] | MemoryStore | Store,
        key: KeyFunc | None,
        ignore: tuple[str, ...],
        max_batch_size: int | None,
        typed: bool = False,
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
        #: the store as the user passed it (``embed.cache``), or as made from maxsize/ttl
        self.mapping = mapping
        #: a store outside the process (SQLite, Redis): stable keys, reads and writes
        #: through the driver; ``store`` is then the optional in-memory layer before it
        self.remote: Store | None = None
        self.encoder: Encoder | None = None
        #: the key of the template of the function's arrays beside its entries
        self.shape_key = ""
        #: items of different types are different items (``lru_cache``'s ``typed``)
        self.typed = typed
        if isinstance(mapping, MemoryStore):
            self.store: LocalLayer | None = mapping
        elif isinstance(mapping, MutableMapping):
            self.store = MemoryStore(mapping)
        else:
            self.remote = mapping
            if namespace is None:
                namespace = default_namespace(func, self.fname)
            self.encoder = Encoder(namespace, version, typed=typed)
            self.shape_key = f"{namespace}:{version}:{SHAPE_SUFFIX}"
            self.store = None if local_maxsize is None else local_layer(mapping, local_maxsize)
        #: with ``lock=True``: seconds a lease on a key lasts (None: no leases)
        self.lock_timeout = lock_timeout
        self.key = key
        #: an item's key is the item itself: no key function, no other argument in the key
        self.items_are_keys = (
            key is None and not typed and self.binder.ctx_static_empty and self.remote is None
        )
        self.max_batch_size = max_batch_size
        #: the options for real APIs (``_api_options.py``): who is isolated, what an item
        #: costs, the budgets of a call and of a window
        self.api = api
        self.cost = None if api is None else api.cost
        self.isolates = None if api is None else api.isolates
        self.rate_limit = None if api is None else api.rate_limit
        # None: results are lists; an empty array like the last result when the function
        # returns arrays; True when only the return annotation says it does; UNKNOWN
        # until a result, or the template in the store, says (see _results.py).
        self.template: Any = True if annotated_array(func) else UNKNOWN
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

    def store_io(self, method: str, *args: Any) -> Engine:
        """``method`` of the store outside the process, through the driver, for a call:
        its ``StoreError`` (``on_store_error="raise"``) and ``SerializationError`` (a
        result the serializer cannot write) name this function too."""
        try:
            return (yield StoreIO(self.remote, method, *args))
        except (StoreError, SerializationError) as exc:
            raise type(exc)(f"{self.fname}: {exc}") from exc

    def read_remote(self, keys: Sequence[Hashable]) -> Engine:
        """What the store outside the process holds of ``keys`` (through the driver).

        Unless the function is known to return lists, the template of its arrays is
        read in the same round trip: a new process stacks its hits as the first did,
        and the template is used whenever its entries are (an LRU keeps it as long).
        """
        template = self.template
        if template is None:
            return (yield from self.store_io("get_many", keys))
        found = yield from self.store_io("get_many", [*keys, self.shape_key])
        stored = found.pop(self.shape_key, None)
        if template is UNKNOWN or template is True:
            if is_array(stored):
                self.template = stored
            elif found and template is UNKNOWN:
                # Entries of arrays are written with their template: these are not.
                self.template = None
        return found

    def remote_entries(self, keys: Sequence[Hashable], rows: Sequence[Any]) -> dict[Any, Any]:
        """What a write to the store outside the process holds: for a function that
        returns arrays, their template first (a store that writes entry by entry never
        shows an entry without it), then the rows."""
        if is_array(self.template):
            return {self.shape_key: self.template, **dict(zip(keys, rows))}
        return dict(zip(keys, rows))

    def loop_flights(self) -> Flights:
        """The registry of flights of the running event loop."""
        return for_running_loop(
            self._loop_flights, self._lock, lambda _loop: Flights.for_loop(self.finished)
        )


def default_namespace(func: Callable[..., Any], fname: str) -> str:
    """``module.qualname``: the same in every process that defines the function.

    The main module of a script is ``__mp_main__`` in its ``multiprocessing`` spawn
    workers: it is ``__main__`` here too, so that they share the parent's entries. A
    ``functools.partial`` is its function's name and its bound positional arguments
    (a digest; its bound keywords are parameters with defaults, part of every key).
    """
    target = underlying(func)
    module = getattr(target, "__module__", None) or "__main__"
    if module == "__mp_main__":
        module = "__main__"
    namespace = f"{module}.{getattr(target, '__qualname__', fname[:-2])}"
    bound = _bound_positionals(func)
    if bound:
        try:
            encoded = canonical(bound, "a positional argument the partial binds")
        except UnstableKeyError as exc:
            raise BatchDefinitionError(f"{fname}: {exc}; or pass namespace=") from None
        namespace += "/" + hashlib.blake2b(encoded, digest_size=8).hexdigest()
    return namespace


def _bound_positionals(func: Any) -> tuple[Any, ...]:
    """The positional arguments that (nested) partials bind, outermost last."""
    bound: tuple[Any, ...] = ()
    while isinstance(func, functools.partial):
        bound = func.args + bound
        func = func.func
    return bound
