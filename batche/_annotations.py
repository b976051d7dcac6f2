"""What a function's signature and annotations say, checked at decoration.

Which parameter holds the batch (named, or guessed from the signature), whether the
annotations of the batch and of the result are list-like, what ``ignore=`` may name, and
whether the result is annotated as a numpy array. Annotations that cannot be resolved
are judged by their text.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Collection
from typing import Any

from ._errors import BatchDefinitionError

_P = inspect.Parameter
_VARIADIC = (_P.VAR_POSITIONAL, _P.VAR_KEYWORD)
POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)


def underlying(func: Any) -> Any:
    """The function a ``functools.partial`` calls in the end (itself for anything else)."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def check_definition(
    params: list[inspect.Parameter],
    names: tuple[str, ...] | None,
    ignore: Collection[str],
    hints: dict[str, Any],
    fname: str,
) -> tuple[str, ...]:
    """The batch parameters (``names``, or the one guessed), once the signature and the
    annotations are found to fit them; else a ``BatchDefinitionError`` naming the fault."""
    by_name = {p.name: p for p in params}
    varkw = next((p.name for p in params if p.kind is _P.VAR_KEYWORD), None)
    if names is None:
        names = (_guess_batch_name(params, hints, fname),)
    for name in names:
        param = by_name.get(name)
        if param is None and varkw is None:
            listed = ", ".join(p.name for p in params) or "none"
            # batche 0.1.1's words, the bare name first: code may match on them
            raise BatchDefinitionError(
                f"{fname}: {name} must be a valid argument of the batch function "
                f"(batch_variable_name={name!r}); its parameters are: {listed}"
            )
        if param is not None and param.kind in _VARIADIC:
            raise BatchDefinitionError(
                f"{fname}: the batch parameter {name!r} cannot be *{name} or **{name}; "
                "name a parameter that receives the list itself"
            )
        if name in hints and _list_like(hints[name], returned=False) is False:
            raise BatchDefinitionError(
                f"{fname}: {name} annotation must be a list of hashable objects, "
                f"not {_show(hints[name])}"
            )
    if len(set(names)) != len(names):
        raise BatchDefinitionError(f"{fname}: batch_variable_name repeats a name: {names}")
    if "return" in hints and _list_like(hints["return"], returned=True) is False:
        raise BatchDefinitionError(
            f"{fname}: return annotation must be a list (or tuple, Sequence, numpy "
            f"array) with one result per item, not {_show(hints['return'])}"
        )
    for name in ignore:
        if name in names:
            raise BatchDefinitionError(
                f"{fname}: ignore= names the batch parameter {name!r}; the batch is "
                "always part of the key"
            )
        if name not in by_name and varkw is None:
            listed = ", ".join(p.name for p in params)
            raise BatchDefinitionError(
                f"{fname}: ignore= names {name!r}, which is not a parameter; its "
                f"parameters are: {listed}"
            )
    return names


def _guess_batch_name(params: list[inspect.Parameter], hints: dict[str, Any], fname: str) -> str:
    """The batch parameter of a function decorated without naming it."""
    plain = [p for p in params if p.kind not in _VARIADIC]
    if plain and plain[0].name in ("self", "cls"):
        plain = plain[1:]
    if len(plain) == 1:
        return plain[0].name
    listy = [p.name for p in plain if p.name in hints and _list_like(hints[p.name], False)]
    if len(listy) == 1:
        return listy[0]
    shown = ", ".join(p.name for p in plain) or "none"
    raise BatchDefinitionError(
        f"{fname}: cannot tell which parameter holds the batch (parameters: {shown}); "
        "pass batch_variable_name="
    )


_SEQUENCE_NAMES = {"list", "List", "tuple", "Tuple", "Sequence", "MutableSequence"}
_ARRAY_NAMES = {"ndarray", "NDArray", "Tensor", "ArrayLike"}
_ITERABLE_NAMES = {"Iterable", "Collection", "Iterator", "Generator"}
_SCALAR_NAMES = {
    "str", "bytes", "bytearray", "int", "float", "bool", "complex", "dict", "Dict",
    "Mapping", "MutableMapping", "set", "Set", "frozenset", "FrozenSet", "None",
}  # fmt: skip


def type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; those that cannot be resolved stay strings."""
    target = inspect.unwrap(underlying(func))
    # Any failure to evaluate them all at once falls back to one by one: an annotation
    # that names something imported only under TYPE_CHECKING must not break decoration.
    with contextlib.suppress(Exception):
        return typing.get_type_hints(target)
    raw = getattr(target, "__annotations__", {}) or {}
    namespace = getattr(target, "__globals__", {})
    hints: dict[str, Any] = {}
    for name, annotation in raw.items():
        if isinstance(annotation, str):
            # The function's own annotation text, in its own module: what get_type_hints
            # evaluates too. One that still fails is judged by its text later.
            with contextlib.suppress(Exception):
                annotation = eval(annotation, dict(namespace))  # noqa: S307
        hints[name] = annotation
    return hints


def _list_like(annotation: Any, returned: bool) -> bool | None:
    """True for a list-like annotation, False for one that is not, None when unknown."""
    if isinstance(annotation, str):
        return _list_like_text(annotation, returned)
    if annotation is Any or annotation is object or isinstance(annotation, typing.TypeVar):
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _list_like(typing.get_args(annotation)[0], returned)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        verdicts = [_list_like(a, returned) for a in members]
        if any(verdicts):
            return True
        return False if all(v is False for v in verdicts) else None
    cls = origin if origin is not None else annotation
    if annotation is None or cls is type(None):
        return False
    if not isinstance(cls, type):
        return None
    if issubclass(cls, (str, bytes, bytearray, cabc.Mapping, cabc.Set)):
        return False
    if issubclass(cls, cabc.Sequence) or cls.__name__ in _ARRAY_NAMES:
        return True
    if not returned and issubclass(cls, cabc.Iterable):
        return True
    return hasattr(cls, "__getitem__") and hasattr(cls, "__len__")


def _list_like_text(text: str, returned: bool) -> bool | None:
    """Judge an annotation that could not be evaluated by its text alone."""
    members = [m.strip() for m in text.split("|")]
    if len(members) > 1:
        verdicts = [_list_like_text(m, returned) for m in members if m != "None"]
        return True if any(verdicts) else (None if None in verdicts else False)
    head = text.split("[", 1)[0].strip().rsplit(".", 1)[-1]
    if head == "Optional" and "[" in text:
        return _list_like_text(text.split("[", 1)[1].rsplit("]", 1)[0], returned)
    if head in _SEQUENCE_NAMES or head in _ARRAY_NAMES:
        return True
    if head in _ITERABLE_NAMES:
        return None if returned else True
    if head in _SCALAR_NAMES:
        return False
    return None


def _show(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def annotated_array(func: Callable[..., Any]) -> bool:
    """True when the return annotation names a numpy array."""
    annotation = getattr(inspect.unwrap(underlying(func)), "__annotations__", {}).get("return")
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not isinstance(text, str):
        return False
    origin = getattr(annotation, "__origin__", None)
    if origin is not None:
        text = getattr(origin, "__name__", "")
    return text.split("[", 1)[0].rsplit(".", 1)[-1] in ("ndarray", "NDArray")
