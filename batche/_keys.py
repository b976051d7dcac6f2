"""Keys that leave the process: the same in every process and on every machine.

Python's ``hash()`` is salted per process, so a key for SQLite or Redis is a blake2b
digest of a canonical encoding of the namespace, the version, the item's key and the
other arguments. The encoding is type-tagged: ``1``, ``1.0``, ``True`` and ``"1"`` are
four keys here (an in-memory dict, like ``lru_cache``, would make the first three one).
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from collections.abc import Callable, Hashable
from typing import Any

from ._errors import BatchArgumentError

__all__ = ["Encoder", "UnstableKeyError", "canonical"]


class UnstableKeyError(BatchArgumentError):
    """A value has no encoding that is the same in every process."""


def _int(value: int) -> bytes:
    return b"i" + str(value).encode() + b";"


def _float(value: float) -> bytes:
    if math.isnan(value):
        return b"fnan;"
    return b"f" + struct.pack(">d", value)


def _str(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    return b"s" + str(len(raw)).encode() + b":" + raw


def _bytes(value: bytes) -> bytes:
    return b"b" + str(len(value)).encode() + b":" + bytes(value)


def canonical(value: Any, where: str = "value") -> bytes:
    """The canonical bytes of ``value``; raises ``UnstableKeyError`` naming ``where``."""
    out: list[bytes] = []
    _encode(value, out, where)
    return b"".join(out)


def _encode(value: Any, out: list[bytes], where: str) -> None:
    kind = type(value)
    if value is None:
        out.append(b"N")
    elif kind is bool:
        out.append(b"T" if value else b"F")
    elif kind is int:
        out.append(_int(value))
    elif kind is float:
        out.append(_float(value))
    elif kind is str:
        out.append(_str(value))
    elif kind is bytes or kind is bytearray:
        out.append(_bytes(value))
    elif kind is tuple or kind is list:
        out.append(b"(" if kind is tuple else b"[")
        for item in value:
            _encode(item, out, where)
        out.append(b")")
    elif kind is frozenset or kind is set:
        parts = sorted(canonical(item, where) for item in value)
        out.append(b"{" + b"".join(parts) + b"}")
    elif kind is dict:
        parts = sorted(canonical(k, where) + canonical(v, where) for k, v in value.items())
        out.append(b"<" + b"".join(parts) + b">")
    elif _is_numpy_scalar(value):
        _encode(value.item(), out, where)
    elif isinstance(value, (int, float, str, bytes)):  # subclasses: IntEnum, StrEnum, ...
        out.append(b"~" + _str(f"{kind.__module__}.{kind.__qualname__}"))
        if isinstance(value, int):
            _encode(int(value), out, where)
        elif isinstance(value, float):
            _encode(float(value), out, where)
        elif isinstance(value, str):
            _encode(value[:], out, where)  # slicing a str subclass gives a plain str
        else:
            _encode(bytes(value), out, where)
    else:
        raise UnstableKeyError(
            f"{where} is a {kind.__name__}, which has no encoding that is the same in every "
            "process; pass key= (for items) or ignore= (for other arguments), or a str, "
            "int, float, bytes, None or a tuple of them"
        )


def _is_numpy_scalar(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.generic)


class Encoder:
    """Stable string keys for one decorated function (namespace and version fixed)."""

    def __init__(self, namespace: str, version: str) -> None:
        self.namespace = namespace
        self.version = version
        self._prefix = f"{namespace}:{version}:"
        self._head = canonical((namespace, version))

    def keys(
        self,
        items: Any,
        ctx: tuple[Any, ...],
        item_key: Callable[[Any], Hashable] | None,
        names: str,
        ctx_names: tuple[str, ...],
    ) -> list[str]:
        """The store key of each item: ``namespace:version:digest``."""
        ctx_bytes = b"".join(
            canonical(value, f"argument {name!r}") for name, value in zip(ctx_names, ctx)
        )
        base = self._head + b"|" + ctx_bytes + b"|"
        prefix = self._prefix
        blake = hashlib.blake2b
        out = []
        for index, item in enumerate(items):
            key = item if item_key is None else item_key(item)
            if type(key) is str:  # the common item, encoded inline (same bytes as _str)
                raw = key.encode("utf-8", "surrogatepass")
                data = base + b"s" + str(len(raw)).encode() + b":" + raw
            else:
                where = f"item {index} of {names}" + (" (its key=)" if item_key else "")
                data = base + canonical(key, where)
            out.append(prefix + blake(data, digest_size=16).hexdigest())
        return out
