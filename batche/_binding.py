"""Binding a call: which argument is the batch, what the other arguments contribute to the key.

Everything here is decided once, at decoration time, from the signature (checked by
``_annotations.py``); the per-call work is a tuple slice in the common cases and
``Signature.bind`` in the rest.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
from collections.abc import Callable, Collection, Iterator
from operator import itemgetter
from typing import Any

from ._annotations import POSITIONAL, check_definition, type_hints, underlying
from ._errors import BatchArgumentError, BatchDefinitionError

_P = inspect.Parameter

# Batches that are iterable but are not a list of items: a string is not a batch of
# characters, a dict is not a batch of keys, a set has no order to answer in (a dict's
# keys() is a set too, but an ordered one: it is a batch).
_NOT_A_BATCH = (str, bytes, bytearray, memoryview, cabc.Mapping, cabc.Set)


def display_name(func: Callable[..., Any]) -> str:
    """``qualname()`` as errors show the function (a partial's function, not its repr)."""
    func = underlying(func)
    return f"{getattr(func, '__qualname__', None) or getattr(func, '__name__', repr(func))}()"


class Binder:
    """Splits a call into its batches and a context key; rebuilds the call for the misses."""

    __slots__ = (
        "_batch_get",
        "_ctx_get",
        "_fast",
        "_ignore",
        "_nparams",
        "_nrequired",
        "_positions",
        "_signature",
        "_tail_defaults",
        "_varargs",
        "_varkw",
        "ctx_params",
        "ctx_static_empty",
        "fname",
        "lone",
        "names",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        names: tuple[str, ...] | None,
        ignore: Collection[str],
        *,
        fname: str,
    ) -> None:
        self.fname = fname
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise BatchDefinitionError(f"{fname}: cannot read its signature: {exc}") from None
        self._signature = signature
        params = list(signature.parameters.values())
        by_name = {p.name: p for p in params}
        self._varkw = next((p.name for p in params if p.kind is _P.VAR_KEYWORD), None)
        self._varargs = next((p.name for p in params if p.kind is _P.VAR_POSITIONAL), None)
        names = check_definition(params, names, ignore, type_hints(func), fname)
        self.names = names
        self._ignore = frozenset(ignore)
        self.ctx_params = tuple(
            p.name for p in params if p.name not in names and p.name not in ignore
        )
        # No argument but the batch can reach the key: the key of an item is the item
        # itself, and lookups need not build a tuple per item.
        self.ctx_static_empty = not self.ctx_params
        self._positions = tuple(
            _position(params, name) if name in by_name else None for name in names
        )

        # Fast path: a function of plain positional-or-keyword parameters, called with
        # positional arguments only (the common `embed(texts)`), binds by slicing.
        self._fast = all(p.kind in POSITIONAL for p in params)
        self._nparams = len(params)
        self._nrequired = sum(p.default is _P.empty for p in params)
        defaults = [p.default for p in params]
        self._tail_defaults = tuple(tuple(defaults[n:]) for n in range(len(params) + 1))
        ctx_index = tuple(i for i, p in enumerate(params) if p.name in self.ctx_params)
        self._ctx_get = _tuple_getter(ctx_index)
        if self._fast:
            self._batch_get = _tuple_getter(tuple(self._positions))  # type: ignore[arg-type]
        #: ``f(batch)`` binds to itself: one plain parameter, the batch, nothing else keyed
        self.lone = self._fast and len(params) == 1 and len(names) == 1 and not self.ctx_params

    def split(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], Any]:
        """The batch arguments (one per batch name) and the context key of one call."""
        if self._fast and not kwargs and self._nrequired <= len(args) <= self._nparams:
            full = args if len(args) == self._nparams else args + self._tail_defaults[len(args)]
            return self._batch_get(full), self._ctx_get(full)
        return self._split_bound(args, kwargs)

    def _split_bound(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], Any]:
        """The general path: bind through the signature, defaults applied."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise self._bind_error(args, kwargs, exc) from None
        bound.apply_defaults()
        arguments = bound.arguments
        extra: dict[str, Any] = arguments.get(self._varkw, {}) if self._varkw else {}
        batches = []
        for name in self.names:
            if name in arguments and name != self._varkw:
                batches.append(arguments[name])
            elif name in extra:
                batches.append(extra[name])
            else:
                raise self._missing_batch(name, "")
        ctx = []
        for name in self.ctx_params:
            value = arguments.get(name, ())
            if name == self._varkw:
                left_out = self._ignore.union(self.names)
                value = tuple(sorted((k, v) for k, v in value.items() if k not in left_out))
            ctx.append(value)
        return tuple(batches), tuple(ctx)

    def rebuild(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], batches: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The same call with each batch argument replaced, spelled as the caller spelled it."""
        new_args = list(args)
        new_kwargs = dict(kwargs)
        for name, position, batch in zip(self.names, self._positions, batches):
            if position is not None and position < len(args):
                new_args[position] = batch
            else:
                new_kwargs[name] = batch
        return tuple(new_args), new_kwargs

    def place(
        self, batches: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """A call from batches and the other arguments, as ``map`` and ``invalidate`` get them."""
        new_args = list(args)
        new_kwargs = dict(kwargs)
        slots = sorted(zip(self._positions, self.names, batches), key=_slot_order)
        for position, name, batch in slots:
            if position is not None and position <= len(new_args):
                new_args.insert(position, batch)
            else:
                new_kwargs[name] = batch
        return tuple(new_args), new_kwargs

    def _bind_error(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: TypeError
    ) -> BatchArgumentError:
        """The error of a call that does not bind: naming the batch when it is missing."""
        for name, position in zip(self.names, self._positions):
            if name not in kwargs and (position is None or position >= len(args)):
                return self._missing_batch(name, f" ({exc})")
        return BatchArgumentError(f"{self.fname}: {exc}")

    def _missing_batch(self, name: str, detail: str) -> BatchArgumentError:
        # batche 0.1.1's words for a call without its batch, the bare name first
        return BatchArgumentError(
            f"{self.fname}: {name} must be a valid argument of the batch function; this call "
            f"does not pass {name!r}{detail}"
        )

    def ctx_parts(self, ctx: tuple[Any, ...]) -> Iterator[tuple[str, str, Any]]:
        """Each value the other arguments put in the key: how errors name it, the name
        ``ignore=`` takes to leave it out, and the value (``**kwargs`` one by one)."""
        for name, value in zip(self.ctx_params, ctx):
            if name == self._varkw:
                for key, item in value:
                    yield f"argument {key!r} (in **{name})", key, item
            elif name == self._varargs:
                for index, item in enumerate(value):
                    yield f"argument {index} of *{name}", name, item
            else:
                yield f"argument {name!r}", name, value


def _slot_order(slot: tuple[int | None, str, Any]) -> tuple[int, int]:
    position = slot[0]
    return (0, position) if position is not None else (1, 0)


def _position(params: list[inspect.Parameter], name: str) -> int | None:
    """Index of a parameter among the positional ones, None for keyword-only."""
    for index, param in enumerate(params):
        if param.kind not in POSITIONAL:
            return None
        if param.name == name:
            return index
    return None


def _tuple_getter(index: tuple[int, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if not index:
        return lambda full: ()
    if len(index) == 1:
        (only,) = index
        return lambda full: (full[only],)
    return itemgetter(*index)


def check_batch(batch: Any, name: str, fname: str) -> list[Any] | tuple[Any, ...]:
    """The items of one batch argument as a sequence, or a clear error."""
    kind = type(batch)
    if kind is list or kind is tuple:
        return batch  # type: ignore[no-any-return]
    check_not_a_batch(batch, name, fname)
    try:
        return list(batch)
    except TypeError:
        raise BatchArgumentError(
            f"{fname}: {name!r} must be a list of items, got {kind.__name__}"
        ) from None


def check_not_a_batch(batch: Any, name: str, fname: str, what: str = "a list of items") -> None:
    """Refuse a string, a mapping or a set as a batch (or as ``map``'s iterable)."""
    if isinstance(batch, _NOT_A_BATCH) and not isinstance(batch, cabc.MappingView):
        kind = type(batch).__name__
        if isinstance(batch, (str, bytes, bytearray, memoryview)):
            hint = " (a string is not a batch of characters: wrap a single item in a list)"
        elif isinstance(batch, cabc.Set):
            hint = " (a set has no order to answer in: pass a list, e.g. sorted(...))"
        else:
            hint = " (a mapping is not a batch of its keys: pass a list)"
        raise BatchArgumentError(f"{fname}: {name!r} must be {what}, got {kind}{hint}")
