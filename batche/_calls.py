"""Planning a call: bind it, key its items, look them up; ``map``'s and ``invalidate``'s calls.

``begin`` answers a call whose every item hit; otherwise it hands ``_computing.py`` a
``Call`` with the keys and the values found.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from itertools import islice, repeat
from typing import Any

from ._binding import check_batch, check_not_a_batch
from ._chunking import CallCosts
from ._errors import BatchArgumentError
from ._instructions import Call
from ._keys import UnstableKeyError, canonical, typed_key
from ._options import check_chunk_size


class CallPlanning(CallCosts):
    """From a call's arguments to its keys and the values the in-memory store holds."""

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
            raise self.unusable(items, ctx) or exc from None
        if complete:
            if self.cost is not None:
                self.saved_by_hits(self.cost, keys, items)
            return self._all_hits(values)  # type: ignore[arg-type]
        return Call(args, kwargs, sources, seqs or (items,), keys, values, generation)

    def keys_of(self, items: Sequence[Any], ctx: tuple[Any, ...]) -> Sequence[Hashable]:
        """The key of each item: the item (or ``key(item)``), with the context if any.

        For a store outside the process: a stable digest of namespace, version, item
        key and context (``namespace:version:digest``). With ``typed``, keys that tell
        types apart (``typed_key``); the digest does so too.
        """
        if self.encoder is not None:
            try:
                return self.encoder.keys(items, ctx, self.key)
            except UnstableKeyError as exc:
                raise self.unusable(items, ctx) or exc from None
        base = items if self.key is None else list(map(self.key, items))
        if self.typed:
            base = list(map(typed_key, base))
            ctx = typed_key(ctx)
        if self.binder.ctx_static_empty:
            return base
        return list(zip(base, repeat(ctx)))

    def unusable(self, items: Sequence[Any], ctx: tuple[Any, ...]) -> BatchArgumentError | None:
        """The error naming the first value that cannot be part of a key, if one cannot.

        Every store refuses the same values, in the same words: unhashable ones (as a
        dict would); a store outside the process also those with no stable encoding.
        """
        for label, name, value in self.binder.ctx_parts(ctx):
            if not _hashable(value):
                return BatchArgumentError(
                    f"{self.fname}: {label} is part of the cache key but its value is "
                    f"unhashable ({type(value).__name__}); pass ignore=({name!r},) if it does "
                    "not change the results, or a hashable value"
                )
            error = self._unstable(value, label)
            if error is not None:
                return error
        for index, item in enumerate(items):
            key = item if self.key is None else self.key(item)
            where = f"item {index} of {self.shown_names}"
            if _hashable(key):
                error = self._unstable(key, where + (" (its key=)" if self.key else ""))
                if error is not None:
                    return error
            elif self.key is None:
                return BatchArgumentError(
                    f"{self.fname}: {where} is unhashable ({type(item).__name__}); pass key= "
                    "to cache_batch_variable to map each item to a hashable key"
                )
            else:
                return BatchArgumentError(
                    f"{self.fname}: key= returned an unhashable {type(key).__name__} for {where}"
                )
        return None

    def _unstable(self, value: Any, where: str) -> BatchArgumentError | None:
        """With a store outside the process: the error if ``value`` has no stable encoding."""
        if self.encoder is None:
            return None
        try:
            canonical(value, where, typed=self.typed)
        except UnstableKeyError as exc:
            return UnstableKeyError(f"{self.fname}: {exc}")
        return None

    def chunks(
        self,
        iterable: Iterable[Any],
        chunk_size: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        """The calls ``map`` makes: one per chunk of ``iterable``."""
        check_chunk_size(self.fname, chunk_size)
        where, name = f"{self.fname[:-2]}.map()", self.binder.names[0]
        check_not_a_batch(iterable, name, where, "an iterable of items")
        try:
            iterator = iter(iterable)
        except TypeError:
            raise BatchArgumentError(
                f"{where}: {name!r} must be an iterable of items (map's first argument), "
                f"got {type(iterable).__name__}"
            ) from None
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
            raise self.unusable(items, ctx) or exc from None
        return keys


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
