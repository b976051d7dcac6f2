"""Keys: the same item is the same key in every store, in every process, on every machine.

Two rules decide when two items are one entry, and every store follows the same one:

- by default, as in a dict or ``functools.lru_cache``: items that compare equal (and hash
  equal) are one item, so ``1``, ``1.0`` and ``True`` share an entry, and so do ``0.0``
  and ``-0.0``;
- with ``typed=True``: only items of the same type and the same value are one item
  (``1``, ``1.0``, ``True`` are three; ``0.0`` and ``-0.0`` two), also inside tuples.

In memory the key is the item itself (or ``typed_key(item)``). Python's ``hash()`` is
salted per process, so a key for SQLite or Redis is a blake2b digest of a canonical
encoding instead: each value is brought to one representative of its class of equal
values (``True`` and ``1.0`` are encoded as ``1``), or, typed, tagged with its type.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from collections.abc import Callable, Hashable
from typing import Any

from ._errors import BatchArgumentError

__all__ = ["Encoder", "UnstableKeyError", "canonical", "typed_key"]


class UnstableKeyError(BatchArgumentError):
    """A value has no encoding that is the same in every process."""


def _int(value: int) -> bytes:
    return b"i" + str(value).encode() + b";"


def _float(value: float, typed: bool) -> bytes:
    if math.isnan(value):
        return b"fnan;"
    if not typed and value.is_integer():
        return _int(int(value))  # 1.0 == 1, -0.0 == 0: one item
    return b"f" + struct.pack(">d", value)


def _str(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    return b"s" + str(len(raw)).encode() + b":" + raw


def _bytes(value: bytes) -> bytes:
    return b"b" + str(len(value)).encode() + b":" + bytes(value)


def canonical(value: Any, where: str = "value", *, typed: bool = False) -> bytes:
    """The canonical bytes of ``value``; raises ``UnstableKeyError`` naming ``where``.

    Values that compare equal have equal bytes (typed: values of one type that are equal
    and, for floats, of the same sign; every NaN is one value).
    """
    out: list[bytes] = []
    _encode(value, out, where, typed)
    return b"".join(out)


def _encode(value: Any, out: list[bytes], where: str, typed: bool) -> None:
    kind = type(value)
    if value is None:
        out.append(b"N")
    elif kind is str:
        out.append(_str(value))
    elif kind is int:
        out.append(_int(value))
    elif kind is bool:
        out.append((b"T" if value else b"F") if typed else _int(int(value)))
    elif kind is float:
        out.append(_float(value, typed))
    elif kind is bytes:
        out.append(_bytes(value))
    elif kind is tuple:
        out.append(b"(")
        for item in value:
            _encode(item, out, where, typed)
        out.append(b")")
    elif kind is frozenset:
        parts = sorted(canonical(item, where, typed=typed) for item in value)
        out.append(b"{" + b"".join(parts) + b"}")
    elif kind is complex:
        if value.imag == 0 and not typed:
            _encode(value.real, out, where, typed)  # (1+0j) == 1
        else:
            out.append(b"c" + _float(value.real, True) + _float(value.imag, True))
    elif isinstance(value, (int, float, complex, str, bytes, tuple, frozenset)) or _is_numpy(value):
        _encode_subclass(value, out, where, typed)
    else:
        raise UnstableKeyError(
            f"{where} is a {kind.__name__}, which has no encoding that is the same in every "
            "process; pass key= (for items) or ignore= (for other arguments), or a str, "
            "int, float, bytes, None or a tuple of them"
        )


# The builtin value of an instance of a subclass (its own __str__ or __int__ may lie).
_EXACT: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (int, int.__int__),
    (float, float.__float__),
    (complex, lambda value: complex(float(value.real), float(value.imag))),
    (str, str.__str__),
    (bytes, lambda value: bytes(memoryview(value))),
    (tuple, tuple),
    (frozenset, frozenset),
)


def _encode_subclass(value: Any, out: list[bytes], where: str, typed: bool) -> None:
    """A numpy scalar, or a subclass of a builtin (``IntEnum``, ``StrEnum``, namedtuple).

    Untyped it is its value, as it compares; typed, its type's name comes first.
    """
    if _is_numpy(value):
        plain = value.item()
        if _is_numpy(plain):  # longdouble and friends: no exact Python value
            raise UnstableKeyError(
                f"{where} is a numpy {type(value).__name__}, which has no exact Python value; "
                "pass key= (for items) or ignore= (for other arguments)"
            )
    else:
        plain = next(exact(value) for base, exact in _EXACT if isinstance(value, base))
    if typed:
        kind = type(value)
        out.append(b"~" + _str(f"{kind.__module__}.{kind.__qualname__}"))
    _encode(plain, out, where, typed)


def _is_numpy(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.generic)


# Types whose instances equal only instances of the same type: their own key, typed.
_PLAIN_TYPES = frozenset({str, int, bytes, type(None)})


def typed_key(value: Any) -> Any:
    """An in-memory key that equals another only for the same type and value (``typed``).

    Agrees with ``canonical(..., typed=True)``: tuples are keyed item by item, ``-0.0``
    is not ``0.0``, and every NaN is one value.
    """
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is tuple:
        return (tuple, tuple(map(typed_key, value)))
    if _is_numpy(value):
        plain = value.item()
        return (kind, value if _is_numpy(plain) else typed_key(plain))
    if isinstance(value, float):
        if value != value:
            return (kind, "nan")
        return (kind, "-0.0" if value == 0 and math.copysign(1.0, value) < 0 else float(value))
    if isinstance(value, tuple):
        return (kind, tuple(map(typed_key, value)))
    if isinstance(value, frozenset):
        return (kind, frozenset(map(typed_key, value)))
    if isinstance(value, complex):
        return (kind, typed_key(float(value.real)), typed_key(float(value.imag)))
    return (kind, value)


class Encoder:
    """Stable string keys for one decorated function (namespace, version and rule fixed)."""

    def __init__(self, namespace: str, version: str, *, typed: bool = False) -> None:
        self.namespace = namespace
        self.version = version
        self.typed = typed
        self._prefix = f"{namespace}:{version}:"
        self._head = canonical((namespace, version))

    def keys(
        self, items: Any, ctx: tuple[Any, ...], item_key: Callable[[Any], Hashable] | None
    ) -> list[str]:
        """The store key of each item: ``namespace:version:digest``.

        Raises ``UnstableKeyError`` (or ``TypeError`` from ``item_key``) for a value with
        no stable encoding; the caller names it (see ``_calls.py``).
        """
        typed = self.typed
        ctx_bytes = b"".join(canonical(value, typed=typed) for value in ctx)
        base = self._head + b"|" + ctx_bytes + b"|"
        prefix = self._prefix
        blake = hashlib.blake2b
        out = []
        for item in items:
            key = item if item_key is None else item_key(item)
            if type(key) is str:  # the common item, encoded inline (same bytes as _str)
                raw = key.encode("utf-8", "surrogatepass")
                data = base + b"s" + str(len(raw)).encode() + b":" + raw
            else:
                data = base + canonical(key, typed=typed)
            out.append(prefix + blake(data, digest_size=16).hexdigest())
        return out
