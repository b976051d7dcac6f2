"""``cache_batch_variable``: the per-item cache around a list-in/list-out function.

Data flows one way: bind the call -> make keys -> look them up -> call the function on
the distinct misses -> check the results -> store them -> merge in input order. The
steps after the lookup are one generator (``_Core.compute``) that does no I/O itself; a
sync driver and an async driver run it, so both kinds of function share every rule.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import uuid
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    MutableMapping,
    Sequence,
)
from itertools import filterfalse, islice, repeat
from typing import Any, Generic, NamedTuple, TypeVar, Union, overload

from ._binding import Binder, check_batch, display_name
from ._checks import for_running_loop
from ._coroutines import is_async_callable as is_async_callable  # re-exported: see below
from ._coroutines import mark_coroutine_function
from ._drivers import run_async, run_sync
from ._errors import BatchArgumentError, BatchDefinitionError
from ._inflight import Flight, Flights, Run
from ._instructions import Call, Engine, Invoke, Spawn, StoreIO, Wait
from ._keys import Encoder
from ._options import (
    check_chunk_size,
    check_ignore,
    check_key_and_batch_size,
    check_names,
    check_remote_options,
    check_store,
)
from ._plan import MISS, Plan, has_miss, plan
from ._results import assemble, result_rows
from .stores._base import Store
from .stores._memory import LRUStore, MemoryStore

if sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - exercised on 3.9 only
    from typing_extensions import ParamSpec

__all__ = ["AsyncCachedBatchFunction", "CacheInfo", "CachedBatchFunction", "cache_batch_variable"]

# _batcher.py imports these two from here (their home is _coroutines.py).
_mark_coroutine_function = mark_coroutine_function

P = ParamSpec("P")
R = TypeVar("R")
KeyFunc = Callable[[Any], Hashable]


class CacheInfo(NamedTuple):
    """Counts of one decorated function, per item (``functools.lru_cache``'s names first).

    ``misses`` counts items sent to the function; ``hits`` every other item asked for,
    so ``hits + misses`` is the number of items asked for. ``joined`` counts the items
    (of ``hits``) answered by joining a computation another caller had in flight.
    """

    hits: int
    misses: int
    maxsize: int | None
    currsize: int
    joined: int = 0


class _Core:
    """Everything one decorated function knows, shared by its sync and async wrapper."""

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
        # None: results are lists; an empty array like the last result when the function
        # returns arrays; True when only the return annotation says it does.
        self.template: Any = True if _annotated_array(func) else None
        # Guards the counters (+= is not atomic across threads) and the registry per loop.
        self._lock = threading.Lock()
        # Calls whose every item hit append their count here instead of taking the lock:
        # list.append is atomic, and folding removes only the entries it has summed.
        self._hit_log: list[int] = []
        self.hits = 0
        self.misses = 0
        self.joined = 0
        #: flights finished, by every registry of this function (see ``Flights.claim``)
        self.finished = [0]
        self.thread_flights = Flights.for_threads(self.finished)
        self._loop_flights: weakref.WeakKeyDictionary[Any, Flights] = weakref.WeakKeyDictionary()

    # -- the steps of a call ---------------------------------------------------------

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Bind the call and look its items up: the answer if all hit, else a ``Call``."""
        binder = self.binder
        if binder.lone and len(args) == 1 and not kwargs:
            sources: tuple[Any, ...] = args
            ctx: tuple[Any, ...] = ()
        else:
            sources, ctx = binder.split(args, kwargs)
        seqs: tuple[Sequence[Any], ...] | None = None  # made on a miss, for one batch
        if len(sources) == 1:
            items = sources[0]
            if items.__class__ is not list:
                items = check_batch(items, binder.names[0], self.fname)
        else:
            seqs = tuple(check_batch(s, n, self.fname) for s, n in zip(sources, binder.names))
            lengths = {len(s) for s in seqs}
            if len(lengths) > 1:
                shown = ", ".join(f"{n!r} has {len(s)}" for n, s in zip(binder.names, seqs))
                raise BatchArgumentError(
                    f"{self.fname}: the batch parameters must have one entry per item: {shown}"
                )
            items = list(zip(*seqs))
        keys = items if self.items_are_keys else self.keys_of(items, ctx)
        generation = self.finished[0]  # read before the lookup: see Flights.claim
        if self.store is None:  # only a store outside the process: the engine reads it
            return Call(args, kwargs, sources, seqs or (items,), keys, None, generation)
        try:
            values, complete = self.store.lookup(keys)
        except TypeError as exc:
            raise self.unhashable(items, keys, ctx) or exc from None
        if complete:
            return self._all_hits(values)  # type: ignore[arg-type]
        return Call(args, kwargs, sources, seqs or (items,), keys, values, generation)

    def keys_of(self, items: Sequence[Any], ctx: tuple[Any, ...]) -> Sequence[Hashable]:
        """The key of each item: the item (or ``key(item)``), with the context if any.

        For a store outside the process: a stable digest of namespace, version, item
        key and context (``namespace:version:digest``).
        """
        if self.encoder is not None:
            return self.encoder.keys(items, ctx, self.key, self.shown_names, self.binder.ctx_params)
        base = items if self.key is None else list(map(self.key, items))
        if self.binder.ctx_static_empty:
            return base
        return list(zip(base, repeat(ctx)))

    def loop_flights(self) -> Flights:
        """The registry of flights of the running event loop."""
        return for_running_loop(
            self._loop_flights, self._lock, lambda loop: Flights.for_loop(loop, self.finished)
        )

    def compute(self, call: Call, flights: Flights, *, inline: bool) -> Engine:
        """Get the distinct misses of ``call``: claim, compute or join them, then merge."""
        if self.remote is not None:
            call.values = yield from self._read_remote(call.keys, call.values)
            if call.values is not None and not has_miss(call.values):
                return self._all_hits(call.values)
        todo_plan = plan(call.keys, call.values)
        todo = todo_plan.todo
        step = self.max_batch_size or len(todo) or 1
        run, mine, joined, stale = flights.claim(todo, step, call.generation, todo_plan.distinct)
        if stale and mine:
            # A flight finished after our lookup: what it stored is not computed again.
            claimed = [k for flight in mine for k in flight.keys]
            if self.remote is not None:
                present = yield StoreIO(self.remote, "get_many", claimed)
            else:
                present = self.store.get_many(claimed)  # type: ignore[union-attr]
            for flight in mine:
                flight.early = {k: present[k] for k in flight.keys if k in present}
        sending = 0
        for flight in mine:
            sending += len(flight.keys) - len(flight.early)
        with self._lock:
            self.hits += len(call.keys) - sending
            if joined:
                self.joined += sum(len(wanted) for _, wanted in joined)
        if run is not None:
            if inline:
                yield from self.run_flights(call, todo_plan, mine, flights, run)
            else:
                yield Spawn(self.run_flights(call, todo_plan, mine, flights, None), run)
        waits = [flight for flight in mine if not flight.done]
        waits += [flight for flight, _ in joined if not flight.done]
        if waits:
            yield Wait(waits)
        if len(mine) == 1 and not joined and todo_plan.whole and mine[0].raw is not None:
            return mine[0].raw  # one call computed the whole batch, in order: the answer
        found: dict[Hashable, Any] = {}
        for flight in mine:
            found.update(flight.mapping())
        for flight, wanted in joined:
            found.update(zip(wanted, flight.outcome(wanted)))
        return assemble(todo_plan.merge(found), self.template)

    def _read_remote(self, keys: Sequence[Hashable], values: list[Any] | None) -> Engine:
        """Fill ``values`` (None: nothing found yet) from the store outside the process."""
        if values is None:
            wanted = list(dict.fromkeys(keys))
        else:
            wanted = list(dict.fromkeys(k for k, v in zip(keys, values) if v is MISS))
        found = yield StoreIO(self.remote, "get_many", wanted)
        if not found:
            return values
        if self.store is not None:  # the in-memory layer keeps what was read
            self.store.put(list(found), list(found.values()))
        return list(map(found.get, keys, values if values is not None else repeat(MISS)))

    def _all_hits(self, values: list[Any]) -> Any:
        """The answer of a call whose every item was found (counted without the lock)."""
        log = self._hit_log
        log.append(len(values))
        if len(log) > 4096:
            self._fold_hits()
        return values if self.template is None else assemble(values, self.template)

    def run_flights(
        self,
        call: Call,
        todo_plan: Plan,
        mine: list[Flight],
        flights: Flights,
        run: Run | None,
    ) -> Engine:
        """Compute this caller's flights, chunk by chunk: call, check, store, finish."""
        positions = None
        if not (self.items_are_keys and len(call.seqs) == 1 and not _is_array(call.sources[0])):
            positions = dict(zip(todo_plan.todo, todo_plan.firsts()))
        for index, flight in enumerate(mine):
            try:
                pending = list(flight.keys)
                if flight.early:  # some were found in the store meanwhile
                    pending = list(filterfalse(flight.early.__contains__, pending))
                while pending:
                    if self.lock_timeout is None:
                        yield from self._compute_keys(
                            call, todo_plan, flight, pending, positions, run
                        )
                        break
                    pending = yield from self._compute_leased(
                        call, todo_plan, flight, pending, positions, run
                    )
            except BaseException as exc:
                # Every waiter of this flight and of the ones not run gets the error;
                # nothing of them was stored.
                for failed in mine[index:]:
                    flights.finish(failed, exc)
                raise
            flights.finish(flight)
        return None

    def _compute_leased(
        self,
        call: Call,
        todo_plan: Plan,
        flight: Flight,
        pending: list[Hashable],
        positions: dict[Hashable, int] | None,
        run: Run | None,
    ) -> Engine:
        """With ``lock=True``: compute the keys we lease, follow the ones others lease.

        Returns the keys still to do: those whose lease was given back without a value
        (their holder failed) or expired (their holder died).
        """
        remote, timeout = self.remote, self.lock_timeout
        token = uuid.uuid4().hex
        leased = yield StoreIO(remote, "lease_many", pending, token, timeout)
        if leased:
            try:
                yield from self._compute_keys(call, todo_plan, flight, leased, positions, run)
            finally:
                yield StoreIO(remote, "release_many", leased, token)
        taken = set(leased)
        others = [key for key in pending if key not in taken]
        if not others:
            return []
        found = yield StoreIO(remote, "follow_many", others, timeout)
        flight.early.update(found)
        with self._lock:
            self.joined += len(found)
        return [key for key in others if key not in found]

    def _compute_keys(
        self,
        call: Call,
        todo_plan: Plan,
        flight: Flight,
        keys: list[Hashable],
        positions: dict[Hashable, int] | None,
        run: Run | None,
    ) -> Engine:
        """Call the function on ``keys``, check its results, store them, keep them."""
        if positions is None:  # the keys are the items themselves
            batches: tuple[Any, ...] = (keys,)
        else:
            batches = self.miss_batches(call, list(map(positions.__getitem__, keys)))
        args, kwargs = self.binder.rebuild(call.args, call.kwargs, batches)
        with self._lock:
            self.misses += len(keys)
        out = yield Invoke(args, kwargs, run)
        rows, self.template = result_rows(out, len(keys), self.fname, self.shown_names)
        if self.remote is not None:
            yield StoreIO(self.remote, "set_many", dict(zip(keys, rows)))
        if self.store is not None:
            order = todo_plan.write_order(keys)
            if order is keys:
                self.store.put(keys, rows)
            else:
                chunk = dict(zip(keys, rows))
                self.store.put(order, list(map(chunk.__getitem__, order)))
        flight.record(keys, rows, out if self.template is not None else rows)

    def miss_batches(self, call: Call, firsts: list[int]) -> tuple[Any, ...]:
        """Each batch argument cut down to the items at ``firsts``, in the caller's type."""
        batches = []
        for source, seq in zip(call.sources, call.seqs):
            if _is_array(source):
                np = sys.modules["numpy"]
                batches.append(source[np.asarray(firsts, dtype=np.intp)])
            else:
                batches.append(list(map(seq.__getitem__, firsts)))
        return tuple(batches)

    def unhashable(
        self, items: Sequence[Any], keys: Sequence[Hashable], ctx: tuple[Any, ...]
    ) -> BatchArgumentError | None:
        """The error that names what made a lookup fail with TypeError, if it is ours."""
        self.binder.check_ctx(ctx)
        for index, (item, key) in enumerate(zip(items, keys)):
            try:
                hash(key)
            except TypeError:
                if self.key is None:
                    return BatchArgumentError(
                        f"{self.fname}: item {index} of {self.shown_names} is unhashable "
                        f"({type(item).__name__}); pass key= to cache_batch_variable to map "
                        "each item to a hashable key"
                    )
                return BatchArgumentError(
                    f"{self.fname}: key= returned an unhashable {type(key).__name__} for "
                    f"item {index} of {self.shown_names}"
                )
        return None

    # -- the public extras -----------------------------------------------------------

    def chunks(
        self,
        iterable: Iterable[Any],
        chunk_size: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        """The calls ``map`` makes: one per chunk of ``iterable``."""
        check_chunk_size(self.fname, chunk_size)
        iterator = iter(iterable)
        while True:
            chunk = list(islice(iterator, chunk_size))
            if not chunk:
                return
            yield self.binder.place(self.split_items(chunk), args, kwargs)

    def split_items(self, items: Sequence[Any]) -> tuple[Any, ...]:
        """Items as batch arguments: itself for one batch parameter, unzipped for several."""
        if len(self.binder.names) == 1:
            return (items,)
        width = len(self.binder.names)
        if any(not isinstance(i, tuple) or len(i) != width for i in items):
            raise BatchArgumentError(
                f"{self.fname}: with batch parameters {self.shown_names}, each item must be "
                f"a tuple of {width} values"
            )
        return tuple(list(column) for column in zip(*items))

    def invalidate(self, batch: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Drop the in-memory entries of ``batch`` for these other arguments; return the
        keys, for the caller to drop from a store outside the process too."""
        items = check_batch(batch, self.binder.names[0], self.fname)
        call_args, call_kwargs = self.binder.place(self.split_items(items), args, kwargs)
        _, ctx = self.binder.split(call_args, call_kwargs)
        keys = self.keys_of(items, ctx)
        try:
            if self.store is not None:
                self.store.delete_many(keys)
        except TypeError as exc:
            raise self.unhashable(items, keys, ctx) or exc from None
        return keys

    def _fold_hits(self) -> None:
        """Move the logged hit counts into ``hits``."""
        log = self._hit_log
        with self._lock:
            count = len(log)
            self.hits += sum(log[:count])
            del log[:count]  # entries appended meanwhile stay, after these

    def cache_info(self) -> CacheInfo:
        self._fold_hits()
        with self._lock:
            hits, misses, joined = self.hits, self.misses, self.joined
        holder: Any = self.remote if self.remote is not None else self.store
        maxsize = getattr(holder, "maxsize", None)
        return CacheInfo(hits, misses, maxsize, len(holder), joined)

    def cache_clear(self) -> None:
        """Empty the store (for a store outside the process: this function's entries)."""
        if self.store is not None:
            self.store.clear()
        if self.remote is not None:
            assert self.encoder is not None
            self.remote.clear(f"{self.encoder.namespace}:{self.encoder.version}:")
        self._fold_hits()
        with self._lock:
            self.hits = self.misses = self.joined = 0


class _Wrapper:
    """What the sync and async decorated functions have in common."""

    _core: _Core
    __wrapped__: Callable[..., Any]

    def __init__(self, core: _Core) -> None:
        self._core = core
        functools.update_wrapper(self, core.func)  # type: ignore[arg-type]

    @property
    def cache(self) -> MutableMapping[Hashable, Any] | Store:
        """The store, as passed with ``cache=`` (or made from ``maxsize``/``ttl``)."""
        return self._core.mapping

    def cache_info(self) -> CacheInfo:
        """Hits, misses (items sent to the function), maxsize and current size."""
        return self._core.cache_info()

    def cache_clear(self) -> None:
        """Empty the store and reset the counts."""
        self._core.cache_clear()

    def invalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        """Drop the cached results of ``batch``'s items for these other arguments.

        The other arguments are given as in a call, without the batch; absent items are
        ignored. With several batch parameters, ``batch`` holds tuples of items.
        """
        core = self._core
        keys = core.invalidate(batch, args, kwargs)
        if core.remote is not None:
            core.remote.delete_many(keys)

    def __repr__(self) -> str:
        return f"<cached batch function {self._core.fname[:-2]}>"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return _Bound(self, obj)


class CachedBatchFunction(_Wrapper, Generic[P, R]):
    """A sync batch function with a per-item cache (what ``cache_batch_variable`` returns)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        core = self._core
        call = core.begin(args, kwargs)
        if call.__class__ is not Call:
            return call  # type: ignore[no-any-return]
        engine = core.compute(call, core.thread_flights, inline=True)
        return run_sync(engine, core.func)  # type: ignore[no-any-return]

    def map(
        self, iterable: Iterable[Any], /, *args: Any, chunk_size: int = 256, **kwargs: Any
    ) -> Iterator[Any]:
        """Results for an iterable of any length, lazily and in order, a chunk at a time.

        Each chunk of ``chunk_size`` items is one cached call (with the other arguments
        as given, the batch left out); at most one chunk is held in memory.
        """
        for call_args, call_kwargs in self._core.chunks(iterable, chunk_size, args, kwargs):
            yield from self(*call_args, **call_kwargs)  # type: ignore[misc]


class AsyncCachedBatchFunction(_Wrapper, Generic[P, R]):
    """An async batch function with a per-item cache (what ``cache_batch_variable`` returns)."""

    def __init__(self, core: _Core) -> None:
        super().__init__(core)
        mark_coroutine_function(self)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        core = self._core
        call = core.begin(args, kwargs)
        if call.__class__ is not Call:
            return call  # type: ignore[no-any-return]
        engine = core.compute(call, core.loop_flights(), inline=False)
        return await run_async(engine, core.func)  # type: ignore[no-any-return]

    async def map(
        self,
        iterable: Iterable[Any] | AsyncIterable[Any],
        /,
        *args: Any,
        chunk_size: int = 256,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Results for a (sync or async) iterable of any length, lazily, a chunk at a time."""
        core = self._core
        if not isinstance(iterable, AsyncIterable):
            for call_args, call_kwargs in core.chunks(iterable, chunk_size, args, kwargs):
                for result in await self(*call_args, **call_kwargs):  # type: ignore[attr-defined]
                    yield result
            return
        check_chunk_size(core.fname, chunk_size)
        chunk: list[Any] = []
        async for item in iterable:
            chunk.append(item)
            if len(chunk) == chunk_size:
                for result in await self._chunk(chunk, args, kwargs):
                    yield result
                chunk = []
        if chunk:
            for result in await self._chunk(chunk, args, kwargs):
                yield result

    async def ainvalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        """``invalidate`` without blocking the event loop on a store outside the process."""
        core = self._core
        keys = core.invalidate(batch, args, kwargs)
        if core.remote is not None:
            await core.remote.adelete_many(keys)

    async def _chunk(self, chunk: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call_args, call_kwargs = self._core.binder.place(
            self._core.split_items(chunk), args, kwargs
        )
        return await self(*call_args, **call_kwargs)


class _Bound:
    """A decorated method bound to its instance (like a bound method, keeping the extras)."""

    __slots__ = ("__func__", "__self__")

    def __init__(self, wrapper: _Wrapper, obj: Any) -> None:
        self.__func__ = wrapper
        self.__self__ = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)  # type: ignore[operator]

    def map(self, iterable: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.map(iterable, self.__self__, *args, **kwargs)  # type: ignore[attr-defined]

    def invalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> None:
        self.__func__.invalidate(batch, self.__self__, *args, **kwargs)

    def ainvalidate(self, batch: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.ainvalidate(batch, self.__self__, *args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func__, name)

    def __repr__(self) -> str:
        return f"<bound {self.__func__!r} of {self.__self__!r}>"


# -- the decorator ---------------------------------------------------------------------


class _Decorator:
    """``cache_batch_variable(...)`` before it is applied to a function."""

    __slots__ = ("_options",)

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]  # async first, on purpose
        self, func: Callable[P, Awaitable[R]]
    ) -> AsyncCachedBatchFunction[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> CachedBatchFunction[P, R]: ...
    def __call__(self, func: Callable[..., Any]) -> Any:
        return _decorate(func, **self._options)


NameSpec = Union[str, Sequence[str], None]


@overload
def cache_batch_variable(  # type: ignore[overload-overlap]  # async first, on purpose
    batch_variable_name: Callable[P, Awaitable[R]],
) -> AsyncCachedBatchFunction[P, R]: ...
@overload
def cache_batch_variable(batch_variable_name: Callable[P, R]) -> CachedBatchFunction[P, R]: ...
@overload
def cache_batch_variable(
    batch_variable_name: NameSpec = None,
    maxsize: int | None = None,
    *,
    cache: MutableMapping[Any, Any] | None = None,
    ttl: float | None = None,
    key: KeyFunc | None = None,
    ignore: str | Iterable[str] = (),
    max_batch_size: int | None = None,
    namespace: str | None = None,
    version: str | int = 1,
    local_maxsize: int | None = None,
    lock: bool = False,
    lock_timeout: float = 60.0,
) -> _Decorator: ...
def cache_batch_variable(
    batch_variable_name: Any = None,
    maxsize: int | None = None,
    *,
    cache: MutableMapping[Any, Any] | None = None,
    ttl: float | None = None,
    key: KeyFunc | None = None,
    ignore: str | Iterable[str] = (),
    max_batch_size: int | None = None,
    namespace: str | None = None,
    version: str | int = 1,
    local_maxsize: int | None = None,
    lock: bool = False,
    lock_timeout: float = 60.0,
) -> Any:
    """Cache a list-in/list-out function per item of its batch argument.

    A call looks each item up, sends only the misses to the function (each distinct
    item once, in order of first appearance; not at all when nothing is missing) and
    returns one result per item in input order, exactly what the plain function would
    return. The other arguments are part of each item's key. If the function raises or
    returns the wrong number of results, nothing from that call is cached.

    Args:
        batch_variable_name: the parameter holding the batch; optional when the function
            has one parameter (besides ``self``/``cls``) or one annotated as a list. A
            tuple of names zips several equal-length batch parameters item by item.
        maxsize: ``None`` for an unbounded dict; an int for an LRU of that many items.
        cache: any ``MutableMapping`` to use as the store (a ``cachetools`` cache, a dict
            shared on purpose).
        ttl: seconds an entry lives (a ``cachetools.TTLCache``, bounded by ``maxsize``).
        key: maps an item to a hashable key (for dicts, arrays, models).
        ignore: names of arguments left out of the key (``"self"``, ``"client"``).
        max_batch_size: most items sent to the function in one call; misses go in
            chunks, each stored as soon as it is computed.
        namespace: with a store outside the process (``SQLiteStore``, ``RedisStore``):
            the part of every key that tells this function's entries apart (default:
            the function's module and qualified name).
        version: part of every key too; bump it when the results change (a new model),
            and old entries are no longer seen.
        local_maxsize: an in-memory LRU of this many items in front of a store outside
            the process, so that hot items skip the network.
        lock: with a ``RedisStore``: processes that miss the same items at the same
            moment compute each once; the others wait for its result (a lease per key).
        lock_timeout: seconds a lease lasts; a lease whose holder died expires then,
            and a waiter computes the item itself.

    Example::

        @cache_batch_variable(batch_variable_name="texts", maxsize=10_000)
        def embed(texts: list[str], model: str = "small") -> list[list[float]]: ...
    """
    if callable(batch_variable_name) and not isinstance(batch_variable_name, str):
        return _decorate(batch_variable_name, None, None)
    options: dict[str, Any] = {
        "names": check_names(batch_variable_name),
        "mapping": check_store(maxsize, cache, ttl),
        "key": key,
        "ignore": check_ignore(ignore),
        "max_batch_size": max_batch_size,
        **check_remote_options(cache, namespace, version, local_maxsize, lock, lock_timeout),
    }
    check_key_and_batch_size(key, max_batch_size)
    return _Decorator(options)


def _decorate(
    func: Any,
    names: tuple[str, ...] | None,
    mapping: MutableMapping[Hashable, Any] | Store | None,
    key: KeyFunc | None = None,
    ignore: tuple[str, ...] = (),
    max_batch_size: int | None = None,
    **remote: Any,
) -> Any:
    if isinstance(func, (classmethod, staticmethod)):
        wrapped = _decorate(func.__func__, names, mapping, key, ignore, max_batch_size, **remote)
        return type(func)(wrapped)
    if not callable(func):
        raise BatchDefinitionError(
            f"cache_batch_variable() decorates a function, got {type(func).__name__}"
        )
    core = _Core(
        func,
        names,
        mapping={} if mapping is None else mapping,
        key=key,
        ignore=ignore,
        max_batch_size=max_batch_size,
        **remote,
    )
    if is_async_callable(func):
        return AsyncCachedBatchFunction(core)
    return CachedBatchFunction(core)


def _is_array(obj: Any) -> bool:
    """True for a numpy array (without importing numpy when nobody else has)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _annotated_array(func: Callable[..., Any]) -> bool:
    """True when the return annotation names a numpy array."""
    annotation = getattr(inspect.unwrap(func), "__annotations__", {}).get("return")
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not isinstance(text, str):
        return False
    origin = getattr(annotation, "__origin__", None)
    if origin is not None:
        text = getattr(origin, "__name__", "")
    return text.split("[", 1)[0].rsplit(".", 1)[-1] in ("ndarray", "NDArray")
