"""How results are written to stores outside the process.

``SafeSerializer`` (the default) never runs code from the store: it writes a small
type-tagged binary format for None, bools, ints, floats, str, bytes, lists, tuples,
dicts, and numpy arrays and scalars (dtype, shape and raw bytes: float32 embeddings stay
float32 and compact). A list of floats, the usual embedding, is packed as doubles and
read back with one C call. ``PickleSerializer`` takes anything but must only be used on a
store nobody else can write: loading a pickle runs whatever code it names.
"""

from __future__ import annotations

import pickle
import struct
import sys
from array import array
from typing import Any, Protocol

from ._errors import BatchConfigError, BatcheError

__all__ = ["PickleSerializer", "SafeSerializer", "SerializationError", "Serializer", "resolve"]


class SerializationError(BatcheError, TypeError):
    """A result cannot be written by the store's serializer."""


class Serializer(Protocol):
    """Turns results into bytes for a store, and back."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


_MAGIC = b"\xb7B1"  # marks the safe format, version 1
_LEN = struct.Struct(">I")
_F64 = struct.Struct(">d")


class SafeSerializer:
    """The default: JSON-like values, bytes, tuples and numpy arrays; never pickle."""

    def dumps(self, value: Any) -> bytes:
        out = [_MAGIC]
        _dump(value, out)
        return b"".join(out)

    def loads(self, data: bytes) -> Any:
        view = memoryview(data)
        if bytes(view[:3]) != _MAGIC:
            raise ValueError("not in batche's safe format")
        value, end = _load(view, 3)
        if end != len(view):
            raise ValueError("trailing bytes after the value")
        return value

    def __repr__(self) -> str:
        return "SafeSerializer()"


def _dump(value: Any, out: list[bytes]) -> None:
    kind = type(value)
    if value is None:
        out.append(b"N")
    elif kind is bool:
        out.append(b"T" if value else b"F")
    elif kind is int:
        text = str(value).encode()
        out.append(b"i" + _LEN.pack(len(text)) + text)
    elif kind is float:
        out.append(b"f" + _F64.pack(value))
    elif kind is str:
        raw = value.encode("utf-8", "surrogatepass")
        out.append(b"s" + _LEN.pack(len(raw)) + raw)
    elif kind is bytes or kind is bytearray:
        out.append(b"b" + _LEN.pack(len(value)) + bytes(value))
    elif kind is list and value and set(map(type, value)) == {float}:
        packed = array("d", value)
        if sys.byteorder != "little":  # pragma: no cover - big-endian machines
            packed.byteswap()
        out.append(b"D" + _LEN.pack(len(packed)) + packed.tobytes())
    elif kind is list or kind is tuple:
        out.append((b"l" if kind is list else b"t") + _LEN.pack(len(value)))
        for item in value:
            _dump(item, out)
    elif kind is dict:
        out.append(b"d" + _LEN.pack(len(value)))
        for key, item in value.items():
            _dump(key, out)
            _dump(item, out)
    else:
        np = sys.modules.get("numpy")
        if np is not None and isinstance(value, np.ndarray):
            _dump_array(value, out)
        elif np is not None and isinstance(value, np.generic):
            _dump_array(np.asarray(value), out, scalar=True)
        else:
            raise SerializationError(
                f"a {kind.__module__}.{kind.__qualname__} result cannot be stored by the safe "
                "serializer (None, bool, int, float, str, bytes, list, tuple, dict, numpy "
                "arrays); convert it, or pass serializer='pickle' for a store only you write"
            )


def _dump_array(value: Any, out: list[bytes], scalar: bool = False) -> None:
    if value.dtype.hasobject:
        raise SerializationError("a numpy array of Python objects cannot be stored safely")
    if value.dtype.fields is not None:
        raise SerializationError(
            "a numpy array of a structured dtype cannot be stored by the safe serializer "
            "(its field names would be lost); store plain arrays, or use serializer='pickle'"
        )
    # dtype.str names the byte order too ("<f4", ">i2"): any machine reads it back as it was
    data = value.tobytes(order="C")
    descr = value.dtype.str.encode()
    shape = b"".join(_LEN.pack(n) for n in value.shape)
    out.append(
        (b"S" if scalar else b"A")
        + bytes([len(descr)])
        + descr
        + bytes([value.ndim])
        + shape
        + _LEN.pack(len(data))
        + data
    )


def _load(view: memoryview, at: int) -> tuple[Any, int]:
    tag = view[at : at + 1].tobytes()
    at += 1
    if tag == b"N":
        return None, at
    if tag == b"T":
        return True, at
    if tag == b"F":
        return False, at
    if tag == b"f":
        return _F64.unpack_from(view, at)[0], at + 8
    if tag in (b"i", b"s", b"b", b"D", b"l", b"t", b"d"):
        (size,) = _LEN.unpack_from(view, at)
        at += 4
        if tag == b"i":
            return int(view[at : at + size].tobytes()), at + size
        if tag == b"s":
            return view[at : at + size].tobytes().decode("utf-8", "surrogatepass"), at + size
        if tag == b"b":
            return view[at : at + size].tobytes(), at + size
        if tag == b"D":
            floats = array("d")
            floats.frombytes(view[at : at + 8 * size].tobytes())
            if len(floats) != size:
                raise ValueError("truncated float list")
            if sys.byteorder != "little":  # pragma: no cover - big-endian machines
                floats.byteswap()
            return floats.tolist(), at + 8 * size
        if tag == b"d":
            mapping = {}
            for _ in range(size):
                key, at = _load(view, at)
                mapping[key], at = _load(view, at)
            return mapping, at
        items = []
        for _ in range(size):
            item, at = _load(view, at)
            items.append(item)
        return (items if tag == b"l" else tuple(items)), at
    if tag in (b"A", b"S"):
        import numpy as np  # stored arrays need numpy to be read back

        descr_len = view[at]
        descr = view[at + 1 : at + 1 + descr_len].tobytes().decode()
        at += 1 + descr_len
        ndim = view[at]
        at += 1
        shape = tuple(_LEN.unpack_from(view, at + 4 * i)[0] for i in range(ndim))
        at += 4 * ndim
        (size,) = _LEN.unpack_from(view, at)
        at += 4
        dtype = np.dtype(descr)
        if dtype.hasobject:
            raise ValueError("object arrays are not read")
        array_value = np.frombuffer(view[at : at + size], dtype=dtype).reshape(shape).copy()
        return (array_value[()] if tag == b"S" else array_value), at + size
    raise ValueError(f"unknown tag {tag!r}")


class PickleSerializer:
    """Any picklable value. Only for a store that nobody else can write to."""

    def dumps(self, value: Any) -> bytes:
        return b"\xb7P1" + pickle.dumps(value, protocol=5)

    def loads(self, data: bytes) -> Any:
        if data[:3] != b"\xb7P1":
            raise ValueError("not a batche pickle")
        return pickle.loads(data[3:])  # noqa: S301 - opted into with serializer="pickle"

    def __repr__(self) -> str:
        return "PickleSerializer()"


def resolve(serializer: Any, where: str) -> Serializer:
    """The serializer a store was given: "safe", "pickle", or an object with dumps/loads."""
    if serializer == "safe":
        return SafeSerializer()
    if serializer == "pickle":
        return PickleSerializer()
    if callable(getattr(serializer, "dumps", None)) and callable(
        getattr(serializer, "loads", None)
    ):
        return serializer  # type: ignore[no-any-return]
    raise BatchConfigError(
        f"{where}: serializer must be 'safe', 'pickle' or an object with dumps() and loads(), "
        f"got {serializer!r}"
    )
