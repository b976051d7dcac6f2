"""What one batch call looks like: one list parameter, parallel lists, or padded feature
dicts; the items of a call, the arguments of a batch, the check of its results."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, MappingView, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from ._errors import BatchArgumentError, BatchDefinitionError, BatchResultError
from ._padding import Padder

__all__ = ["Shape"]


class Shape:
    """How items travel: one list parameter, parallel lists, or padded feature dicts."""

    def __init__(self, func: Callable[..., Any], fname: str, pad_token: Mapping[str, Any] | None):
        self.fname = fname
        signature = inspect.signature(func)
        params = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is p.empty
        ]
        #: a method (or classmethod): each instance gets a batcher of its own (``_methods``)
        self.method = bool(params) and params[0].name in ("self", "cls")
        if self.method:
            params = params[1:]
        if not params:
            raise BatchDefinitionError(
                f"{fname}: dynamically() needs a function taking the batch as a parameter"
            )
        self.signature = signature
        self.names = tuple(p.name for p in params)
        self.padder = Padder(pad_token, fname) if pad_token is not None else None
        if self.padder is not None and len(self.names) != 1:
            raise BatchDefinitionError(
                f"{fname}: pad_token= needs a function of one parameter, a dict of feature "
                f"arrays; it has {len(self.names)}: {', '.join(self.names)}"
            )

    def items(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[Any]:
        """The items of one call (a list, tuples for parallel lists, rows for features)."""
        if len(self.names) == 1 and len(args) == 1 and not kwargs:
            batch = args[0]
        else:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise BatchArgumentError(f"{self.fname}: {exc}") from None
            extra = [name for name in bound.arguments if name not in self.names]
            if extra:
                raise BatchArgumentError(
                    f"{self.fname}: dynamically() batches calls over "
                    f"{', '.join(map(repr, self.names))} only; other arguments "
                    f"({', '.join(map(repr, extra))}) would be shared by every caller of a "
                    "batch: fix them with functools.partial or a closure"
                )
            if len(self.names) == 1:
                batch = bound.arguments[self.names[0]]
            else:
                return self._parallel([bound.arguments[n] for n in self.names])
        if self.padder is not None:
            return self.padder.rows(batch)
        if type(batch) is list:
            return batch
        if isinstance(batch, (str, bytes, bytearray, Mapping)):
            raise BatchArgumentError(
                f"{self.fname}: {self.names[0]!r} must be a list of items, got "
                f"{type(batch).__name__}; use .one(item) for a single item"
            )
        _refuse_a_set(batch, self.names[0], self.fname)
        try:
            return list(batch)
        except TypeError:
            raise BatchArgumentError(
                f"{self.fname}: {self.names[0]!r} must be a list of items, got "
                f"{type(batch).__name__}"
            ) from None

    def one(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[Any]:
        """The items of a ``.one(...)`` call: exactly one."""
        if self.padder is not None:
            (features,) = args if args else (kwargs[self.names[0]],)
            return self.padder.rows(self.padder.single(features))
        if len(self.names) == 1:
            if len(args) + len(kwargs) != 1:
                raise BatchArgumentError(f"{self.fname}: .one() takes exactly one item")
            return [args[0] if args else kwargs[self.names[0]]]
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise BatchArgumentError(f"{self.fname}.one: {exc}") from None
        return [tuple(bound.arguments[n] for n in self.names)]

    def _parallel(self, columns: list[Any]) -> list[tuple[Any, ...]]:
        for name, column in zip(self.names, columns):
            _refuse_a_set(column, name, self.fname)
        lengths = {n: len(c) for n, c in zip(self.names, columns)}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{n!r} has {k}" for n, k in lengths.items())
            raise BatchArgumentError(f"{self.fname}: the lists must be parallel: {shown}")
        return list(zip(*columns))

    def call_args(self, items: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """How to call the function on one batch of items."""
        if self.padder is not None:
            return (self.padder.batch(items),), {}
        if len(self.names) == 1:
            return (items,), {}
        columns = [list(c) for c in zip(*items)] if items else [[] for _ in self.names]
        return (), dict(zip(self.names, columns))

    def outputs(self, out: Any, expected: int) -> Any:
        """Check the function's result for a batch: one per item, indexable."""
        np = sys.modules.get("numpy")
        torch = sys.modules.get("torch")
        is_array = (np is not None and isinstance(out, np.ndarray)) or (
            torch is not None and isinstance(out, torch.Tensor)
        )
        if (is_array and out.ndim > 0) or isinstance(out, (list, tuple)):
            count = len(out)
        else:
            raise BatchResultError(
                f"{self.fname} returned {type(out).__name__}, not a list of {expected} results"
            )
        if count != expected:
            raise BatchResultError(
                f"{self.fname} returned {count} results for a batch of {expected} items"
            )
        return out if not isinstance(out, tuple) else list(out)


def _refuse_a_set(batch: Any, name: str, fname: str) -> None:
    """A set is no batch: it has no order to answer in (a dict's ordered keys() is one)."""
    if isinstance(batch, AbstractSet) and not isinstance(batch, MappingView):
        raise BatchArgumentError(
            f"{fname}: {name!r} must be a list of items, got {type(batch).__name__} "
            "(a set has no order to answer in: pass a list, e.g. sorted(...))"
        )
